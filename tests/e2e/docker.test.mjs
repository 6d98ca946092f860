// The docker runtime against a real Docker daemon. A NIM look-alike image
// is launched, served through the gateway to the openai client and stopped
// when idle. Other cases: a container that fails, an agent killed or
// stopped and started again while its container runs (also before its
// first loading report), the default bridge network on a daemon without
// one, a pull that cannot reach its registry, pre-flight errors, and
// secrets kept out of every log.
//
// The test daemon has no bridge network (scripts/dockerd.sh starts it with
// --bridge=none), so every configuration that must serve sets
// "network": "host".
//
// Needs DOCKER_HOST (a unix:// socket of a daemon this test may use) and
// the image of tests/docker/build-image.sh; scripts/test.sh sets up both.
// The test runs `nimdeck server`, `gateway` and `agent` as separate
// processes, so that the agent alone can be killed.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';

import { Services, dockerApi, dockerContainers, freePort, outputDir, waitFor } from './lib.mjs';

const image = process.env.NIMDECK_DOCKER_IMAGE || 'nvcr.io/nim/nimdeck/sim-llm:1.0';
const skip = process.env.DOCKER_HOST
  ? false
  : 'DOCKER_HOST is not set: start a daemon with scripts/dockerd.sh start DIR, export the '
    + 'DOCKER_HOST it prints and build the image with tests/docker/build-image.sh build/nimdeck';

const AGENT = 'docker-e2e';
const BROKEN_AGENT = 'docker-e2e-nodaemon';
const BROKEN_QUEUE = 'no-daemon';

// Random, so that a match anywhere can only come from this run.
const ngcKey = `nvapi-e2e-${crypto.randomBytes(12).toString('hex')}`;
const vaultSecret = `vault-e2e-${crypto.randomBytes(12).toString('hex')}`;

const services = new Services('docker');
let token;

// overrides.docker is merged into the docker options, which default to
// host networking here.
function dockerConfig(name, overrides = {}) {
  return {
    version: 1,
    name,
    project: 'docker-e2e',
    runtime: 'docker',
    image,
    idle_time_limit_hours: null,
    ...overrides,
    docker: { network: 'host', pull: 'missing', ...overrides.docker },
  };
}

// The image's own command with a shorter load time, behind a shell line
// that prints both secrets, so that the console shows whether the agent
// masks them.
function servingCommand(loadSeconds = 1) {
  return ['sh', '-c', `echo "ngc=$NGC_API_KEY hf=$HF_TOKEN"; exec nimdeck sim --load-seconds ${loadSeconds}`];
}

function client(app) {
  return new OpenAI({ apiKey: token, baseURL: app.endpoint, maxRetries: 0, timeout: 30000 });
}

function consoleLog(id) {
  const res = services.cli(['apps', 'logs', id]);
  assert.equal(res.status, 0, res.stderr);
  return res.stdout;
}

async function containersOf(id) {
  return dockerContainers(`nimdeck.instance=${id}`);
}

async function chatOnce(app) {
  const res = await client(app).chat.completions.create({
    messages: [{ role: 'user', content: 'Say hello from the container' }],
    max_tokens: 8,
  });
  assert.equal(res.object, 'chat.completion');
  assert.ok(res.choices[0].message.content.length > 0);
  return res;
}

describe('docker runtime', { skip }, () => {
  before(async () => {
    const found = await dockerApi('GET', `/images/${encodeURIComponent(image)}/json`);
    assert.equal(found.status, 200,
      `image ${image} is not in the daemon at ${process.env.DOCKER_HOST}: build it with `
      + 'tests/docker/build-image.sh build/nimdeck');

    await services.start(['--active-window', '2']);
    await services.startAgent(AGENT, ['--docker-host', process.env.DOCKER_HOST]);
    assert.equal(services.cli(['queues', 'create', BROKEN_QUEUE]).status, 0);
    const missing = path.join(services.dataDir, 'no-such-dir', 'docker.sock');
    await services.startAgent(BROKEN_AGENT, ['--queue', BROKEN_QUEUE, '--docker-host', `unix://${missing}`]);

    assert.equal(services.cli(['vault', 'set', 'NGC_API_KEY'], { input: `${ngcKey}\n` }).status, 0);
    assert.equal(services.cli(['vault', 'set', 'HF_TOKEN'], { input: `${vaultSecret}\n` }).status, 0);
    token = services.cli(['tokens', 'create', '--days', '1']).stdout.trim();
  });

  after(async () => {
    // Stop what a failed test left running, then remove any container of
    // this run that is still there, so the daemon is left as found.
    const ids = [];
    if (services.server) {
      for (const app of services.cliJson(['apps', 'list']).apps) {
        ids.push(app.id);
        if (!['stopped', 'failed'].includes(app.status)) services.cli(['apps', 'stop', app.id, '--wait']);
      }
    }
    await services.stop();
    for (const id of ids) {
      for (const container of await containersOf(id)) {
        await dockerApi('DELETE', `/containers/${container.Id}?force=1&v=1`);
      }
    }
  });

  test('launch serves through gateway, idle stop removes container', async () => {
    let app = services.launch(dockerConfig('docker-sim', {
      command: servingCommand(4),
      idle_time_limit_hours: 0.002,
    }));

    // Loading: the container's start-up lines reach the console log while
    // the simulated weights load.
    const loading = await waitFor('start-up lines while loading', () => {
      const shown = services.app(app.id);
      const logs = consoleLog(app.id);
      return shown.status === 'loading' && /stdout .*Selected profile/.test(logs) ? { shown, logs } : null;
    }, 60000, 200);
    assert.match(loading.logs, /stdout NIM version: 1\.0/);
    // The latest start-up milestone is the loading reason.
    assert.match(loading.shown.status_reason ?? '', /Selected profile|Model workspace/);

    app = await services.waitForStatus(app.id, 'active', 60000);
    // Console lines are shipped in batches, so the last ones may trail the status.
    await waitFor('the serving line in the console log', () => /Uvicorn running on/.test(consoleLog(app.id)),
      5000, 200);

    const containers = await containersOf(app.id);
    assert.equal(containers.length, 1, JSON.stringify(containers));
    const [container] = containers;
    assert.equal(container.State, 'running');
    assert.equal(container.Image, image);
    assert.equal(container.Labels['nimdeck.managed'], '1');
    // The agent's key: its name and its server's address.
    assert.equal(container.Labels['nimdeck.agent'], `${AGENT}@127.0.0.1:${services.apiPort}`);
    const inspected = (await dockerApi('GET', `/containers/${container.Id}/json`)).body;
    assert.equal(inspected.HostConfig.NetworkMode, 'host');
    assert.ok(inspected.Config.Env.includes('NVIDIA_VISIBLE_DEVICES=void'), 'no GPU, yet devices are visible');
    assert.ok(!inspected.HostConfig.DeviceRequests?.length, 'device requests without GPUs');
    assert.ok(inspected.Config.Env.includes(`NIM_SERVER_PORT=${app.upstream.split(':').pop()}`),
      `NIM_SERVER_PORT is not the upstream port ${app.upstream}`);
    // The model cache is a named volume at NIM_CACHE_PATH, so a relaunch finds it.
    const cache = inspected.Mounts.find((m) => m.Destination === '/opt/nim/.cache');
    assert.equal(cache?.Type, 'volume', JSON.stringify(inspected.Mounts));

    await chatOnce(app);
    const stream = await client(app).chat.completions.create({
      messages: [{ role: 'user', content: 'Stream from the container' }],
      max_tokens: 10,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.ok(text.length > 0);

    // 0.002 hours is 7.2 s after the last request.
    app = await services.waitForStatus(app.id, 'stopped', 30000);
    assert.equal(app.status_reason, 'idle time limit reached');
    assert.deepEqual(await containersOf(app.id), [], 'the container is still there after the stop');
  });

  test('container exiting non-zero fails with code and lines', async () => {
    // Docker keeps stdout and stderr apart, so lines written to both at
    // the same moment may arrive in either order: the line the reason must
    // show is the last one on stdout.
    const script = 'echo "Selected profile: sim0000 (simulator-fp16-tp1)"; '
      + 'echo "WARNING: simulated failure ahead" >&2; '
      + 'echo "ERROR: CUDA out of memory (simulated)"; exit 3';
    let app = services.launch(dockerConfig('docker-crash', { command: ['sh', '-c', script] }));
    app = await services.waitForStatus(app.id, 'failed', 60000);
    assert.equal(app.exit_code, 3);
    assert.match(app.status_reason, /status 3/);
    assert.match(app.status_reason, /CUDA out of memory \(simulated\)/);
    const logs = consoleLog(app.id);
    assert.match(logs, /stdout ERROR: CUDA out of memory/);
    assert.match(logs, /stderr WARNING: simulated failure ahead/);
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('killed agent restarts and adopts container', async () => {
    let app = services.launch(dockerConfig('docker-adopted', { command: servingCommand(1) }));
    app = await services.waitForStatus(app.id, 'active', 60000);
    await chatOnce(app);
    const [before] = await containersOf(app.id);
    assert.ok(before, 'no container for the instance');

    await services.stopAgent(AGENT, 'SIGKILL');
    const orphan = await containersOf(app.id);
    assert.equal(orphan.length, 1);
    assert.equal(orphan[0].State, 'running', 'the container did not outlive its agent');
    // The gateway keeps serving while the agent is gone.
    await chatOnce(app);

    await services.startAgent(AGENT, ['--docker-host', process.env.DOCKER_HOST]);
    const agentLog = fs.readFileSync(services.agents.get(AGENT).logPath, 'utf8');
    assert.match(agentLog, new RegExp(`instance ${app.id}.*adopting`));

    // Adoption keeps the instance and its one container, and it serves.
    await waitFor('the adopted instance to settle', () => {
      const shown = services.app(app.id);
      return shown.status === 'active' || shown.status === 'idle' ? shown : null;
    }, 10000, 200);
    await chatOnce(app);
    const after = await containersOf(app.id);
    assert.equal(after.length, 1, `expected one container, got ${after.length}`);
    assert.equal(after[0].Id, before.Id, 'the container was replaced instead of adopted');
    assert.ok(['active', 'idle'].includes(services.app(app.id).status));

    // The adopted container still stops and goes away.
    assert.equal(services.cli(['apps', 'stop', app.id, '--wait']).status, 0);
    assert.equal(services.app(app.id).status, 'stopped');
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('stopped agent leaves container to adopt', async () => {
    let app = services.launch(dockerConfig('docker-kept', { command: servingCommand(1) }));
    app = await services.waitForStatus(app.id, 'active', 60000);
    await chatOnce(app);
    const [before] = await containersOf(app.id);
    assert.ok(before, 'no container for the instance');

    // A graceful stop lets go of the container and sends no final status.
    const logPath = services.agents.get(AGENT).logPath;
    await services.stopAgent(AGENT, 'SIGTERM');
    assert.match(fs.readFileSync(logPath, 'utf8'), new RegExp(`instance ${app.id}: left running`));
    const kept = await containersOf(app.id);
    assert.equal(kept.length, 1);
    assert.equal(kept[0].Id, before.Id);
    assert.equal(kept[0].State, 'running', 'the agent stopped its container');
    const shown = services.app(app.id);
    assert.ok(['active', 'idle'].includes(shown.status), `status ${shown.status}: ${shown.status_reason}`);
    await chatOnce(app);

    await services.startAgent(AGENT, ['--docker-host', process.env.DOCKER_HOST]);
    const agentLog = fs.readFileSync(services.agents.get(AGENT).logPath, 'utf8');
    assert.match(agentLog, new RegExp(`instance ${app.id}.*adopting`));
    await waitFor('the adopted instance to settle', () => {
      const now = services.app(app.id);
      return now.status === 'active' || now.status === 'idle' ? now : null;
    }, 10000, 200);
    await chatOnce(app);
    const after = await containersOf(app.id);
    assert.equal(after.length, 1, `expected one container, got ${after.length}`);
    assert.equal(after[0].Id, before.Id, 'the container was replaced instead of adopted');

    assert.equal(services.cli(['apps', 'stop', app.id, '--wait']).status, 0);
    assert.equal(services.app(app.id).status, 'stopped');
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('default network fails fast without a bridge', async () => {
    // Without docker.network the port is published on 127.0.0.1 only (the
    // create body is covered by the docker_create unit tests). The test
    // daemon has no bridge network, so the container gets no address and
    // no published port: the start fails at once, naming the fix, instead
    // of loading forever.
    const config = dockerConfig('docker-bridge', { command: servingCommand(1) });
    delete config.docker.network;
    let app = services.launch(config);
    app = await services.waitForStatus(app.id, 'failed', 30000);
    assert.match(app.status_reason, /did not publish port \d+/);
    assert.match(app.status_reason, /"docker\.network": "host"/);
    assert.match(app.status_reason, /bridge network/);
    assert.deepEqual(await containersOf(app.id), [], 'the unreachable container was left behind');
  });

  test('agent killed before loading report adopts container', async () => {
    // The state a kill -9 leaves between the lease and the agent's first
    // loading report: the server has the instance queued and leased to the
    // agent, and the container runs. The test plays the part of the agent
    // run that died, so the timing is exact, then starts the real agent.
    const name = 'docker-e2e-crashed';
    const queue = 'crashed';
    assert.equal(services.cli(['queues', 'create', queue]).status, 0);
    const app = services.launch(dockerConfig('docker-crashed', { queue, command: servingCommand(1) }));
    const api = async (method, apiPath, body) => {
      const res = await fetch(`${services.apiUrl}/api/v1${apiPath}`, {
        method,
        headers: { Authorization: `Bearer ${services.adminToken}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const registered = await api('POST', '/agents', { name, queues: [queue], running: [] });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    const work = await api('GET', `/agents/${registered.body.id}/work?wait=0`);
    assert.equal(work.body.lease?.id, app.id, JSON.stringify(work.body));

    const port = await freePort();
    const created = await dockerApi('POST', `/containers/create?name=nimdeck-${app.id}`, {
      Image: image,
      Cmd: servingCommand(1),
      Env: [`PORT=${port}`, `NIM_SERVER_PORT=${port}`],
      Labels: {
        'nimdeck.instance': app.id,
        'nimdeck.agent': `${name}@127.0.0.1:${services.apiPort}`,
        'nimdeck.managed': '1',
        'nimdeck.port': String(port),
      },
      HostConfig: { NetworkMode: 'host' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal((await dockerApi('POST', `/containers/${created.body.Id}/start`)).status, 204);
    assert.equal(services.app(app.id).status, 'queued');

    await services.startAgent(name, ['--queue', queue, '--docker-host', process.env.DOCKER_HOST]);
    const shown = await services.waitForStatus(app.id, 'active', 60000);
    await chatOnce(shown);
    const history = services.cliJson(['apps', 'history', app.id]);
    const entries = history.history ?? history;
    assert.ok(entries.some((h) => h.status === 'loading' && h.reason === 'adopted after an agent restart'),
      JSON.stringify(entries));
    assert.ok(!entries.some((h) => ['stopped', 'failed'].includes(h.status)), JSON.stringify(entries));
    const containers = await containersOf(app.id);
    assert.equal(containers.length, 1);
    assert.equal(containers[0].Id, created.body.Id, 'the container was replaced instead of adopted');

    assert.equal(services.cli(['apps', 'stop', app.id, '--wait']).status, 0);
    assert.equal(services.app(app.id).status, 'stopped');
    assert.deepEqual(await containersOf(app.id), []);
    await services.stopAgent(name);
  });

  test('pull from unreachable registry fails clearly', async () => {
    // A registry address on 127.0.0.1 where nothing listens.
    const unreachable = `127.0.0.1:${await freePort()}/nimdeck/none:1`;
    let app = services.launch(dockerConfig('docker-nopull', {
      image: unreachable,
      docker: { network: 'host', pull: 'always' },
    }));
    app = await services.waitForStatus(app.id, 'failed', 60000);
    assert.match(app.status_reason, /pull/i);
    assert.ok(app.status_reason.includes(unreachable), `reason does not name the image: ${app.status_reason}`);
    assert.match(app.status_reason, /connection refused|connect/i);
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('unreachable docker socket fails before start', async () => {
    let app = services.launch(dockerConfig('docker-nodaemon', { queue: BROKEN_QUEUE }));
    app = await services.waitForStatus(app.id, 'failed', 30000);
    assert.match(app.status_reason, /no-such-dir\/docker\.sock/);
    assert.match(app.status_reason, /--docker-host|DOCKER_HOST/);
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('gpus on agent without GPUs fail before start', async () => {
    let app = services.launch(dockerConfig('docker-nogpu', { gpus: 1 }));
    app = await services.waitForStatus(app.id, 'failed', 30000);
    assert.match(app.status_reason, /GPU/);
    assert.match(app.status_reason, new RegExp(AGENT));
    assert.deepEqual(await containersOf(app.id), []);
  });

  test('secrets absent from console and logs', async () => {
    // Every serving launch above printed both secrets through its shell.
    const apps = services.cliJson(['apps', 'list']).apps.filter((a) => ['docker-sim', 'docker-adopted', 'docker-kept'].includes(a.name));
    assert.ok(apps.length >= 1, 'no serving instance ran');
    const consoles = apps.map((a) => consoleLog(a.id)).join('\n');
    assert.match(consoles, /ngc=\*+ hf=\*+/);

    const texts = [['console logs', consoles], ['service logs', services.logText()]];
    for (const file of fs.readdirSync(outputDir)) {
      const full = path.join(outputDir, file);
      if (fs.statSync(full).isFile()) texts.push([file, fs.readFileSync(full, 'utf8')]);
    }
    for (const [what, text] of texts) {
      assert.ok(!text.includes(ngcKey), `the NGC_API_KEY value appears in ${what}`);
      assert.ok(!text.includes(vaultSecret), `the vault value appears in ${what}`);
    }
  });
});
