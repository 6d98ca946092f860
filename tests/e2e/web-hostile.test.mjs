// The web UI against hostile and unlucky input, in Chromium, against a real
// `nimdeck up` running the simulator. HTML in tags, model names, env values,
// console lines and status reasons stays text on every page. Secrets stay
// out of the page, its storage and exported files. Nothing overflows or
// overlaps at 1280×800 and 1440×900 in either theme. A session that ends
// while a form is open offers to log in again and keeps the form. A stopped
// server gets a clear message, and the page comes back with the server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launch, login, newPage, screenshot } from './browser.mjs';
import { Up, nimdeck, outputDir, waitFor } from './lib.mjs';

// Markup that would run script if any page inserted it as HTML.
const HTML = '<img src=x onerror=alert(1)></script>';
const TAG_HTML = '</script><script>alert(2)</script>';
const NGC_SECRET = 'nvapi-hostile-ngc-secret';
const VAULT_SECRET = 'vault-hostile-hf-secret';
const FORM_SECRET = 'typed-hostile-form-secret';
const BOB_PASSWORD = 'hostile test password';

const up = new Up('web-hostile');
let browser;
let hostile;
let broken;

async function adminApi(method, apiPath, body) {
  const res = await fetch(`${up.apiUrl}${apiPath}`, {
    method,
    headers: { Authorization: `Bearer ${up.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${apiPath} returned ${res.status}: ${await res.clone().text()}`);
  return res.json();
}

before(async () => {
  await up.start();
  browser = await launch();
  await adminApi('PUT', '/api/v1/vault/HF_TOKEN', { value: VAULT_SECRET });
  const added = up.cli(['users', 'add', 'bob', '--password-stdin'], { input: `${BOB_PASSWORD}\n` });
  assert.equal(added.status, 0, added.stderr);
  assert.equal(up.cli(['users', 'grant', 'bob', 'demo', 'write']).status, 0);

  // The shell prints the markup and the secrets (which the agent masks)
  // to the console log, then becomes the simulator serving a model whose
  // name is markup too.
  const script = 'printf \'%s\\n\' "$HOSTILE_LINE" "ngc=$NGC_API_KEY hf=$HF_TOKEN"; '
    + `exec "${nimdeck}" sim --port "$PORT" --load-seconds 1 --model "$NIM_SERVED_MODEL_NAME"`;
  hostile = up.launch({
    version: 1, name: 'hostile', project: 'demo', runtime: 'process', image: 'nimdeck/sim',
    command: ['/bin/sh', '-c', script],
    env: { HOSTILE_LINE: HTML, NIM_SERVED_MODEL_NAME: HTML, NGC_API_KEY: NGC_SECRET },
    tags: [HTML, TAG_HTML, 'plain'],
    idle_time_limit_hours: 1,
  });
  // A command that does not exist fails with the markup in its reason.
  broken = up.launch({
    version: 1, name: 'broken', project: 'demo', runtime: 'process', image: 'nimdeck/sim',
    command: [`/nonexistent/${HTML}`], tags: [HTML],
  });
  await up.waitForStatus(hostile.id, 'active');
  await up.waitForStatus(broken.id, 'failed');
});

after(async () => {
  if (browser) await browser.close();
  await up.stop();
});

// What the page contains that a secret must not reach: its HTML, the values of
// its inputs, its storage and the cookies its script can read.
async function pageSecrets(page) {
  const state = await page.evaluate(() => JSON.stringify({
    inputs: [...document.querySelectorAll('input, textarea')].map((el) => el.value),
    local: { ...localStorage },
    session: { ...sessionStorage },
    cookie: document.cookie,
  }));
  const text = `${await page.content()}\n${state}`;
  return [NGC_SECRET, VAULT_SECRET, FORM_SECRET].filter((secret) => text.includes(secret));
}

// No element made from the markup exists, and the markup shows as text.
async function assertInert(page, where, { shown = true } = {}) {
  const injected = await page.evaluate(() => document.querySelectorAll('img, script:not([src]), iframe').length);
  assert.equal(injected, 0, `${where}: markup became elements`);
  if (shown) {
    await waitFor(`${where} to show the markup as text`, async () => (await page.locator('body').innerText()).includes(HTML), 10000, 200);
  }
  assert.deepEqual(await pageSecrets(page), [], `${where}: a secret is in the page`);
}

test('markup renders as text everywhere', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up);
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is readable by script');

  await page.locator(`#apps-table tr[data-id="${broken.id}"] [data-status="failed"]`).waitFor();
  await assertInert(page, 'apps list');
  assert.ok((await page.locator('#apps-table').innerText()).includes(TAG_HTML));

  await page.goto(`${up.apiUrl}/#/apps/${hostile.id}`);
  await page.getByTestId('console').getByText(HTML).first().waitFor({ timeout: 15000 });
  await assertInert(page, 'dashboard');
  assert.ok((await page.getByTestId('curl-command').innerText()).includes(HTML.replace(/'/g, "'\\''")));
  const consoleText = await page.getByTestId('console').innerText();
  assert.match(consoleText, /ngc=\*+ hf=\*+/, 'the secrets in the console log are masked');

  // An embed code; the dialog's link to the embed keys leaves the page, and
  // the dialog goes with it.
  await page.getByTestId('embed-requests').click();
  await page.getByTestId('embed-create').click();
  const snippet = await page.getByTestId('embed-snippet').inputValue();
  const embedUrl = /src="([^"]+)"/.exec(snippet)[1].replace(/&amp;/g, '&');
  await page.getByRole('dialog').getByRole('link', { name: 'Settings' }).click();
  await page.waitForURL(/section=embed-keys/);
  await page.locator('#embed-keys-table').waitFor();
  assert.equal(await page.locator('dialog').count(), 0, 'the embed dialog stayed open on another page');

  await page.goto(`${up.apiUrl}/#/apps/${broken.id}`);
  await page.getByTestId('history').getByText('failed').waitFor();
  await assertInert(page, 'failed dashboard');
  assert.ok((await page.getByTestId('status-reason').innerText()).includes(HTML));
  assert.ok((await page.getByTestId('history').innerText()).includes(HTML));
  // Its URL is kept, but the page shows that nothing serves it any more.
  await page.getByTestId('endpoint-ended').waitFor();

  await page.goto(`${up.apiUrl}/#/endpoints`);
  const row = page.getByTestId('endpoints-serving').locator(`tr[data-path="${hostile.path}"]`);
  await row.click();
  await page.getByTestId('endpoint-details').locator('canvas').first().waitFor();
  await assertInert(page, 'Model Endpoints');

  await page.goto(`${up.apiUrl}/#/launch?clone=${hostile.id}`);
  await page.getByRole('heading', { name: /^Clone/ }).waitFor();
  assert.ok((await page.locator('#launch-tags').inputValue()).includes(HTML));
  // The long shell argument scrolls instead of wrapping, so that each line
  // shown is one argument.
  const command = page.locator('#launch-command');
  assert.equal(await command.evaluate((el) => getComputedStyle(el).whiteSpace), 'pre');
  assert.ok(await command.evaluate((el) => el.scrollWidth > el.clientWidth), 'the long argument does not scroll');
  await assertInert(page, 'clone form', { shown: false });

  await page.goto(`${up.apiUrl}/#/settings`);
  await page.locator('#vault-table').getByText('HF_TOKEN').waitFor();
  await assertInert(page, 'settings', { shown: false });

  // The embed page of the instance, with markup for a theme.
  const embed = await newPage(browser, t);
  await embed.goto(`${embedUrl}&theme=${encodeURIComponent(HTML)}`);
  await embed.getByRole('heading', { name: /hostile/ }).waitFor();
  await assertInert(embed, 'embed page', { shown: false });
  assert.equal(await embed.evaluate(() => document.documentElement.dataset.theme), 'light');

  // A malformed escape in the address is a missing instance, not a stuck page.
  await page.goto(`${up.apiUrl}/#/apps/%E0%A4%A`);
  await page.getByRole('heading', { name: 'Instance not found' }).waitFor();
});

// Problems of the page's layout: a page or table wider than its box, and
// neighbours in a row (header, page heads, toolbars, plot heads, env rows)
// that overlap.
function layoutProblems() {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) problems.push(`the page is ${root.scrollWidth} px wide`);
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    if (wrap.offsetParent && wrap.scrollWidth > wrap.clientWidth + 1) {
      const table = wrap.querySelector('table');
      problems.push(`table ${table.id || table.getAttribute('aria-label')} scrolls sideways (${wrap.scrollWidth} > ${wrap.clientWidth})`);
    }
  }
  const rows = document.querySelectorAll('.app-header, .page-head, .toolbar, .plot-card-head, .env-row, td.actions');
  for (const row of rows) {
    const boxes = [...row.children].filter((el) => el.offsetParent).map((el) => [el, el.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, ra] = boxes[i];
        const [b, rb] = boxes[j];
        const overlap = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left) > 1
          && Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top) > 1;
        if (overlap) problems.push(`${a.tagName}.${a.className} overlaps ${b.tagName}.${b.className} in .${row.className}`);
      }
    }
  }
  return problems;
}

test('layout fits 1280 and 1440 wide', async (t) => {
  const pages = [
    ['apps', '#/apps', '#apps-table tbody tr'],
    ['dashboard', `#/apps/${hostile.id}`, '[data-testid="plot-cpu"][data-last]'],
    ['endpoints', '#/endpoints', '[data-testid="endpoints-serving"] tr'],
    ['launch', `#/launch?clone=${hostile.id}`, '.env-row'],
    ['settings', '#/settings', '#agents-table'],
  ];
  for (const [width, height, theme] of [[1280, 800, 'light'], [1440, 900, 'dark']]) {
    const page = await newPage(browser, t, { colorScheme: theme });
    await page.setViewportSize({ width, height });
    await login(page, up);
    for (const [name, hash, ready] of pages) {
      await page.goto(`${up.apiUrl}/${hash}`);
      await page.locator(ready).first().waitFor();
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), theme);
      assert.deepEqual(await page.evaluate(layoutProblems), [], `${name} at ${width}×${height} ${theme}`);
      await screenshot(page, `hostile-${name}-${width}-${theme}`);
    }
  }
});

// Save the download that clicking `locator` starts and return its JSON.
async function downloadJson(page, locator, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), locator.click()]);
  const file = path.join(outputDir, `web-hostile-${name}.json`);
  await download.saveAs(file);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

test('secrets stay out of page and files', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up);

  // A new token is shown once: gone after leaving the page.
  await page.goto(`${up.apiUrl}/#/settings`);
  await page.locator('#token-generate').click();
  const token = (await page.locator('#token-value').textContent()).trim();
  assert.match(token, /^nd_/);
  await page.goto(`${up.apiUrl}/#/apps`);
  await page.goBack();
  await page.locator('#tokens-table').waitFor();
  assert.equal(await page.locator('#token-value').count(), 0);
  assert.ok(!(await page.content()).includes(token), 'the token is still in the page');

  // A secret typed into the form is written as null by "Export configuration".
  await page.goto(`${up.apiUrl}/#/launch?clone=${hostile.id}`);
  await page.locator('#launch-env-add').click();
  await page.locator('.env-key').last().fill('OTHER_TOKEN');
  await page.locator('.env-value').last().fill(FORM_SECRET);
  const formExport = await downloadJson(page, page.locator('#launch-export'), 'form-export');
  assert.equal(formExport.env.OTHER_TOKEN, null);
  assert.equal(formExport.env.NGC_API_KEY, null);
  assert.match(await page.locator('#launch-import-notice').innerText(), /OTHER_TOKEN.*written as null/);

  // The export from the apps list contains no secret either.
  await page.goto(`${up.apiUrl}/#/apps`);
  const listExport = await downloadJson(page,
    page.locator(`#apps-table tr[data-id="${hostile.id}"]`).getByRole('button', { name: 'Export' }), 'list-export');
  assert.equal(listExport.env.NGC_API_KEY, null);
  assert.ok(!JSON.stringify(listExport).includes(NGC_SECRET));
  // The theme is all the UI stores.
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k !== 'nimdeck-theme')), []);
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
});

test('ended session keeps the form', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up, { name: 'bob', password: BOB_PASSWORD });

  // A launch bob may not make: the error is beside the project field.
  await page.goto(`${up.apiUrl}/#/launch`);
  await page.locator('#launch-name').fill('bob-typed');
  await page.locator('#launch-project').fill('not-granted');
  await page.locator('#launch-image').fill('nimdeck/sim');
  await page.locator('#launch-submit').click();
  await page.locator('#launch-project-error').filter({ hasText: 'not-granted' }).waitFor();

  // A bad variable name: the error is beside its row.
  await page.locator('#launch-project').fill('demo');
  await page.locator('#launch-env-add').click();
  await page.locator('.env-key').last().fill('1BAD');
  await page.locator('#launch-submit').click();
  await page.locator('.env-row .env-error').filter({ hasText: '1BAD' }).waitFor();
  await page.locator('.env-row').last().getByRole('button', { name: /Remove/ }).click();

  // Importing a file without a configuration object leaves the form alone.
  const notObject = path.join(outputDir, 'web-hostile-not-object.json');
  fs.writeFileSync(notObject, '[1, 2]\n');
  await page.locator('#launch-import-file').setInputFiles(notObject);
  await page.locator('#launch-import-notice').filter({ hasText: 'form is unchanged' }).waitFor();
  assert.equal(await page.locator('#launch-name').inputValue(), 'bob-typed');

  // Another tab of the same browser logs out.
  const other = await page.context().newPage();
  await other.goto(`${up.apiUrl}/#/apps`);
  await other.locator('.user-menu summary').click();
  await other.locator('#logout').click();
  await other.waitForURL(/#\/login/);
  await other.close();

  await page.locator('#launch-project').fill('demo');
  await page.locator('#launch-submit').click();
  const dialog = page.locator('#relogin-dialog');
  await dialog.waitFor();
  await screenshot(page, 'hostile-session-ended');
  await page.keyboard.press('Escape');
  assert.equal(await dialog.isVisible(), true, 'Escape must not leave the page behind a dead session');
  await page.locator('#relogin-name').fill('bob');
  await page.locator('#relogin-password').fill(BOB_PASSWORD);
  await dialog.getByRole('button', { name: 'Log in' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.match(page.url(), /#\/launch$/);
  assert.equal(await page.locator('#launch-name').inputValue(), 'bob-typed');
  assert.equal(await page.locator('#launch-project').inputValue(), 'demo');
});

test('stopped server shows a message', async (t) => {
  const page = await newPage(browser, t, { serverDown: true });
  await login(page, up);
  await page.goto(`${up.apiUrl}/#/apps`);
  await page.locator('#apps-table tbody tr').first().waitFor();
  await up.stop();

  await page.evaluate(() => { location.hash = '#/endpoints'; });
  const panel = page.locator('#server-unreachable');
  await panel.waitFor();
  assert.match(await panel.innerText(), /The server cannot be reached/);
  await screenshot(page, 'hostile-server-down');

  await up.start();
  await page.getByRole('heading', { name: 'Model Endpoints' }).waitFor({ timeout: 15000 });
});
