// `nimdeck endpoints`: the Model Endpoints list in the terminal, as a table,
// JSON and CSV, against a real `nimdeck up` with the simulator.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Up, simCommand, simConfig, waitFor } from './lib.mjs';

const up = new Up('cli-endpoints');

before(async () => {
  await up.start();
});

after(async () => {
  await up.stop();
});

// Run `nimdeck endpoints ARGS` and return its stdout, failing on a non-zero exit.
function endpoints(args = [], options = {}) {
  const res = up.cli(['endpoints', ...args], options);
  assert.equal(res.status, 0, `nimdeck endpoints ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

// The table rows under the header line that starts with ENDPOINT, up to
// the next blank line, split into cells on runs of two or more spaces.
function tableRows(text, index = 0) {
  const tables = text.split('\n\n');
  const lines = tables.filter((part) => /^(Loading:\n)?ENDPOINT/.test(part))[index].split('\n');
  const header = lines.findIndex((line) => line.startsWith('ENDPOINT'));
  return lines.slice(header + 1).filter((line) => line !== '').map((line) => line.split(/ {2,}/));
}

async function csvFromServer(token = up.adminToken) {
  const res = await fetch(`${up.apiUrl}/api/v1/endpoints?format=csv`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  return res.text();
}

test('empty list shows both sections', () => {
  const text = endpoints();
  assert.match(text, /^ENDPOINT +MODEL +URL +INSTANCES +UPTIME +REQUESTS +REQ\/MIN +MEAN LATENCY\n/);
  assert.match(text, /\nLoading: none\n$/);
  assert.deepEqual(tableRows(text), []);
});

test('help names the output options', () => {
  const res = up.cli(['endpoints', '--help']);
  assert.equal(res.status, 0);
  assert.match(res.stdout, /^usage: nimdeck endpoints \[--json \| --csv\]/);
  assert.match(res.stdout, /--csv /);
  const top = up.cli(['--help']);
  assert.match(top.stdout, /\n {2}endpoints +list the model endpoints/);
});

test('json and csv together are a usage error', () => {
  const res = up.cli(['endpoints', '--json', '--csv']);
  assert.equal(res.status, 2);
  assert.match(res.stderr, /--json and --csv cannot be combined/);
  assert.equal(res.stdout, '');
});

test('loading then serving endpoint', async () => {
  assert.equal(up.cli(['routes', 'create', 'cli-ep']).status, 0);
  const app = up.launch(simConfig({
    name: 'cli-ep-sim',
    route: 'cli-ep',
    command: simCommand(['--model', 'cli/ep-model', '--load-seconds', '3']),
  }));

  // While the simulator loads, the endpoint is in the second table only.
  const loadingText = await waitFor('the instance to be listed as loading', () => {
    const text = endpoints();
    return /\nLoading:\nENDPOINT/.test(text) ? text : null;
  }, 10000);
  assert.deepEqual(tableRows(loadingText, 0), []);
  const [loadingRow] = tableRows(loadingText, 1);
  assert.equal(loadingRow[0], 'cli-ep');
  assert.equal(loadingRow[1], 'cli/ep-model');
  assert.equal(loadingRow[2], `${up.gatewayUrl}/serve/cli-ep/v1`);
  assert.equal(loadingRow[3], app.id);
  assert.match(loadingRow[4], /^(queued|loading)$/);

  await up.waitForStatus(app.id, 'active', 30000);
  const token = up.cli(['tokens', 'create', '--days', '1']).stdout.trim();
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${up.gatewayUrl}/serve/cli-ep/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'cli/ep-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    assert.equal(res.status, 200);
    await res.text();
  }

  // The gateway posts its records every 250 ms.
  const json = await waitFor('the three requests to be counted', () => {
    const body = JSON.parse(endpoints(['--json']));
    return body.endpoints[0]?.requests === 3 ? body : null;
  }, 10000);
  assert.deepEqual(json.loading, []);
  assert.equal(json.endpoints.length, 1);
  assert.deepEqual(json.endpoints[0].instances, [app.id]);
  assert.equal(json.endpoints[0].model, 'cli/ep-model');
  assert.equal(json.endpoints[0].route, 'cli-ep');

  const text = endpoints();
  assert.match(text, /\nLoading: none\n$/);
  const [row] = tableRows(text);
  assert.equal(row.length, 8, `row ${JSON.stringify(row)}`);
  assert.deepEqual(row.slice(0, 4), ['cli-ep', 'cli/ep-model', `${up.gatewayUrl}/serve/cli-ep/v1`, app.id]);
  assert.match(row[4], /^\d+s$/);
  assert.equal(row[5], '3');
  assert.match(row[6], /^\d+(\.\d+)?$/);
  assert.match(row[7], /^\d+\.\d ms$/);

  // --csv writes what the server sends (header, CRLF line ends) unchanged.
  // Uptime can tick between the two calls, so that column is compared apart.
  const csv = endpoints(['--csv']);
  const fromServer = await csvFromServer();
  const withoutUptime = (text) => text.split('\r\n').map((line) => line.split(',').toSpliced(7, 1).join(','));
  assert.deepEqual(withoutUptime(csv), withoutUptime(fromServer));
  assert.match(csv, /^section,path,endpoint,model,route,instances,status,uptime_seconds,/);
  assert.match(csv, /\r\nendpoints,cli-ep,[^,]+,cli\/ep-model,cli-ep,/);

  up.cli(['apps', 'stop', app.id, '--wait']);
});

test('control characters in a model name are made visible', async () => {
  const app = up.launch(simConfig({
    name: 'cli-ep-hostile',
    command: simCommand(),
    env: { NIM_SERVED_MODEL_NAME: 'red\u001b[31mmodel\u0007' },
  }));
  try {
    const text = await waitFor('the instance to be listed', () => {
      const out = endpoints();
      return out.includes(app.id) ? out : null;
    }, 10000);
    assert.ok(!text.includes('\u001b'), 'an escape character reached the terminal');
    assert.ok(!text.includes('\u0007'), 'a bell character reached the terminal');
    assert.match(text, /red\\x1b\[31mmodel\\x07/);
  } finally {
    up.cli(['apps', 'stop', app.id, '--wait']);
  }
});

test('lists only instances the caller can read', async () => {
  const app = up.launch(simConfig({ name: 'cli-ep-private', project: 'private-ep', command: simCommand() }));
  try {
    await up.waitForStatus(app.id, ['loading', 'active'], 30000);
    assert.equal(up.cli(['users', 'add', 'eve']).status, 0);
    const eveToken = up.cli(['tokens', 'create', '--scope', 'api', '--user', 'eve', '--days', '1']).stdout.trim();

    const hidden = JSON.parse(endpoints(['--json'], { token: eveToken }));
    assert.ok(![...hidden.endpoints, ...hidden.loading].some((entry) => entry.instances.includes(app.id)));
    assert.ok(!endpoints(['--csv'], { token: eveToken }).includes(app.id));

    assert.equal(up.cli(['users', 'grant', 'eve', 'private-ep', 'read']).status, 0);
    const shown = JSON.parse(endpoints(['--json'], { token: eveToken }));
    assert.ok([...shown.endpoints, ...shown.loading].some((entry) => entry.instances.includes(app.id)));
    assert.ok(endpoints(['--csv'], { token: eveToken }).includes(app.id));
  } finally {
    up.cli(['apps', 'stop', app.id, '--wait']);
  }
});

test('rejected token fails both forms', () => {
  for (const args of [[], ['--csv']]) {
    const res = up.cli(['endpoints', ...args], { token: 'nd_not_a_real_token' });
    assert.equal(res.status, 1);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^error: .+\nThe server rejected the token/);
  }
});
