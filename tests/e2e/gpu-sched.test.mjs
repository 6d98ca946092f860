// GPU-aware leasing with real processes. An agent started with `--gpus 0`
// gives its one GPU to one instance at a time and queues the next with a
// reason. It fails a request larger than itself, and hides the GPU from
// instances that requested none. A second agent reads its GPUs through the
// fake NVML library and narrows them with CUDA_VISIBLE_DEVICES.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Up, nimdeck, simConfig, sleep, waitFor } from './lib.mjs';

const up = new Up('gpu-sched');
const agentName = 'e2e-gpu-sched';

before(async () => {
  await up.start(['--gpus', '0']);
});

after(async () => {
  await up.stop();
});

// A simulator that first prints the GPU variables it was started with.
function gpuSim(name, gpus) {
  const script = 'echo "gpu-env nvidia=[$NVIDIA_VISIBLE_DEVICES] cuda=[$CUDA_VISIBLE_DEVICES]"; '
    + `exec ${nimdeck} sim --port "$PORT" --load-seconds 1`;
  return simConfig({ name, gpus, command: ['sh', '-c', script] });
}

function gpuEnvLine(id) {
  return up.cli(['apps', 'logs', id]).stdout.split('\n').find((line) => line.includes('gpu-env'));
}

async function api(method, urlPath, base = up) {
  const res = await fetch(`${base.apiUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${base.adminToken}` },
  });
  return { status: res.status, body: await res.json() };
}

test('agents list shows GPUs and machine', async () => {
  const { status, body } = await api('GET', '/api/v1/agents');
  assert.equal(status, 200);
  const agent = body.agents.find((a) => a.name === agentName);
  assert.ok(agent, `agent ${agentName} not listed: ${JSON.stringify(body)}`);
  assert.deepEqual(agent.gpus.map((g) => g.id), ['0']);
  assert.ok(agent.machine.cpu_count >= 1, JSON.stringify(agent.machine));
  assert.ok(agent.machine.mem_total_bytes > 0, JSON.stringify(agent.machine));
  assert.equal(typeof agent.machine.hostname, 'string');
});

test('busy GPU queues second instance', async () => {
  let first = up.launch(gpuSim('gpu-first', 1));
  first = await up.waitForStatus(first.id, 'active', 30000);
  assert.deepEqual(first.gpus, ['0']);
  assert.match(gpuEnvLine(first.id), /nvidia=\[0\] cuda=\[0\]/);

  // The only GPU is busy, so the second waits in the queue with a reason.
  let second = up.launch(gpuSim('gpu-second', 1));
  second = await waitFor('the second instance to show why it waits', () => {
    const app = up.app(second.id);
    return /waiting for 1 free GPU/.test(app.status_reason ?? '') ? app : null;
  }, 10000, 200);
  assert.equal(second.status, 'queued');
  assert.match(second.status_reason, new RegExp(`agent ${agentName} \\(0 of 1 free\\)`));
  await sleep(1500);
  assert.equal(up.app(second.id).status, 'queued');
  assert.deepEqual(up.app(second.id).gpus, []);

  // Stopping the first frees the GPU, and the second starts on it at once.
  assert.equal(up.cli(['apps', 'stop', first.id, '--wait']).status, 0);
  const stoppedAt = Date.now();
  second = await up.waitForStatus(second.id, ['loading', 'active'], 10000);
  assert.ok(Date.now() - stoppedAt < 5000, `second started ${Date.now() - stoppedAt} ms after the stop`);
  second = await up.waitForStatus(second.id, 'active', 30000);
  assert.deepEqual(second.gpus, ['0']);
  assert.equal(up.app(first.id).gpus[0], '0');

  // An instance without GPUs runs beside it with every GPU hidden.
  let plain = up.launch(gpuSim('gpu-none', 0));
  plain = await up.waitForStatus(plain.id, 'active', 30000);
  assert.deepEqual(plain.gpus, []);
  assert.match(gpuEnvLine(plain.id), /nvidia=\[void\] cuda=\[\]/);

  assert.equal(up.cli(['apps', 'stop', second.id, '--wait']).status, 0);
  assert.equal(up.cli(['apps', 'stop', plain.id, '--wait']).status, 0);
});

test('request beyond agent fails clearly', async () => {
  let app = up.launch(gpuSim('gpu-too-many', 2));
  app = await up.waitForStatus(app.id, 'failed', 15000);
  assert.match(app.status_reason, new RegExp(`asks for 2 GPUs; agent ${agentName} has 1`));
  assert.equal(gpuEnvLine(app.id), undefined, 'the command ran although the agent lacks GPUs');

  app = up.launch(gpuSim('gpu-unknown-id', ['5']));
  app = await up.waitForStatus(app.id, 'failed', 15000);
  assert.match(app.status_reason, new RegExp(`asks for GPU 5; agent ${agentName} has GPUs 0`));

  app = up.launch(gpuSim('gpu-all', 'all'));
  app = await up.waitForStatus(app.id, 'active', 30000);
  assert.deepEqual(app.gpus, ['0']);
  assert.equal(up.cli(['apps', 'stop', app.id, '--wait']).status, 0);
});

test('fake NVML inventory narrowed by CUDA_VISIBLE_DEVICES', async (t) => {
  const fakeNvml = path.join(path.dirname(nimdeck), 'fake-nvml');
  if (!fs.existsSync(path.join(fakeNvml, 'libnvidia-ml.so.1'))) {
    t.skip(`no fake NVML library in ${fakeNvml}; build it with make tests`);
    return;
  }
  const nvmlUp = new Up('gpu-sched-nvml');
  await nvmlUp.start([], {
    LD_LIBRARY_PATH: fakeNvml,
    NIMDECK_FAKE_NVML_GPUS: '3',
    CUDA_VISIBLE_DEVICES: 'GPU-fa4e0000-0000-4000-8000-000000000002,1',
  });
  try {
    const { body } = await api('GET', '/api/v1/agents', nvmlUp);
    const agent = body.agents.find((a) => a.name === 'e2e-gpu-sched-nvml');
    assert.deepEqual(agent.gpus.map((g) => g.id), ['1', '2']);
    assert.equal(agent.gpus[1].uuid, 'GPU-fa4e0000-0000-4000-8000-000000000002');
    assert.equal(agent.gpus[0].name, 'NVIDIA Fake GPU 80GB');
    assert.ok(agent.gpus[0].mem_total_bytes > 0);
  } finally {
    await nvmlUp.stop();
  }
});
