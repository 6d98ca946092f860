// GPU and per-instance metrics end to end. `nimdeck up` loads the test NVML
// library from BUILD/fake-nvml through its ordinary dlopen, and instances
// given GPUs get gpu_* series computed over their own GPUs. An agent
// without NVML logs why once and runs on without GPU series.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { Up, nimdeck, simCommand, simConfig, waitFor } from './lib.mjs';

const fakeNvmlDir = path.join(path.dirname(nimdeck), 'fake-nvml');
const GIB = 1024 ** 3;
const started = [];

after(async () => {
  for (const up of started) await up.stop();
});

// Start `nimdeck up` with extra environment variables. Up passes
// process.env to its child, so they are set only around the spawn.
async function startUp(name, env) {
  const saved = {};
  for (const [key, value] of Object.entries(env)) {
    saved[key] = process.env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const up = new Up(name);
  started.push(up);
  fs.rmSync(up.logPath, { force: true });  // the log counts lines of this run only
  try {
    await up.start();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  return up;
}

async function metrics(up, id) {
  const res = await fetch(`${up.apiUrl}/api/v1/apps/${id}/metrics?step=5&range=300`, {
    headers: { Authorization: `Bearer ${up.adminToken}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()).series;
}

// The last non-null value of a series, or undefined.
function last(series, name) {
  const values = (series[name] || []).filter((v) => v !== null);
  return values.length ? values[values.length - 1] : undefined;
}

// Wait until every named series has a value, and return the series.
async function waitForSeries(up, id, names, timeoutMs = 30000) {
  return waitFor(`series ${names.join(', ')} of ${id}`, async () => {
    const series = await metrics(up, id);
    return names.every((name) => last(series, name) !== undefined) ? series : null;
  }, timeoutMs, 1000);
}

function nvmlLines(up) {
  return up.logText().split('\n').filter((line) => /NVML|nvmlInit|libnvidia-ml/.test(line));
}

test('fake NVML drives gpu series per instance', async () => {
  assert.ok(fs.existsSync(path.join(fakeNvmlDir, 'libnvidia-ml.so.1')),
    `${fakeNvmlDir}/libnvidia-ml.so.1 is missing; build it with make tests`);
  const up = await startUp('gpu-fake', {
    LD_LIBRARY_PATH: fakeNvmlDir, NIMDECK_FAKE_NVML_GPUS: '2', NIMDECK_FAKE_NVML_INIT: undefined,
    NVIDIA_VISIBLE_DEVICES: undefined, CUDA_VISIBLE_DEVICES: undefined,
  });

  const first = up.launch(simConfig({ name: 'gpu-sim-a', command: simCommand(), gpus: 1 }));
  const second = up.launch(simConfig({ name: 'gpu-sim-b', command: simCommand(), gpus: 1 }));
  const plain = up.launch(simConfig({ name: 'cpu-sim', command: simCommand(), gpus: 0 }));
  const a = await up.waitForStatus(first.id, 'active', 30000);
  const b = await up.waitForStatus(second.id, 'active', 30000);
  await up.waitForStatus(plain.id, 'active', 30000);
  assert.deepEqual([...a.gpus, ...b.gpus].sort(), ['0', '1']);

  const gpuNames = ['gpu_util_percent', 'gpu_mem_used_bytes', 'gpu_mem_total_bytes', 'gpu_temp_c', 'gpu_power_w'];
  const usageNames = ['instance_cpu_percent', 'instance_mem_used_bytes',
    'instance_disk_read_bytes_per_s', 'instance_disk_write_bytes_per_s'];
  for (const app of [a, b]) {
    const series = await waitForSeries(up, app.id, [...gpuNames, ...usageNames]);
    // The test library reports GPU i at 40 + i degrees and 100 + i watts,
    // 80 GiB each: the series are over this instance's one GPU only.
    const index = Number(app.gpus[0]);
    assert.equal(last(series, 'gpu_temp_c'), 40 + index);
    assert.equal(last(series, 'gpu_power_w'), 100 + index);
    assert.equal(last(series, 'gpu_mem_total_bytes'), 80 * GIB);
    const util = last(series, 'gpu_util_percent');
    assert.ok(util >= 0, `gpu_util_percent ${util}`);
    assert.ok(util <= 100, `gpu_util_percent ${util}`);
    assert.ok(last(series, 'instance_mem_used_bytes') > 0);
    assert.ok(last(series, 'instance_cpu_percent') >= 0);
    // The process runtime has no per-process network counter.
    assert.equal(last(series, 'instance_net_rx_bytes_per_s'), undefined);
    assert.ok('instance_net_rx_bytes_per_s' in series);
  }

  // No GPUs: instance series, and no GPU series at all.
  const series = await waitForSeries(up, plain.id, ['instance_mem_used_bytes']);
  for (const name of gpuNames) assert.equal(name in series, false, `${name} present without GPUs`);

  // The utilization changes between readings: the readings are fresh.
  const values = new Set((await metrics(up, a.id)).gpu_util_percent.filter((v) => v !== null));
  await waitFor('another utilization value', async () => {
    const now = (await metrics(up, a.id)).gpu_util_percent.filter((v) => v !== null);
    return now.some((v) => !values.has(v));
  }, 20000, 1000);

  assert.equal(up.cli(['apps', 'stop', a.id, '--wait']).status, 0);
  assert.equal(nvmlLines(up).filter((line) => /not available|no GPU metrics/.test(line)).length, 0);
});

for (const [name, env, cause] of [
  ['gpu-nolib', { LD_LIBRARY_PATH: undefined }, /libnvidia-ml\.so\.1/],
  ['gpu-noinit', { LD_LIBRARY_PATH: fakeNvmlDir, NIMDECK_FAKE_NVML_INIT: '9' }, /nvmlInit failed: Driver Not Loaded/],
]) {
  test(`${name}: one log line and no gpu series`, async (t) => {
    if (name === 'gpu-nolib') {
      const ldconfig = spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
      if (/libnvidia-ml\.so\.1/.test(ldconfig.stdout || '')) {
        t.skip('a real NVIDIA driver is installed here');
        return;
      }
    }
    const up = await startUp(name, env);
    const app = up.launch(simConfig({ name: 'plain-sim', command: simCommand() }));
    await up.waitForStatus(app.id, 'active', 30000);
    const series = await waitForSeries(up, app.id, ['instance_mem_used_bytes']);
    assert.equal('gpu_util_percent' in series, false);

    // One instance asking for a GPU fails with a reason instead of crashing anything.
    const gpuApp = up.launch(simConfig({ name: 'wants-gpu', command: simCommand(), gpus: 1 }));
    const failed = await up.waitForStatus(gpuApp.id, ['failed', 'queued'], 30000);
    assert.ok(failed.status_reason, 'no reason given');

    const lines = nvmlLines(up);
    assert.equal(lines.length, 1, `expected one NVML line, got:\n${lines.join('\n')}`);
    assert.match(lines[0], cause);
    assert.equal(up.child.exitCode, null, 'nimdeck up exited');
    assert.equal(up.app(app.id).status, 'active');
  });
}
