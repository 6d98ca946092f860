// The instance dashboard, embed pages and Model Endpoints in Chromium,
// against a real `nimdeck up` running the simulator. It checks the live
// status, plots fed by requests from the openai client, the console log,
// embed keys (refused once revoked) and the endpoints table with its CSV.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';

import { launch, login, newPage, screenshot, useTheme } from './browser.mjs';
import { Up, nimdeck, waitFor } from './lib.mjs';

const MODEL = 'dash-sim-model';

const up = new Up('web-dashboard');
let browser;
let gatewayToken;

before(async () => {
  await up.start();
  browser = await launch();
  gatewayToken = up.cli(['tokens', 'create', '--days', '1']).stdout.trim();
});

after(async () => {
  if (browser) await browser.close();
  await up.stop();
});

// The simulator loads for a few seconds, so the dashboard can show `loading`.
function dashboardConfig() {
  return {
    version: 1,
    name: 'dash-sim',
    project: 'demo',
    runtime: 'process',
    image: 'nimdeck/sim',
    command: [nimdeck, 'sim', '--port', '{port}', '--load-seconds', '6', '--tokens-per-second', '400',
      '--model', MODEL],
    queue: 'default',
    route: null,
    idle_time_limit_hours: 1,
    env: { NIM_LOG_LEVEL: 'INFO' },
    tags: ['web-dashboard'],
  };
}

async function adminApi(method, path) {
  const res = await fetch(`${up.apiUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${up.adminToken}` },
  });
  assert.ok(res.ok, `${method} ${path} returned ${res.status}`);
  return res.json();
}

// The numbers of the plot summary `plot-KEY` on page, read at one moment:
// last, max and total, each null when unknown.
async function plotSummary(page, key) {
  return page.getByTestId(`plot-${key}`).evaluate((el) => {
    const read = (name) => {
      const value = el.getAttribute(name);
      return value === null || value === '' ? null : Number(value);
    };
    return { last: read('data-last'), max: read('data-max'), total: read('data-total') };
  });
}

// Wait until the plot summary `plot-KEY` on page reports a total (or, for
// plots without one, a peak) of at least `minimum`.
async function waitForPlotData(page, key, minimum = Number.MIN_VALUE, timeoutMs = 20000) {
  let seen = null;
  try {
    return await waitFor(`plot ${key} to show data`, async () => {
      seen = await plotSummary(page, key);
      return (seen.total ?? seen.max ?? 0) >= minimum ? seen : null;
    }, timeoutMs, 250);
  } catch (err) {
    err.message += `: last summary ${JSON.stringify(seen)}, expected at least ${minimum}`;
    throw err;
  }
}

async function sendRequests(endpoint) {
  const client = new OpenAI({ apiKey: gatewayToken, baseURL: endpoint, maxRetries: 0, timeout: 30000 });
  for (let i = 0; i < 6; i++) {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: `Request ${i} from the dashboard test` }],
      max_tokens: 40,
    });
    // The simulator may end a reply before max_tokens, as a model does.
    assert.ok(res.usage.completion_tokens > 0);
  }
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'A streamed request' }],
    max_tokens: 60,
    stream: true,
  });
  for await (const chunk of stream) assert.ok(chunk);
}

test('dashboard, embed and Model Endpoints', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up);

  const app = up.launch(dashboardConfig());
  await page.goto(`${up.apiUrl}/#/apps/${app.id}`);
  await page.getByRole('heading', { name: 'dash-sim' }).waitFor();
  const status = page.getByTestId('status').locator('[data-status]');

  await t.test('status goes from loading to active', async () => {
    const first = await status.getAttribute('data-status');
    assert.ok(['queued', 'loading'].includes(first), `first status shown: ${first}`);
    await waitFor('the dashboard to show active', async () => (await status.getAttribute('data-status')) === 'active', 30000, 200);
    const history = await page.getByTestId('history').innerText();
    assert.match(history, /loading/);
    assert.match(history, /active/);
  });

  const endpoint = up.app(app.id).endpoint;

  await t.test('endpoint and curl command work', async () => {
    assert.equal(await page.getByTestId('endpoint').innerText(), endpoint);
    assert.match(await page.getByTestId('generate-token').getAttribute('href'), /^#\/settings\b/);
    const curl = await page.getByTestId('curl-command').innerText();
    assert.ok(curl.includes(`${endpoint}/chat/completions`), curl);
    assert.ok(curl.includes(`"model":"${MODEL}"`), curl);
    assert.ok(curl.includes('$GATEWAY_TOKEN'), curl);

    // The command as shown runs in a shell once GATEWAY_TOKEN is set.
    const run = spawnSync('sh', ['-c', `${curl} --silent --show-error --fail`], {
      encoding: 'utf8', timeout: 30000, env: { ...process.env, GATEWAY_TOKEN: gatewayToken },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).object, 'chat.completion');
  });

  await t.test('requests and tokens per second plots show the requests', async () => {
    await sendRequests(endpoint);
    await page.getByTestId('range-picker').getByRole('button', { name: '15 min' }).click();
    // 6 chat completions, 1 stream and the curl command of the test above.
    const requests = await waitForPlotData(page, 'requests', 8);
    assert.ok(requests.max > 0, `requests peak ${requests.max}`);
    const tokens = await waitForPlotData(page, 'tokens_per_second');
    assert.ok(tokens.max > 0, `tokens per second peak ${tokens.max}`);
    assert.ok(tokens.total >= 6, `completion tokens total ${tokens.total}`);
    await waitForPlotData(page, 'latency');
    assert.equal(await page.getByRole('region', { name: 'Requests' }).locator('canvas').count(), 1);
  });

  await t.test('console log shows the start-up lines', async () => {
    const consoleLog = page.getByTestId('console');
    await waitFor('the start-up lines in the console log', async () => {
      const text = await consoleLog.innerText();
      return text.includes('Selected profile') && text.includes('Uvicorn running on');
    }, 15000, 250);
    assert.ok(await consoleLog.locator('.stream-system').count() > 0, 'no system line in the console');
  });

  await t.test('screenshots in light and dark', async () => {
    await screenshot(page, 'dashboard-light');
    await useTheme(page, 'dark');
    await page.getByTestId('range-picker').getByRole('button', { name: '15 min' }).click();
    await waitForPlotData(page, 'requests');
    await page.getByTestId('console').getByText('Uvicorn running on').first().waitFor();
    await screenshot(page, 'dashboard-dark');
    await useTheme(page, 'light');
  });

  let embedUrl;
  await t.test('embed action creates an iframe snippet', async () => {
    await page.getByTestId('range-picker').getByRole('button', { name: '15 min' }).click();
    await page.getByTestId('embed-requests').click();
    await page.getByTestId('embed-create').click();
    const snippet = await page.getByTestId('embed-snippet').inputValue();
    const match = /^<iframe src="([^"]+)"/.exec(snippet);
    assert.ok(match, snippet.replace(/nd_[A-Za-z0-9_-]+/g, 'nd_…'));
    embedUrl = match[1].replace(/&amp;/g, '&');
    const url = new URL(embedUrl);
    assert.equal(url.origin, up.apiUrl);
    assert.equal(url.pathname, `/embed/${app.id}/requests`);
    assert.equal(url.search, '', 'the embed key must not travel in a query string');
    assert.match(url.hash, /^#key=nd_[A-Za-z0-9_-]{43}&range=900$/);
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  });

  const embed = await newPage(browser, t);
  await t.test('embed page renders the plot with its key', async () => {
    const sent = [];
    embed.on('request', (req) => sent.push({ url: req.url(), auth: req.headers().authorization || '' }));
    await embed.goto(embedUrl);
    const data = await waitForPlotData(embed, 'requests', 8);
    assert.ok(data.max > 0, `embedded requests peak ${data.max}`);
    assert.equal(await embed.locator('canvas').count(), 1);
    await embed.getByRole('heading', { name: /dash-sim/ }).waitFor();
    await screenshot(embed, 'embed');

    const apiCalls = sent.filter((r) => r.url.includes('/api/v1/'));
    assert.ok(apiCalls.length >= 2, 'the embed page made no API call');
    for (const call of apiCalls) {
      assert.ok(!call.url.includes('nd_'), 'an embed key was sent in a URL');
      assert.match(call.auth, /^Bearer nd_/);
    }
  });

  await t.test('embed page refuses a missing or wrong key', async () => {
    const bare = await newPage(browser, t);
    for (const url of [embedUrl.replace(/#.*/, ''), embedUrl.replace(/key=nd_[^&]+/, 'key=nd_wrong')]) {
      await bare.goto('about:blank');
      await bare.goto(url);
      await bare.getByTestId('embed-refused').waitFor();
      assert.match(await bare.getByTestId('embed-refused').innerText(), /refused: missing or revoked embed key/i);
      assert.equal(await bare.locator('canvas').count(), 0);
      assert.equal(await bare.getByTestId('plot-requests').count(), 0);
    }
  });

  await t.test('embed page is refused once its key is revoked', async () => {
    const { tokens } = await adminApi('GET', '/api/v1/tokens');
    const keys = tokens.filter((tok) => tok.scope === 'embed' && !tok.revoked);
    assert.equal(keys.length, 1, `embed keys: ${JSON.stringify(keys)}`);
    await adminApi('DELETE', `/api/v1/tokens/${keys[0].id}`);

    // The open page notices on its next refresh (every 10 s).
    await embed.getByTestId('embed-refused').waitFor({ timeout: 20000 });
    assert.equal(await embed.locator('canvas').count(), 0);
    await screenshot(embed, 'embed-refused');
    await embed.goto('about:blank');
    await embed.goto(embedUrl);
    await embed.getByTestId('embed-refused').waitFor();
  });

  await t.test('Model Endpoints lists the endpoint and downloads it as CSV', async () => {
    await page.goto(`${up.apiUrl}/#/endpoints`);
    const row = page.getByTestId('endpoints-serving').locator(`tr[data-path="${app.path}"]`);
    await row.waitFor();
    const text = await row.innerText();
    assert.ok(text.includes(MODEL), text);
    assert.ok(text.includes(endpoint), text);
    assert.ok(text.includes(app.id), text);

    await row.click();
    const details = page.getByTestId('endpoint-details');
    await details.locator(`a[href="#/apps/${app.id}"]`).first().waitFor();
    await details.locator('canvas').first().waitFor();
    await screenshot(page, 'endpoints');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('endpoints-csv').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'endpoints.csv');
    const csv = fs.readFileSync(await download.path(), 'utf8');
    const lines = csv.trim().split(/\r?\n/);
    assert.match(lines[0], /endpoint/i);
    assert.ok(lines.slice(1).some((line) => line.includes(app.path) && line.includes(MODEL)), csv);
  });
});
