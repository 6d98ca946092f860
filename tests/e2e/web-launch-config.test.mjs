// The launch form's configuration conversions (web/lib/launch-config.js),
// run in node without a browser: round trips of exported configurations,
// image and command splitting, GPU choices, secrets in exports and clone
// edits.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  cloneEdits, commandToText, configToForm, emptyForm, formToConfig, formToGpus, gpusToForm, isSecretName,
  splitImage, textToCommand, withoutSecrets,
} from '../../web/lib/launch-config.js';

// Configurations in the shape the server exports them.
const exported = [
  {
    version: 1, name: 'sim1', project: 'demo', runtime: 'process', image: 'nimdeck/sim',
    command: ['nimdeck', 'sim', '--port', '{port}'], queue: 'default', route: null, idle_time_limit_hours: 1,
    env: { NIM_LOG_LEVEL: 'INFO', MY_TOKEN: null }, tags: ['demo', 'simulator'], gpus: 0, port: null,
    health_path: '/v1/health/ready',
  },
  {
    version: 1, name: 'llama', project: 'team-a', runtime: 'docker', image: 'nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3.0',
    queue: 'gpu', route: 'llama', idle_time_limit_hours: null, env: { NGC_API_KEY: null }, tags: [],
    gpus: ['0', '2'], port: 8000, health_path: '/v1/health/ready',
    docker: { shm_size: '16g', cache: '/var/cache/nim', network: 'host', pull: 'always' },
  },
  {
    version: 1, name: 'x', project: 'p', runtime: 'docker', image: 'registry:5000/img', queue: 'default',
    route: null, idle_time_limit_hours: 0.25, env: {}, tags: ['a'], gpus: 'all', port: null, health_path: '/h',
    command: ['', 'two\nlines'],
  },
];

test('exported configurations round-trip', () => {
  for (const config of exported) {
    const { values, problems } = configToForm(config);
    assert.deepEqual(problems, [], `problems for ${config.name}`);
    assert.deepEqual(formToConfig(values), config);
  }
});

test('unknown keys pass through unchanged', () => {
  const config = { ...exported[0], bogus: { a: 1 }, docker: { shm_size: '1g', future_option: true } };
  assert.deepEqual(formToConfig(configToForm(config).values), config);
});

test('wrong types are reported, not imported', () => {
  const { problems } = configToForm({ name: ['x'], command: 'nimdeck sim', env: [], tags: 'a,b', docker: 'x' });
  assert.deepEqual(problems.map((p) => p.field), ['name', 'command', 'env', 'tags', 'docker']);
  assert.equal(configToForm(null).problems.length, 1);
  assert.equal(configToForm([]).problems.length, 1);
});

test('empty form gives a minimal configuration', () => {
  const values = { ...emptyForm(), name: 'n', project: 'p', image: 'img', tag: '2' };
  assert.deepEqual(formToConfig(values), {
    version: 1, name: 'n', project: 'p', runtime: 'docker', image: 'img:2', queue: 'default', route: null,
    idle_time_limit_hours: 1, env: {}, tags: [], gpus: 0, port: null, health_path: '/v1/health/ready',
  });
});

test('image references split at the tag', () => {
  assert.deepEqual(splitImage('nvcr.io/nim/meta/llama:1.0'), { image: 'nvcr.io/nim/meta/llama', tag: '1.0' });
  assert.deepEqual(splitImage('localhost:5000/img'), { image: 'localhost:5000/img', tag: '' });
  assert.deepEqual(splitImage('img@sha256:abc'), { image: 'img@sha256:abc', tag: '' });
  assert.deepEqual(splitImage('img'), { image: 'img', tag: '' });
});

test('command text and argv convert both ways', () => {
  assert.equal(commandToText(['a', 'b c']), 'a\nb c');
  assert.deepEqual(textToCommand('a\nb c\n'), ['a', 'b c']);
  assert.deepEqual(textToCommand('a\r\nb'), ['a', 'b']);
  assert.equal(textToCommand('  '), null);
  assert.equal(commandToText(['[x]']), '["[x]"]');
  assert.deepEqual(textToCommand('["a", ""]'), ['a', '']);
  assert.throws(() => textToCommand('[1, 2]'), /array of strings/);
  assert.throws(() => textToCommand('[oops'), /not valid JSON/);
});

test('GPU choices convert both ways', () => {
  assert.deepEqual(gpusToForm(0), { mode: 'none', value: '' });
  assert.deepEqual(gpusToForm(null), { mode: 'none', value: '' });
  assert.deepEqual(gpusToForm('all'), { mode: 'all', value: '' });
  assert.deepEqual(gpusToForm(2), { mode: 'count', value: '2' });
  assert.deepEqual(gpusToForm(['1', '3']), { mode: 'ids', value: '1,3' });
  assert.equal(formToGpus('count', ' 4 '), 4);
  assert.equal(formToGpus('count', 'two'), 'two');
  assert.deepEqual(formToGpus('ids', '0, 1,'), ['0', '1']);
  assert.equal(formToGpus('none', '3'), 0);
  // A value the form cannot show is reported instead of becoming "none".
  for (const gpus of ['lots', -1, 1.5, { count: 1 }, [['0']]]) {
    assert.deepEqual(configToForm({ ...exported[0], gpus }).problems.map((p) => p.field), ['gpus'], JSON.stringify(gpus));
  }
});

test('secret values export as null', () => {
  const config = { env: { NGC_API_KEY: 'nvapi-x', hf_token: 'hf-y', KEPT: null, MY_TOKEN: null, NIM_LOG_LEVEL: 'INFO' } };
  assert.deepEqual(withoutSecrets(config), ['NGC_API_KEY', 'hf_token']);
  assert.deepEqual(config.env, { NGC_API_KEY: null, hf_token: null, KEPT: null, MY_TOKEN: null, NIM_LOG_LEVEL: 'INFO' });
  assert.deepEqual(withoutSecrets({}), []);
});

test('secret names match the server rule', () => {
  for (const name of ['NGC_API_KEY', 'hf_token', 'DB_PASSWORD', 'my_secret', 'AWS_CREDENTIALS']) {
    assert.ok(isSecretName(name), name);
  }
  assert.ok(!isSecretName('NIM_LOG_LEVEL'));
});

test('clone edits change only what differs', () => {
  const from = exported[0];
  const to = {
    ...from, idle_time_limit_hours: 2, tags: ['demo'],
    env: { NIM_LOG_LEVEL: 'DEBUG', MY_TOKEN: null, EXTRA: '1' },
  };
  delete to.command;
  assert.deepEqual(cloneEdits(from, to), [
    { unset: 'command' },
    { set: 'idle_time_limit_hours', value: 2 },
    { set: 'env.NIM_LOG_LEVEL', value: 'DEBUG' },
    { set: 'env.EXTRA', value: '1' },
    { set: 'tags', value: ['demo'] },
  ]);
  assert.deepEqual(cloneEdits(from, structuredClone(from)), []);
  const withoutSecret = { ...from, env: { NIM_LOG_LEVEL: 'INFO' } };
  assert.deepEqual(cloneEdits(from, withoutSecret), [{ unset: 'env.MY_TOKEN' }]);
});
