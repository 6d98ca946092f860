// The served model: launch the shipped simulator configuration through
// `nimdeck up`, call it through the gateway with the official openai client,
// and check authentication, usage metrics and configuration errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import path from 'node:path';
import OpenAI from 'openai';

import { Up, repoRoot, sleep, waitFor } from './lib.mjs';

const up = new Up('serve');
let app;
let token;
let model;

before(async () => {
  await up.start();
  app = up.cliJson(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json')]);
  app = await up.waitForStatus(app.id, 'active', 60000);
  token = up.cli(['tokens', 'create', '--days', '1']).stdout.trim();
  model = 'meta/llama-3.1-8b-instruct';
});

after(async () => {
  await up.stop();
});

function client(apiKey = token) {
  return new OpenAI({ apiKey, baseURL: app.endpoint, maxRetries: 0, timeout: 30000 });
}

test('launch prints id, status and endpoint', () => {
  assert.match(app.id, /^[0-9a-f]{12}$/);
  assert.equal(app.status, 'active');
  assert.match(app.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/serve\/[a-z0-9]+\/v1$/);
});

test('tokens create prints the token alone', () => {
  assert.match(token, /^nd_[A-Za-z0-9_-]{43}$/);
});

test('chat completion through the gateway', async () => {
  const res = await client().chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Say hello to the gateway' }],
    max_tokens: 12,
  });
  assert.equal(res.object, 'chat.completion');
  assert.ok(res.choices[0].message.content.length > 0);
  assert.equal(res.usage.completion_tokens, 12);
  assert.ok(res.usage.prompt_tokens > 0);
});

test('streamed chat arrives spread out', async () => {
  const stream = await client().chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Stream a few words' }],
    max_tokens: 40,
    stream: true,
  });
  const arrivals = [];
  let text = '';
  let usageChunks = 0;
  for await (const chunk of stream) {
    arrivals.push(Date.now());
    if (chunk.choices.length === 0) usageChunks += 1;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  // The simulator may end a reply before max_tokens, as a model does.
  assert.ok(arrivals.length >= 10, `expected at least 10 chunks, got ${arrivals.length}`);
  assert.ok(text.length > 0);
  // The shipped example sends 50 tokens/s: 10 tokens take about 200 ms.
  // Chunks held back by the gateway would arrive within a few milliseconds.
  const spread = arrivals[arrivals.length - 1] - arrivals[0];
  assert.ok(spread >= 100, `chunks arrived within ${spread} ms`);
  assert.ok(new Set(arrivals).size >= 5, 'chunks arrived in too few bursts');
  assert.equal(usageChunks, 0, 'the usage-only chunk reached a client that did not ask for it');
});

test('streamed chat with include_usage gets usage', async () => {
  const stream = await client().chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Count tokens' }],
    max_tokens: 5,
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(usage, 'no usage chunk');
  assert.equal(usage.completion_tokens, 5);
});

test('embeddings through the gateway', async () => {
  const res = await client().embeddings.create({ model, input: ['first passage', 'second passage'] });
  assert.equal(res.data.length, 2);
  assert.ok(res.data[0].embedding.length > 0);
});

test('apps metrics shows requests and tokens', async () => {
  const metrics = await waitFor('request records to reach the server', () => {
    const m = up.cliJson(['apps', 'metrics', app.id]);
    return m.totals.requests >= 4 ? m : null;
  }, 10000, 250);
  assert.ok(metrics.totals.completion_tokens >= 12 + 10 + 5, JSON.stringify(metrics.totals));
  assert.ok(metrics.totals.prompt_tokens > 0);
  assert.ok(metrics.series.requests.some((n) => n > 0));
  assert.ok(metrics.series.tokens_per_second.some((n) => n > 0));
  const human = up.cli(['apps', 'metrics', app.id]);
  assert.equal(human.status, 0);
  assert.match(human.stdout, /requests/i);
});

async function status(headers) {
  const res = await fetch(`${app.endpoint}/models`, { headers });
  const body = await res.json();
  return { status: res.status, body };
}

test('missing token gets 401', async () => {
  const res = await status({});
  assert.equal(res.status, 401);
  assert.ok(res.body.error.message);
});

test('wrong token gets 401', async () => {
  const res = await status({ Authorization: 'Bearer nd_wrongwrongwrongwrongwrongwrongwrongwrongwro' });
  assert.equal(res.status, 401);
});

test('gateway rejects api token with 401', async () => {
  const res = await status({ Authorization: `Bearer ${up.adminToken}` });
  assert.equal(res.status, 401);
});

test('bearer scheme is case-insensitive', async () => {
  const res = await status({ Authorization: `bearer ${token}` });
  assert.equal(res.status, 200);
});

test('expired token gets 401', async () => {
  const short = up.cli(['tokens', 'create', '--days', '0.00002']).stdout.trim();
  assert.equal((await status({ Authorization: `Bearer ${short}` })).status, 200);
  await sleep(2000);
  assert.equal((await status({ Authorization: `Bearer ${short}` })).status, 401);
});

test('revoked token rejected within 1 s', async () => {
  const created = up.cliJson(['tokens', 'create']);
  const auth = { Authorization: `Bearer ${created.token}` };
  assert.equal((await status(auth)).status, 200);
  assert.equal(up.cli(['tokens', 'revoke', created.id]).status, 0);
  const revokedAt = Date.now();
  await waitFor('the revocation to reach the gateway', async () => (await status(auth)).status === 401, 1000, 50);
  assert.ok(Date.now() - revokedAt <= 1000);
});

test('user without read permission gets 403', async () => {
  assert.equal(up.cli(['users', 'add', 'bob']).status, 0);
  const bobToken = up.cli(['tokens', 'create', '--user', 'bob']).stdout.trim();
  const denied = await status({ Authorization: `Bearer ${bobToken}` });
  assert.equal(denied.status, 403);
  assert.ok(denied.body.error.message);

  assert.equal(up.cli(['users', 'grant', 'bob', 'demo', 'read']).status, 0);
  await waitFor('the grant to reach the gateway', async () =>
    (await status({ Authorization: `Bearer ${bobToken}` })).status === 200, 2000, 50);
});

test('unknown endpoint path gets 404', async () => {
  const res = await fetch(app.endpoint.replace(/serve\/[^/]+/, 'serve/nosuchpath') + '/models', {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 404);
});

test('invalid configuration error names key', () => {
  const before = up.cliJson(['apps', 'list']);
  const res = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'idle_hours=1']);
  assert.equal(res.status, 2);
  assert.match(res.stderr, /idle_hours/);
  const wrongType = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'idle_time_limit_hours=soon']);
  assert.equal(wrongType.status, 2);
  assert.match(wrongType.stderr, /idle_time_limit_hours/);
  const after = up.cliJson(['apps', 'list']);
  assert.equal(after.apps.length, before.apps.length);
});

test('NIM image without NGC_API_KEY is rejected', () => {
  const before = up.cliJson(['apps', 'list']).apps.length;
  const res = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'image=nvcr.io/nim/meta/llama-3.1-8b-instruct:latest']);
  assert.equal(res.status, 2);
  assert.match(res.stderr, /NGC_API_KEY/);
  assert.equal(up.cliJson(['apps', 'list']).apps.length, before);

  // With the key in the vault the same launch is accepted.
  assert.equal(up.cli(['vault', 'set', 'NGC_API_KEY'], { input: 'nvapi-test-value-0000\n' }).status, 0);
  const accepted = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'image=nvcr.io/nim/meta/llama-3.1-8b-instruct:latest', '--set', 'name=ngc-ok', '--json']);
  assert.equal(accepted.status, 0, accepted.stderr);
  assert.equal(up.cli(['apps', 'stop', JSON.parse(accepted.stdout).id, '--wait']).status, 0);
});

test('route held by one instance', async () => {
  assert.equal(up.cli(['routes', 'create', 'llama']).status, 0);
  const first = up.cliJson(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'route=llama', '--set', 'name=routed']);
  assert.match(first.endpoint, /\/serve\/llama\/v1$/);

  const second = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'route=llama', '--set', 'name=routed-again']);
  assert.equal(second.status, 1);
  assert.match(second.stderr, new RegExp(first.id));

  await up.waitForStatus(first.id, 'active', 30000);
  const res = await fetch(`${first.endpoint}/models`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);

  // Once the holder stops, the route is free again.
  assert.equal(up.cli(['apps', 'stop', first.id, '--wait']).status, 0);
  const third = up.cli(['launch', '--config', path.join(repoRoot, 'examples', 'nim-sim.json'),
    '--set', 'route=llama', '--set', 'name=routed-third', '--json']);
  assert.equal(third.status, 0, third.stderr);
  up.cli(['apps', 'stop', JSON.parse(third.stdout).id, '--wait']);
});
