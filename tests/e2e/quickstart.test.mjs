// The README's first command: scripts/quickstart.sh must end with a served
// model and a curl command that works when pasted.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { freePort, outputDir, repoRoot, tempDir } from './lib.mjs';

const pidFile = path.join(repoRoot, 'nimdeck-up.pid');
let upPid = null;

after(async () => {
  if (upPid === null) return;
  try {
    process.kill(upPid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(upPid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.kill(upPid, 'SIGKILL');
});

test('quickstart curl command works', async () => {
  const api = await freePort();
  const gateway = await freePort();
  const data = tempDir('quickstart');
  fs.rmSync(pidFile, { force: true });

  const res = spawnSync('scripts/quickstart.sh', [], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 300000,
    env: {
      ...process.env,
      NIMDECK_DATA: data,
      NIMDECK_API: `127.0.0.1:${api}`,
      NIMDECK_GATEWAY: `127.0.0.1:${gateway}`,
    },
  });
  if (fs.existsSync(pidFile)) upPid = Number(fs.readFileSync(pidFile, 'utf8'));

  // The output contains a token, so the log keeps only its shape.
  const maskedStdout = res.stdout.replace(/nd_[A-Za-z0-9_-]{43}/g, 'nd_[token]');
  fs.writeFileSync(path.join(outputDir, 'quickstart.log'), `${maskedStdout}${res.stderr}`);
  assert.equal(res.status, 0, res.stderr);
  assert.ok(upPid > 1, 'quickstart wrote no nimdeck-up.pid');

  assert.match(res.stdout, /The simulated NIM is served/);
  assert.match(res.stdout, new RegExp(`endpoint: http://127\\.0\\.0\\.1:${gateway}/serve/[a-z0-9]+/v1`));
  assert.match(res.stdout, /token: +nd_[A-Za-z0-9_-]{43}/);

  // Paste the printed curl command into a shell, as a user would.
  const start = res.stdout.indexOf('  curl ');
  assert.ok(start >= 0, 'no curl command in the output');
  const lines = res.stdout.slice(start).split('\n');
  const command = [];
  for (const line of lines) {
    command.push(line);
    if (!line.trimEnd().endsWith('\\')) break;
  }
  const output = execFileSync('bash', ['-c', command.join('\n')], { encoding: 'utf8', timeout: 60000 });
  const body = JSON.parse(output);
  assert.equal(body.object, 'chat.completion');
  assert.ok(body.choices[0].message.content.length > 0);
});
