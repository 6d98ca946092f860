// Helpers for the end-to-end tests: start `nimdeck up` in a temporary folder,
// run CLI commands against it, and wait for conditions with a deadline.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
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

  async start(extraArgs = []) {
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
    { stdio: ['ignore', log, log], env: { ...process.env, NIMDECK_LOG_LEVEL: 'debug' } });
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
