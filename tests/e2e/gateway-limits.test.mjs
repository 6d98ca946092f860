// The gateway's hard limits, timeouts and upstream connection handling,
// against `nimdeck up` with small limits. The instance's upstream is a
// Node HTTP server inside this test (the instance process itself only
// sleeps), so the tests can see every connection the gateway opens, kill a
// stream mid-way or never answer.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Up, freePort, sleep, waitFor } from './lib.mjs';

const HEADER_TIMEOUT_S = 1;
const FIRST_BYTE_TIMEOUT_S = 1.5;

// The model server: requests by path, and the connections they came on.
class Backend {
  constructor() {
    this.nextSocket = 1;
    this.closedSockets = new Set();
    this.requests = [];   // {path, socket}
    this.aborted = [];    // paths whose response the gateway gave up on
  }

  async start() {
    this.port = await freePort();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 60000;
    this.server.on('connection', (socket) => {
      socket.testId = this.nextSocket++;
      socket.on('close', () => this.closedSockets.add(socket.testId));
    });
    await new Promise((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  socketsFor(path) {
    return this.requests.filter((r) => r.path === path).map((r) => r.socket);
  }

  handle(req, res) {
    const url = new URL(req.url, 'http://backend');
    const socket = req.socket;
    req.resume();
    req.on('end', () => {
      if (url.pathname.startsWith('/v1/health')) {
        res.end('{}');
        return;
      }
      this.requests.push({ path: url.pathname, socket: socket.testId });
      res.on('close', () => {
        if (!res.writableEnded) this.aborted.push(url.pathname);
      });
      this.route(url, req, res);
    });
  }

  route(url, req, res) {
    const events = Number(url.searchParams.get('events') ?? 5);
    const interval = Number(url.searchParams.get('interval') ?? 20);
    switch (url.pathname) {
    case '/v1/test/json':
      res.setHeader('Content-Type', 'application/json');
      res.end('{"ok":true}');
      return;
    case '/v1/test/stream':
    case '/v1/test/die':
      this.stream(res, events, interval, url.pathname === '/v1/test/die');
      return;
    case '/v1/test/malformed':
      // A chunked head, then bytes that are no chunk: the connection is
      // left open, so only the gateway can decide not to reuse it.
      res.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n' +
        'Transfer-Encoding: chunked\r\n\r\nzz\r\n');
      return;
    case '/v1/test/hang':
      return;
    default:
      res.statusCode = 404;
      res.end('{}');
    }
  }

  stream(res, events, interval, die) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        return;
      }
      if (die && sent === 3) {
        clearInterval(timer);
        res.socket.destroy();
        return;
      }
      if (sent === events) {
        clearInterval(timer);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.write(`data: {"n":${sent}}\n\n`);
      sent += 1;
    }, interval);
  }
}

// One raw HTTP exchange on a new connection: what came back, and whether
// and when the gateway closed the connection.
function rawExchange(port, text, { timeoutMs = 5000, writes = null } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let timer;
    const finish = (closed) => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number((/^HTTP\/1\.1 (\d{3})/.exec(data) || [])[1] || 0);
      resolve({ status, data, closed, elapsedMs: Date.now() - started });
    };
    socket.on('data', (chunk) => { data += chunk.toString('latin1'); });
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
    timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', async () => {
      if (text) socket.write(text);
      for (const piece of writes || []) {
        await sleep(piece.delayMs);
        if (socket.destroyed) return;
        socket.write(piece.data);
      }
    });
  });
}

// A request without connection reuse, so that connection counts stay exact.
function request(url, { method = 'GET', token, body, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { Connection: 'close' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response = null;
    let text = '';
    // A response cut short ends in an error event, which resolves with
    // complete: false instead of failing.
    const cut = () => resolve({ status: response.statusCode, headers: response.headers, text, complete: false });
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      response = res;
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, complete: res.complete }));
      res.on('aborted', cut);
      res.on('error', cut);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in ${timeoutMs} ms`)));
    req.on('error', (err) => (response ? cut() : reject(err)));
    req.end(body);
  });
}

function errorCode(text) {
  try {
    return JSON.parse(text).error.code;
  } catch {
    return null;
  }
}

// Start `nimdeck up` with extraArgs and launch an instance whose upstream is
// backend; returns {up, app, base, token}.
async function startGateway(name, backend, extraArgs) {
  const up = new Up(name);
  await up.start(extraArgs);
  const app = up.launch({
    version: 1, name: `${name}-backend`, project: 'demo', runtime: 'process',
    image: 'test/backend', command: ['sleep', '600'], port: backend.port,
    queue: 'default', idle_time_limit_hours: 0,
  });
  const ready = await up.waitForStatus(app.id, 'active', 30000);
  const token = up.cli(['tokens', 'create', '--days', '1']).stdout.trim();
  return { up, app: ready, base: ready.endpoint.replace(/\/v1$/, ''), token };
}

describe('gateway limits', () => {
  const backend = new Backend();
  let gw;

  before(async () => {
    await backend.start();
    gw = await startGateway('gw-limits', backend, [
      '--max-header-bytes', '4096', '--max-headers', '20', '--max-body-bytes', '10000',
      '--header-timeout', String(HEADER_TIMEOUT_S),
      '--upstream-first-byte-timeout', String(FIRST_BYTE_TIMEOUT_S),
    ]);
  });

  after(async () => {
    await gw?.up.stop();
    await backend.stop();
  });

  const target = () => new URL(gw.base).pathname;
  const head = (extra) => `GET ${target()}/v1/test/json HTTP/1.1\r\nHost: gw\r\n` +
    `Authorization: Bearer ${gw.token}\r\n${extra}\r\n`;

  test('oversized header gets 431', async () => {
    const res = await rawExchange(gw.up.gatewayPort, head(`X-Big: ${'a'.repeat(5000)}\r\n`));
    assert.equal(res.status, 431);
    assert.match(res.data, /"code":"header_too_large"/);
  });

  test('too many headers get 431', async () => {
    let extra = '';
    for (let i = 0; i < 25; i++) extra += `X-H${i}: ${i}\r\n`;
    const res = await rawExchange(gw.up.gatewayPort, head(extra));
    assert.equal(res.status, 431);
  });

  test('a request within the limits passes', async () => {
    let extra = '';
    for (let i = 0; i < 10; i++) extra += `X-H${i}: ${i}\r\n`;
    const res = await rawExchange(gw.up.gatewayPort, head(`${extra}Connection: close\r\n`));
    assert.equal(res.status, 200);
    assert.match(res.data, /\{"ok":true\}/);
  });

  test('oversized body gets 413', async () => {
    const res = await request(`${gw.base}/v1/test/json`, {
      method: 'POST', token: gw.token, body: JSON.stringify({ pad: 'x'.repeat(20000) }),
    });
    assert.equal(res.status, 413);
    assert.equal(errorCode(res.text), 'payload_too_large');
  });

  test('slow header is closed after the timeout while others are served', async () => {
    const writes = [];
    for (let i = 0; i < 20; i++) writes.push({ delayMs: 150, data: `X-Slow-${i}: 1\r\n` });
    const slow = rawExchange(gw.up.gatewayPort, `GET ${target()}/v1/test/json HTTP/1.1\r\n`,
      { writes, timeoutMs: 6000 });

    // Other clients keep being served meanwhile.
    const started = Date.now();
    while (Date.now() - started < HEADER_TIMEOUT_S * 1000 + 300) {
      const res = await request(`${gw.base}/v1/test/json`, { token: gw.token, timeoutMs: 2000 });
      assert.equal(res.status, 200);
      await sleep(100);
    }

    const res = await slow;
    assert.ok(res.closed, 'the slow client was not disconnected');
    assert.equal(res.status, 0, 'the slow client got a response');
    assert.ok(res.elapsedMs >= HEADER_TIMEOUT_S * 1000 - 100, `closed after ${res.elapsedMs} ms`);
    assert.ok(res.elapsedMs < HEADER_TIMEOUT_S * 1000 + 1500, `closed after ${res.elapsedMs} ms`);
  });

  test('first-byte timeout gives 504 and frees the upstream connection', async () => {
    const before = backend.socketsFor('/v1/test/hang').length;
    const started = Date.now();
    const res = await request(`${gw.base}/v1/test/hang`, { method: 'POST', token: gw.token, body: '{}' });
    const took = Date.now() - started;
    assert.equal(res.status, 504);
    assert.equal(errorCode(res.text), 'upstream_timeout');
    assert.ok(took >= FIRST_BYTE_TIMEOUT_S * 1000 - 100, `504 after ${took} ms`);
    const [socket] = backend.socketsFor('/v1/test/hang').slice(before);
    await waitFor('the upstream connection to close', () => backend.closedSockets.has(socket), 2000, 20);
  });

  test('keep-alive pool reuses one upstream connection', async () => {
    const before = backend.socketsFor('/v1/test/json').length;
    for (let i = 0; i < 5; i++) {
      const res = await request(`${gw.base}/v1/test/json`, { method: 'POST', token: gw.token, body: '{}' });
      assert.equal(res.status, 200);
    }
    const sockets = new Set(backend.socketsFor('/v1/test/json').slice(before));
    assert.equal(sockets.size, 1, `sequential requests used ${sockets.size} connections`);
  });

  test('no reuse of a connection after an upstream error', async () => {
    const res = await request(`${gw.base}/v1/test/malformed`, { token: gw.token });
    assert.equal(res.complete, false);
    const [bad] = backend.socketsFor('/v1/test/malformed').slice(-1);
    await waitFor('the failed connection to close', () => backend.closedSockets.has(bad), 2000, 20);

    const next = await request(`${gw.base}/v1/test/json`, { token: gw.token });
    assert.equal(next.status, 200);
    const [used] = backend.socketsFor('/v1/test/json').slice(-1);
    assert.notEqual(used, bad);
  });

  test('upstream killed mid-stream ends the stream cleanly and counts as an error', async () => {
    const res = await fetch(`${gw.base}/v1/test/die?interval=30`, {
      method: 'POST', headers: { Authorization: `Bearer ${gw.token}` }, body: '{}',
    });
    assert.equal(res.status, 200);
    // The body ends normally (no network error): complete events, then an
    // error event that OpenAI clients raise.
    const text = await res.text();
    assert.match(text, /data: \{"n":2\}\n\n/);
    assert.match(text, /data: \{"error":\{[^\n]*"code":"upstream_error"[^\n]*\}\}\n\n$/);

    await waitFor('the error in the instance metrics', async () => {
      const m = await fetch(`${gw.up.apiUrl}/api/v1/apps/${gw.app.id}/metrics?range=600&step=60`, {
        headers: { Authorization: `Bearer ${gw.up.adminToken}` },
      }).then((r) => r.json());
      return m.totals?.errors >= 1;
    }, 10000, 200);
  });

  test('client disconnect mid-stream frees the upstream connection', async () => {
    const before = backend.socketsFor('/v1/test/stream').length;
    const controller = new AbortController();
    const res = await fetch(`${gw.base}/v1/test/stream?events=1000&interval=50`, {
      method: 'POST', headers: { Authorization: `Bearer ${gw.token}` }, body: '{}',
      signal: controller.signal,
    });
    const reader = res.body.getReader();
    await reader.read();
    const [socket] = backend.socketsFor('/v1/test/stream').slice(before);
    controller.abort();
    const aborted = Date.now();
    await waitFor('the upstream connection to close', () => backend.closedSockets.has(socket), 1000, 10);
    assert.ok(backend.aborted.includes('/v1/test/stream'));
    assert.ok(Date.now() - aborted < 1000);
  });

  test('revoked token is refused within one second', async () => {
    const created = gw.up.cliJson(['tokens', 'create', '--days', '1']);
    const ok = await request(`${gw.base}/v1/test/json`, { token: created.token });
    assert.equal(ok.status, 200);

    const revoke = gw.up.cli(['tokens', 'revoke', created.id]);
    assert.equal(revoke.status, 0, revoke.stderr);
    const revoked = Date.now();
    let status = 200;
    while (status !== 401 && Date.now() - revoked < 3000) {
      status = (await request(`${gw.base}/v1/test/json`, { token: created.token })).status;
      if (status !== 401) await sleep(20);
    }
    assert.equal(status, 401);
    assert.ok(Date.now() - revoked < 1000, `still accepted ${Date.now() - revoked} ms after the revoke`);
  });
});

describe('gateway connection limit', () => {
  const backend = new Backend();
  let gw;

  before(async () => {
    await backend.start();
    gw = await startGateway('gw-conns', backend, ['--max-connections', '4']);
  });

  after(async () => {
    await gw?.up.stop();
    await backend.stop();
  });

  test('too many connections are refused without disturbing streams', async () => {
    const path = new URL(gw.base).pathname;
    const stream = rawExchange(gw.up.gatewayPort,
      `POST ${path}/v1/test/stream?events=20&interval=50 HTTP/1.1\r\nHost: gw\r\n` +
      `Authorization: Bearer ${gw.token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      { timeoutMs: 10000 });
    await sleep(200);

    // Three idle connections fill the limit of four.
    const idle = [];
    for (let i = 0; i < 3; i++) {
      const socket = net.connect(gw.up.gatewayPort, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.on('connect', resolve));
      idle.push(socket);
    }
    await sleep(100);

    const refused = await rawExchange(gw.up.gatewayPort, '', { timeoutMs: 3000 });
    assert.ok(refused.closed, 'the connection over the limit stayed open');
    assert.ok(refused.status === 503 || refused.status === 0, `got ${refused.status}`);
    if (refused.status === 503) assert.match(refused.data, /too_many_connections/);

    const res = await stream;
    for (const socket of idle) socket.destroy();
    assert.equal(res.status, 200);
    assert.match(res.data, /data: \{"n":19\}/);
    assert.match(res.data, /data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
  });
});
