// Instance lifecycle with real processes: idle stop on time, a crashed model
// server marked failed, state kept across a restart of `nimdeck up`, and
// secrets kept out of every log and export.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { Up, nimdeck, outputDir, simCommand, simConfig, sleep, waitFor } from './lib.mjs';

const up = new Up('lifecycle');

before(async () => {
  await up.start(['--active-window', '2']);
});

after(async () => {
  await up.stop();
});

test('idle limit stops instance within 2 s', async () => {
  // 0.002 hours is 7.2 s without requests.
  let app = up.launch(simConfig({ name: 'idle-sim', command: simCommand(), idle_time_limit_hours: 0.002 }));
  app = await up.waitForStatus(app.id, 'active', 30000);
  await up.waitForStatus(app.id, 'idle', 5000);

  app = await up.waitForStatus(app.id, 'stopped', 15000);
  assert.equal(app.status_reason, 'idle time limit reached');
  const idleMs = app.stopped_at - app.last_activity_at;
  assert.ok(idleMs >= 7200, `stopped after ${idleMs} ms of no requests, before the limit`);
  assert.ok(idleMs <= 9200, `stopped after ${idleMs} ms of no requests, over 2 s late`);
  assert.ok(app.idle_seconds >= 7.2, `idle_seconds ${app.idle_seconds}`);
});

test('requests prevent idle stop', async () => {
  let app = up.launch(simConfig({ name: 'busy-sim', command: simCommand(), idle_time_limit_hours: 0.002 }));
  app = await up.waitForStatus(app.id, 'active', 30000);
  const token = up.cli(['tokens', 'create']).stdout.trim();

  // One request every 2 s for 10 s: longer than the 7.2 s limit in total.
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${app.endpoint}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'keep alive' }], max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    await res.json();
    await sleep(2000);
  }
  assert.equal(up.app(app.id).status !== 'stopped', true);
  assert.equal(up.cli(['apps', 'stop', app.id, '--wait']).status, 0);
  app = up.app(app.id);
  assert.equal(app.status, 'stopped');
  assert.match(app.status_reason, /user/);
});

test('killed model server fails instance', async () => {
  let app = up.launch(simConfig({ name: 'doomed-sim', command: simCommand() }));
  app = await up.waitForStatus(app.id, 'active', 30000);

  // The simulator prints its pid in its first start-up line.
  const logs = up.cli(['apps', 'logs', app.id]).stdout;
  const pid = Number(/pid (\d+)/.exec(logs)?.[1]);
  assert.ok(pid > 1, `no pid in the console log:\n${logs}`);
  process.kill(pid, 'SIGKILL');

  app = await up.waitForStatus(app.id, 'failed', 10000);
  assert.match(app.status_reason, /SIGKILL|signal 9|killed/i);
});

test('secrets absent from logs and exports', async () => {
  const vaultSecret = 'vault-secret-7f3a9c1e';
  const envSecret = 'env-secret-51d2b8aa';
  const set = up.cli(['vault', 'set', 'HF_TOKEN'], { input: `${vaultSecret}\n` });
  assert.equal(set.status, 0);

  const script = `echo "hf=$HF_TOKEN key=$MY_API_KEY"; exec ${nimdeck} sim --port "$PORT" --load-seconds 1`;
  let app = up.launch(simConfig({ name: 'secret-sim', command: ['sh', '-c', script], env: { MY_API_KEY: envSecret } }));
  app = await up.waitForStatus(app.id, 'active', 30000);

  const logs = up.cli(['apps', 'logs', app.id]).stdout;
  assert.match(logs, /hf=\*\*\*\* key=\*\*\*\*/);

  const exported = JSON.parse(up.cli(['apps', 'export', app.id]).stdout);
  assert.equal(exported.env.MY_API_KEY, null);
  const shown = up.cli(['apps', 'show', app.id, '--json']).stdout;
  const listed = up.cli(['vault', 'list', '--json']).stdout;
  up.cli(['apps', 'stop', app.id, '--wait']);

  for (const [what, text] of [['console log', logs], ['export', JSON.stringify(exported)],
    ['apps show', shown], ['vault list', listed], ['up log', up.logText()]]) {
    assert.ok(!text.includes(vaultSecret), `the vault value appears in the ${what}`);
    assert.ok(!text.includes(envSecret), `the env secret appears in the ${what}`);
  }
  for (const file of fs.readdirSync(outputDir, { recursive: true })) {
    const full = `${outputDir}/${file}`;
    if (!fs.statSync(full).isFile()) continue;
    const text = fs.readFileSync(full, 'utf8');
    assert.ok(!text.includes(vaultSecret), `the vault value appears in ${file}`);
    assert.ok(!text.includes(envSecret), `the env secret appears in ${file}`);
  }
});

test('restart keeps instances, tokens and logs', async () => {
  let app = up.launch(simConfig({ name: 'kept-sim', command: simCommand() }));
  app = await up.waitForStatus(app.id, 'active', 30000);
  const token = up.cliJson(['tokens', 'create', '--days', '2']);
  const appsBefore = up.cliJson(['apps', 'list']);
  const logsBefore = up.cli(['apps', 'logs', app.id]).stdout;

  await up.stop();
  await up.start(['--active-window', '2']);

  const appsAfter = up.cliJson(['apps', 'list']);
  const idsBefore = appsBefore.apps.map((a) => a.id).sort();
  const idsAfter = appsAfter.apps.map((a) => a.id).sort();
  assert.deepEqual(idsAfter, idsBefore);

  // A clean shutdown stops process instances with a reason.
  const kept = up.app(app.id);
  assert.equal(kept.status, 'stopped');
  assert.equal(kept.status_reason, 'agent stopped');

  const tokens = up.cliJson(['tokens', 'list']);
  const keptToken = tokens.tokens.find((t) => t.id === token.id);
  assert.ok(keptToken, `token ${token.id} is missing after the restart`);
  assert.ok(!keptToken.revoked, `token ${token.id} is revoked after the restart`);

  const logsAfter = up.cli(['apps', 'logs', app.id]).stdout;
  assert.ok(logsAfter.startsWith(logsBefore.trimEnd().split('\n')[0]));
  assert.ok(logsAfter.length >= logsBefore.length);

  // The instance can be cloned and served again after the restart.
  const clone = up.cliJson(['apps', 'clone', app.id, '--set', 'name=kept-again']);
  await up.waitForStatus(clone.id, 'active', 30000);
  const res = await fetch(`${up.app(clone.id).endpoint}/models`, {
    headers: { Authorization: `Bearer ${token.token}` },
  });
  assert.equal(res.status, 200);
});
