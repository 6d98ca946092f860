// Helpers for the end-to-end tests: start `nimdeck up` in a temporary folder,
// run CLI commands against it, and wait for conditions with a deadline.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const nimdeck = path.resolve(repoRoot, process.env.NIMDECK_BIN || 'build/nimdeck');
export const outputDir = path.resolve(repoRoot, process.env.TEST_OUTPUT || 'test-output');

fs.mkdirSync(outputDir, { recursive: true });

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Poll check() until it returns a truthy value or the deadline passes.
export async function waitFor(what, check, timeoutMs = 30000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// A port that was free a moment ago on 127.0.0.1.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `nimdeck-${name}-`));
}

// One running `nimdeck up`: its URLs, admin token and log file.
export class Up {
  constructor(name, dataDir) {
    this.name = name;
    this.dataDir = dataDir || tempDir(name);
    this.logPath = path.join(outputDir, `${name}-up.log`);
    this.child = null;
  }

  // env adds variables to the process's environment.
  async start(extraArgs = [], env = {}) {
    if (!this.apiPort) {
      this.apiPort = await freePort();
      this.gatewayPort = await freePort();
    }
    this.apiUrl = `http://127.0.0.1:${this.apiPort}`;
    this.gatewayUrl = `http://127.0.0.1:${this.gatewayPort}`;

    const log = fs.openSync(this.logPath, 'a');
    this.child = spawn(nimdeck, ['up', '--data', this.dataDir,
      '--api', `127.0.0.1:${this.apiPort}`, '--gateway', `127.0.0.1:${this.gatewayPort}`,
      '--agent-name', `e2e-${this.name}`, ...extraArgs],
    { stdio: ['ignore', log, log], env: { ...process.env, NIMDECK_LOG_LEVEL: 'debug', ...env } });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));

    await waitFor('the API to respond', async () => {
      try {
        const res = await fetch(`${this.apiUrl}/api/v1/health`);
        return res.ok;
      } catch {
        return false;
      }
    }, 20000);
    await waitFor('the gateway to respond', async () => {
      try {
        const res = await fetch(`${this.gatewayUrl}/healthz`);
        return res.ok;
      } catch {
        return false;
      }
    }, 20000);
    this.adminToken = fs.readFileSync(path.join(this.dataDir, 'admin-token'), 'utf8').trim();
    return this;
  }

  // Stop with SIGTERM (the way a user's Ctrl-C does) and wait for the exit.
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    const result = await this.exited;
    clearTimeout(timer);
    this.child = null;
    return result;
  }

  // Run a CLI command against this instance with the admin token unless
  // env.NIMDECK_TOKEN is given.
  cli(args, { input, token, env } = {}) {
    const res = spawnSync(nimdeck, args, {
      input,
      encoding: 'utf8',
      timeout: 60000,
      cwd: this.dataDir,
      env: { ...process.env, NIMDECK_SERVER: this.apiUrl, NIMDECK_TOKEN: token ?? this.adminToken, ...env },
    });
    // `tokens create` prints a token, so the log replaces its output with a placeholder.
    const loggedStdout = args[0] === 'tokens' && args[1] === 'create' ? '[token not shown]\n' : res.stdout;
    fs.appendFileSync(path.join(outputDir, `${this.name}-cli.log`),
      `$ nimdeck ${args.join(' ')}\n[exit ${res.status}]\n${loggedStdout}${res.stderr}\n`);
    return res;
  }

  cliJson(args, options) {
    const res = this.cli([...args, '--json'], options);
    if (res.status !== 0) {
      throw new Error(`nimdeck ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
    }
    return JSON.parse(res.stdout);
  }

  app(id) {
    return this.cliJson(['apps', 'show', id]);
  }

  // Launch a configuration object and return the instance.
  launch(config, extraArgs = []) {
    const file = path.join(this.dataDir, `config-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    return this.cliJson(['launch', '--config', file, ...extraArgs]);
  }

  async waitForStatus(id, statuses, timeoutMs = 30000) {
    const wanted = Array.isArray(statuses) ? statuses : [statuses];
    return waitFor(`instance ${id} to be ${wanted.join(' or ')}`, () => {
      const app = this.app(id);
      return wanted.includes(app.status) ? app : null;
    }, timeoutMs, 200);
  }

  logText() {
    return fs.existsSync(this.logPath) ? fs.readFileSync(this.logPath, 'utf8') : '';
  }
}

// The shipped simulator configuration, with the simulator binary given by
// absolute path so that it does not depend on PATH.
export function simConfig(overrides = {}) {
  const config = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'nim-sim.json'), 'utf8'));
  return { ...config, ...overrides };
}

export function simCommand(extra = []) {
  return [nimdeck, 'sim', '--port', '{port}', '--load-seconds', '1', '--tokens-per-second', '200', ...extra];
}

// Start one nimdeck service process with its output in logPath. Returns the
// child and a promise of its exit.
function spawnService(args, logPath, env) {
  const log = fs.openSync(logPath, 'a');
  const child = spawn(nimdeck, args, {
    stdio: ['ignore', log, log],
    env: { ...process.env, NIMDECK_LOG_LEVEL: 'debug', ...env },
  });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, logPath };
}

async function stopService(service, signal = 'SIGTERM') {
  if (!service || service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill(signal);
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 20000);
  await service.exited;
  clearTimeout(timer);
}

async function waitForUrl(what, url) {
  await waitFor(what, async () => {
    try {
      return (await fetch(url)).ok;
    } catch {
      return false;
    }
  }, 20000);
}

// `nimdeck server`, `nimdeck gateway` and any number of `nimdeck agent`
// processes, run apart as on several machines, so that one of them can be
// killed alone. The client helpers (cli, launch, app, waitForStatus) are
// Up's.
export class Services extends Up {
  constructor(name, dataDir) {
    super(name, dataDir);
    this.server = null;
    this.gateway = null;
    this.agents = new Map();
    this.logPaths = [];
    this.starts = 0;
  }

  logFor(what) {
    this.starts += 1;
    const logPath = path.join(outputDir, `${this.name}-${what}-${this.starts}.log`);
    this.logPaths.push(logPath);
    return logPath;
  }

  // Start the server and the gateway; agents come with startAgent.
  async start(serverArgs = [], env = {}) {
    this.apiPort = this.apiPort || await freePort();
    this.gatewayPort = this.gatewayPort || await freePort();
    this.apiUrl = `http://127.0.0.1:${this.apiPort}`;
    this.gatewayUrl = `http://127.0.0.1:${this.gatewayPort}`;
    this.env = env;

    this.server = spawnService(['server', '--data', this.dataDir, '--api', `127.0.0.1:${this.apiPort}`,
      '--gateway-url', this.gatewayUrl, ...serverArgs], this.logFor('server'), env);
    await waitForUrl('the API to respond', `${this.apiUrl}/api/v1/health`);
    this.tokenFile = path.join(this.dataDir, 'admin-token');
    this.adminToken = fs.readFileSync(this.tokenFile, 'utf8').trim();

    this.gateway = spawnService(['gateway', '--server', this.apiUrl, '--token-file', this.tokenFile,
      '--listen', `127.0.0.1:${this.gatewayPort}`], this.logFor('gateway'), env);
    await waitForUrl('the gateway to respond', `${this.gatewayUrl}/healthz`);
    return this;
  }

  // Start `nimdeck agent --name NAME ARGS...` and wait until it has
  // registered. A second start under the same name is a restart.
  async startAgent(agentName, args = [], env = {}) {
    const logPath = this.logFor(`agent-${agentName}`);
    const agent = spawnService(['agent', '--server', this.apiUrl, '--token-file', this.tokenFile,
      '--name', agentName, ...args], logPath, { ...this.env, ...env });
    this.agents.set(agentName, agent);
    await waitFor(`agent ${agentName} to register`, () => {
      if (agent.child.exitCode !== null) {
        throw new Error(`agent ${agentName} exited with ${agent.child.exitCode}; see ${logPath}`);
      }
      return /registered with/.test(fs.readFileSync(logPath, 'utf8'));
    }, 20000, 100);
    return agent;
  }

  // Send signal (SIGTERM: a clean stop, SIGKILL: a crash) to an agent and
  // wait for its exit.
  async stopAgent(agentName, signal = 'SIGTERM') {
    await stopService(this.agents.get(agentName), signal);
    this.agents.delete(agentName);
  }

  async stop() {
    for (const name of [...this.agents.keys()]) await this.stopAgent(name);
    await stopService(this.gateway);
    await stopService(this.server);
    this.gateway = null;
    this.server = null;
  }

  logText() {
    return this.logPaths.filter((p) => fs.existsSync(p)).map((p) => fs.readFileSync(p, 'utf8')).join('');
  }
}

// Call the Docker Engine API of $DOCKER_HOST (a unix:// socket), to check
// what nimdeck did to the daemon. Resolves to {status, body (parsed JSON or
// null), text}.
export function dockerApi(method, apiPath, body) {
  const host = process.env.DOCKER_HOST || '';
  if (!host.startsWith('unix://')) {
    return Promise.reject(new Error(`DOCKER_HOST '${host}' is not a unix:// socket`));
  }
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath: host.slice('unix://'.length),
      path: apiPath,
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        let parsed = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = null;
        }
        resolve({ status: res.statusCode, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`Docker API ${method} ${apiPath} timed out`)));
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

// The containers, running or not, that carry the label ("key=value").
export async function dockerContainers(label) {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const res = await dockerApi('GET', `/containers/json?all=1&filters=${filters}`);
  if (res.status !== 200) throw new Error(`listing containers failed: ${res.status} ${res.text}`);
  return res.body;
}
