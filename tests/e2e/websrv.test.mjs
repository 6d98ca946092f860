// The server side of the web UI, with plain HTTP and no browser: the UI's
// files and their headers, web login sessions, embed tokens and the Model
// Endpoints list.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Up, repoRoot, simCommand, simConfig, tempDir, waitFor } from './lib.mjs';

const model = 'meta/llama-3.1-8b-instruct';
const alicePassword = 'correct horse battery staple';
const up = new Up('websrv');
// Every token, cookie and password the tests see, to check that the log
// contains none of them.
const secrets = [alicePassword];
let app;
let queued;
let gatewayToken;

function api(pathname, { method = 'GET', token, cookie, body, headers = {} } = {}) {
  const all = { ...headers };
  if (token) all.Authorization = `Bearer ${token}`;
  if (cookie) all.Cookie = `nimdeck_session=${cookie}`;
  if (body !== undefined && !all['Content-Type']) all['Content-Type'] = 'application/json';
  return fetch(`${up.apiUrl}${pathname}`, {
    method,
    headers: all,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// A GET with the path sent exactly as given: fetch would resolve "..".
function rawGet(baseUrl, rawPath) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: rawPath, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

// Send a GET with the path exactly as given and return the response's
// status, headers and body text.
function rawFetch(baseUrl, rawPath) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// Log in and return the session cookie's value and the response.
async function login(body) {
  const res = await api('/api/v1/login', { method: 'POST', body });
  const setCookie = res.headers.get('set-cookie') || '';
  const match = /^nimdeck_session=([^;]*)/.exec(setCookie);
  if (match && match[1]) secrets.push(match[1]);
  return { res, setCookie, cookie: match ? match[1] : null, json: await res.json() };
}

function createToken(args) {
  const created = up.cliJson(['tokens', 'create', ...args]);
  secrets.push(created.token);
  return created;
}

before(async () => {
  await up.start();
  secrets.push(up.adminToken);
  const add = up.cli(['users', 'add', 'alice', '--password-stdin'], { input: `${alicePassword}\n` });
  assert.equal(add.status, 0, add.stderr);

  app = up.launch(simConfig({ command: simCommand(['--model', model]) }));
  assert.equal(up.cli(['queues', 'create', 'no-agent']).status, 0);
  queued = up.launch(simConfig({ name: 'waiting', queue: 'no-agent', command: simCommand() }));
  app = await up.waitForStatus(app.id, 'active', 60000);
  gatewayToken = createToken(['--days', '1']).token;
});

after(async () => {
  await up.stop();
});

test('index page has the security headers', async () => {
  const res = await fetch(`${up.apiUrl}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(await res.text(), /<html/i);
});

test('ui files have content types by extension', async () => {
  const cases = [
    ['/ui/app.js', /^text\/javascript/],
    ['/ui/style.css', /^text\/css/],
    ['/ui/vendor/uPlot.esm.js', /^text\/javascript/],
    ['/ui/vendor/uPlot.min.css', /^text\/css/],
  ];
  for (const [file, type] of cases) {
    const res = await fetch(`${up.apiUrl}${file}`);
    assert.equal(res.status, 200, file);
    assert.match(res.headers.get('content-type'), type, file);
    assert.ok((await res.arrayBuffer()).byteLength > 0, file);
  }
});

test('embed page may be framed', async () => {
  const res = await fetch(`${up.apiUrl}/embed/${app.id}/requests`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.equal(res.headers.get('x-frame-options'), null);
  assert.doesNotMatch(res.headers.get('content-security-policy'), /frame-ancestors/);
});

test('embed paths without a plot get an html 404', async () => {
  const paths = [
    '/embed',
    `/embed/${app.id}`,
    `/embed/${app.id}/requests/extra`,
    '/embed/no%20such/requests',
    '/embed/%3Cscript%3Ealert(1)%3C%2Fscript%3E/requests',
    '/embed/<b>bold</b>/requests',
  ];

  for (const rawPath of paths) {
    const res = await rawFetch(up.apiUrl, rawPath);
    assert.equal(res.status, 404, rawPath);
    assert.match(res.headers['content-type'], /^text\/html/, rawPath);
    assert.equal(res.headers['x-content-type-options'], 'nosniff', rawPath);
    assert.equal(res.headers['x-frame-options'], undefined, rawPath);
    assert.match(res.headers['content-security-policy'], /default-src 'self'/, rawPath);
    assert.doesNotMatch(res.headers['content-security-policy'], /frame-ancestors/, rawPath);
    assert.match(res.body, /<title>nimdeck plot not found<\/title>/, rawPath);
    // The page is static: nothing of the path comes back.
    assert.doesNotMatch(res.body, /script|alert|bold|such|requests/, rawPath);
  }
  // The API and other paths keep their JSON errors.
  const api404 = await fetch(`${up.apiUrl}/api/v1/no-such-endpoint`);
  assert.equal(api404.status, 404);
  assert.equal((await api404.json()).error.code, 'not_found');
  const embedApi = await fetch(`${up.apiUrl}/api/v1/embed/000000000000`);
  assert.equal(embedApi.status, 401);
  assert.match(embedApi.headers.get('content-type'), /^application\/json/);
  const other = await fetch(`${up.apiUrl}/embedded/${app.id}/requests`);
  assert.equal(other.status, 404);
  assert.match(other.headers.get('content-type'), /^application\/json/);
});

test('etag gives 304 when unchanged', async () => {
  const first = await fetch(`${up.apiUrl}/ui/app.js`);
  const etag = first.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]+"$/);
  const again = await fetch(`${up.apiUrl}/ui/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
});

test('unsafe and missing ui paths are rejected', async () => {
  assert.equal(await rawGet(up.apiUrl, '/ui/../index.html'), 400);
  assert.equal(await rawGet(up.apiUrl, '/ui/%2e%2e/index.html'), 400);
  assert.equal(await rawGet(up.apiUrl, '/ui/lib/%00.js'), 400);
  assert.equal(await rawGet(up.apiUrl, '/ui//etc/passwd'), 400);
  assert.equal(await rawGet(up.apiUrl, '/ui/package.json'), 400);
  assert.equal(await rawGet(up.apiUrl, '/ui/node_modules/uplot/package.json'), 400);
  const missing = await fetch(`${up.apiUrl}/ui/no-such-file.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, 'not_found');
  assert.equal((await fetch(`${up.apiUrl}/no-such-page`)).status, 404);
  const post = await fetch(`${up.apiUrl}/ui/app.js`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
});

test('web root serves files from disk', async () => {
  const root = tempDir('websrv-root');
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><p>first</p>');
  fs.mkdirSync(path.join(root, 'node_modules', 'uplot', 'dist'), { recursive: true });
  fs.writeFileSync(path.join(root, 'node_modules', 'uplot', 'dist', 'uPlot.esm.js'), 'export default 1;');
  const dev = new Up('websrv-dev');
  try {
    await dev.start(['--no-agent', '--web-root', root]);
    assert.equal(await (await fetch(`${dev.apiUrl}/`)).text(), '<!doctype html><p>first</p>');
    // An edit shows without a rebuild or restart.
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><p>second</p>');
    assert.equal(await (await fetch(`${dev.apiUrl}/`)).text(), '<!doctype html><p>second</p>');
    const vendor = await fetch(`${dev.apiUrl}/ui/vendor/uPlot.esm.js`);
    assert.equal(await vendor.text(), 'export default 1;');
    assert.equal((await fetch(`${dev.apiUrl}/ui/missing.js`)).status, 404);
  } finally {
    await dev.stop();
  }
});

test('login by password sets the session cookie', async () => {
  const { res, setCookie, cookie, json } = await login({ name: 'alice', password: alicePassword });
  assert.equal(res.status, 200);
  assert.equal(json.user, 'alice');
  assert.equal(json.admin, false);
  assert.match(cookie, /^[A-Za-z0-9_-]{43}$/);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; SameSite=Strict/);
  assert.match(setCookie, /; Path=\//);
  assert.match(setCookie, /; Max-Age=43200/);

  const whoami = await api('/api/v1/whoami', { cookie });
  assert.equal(whoami.status, 200);
  assert.deepEqual(await whoami.json(), { user: 'alice', admin: false });
});

test('bad credentials get the same 401 after a delay', async () => {
  const started = Date.now();
  const wrong = await login({ name: 'alice', password: 'not the password' });
  const unknown = await login({ name: 'nobody', password: 'not the password' });
  assert.ok(Date.now() - started >= 800, `two failed logins took ${Date.now() - started} ms`);
  assert.equal(wrong.res.status, 401);
  assert.equal(unknown.res.status, 401);
  assert.equal(wrong.cookie, null);
  assert.equal(wrong.json.error.message, unknown.json.error.message);

  const gatewayLogin = await login({ token: gatewayToken });
  assert.equal(gatewayLogin.res.status, 401);
  const missing = await login({ name: 'alice' });
  assert.equal(missing.res.status, 400);
  assert.equal(missing.json.error.field, 'password');
});

test('login needs a JSON content type', async () => {
  const res = await fetch(`${up.apiUrl}/api/v1/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain' },
    body: JSON.stringify({ name: 'alice', password: alicePassword }),
  });
  assert.equal(res.status, 415);
});

test('cookie changes state only with the csrf header', async () => {
  const { cookie } = await login({ name: 'alice', password: alicePassword });
  const plain = await fetch(`${up.apiUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { Cookie: `nimdeck_session=${cookie}`, 'Content-Type': 'text/plain' },
    body: JSON.stringify({ days: 1 }),
  });
  assert.equal(plain.status, 403);

  const marked = await fetch(`${up.apiUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { Cookie: `nimdeck_session=${cookie}`, 'X-Requested-With': 'nimdeck' },
    body: JSON.stringify({ days: 1 }),
  });
  assert.equal(marked.status, 201);
  const created = await marked.json();
  secrets.push(created.token);

  // A password session may create a token of any length up to the limit.
  const long = await api('/api/v1/tokens', { method: 'POST', cookie, body: { days: 30 } });
  assert.equal(long.status, 201);
  secrets.push((await long.json()).token);

  const revoke = await api(`/api/v1/tokens/${created.id}`, {
    method: 'DELETE', cookie, headers: { 'X-Requested-With': 'nimdeck' },
  });
  assert.equal(revoke.status, 200);
});

test('logout ends the session', async () => {
  const { cookie } = await login({ name: 'alice', password: alicePassword });
  const res = await api('/api/v1/logout', { method: 'POST', cookie });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('set-cookie'), /^nimdeck_session=; .*Max-Age=0/);
  const whoami = await api('/api/v1/whoami', { cookie });
  assert.equal(whoami.status, 401);
});

test('token login ends when the token is revoked', async () => {
  const apiToken = createToken(['--scope', 'api', '--user', 'alice', '--days', '0.25']);
  const { res, cookie, setCookie } = await login({ token: apiToken.token });
  assert.equal(res.status, 200);
  // The session ends with the token when the token expires first.
  const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)[1]);
  assert.ok(maxAge <= 6 * 3600, `Max-Age ${maxAge}`);
  assert.ok(maxAge > 6 * 3600 - 60, `Max-Age ${maxAge}`);
  assert.equal((await api('/api/v1/apps', { cookie })).status, 200);

  assert.equal(up.cli(['tokens', 'revoke', apiToken.id]).status, 0);
  const revokedAt = Date.now();
  await waitFor('the session to end', async () =>
    (await api('/api/v1/whoami', { cookie })).status === 401, 1000, 50);
  assert.ok(Date.now() - revokedAt <= 1000);
});

test('deleting the user ends the session', async () => {
  const add = up.cli(['users', 'add', 'carol', '--password-stdin'], { input: 'carol password 1\n' });
  assert.equal(add.status, 0, add.stderr);
  const { cookie } = await login({ name: 'carol', password: 'carol password 1' });
  assert.equal((await api('/api/v1/whoami', { cookie })).status, 200);
  assert.equal(up.cli(['users', 'delete', 'carol']).status, 0);
  assert.equal((await api('/api/v1/whoami', { cookie })).status, 401);
});

test('embed token reads only its own metrics', async () => {
  const embed = createToken(['--scope', 'embed', '--instance', app.id, '--days', '1']);
  const metrics = await api(`/api/v1/apps/${app.id}/metrics`, { token: embed.token });
  assert.equal(metrics.status, 200);
  assert.ok((await metrics.json()).series);

  const shown = await api(`/api/v1/embed/${app.id}`, { token: embed.token });
  assert.equal(shown.status, 200);
  assert.deepEqual(await shown.json(), { id: app.id, name: app.name, status: app.status });

  const refused = [
    `/api/v1/apps/${app.id}`,
    `/api/v1/apps/${app.id}/logs`,
    '/api/v1/apps',
    '/api/v1/whoami',
    '/api/v1/endpoints',
    `/api/v1/apps/${queued.id}/metrics`,
    `/api/v1/embed/${queued.id}`,
  ];
  for (const url of refused) {
    assert.equal((await api(url, { token: embed.token })).status, 401, url);
  }
  assert.equal((await api('/api/v1/login', { method: 'POST', body: { token: embed.token } })).status, 401);

  assert.equal(up.cli(['tokens', 'revoke', embed.id]).status, 0);
  assert.equal((await api(`/api/v1/apps/${app.id}/metrics`, { token: embed.token })).status, 401);
});

test('errors name the body key at fault', async () => {
  const { cookie } = await login({ name: 'alice', password: alicePassword });
  const cases = [
    ['POST', '/api/v1/apps', simConfig({ project: 'other' }), 403, 'project'],
    ['POST', '/api/v1/tokens', { days: -1 }, 400, 'days'],
    ['POST', '/api/v1/tokens', { scope: 'everything' }, 400, 'scope'],
    ['POST', '/api/v1/tokens', { user: 'admin' }, 403, 'user'],
    ['POST', '/api/v1/tokens', { scope: 'embed', instance_id: '000000000000' }, 404, 'instance_id'],
    ['PUT', '/api/v1/vault/BAD%20NAME', { value: 'x' }, 400, 'name'],
    ['PUT', '/api/v1/vault/GOOD_NAME', { value: 1 }, 400, 'value'],
  ];
  for (const [method, pathname, body, status, field] of cases) {
    const res = await api(pathname, { method, cookie, body });
    const json = await res.json();
    assert.equal(res.status, status, `${method} ${pathname}: ${JSON.stringify(json)}`);
    assert.equal(json.error.field, field, `${method} ${pathname}: ${JSON.stringify(json)}`);
  }
});

test('endpoints list serving and loading instances', async () => {
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${app.endpoint}/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${gatewayToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    assert.equal(res.status, 200);
    await res.text();
  }
  const list = await waitFor('three requests in the endpoints list', async () => {
    const body = await (await api('/api/v1/endpoints', { token: up.adminToken })).json();
    const entry = body.endpoints.find((e) => e.instances.includes(app.id));
    return entry && entry.requests >= 3 ? body : null;
  }, 10000, 200);

  const entry = list.endpoints.find((e) => e.instances.includes(app.id));
  assert.equal(entry.path, app.path);
  assert.equal(entry.endpoint, app.endpoint);
  assert.equal(entry.model, model);
  assert.equal(entry.route, null);
  assert.deepEqual(entry.instances, [app.id]);
  assert.ok(['active', 'idle'].includes(entry.status), entry.status);
  assert.ok(Number.isInteger(entry.uptime_seconds), `uptime_seconds ${entry.uptime_seconds}`);
  assert.ok(entry.uptime_seconds >= 0, `uptime_seconds ${entry.uptime_seconds}`);
  assert.equal(entry.requests, 3);
  assert.ok(entry.requests_per_minute > 0);
  assert.ok(entry.latency_ms_mean > 0);

  const waiting = list.loading.find((e) => e.instances.includes(queued.id));
  assert.ok(waiting, JSON.stringify(list.loading));
  assert.equal(waiting.status, 'queued');
  assert.equal(waiting.uptime_seconds, null);
  assert.equal(waiting.requests, 0);
  assert.equal(waiting.latency_ms_mean, null);
});

test('endpoints follow read permission', async () => {
  const { cookie } = await login({ name: 'alice', password: alicePassword });
  const none = await (await api('/api/v1/endpoints', { cookie })).json();
  assert.deepEqual(none, { endpoints: [], loading: [] });
  assert.equal(up.cli(['users', 'grant', 'alice', 'demo', 'read']).status, 0);
  const some = await (await api('/api/v1/endpoints', { cookie })).json();
  assert.equal(some.endpoints.length, 1);
  assert.equal(some.loading.length, 1);
});

test('endpoints download as csv', async () => {
  const res = await api('/api/v1/endpoints?format=csv', { token: up.adminToken });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/csv/);
  assert.equal(res.headers.get('content-disposition'), 'attachment; filename=endpoints.csv');
  const lines = (await res.text()).trimEnd().split('\r\n');
  assert.equal(lines[0], 'section,path,endpoint,model,route,instances,status,'
    + 'uptime_seconds,requests,requests_per_minute,latency_ms_mean');
  const row = lines.find((l) => l.includes(app.id));
  assert.ok(row, lines.join('\n'));
  const cells = row.split(',');
  assert.equal(cells[0], 'endpoints');
  assert.equal(cells[2], app.endpoint);
  assert.equal(cells[3], model);
  assert.equal(cells[8], '3');
  assert.ok(lines.some((l) => l.startsWith('loading,') && l.includes(queued.id)));

  const bad = await api('/api/v1/endpoints?format=xml', { token: up.adminToken });
  assert.equal(bad.status, 400);
});

test('up log holds no token, cookie or password', () => {
  const log = up.logText();
  assert.match(log, /logged in to the web UI/);
  for (const secret of secrets) {
    assert.ok(!log.includes(secret), `the up log contains a secret starting ${secret.slice(0, 6)}`);
  }
});

test('vendored uplot matches the npm package', async () => {
  const file = path.join(repoRoot, 'web', 'node_modules', 'uplot', 'dist', 'uPlot.esm.js');
  const served = await (await fetch(`${up.apiUrl}/ui/vendor/uPlot.esm.js`)).text();
  assert.equal(served, fs.readFileSync(file, 'utf8'));
});

test('host series only while the instance ran', async () => {
  const ended = up.launch(simConfig({ name: 'ended' }));
  await up.waitForStatus(ended.id, 'active', 60000);
  assert.equal(up.cli(['apps', 'stop', ended.id, '--wait']).status, 0);
  const stopped = up.app(ended.id);
  assert.ok(stopped.started_at, JSON.stringify(stopped));
  assert.ok(stopped.stopped_at, JSON.stringify(stopped));

  const metricsOf = async (id) =>
    (await api(`/api/v1/apps/${id}/metrics?step=1&range=300`, { token: up.adminToken })).json();
  // Wait for a machine sample after the stop, as the running app shows it.
  const afterStop = (m) => m.time.map((t, i) => [t, i]).filter(([t]) => t * 1000 > stopped.stopped_at);
  await waitFor('a machine sample after the stop', async () => {
    const m = await metricsOf(app.id);
    return afterStop(m).some(([, i]) => m.series.cpu_percent[i] !== null);
  }, 20000, 500);

  const m = await metricsOf(ended.id);
  for (const [t, i] of afterStop(m)) {
    assert.equal(m.series.cpu_percent[i], null, `cpu_percent at ${t}, after the stop`);
    assert.equal(m.series.mem_used_bytes[i], null, `mem_used_bytes at ${t}, after the stop`);
  }
  m.time.forEach((t, i) => {
    if ((t + 1) * 1000 <= stopped.started_at) {
      assert.equal(m.series.cpu_percent[i], null, `cpu_percent at ${t}, before the start`);
    }
  });
});
