// The CLI and the web UI against awkward input and events: `nimdeck up` on
// port 0, `apps logs --follow` across a server restart, multi-line status
// reasons in the log and in the Apps table.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, login, newPage } from './browser.mjs';
import { Up, nimdeck, outputDir, simCommand, simConfig, tempDir, waitFor } from './lib.mjs';

const up = new Up('cli-inputs');
// A command that prints markup and 40 numbered lines, then fails, so that
// its status reason ends with many lines of output.
const FAILING_SCRIPT = 'echo "<b>bold</b>"; for i in $(seq 1 40); do echo "output line $i"; done; exit 3';
let failed;

before(async () => {
  await up.start();
  failed = up.launch({
    version: 1, name: 'fails', project: 'demo', runtime: 'process', image: 'nimdeck/sim',
    command: ['/bin/sh', '-c', FAILING_SCRIPT],
  });
  await up.waitForStatus(failed.id, 'failed');
});

after(async () => {
  await up.stop();
});

test('up on port 0 shows bound ports', async () => {
  const dataDir = tempDir('cli-inputs-port0');
  const logPath = path.join(outputDir, 'cli-inputs-port0-up.log');
  const child = spawn(nimdeck, ['up', '--data', dataDir, '--api', '127.0.0.1:0',
    '--gateway', '127.0.0.1:0', '--agent-name', 'e2e-cli-inputs-port0'],
  { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.pipe(fs.createWriteStream(logPath));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    const banner = await waitFor('the banner', () => (/gateway: +http:\/\/127\.0\.0\.1:(\d+)\/serve\//.test(stdout) ? stdout : null), 20000);
    const gatewayPort = Number(banner.match(/gateway: +http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    const apiPort = Number(banner.match(/API: +http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    assert.notEqual(gatewayPort, 0);
    assert.notEqual(apiPort, 0);
    assert.equal((await fetch(`http://127.0.0.1:${gatewayPort}/healthz`)).status, 200);

    // Instance endpoints are built from the port the gateway listens on.
    const token = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/apps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(simConfig({ command: simCommand() })),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const app = await res.json();
    assert.ok(app.endpoint.startsWith(`http://127.0.0.1:${gatewayPort}/serve/`), app.endpoint);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('up help mentions port 0', () => {
  const res = up.cli(['up', '--help']);
  assert.equal(res.status, 0);
  assert.match(res.stdout, /port 0 picks a free port/);
});

test('apps help lists logs options', () => {
  const res = up.cli(['apps', '--help']);
  assert.match(res.stdout, /logs ID \[--follow\] \[--json\]/);
});

test('empty instance ID is a usage error', () => {
  const res = up.cli(['apps', 'show', '']);
  assert.equal(res.status, 2);
  assert.match(res.stderr, /ID must not be empty/);
  assert.doesNotMatch(res.stderr, /no API endpoint/);
});

test('system lines print reasons on lines', () => {
  const res = up.cli(['apps', 'logs', failed.id]);
  assert.equal(res.status, 0, res.stderr);
  const system = res.stdout.split('\n').filter((line) => / system /.test(line));
  assert.ok(system.length > 0, res.stdout);
  assert.doesNotMatch(res.stdout, /\\x0a/);
  // The reason's later lines are indented under the text of its first line.
  const start = res.stdout.indexOf(system.find((line) => /exit|code 3/.test(line)) ?? system[0]);
  const indent = res.stdout.slice(start).split(' system ')[0].length + ' system '.length;
  assert.match(res.stdout, new RegExp(`\\n {${indent}}\\S`));
});

test('logs follow survives server restart', async () => {
  const app = up.launch(simConfig({ command: simCommand() }));
  await up.waitForStatus(app.id, 'active');

  const child = spawn(nimdeck, ['apps', 'logs', app.id, '--follow'], {
    env: { ...process.env, NIMDECK_SERVER: up.apiUrl, NIMDECK_TOKEN: up.adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));

  await waitFor('the first log lines', () => stdout.length > 0, 15000);
  await up.stop();
  await waitFor('the retry message', () => /retrying until it is back/.test(stderr), 15000);
  assert.equal(child.exitCode, null, `logs --follow exited during the restart: ${stderr}`);

  await up.start();
  // The agent stopped the instance on shutdown, so the follow prints the
  // last lines and ends by itself once the server is back.
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 30000))]);
  if (code === 'timeout') child.kill('SIGINT');
  assert.equal(code, 0, stderr);
  assert.match(stderr, /is back; following the log again/);
  assert.equal(stderr.match(/retrying until it is back/g).length, 1, 'the loss is reported once');
  assert.match(stdout, /agent stopped/);
});

test('apps table clamps long reasons', async (t) => {
  const browser = await launch();
  t.after(() => browser.close());
  const page = await newPage(browser, t);
  await page.setViewportSize({ width: 1280, height: 800 });
  await login(page, up);

  const reason = page.locator(`#apps-table tr[data-id="${failed.id}"] .app-reason`);
  await reason.waitFor();
  const shown = await reason.evaluate((el) => ({
    title: el.getAttribute('title'),
    height: el.getBoundingClientRect().height,
    lineHeight: parseFloat(getComputedStyle(el).lineHeight) || 20,
    bold: el.querySelectorAll('b').length,
  }));
  const app = up.app(failed.id);
  assert.equal(shown.title, app.status_reason);
  assert.ok(shown.height <= shown.lineHeight * 2 + 2, `the reason is ${shown.height} px high`);
  assert.equal(shown.bold, 0, 'markup in the reason became elements');
  const row = await page.locator(`#apps-table tr[data-id="${failed.id}"]`).boundingBox();
  assert.ok(row.height < 200, `the row is ${row.height} px high`);
});
