// Browser tests of the web UI's login, apps list, launch form and settings
// in Chromium, against a real `nimdeck up` running the simulator. They log
// in with a password and with a token, launch from the form after a field
// error, watch loading turn into active, and export, import and clone the
// configuration. A gateway token generated in settings then calls the
// instance through the openai client.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';

import { launch, login, newPage, screenshot, useTheme } from './browser.mjs';
import { Up, nimdeck, outputDir } from './lib.mjs';

const model = 'web-launch-model';
const opsPassword = 'correct horse battery staple';

const up = new Up('web-launch');
let browser;

before(async () => {
  await up.start();
  browser = await launch();
  const added = up.cli(['users', 'add', 'ops', '--admin', '--password-stdin'], { input: `${opsPassword}\n` });
  assert.equal(added.status, 0, added.stderr);
});

after(async () => {
  if (browser) await browser.close();
  await up.stop();
});

async function adminApi(method, apiPath, body) {
  const res = await fetch(`${up.apiUrl}${apiPath}`, {
    method,
    headers: { Authorization: `Bearer ${up.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${apiPath} returned ${res.status}: ${await res.clone().text()}`);
  return res.json();
}

// Save the download that clicking `locator` starts and return its JSON.
async function downloadJson(page, locator, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), locator.click()]);
  const file = path.join(outputDir, `web-launch-${name}.json`);
  await download.saveAs(file);
  return { file, config: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

function appRow(page, id) {
  return page.locator(`#apps-table tr[data-id="${id}"]`);
}

// Wait until the apps list, refreshed by the page itself, shows the status.
async function waitForRowStatus(page, id, status, timeout = 30000) {
  await appRow(page, id).locator(`[data-status="${status}"]`).waitFor({ timeout });
}

test('login page rejects a wrong password', async (t) => {
  const page = await newPage(browser, t);
  await page.goto(`${up.apiUrl}/#/login`);
  await screenshot(page, 'login-light');
  await page.locator('#login-name').fill('ops');
  await page.locator('#login-password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong name or password' }).waitFor();

  await page.getByRole('tab', { name: 'API token' }).click();
  await page.locator('#login-token').fill('nd_not-a-real-token');
  await page.locator('#login-token').press('Enter');
  await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
  assert.match(page.url(), /#\/login/);
});

test('unauthenticated page opens the login page', async (t) => {
  const page = await newPage(browser, t);
  await page.goto(`${up.apiUrl}/#/settings`);
  await page.waitForURL(/#\/login\?next=/);
  // With the keyboard alone: from the name field back to the tab list, the
  // arrow key to the token tab, on to its field, and Enter. After logging
  // in, the page that was requested opens.
  await page.locator('#login-name').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-name');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', { name: 'API token' }).getAttribute('aria-selected'), 'true');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-token');
  await page.keyboard.type(up.adminToken);
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/settings$/);
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
});

test('launch, serve, export, import, clone and token', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up, { name: 'ops', password: opsPassword });
  assert.equal(await page.locator('.user-menu summary').textContent(), 'opsadmin');

  // The vault entry is listed by name only, and the launch form shows that
  // NGC_API_KEY will come from it.
  await page.goto(`${up.apiUrl}/#/settings`);
  await page.locator('#vault-name').fill('NGC_API_KEY');
  await page.locator('#vault-value').fill('nvapi-web-launch-secret');
  await page.locator('#vault-save').click();
  await page.locator('#vault-table').getByText('NGC_API_KEY').waitFor();
  assert.equal(await page.locator('#vault-value').inputValue(), '');
  assert.ok(!(await page.content()).includes('nvapi-web-launch-secret'), 'the vault value is not in the page');

  // Fill the form. A negative idle limit comes back from the server as a
  // field error shown beside the idle limit field.
  await page.goto(`${up.apiUrl}/#/launch`);
  await page.locator('#launch-name').fill('web-sim');
  await page.locator('#launch-project').fill('demo');
  await page.locator('#launch-image').fill('nimdeck/sim');
  await page.locator('#launch-runtime').selectOption('process');
  const command = [nimdeck, 'sim', '--port', '{port}', '--load-seconds', '6', '--tokens-per-second', '400', '--model', model];
  await page.locator('#launch-command').fill(command.join('\n'));
  await page.locator('#launch-idle').fill('-1');
  await page.locator('#launch-tags').fill('web, simulator');
  await page.locator('#launch-env-add').click();
  await page.locator('.env-row .env-key').nth(0).fill('NIM_LOG_LEVEL');
  await page.locator('.env-row .env-value').nth(0).fill('INFO');
  await page.locator('#launch-env-add').click();
  await page.locator('.env-row .env-key').nth(1).fill('SIM_TOKEN');
  await page.locator('.env-row .env-value').nth(1).fill('sim-secret-value');
  assert.equal(await page.locator('.env-row .env-value').nth(1).getAttribute('type'), 'password');
  await page.locator('#launch-ngc-hint').filter({ hasText: 'NGC_API_KEY will come from your vault' }).waitFor();

  await page.locator('#launch-submit').click();
  const idleError = page.locator('#launch-idle-error');
  await idleError.waitFor();
  assert.match(await idleError.textContent(), /idle_time_limit_hours/);
  assert.equal(await page.locator('#launch-idle').getAttribute('aria-invalid'), 'true');
  await screenshot(page, 'launch-field-error');

  await page.locator('#launch-idle').fill('1');
  await screenshot(page, 'launch-light');
  await page.locator('#launch-submit').click();
  await page.waitForURL(/#\/apps\/[0-9a-f]+$/);
  const id = decodeURIComponent(page.url().split('#/apps/')[1]);

  // The apps list refreshes itself: loading, then active.
  await page.goto(`${up.apiUrl}/#/apps`);
  await waitForRowStatus(page, id, 'loading');
  await screenshot(page, 'apps-loading');
  await waitForRowStatus(page, id, 'active');
  const row = appRow(page, id);
  assert.match(await row.textContent(), /demo/);
  assert.match(await row.textContent(), /web/);
  assert.match(await row.textContent(), /simulator/);
  const app = await adminApi('GET', `/api/v1/apps/${id}`);
  assert.match(await row.textContent(), new RegExp(app.endpoint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await screenshot(page, 'apps-light');

  // A gateway token generated in settings is shown once and works with
  // the openai client.
  await page.goto(`${up.apiUrl}/#/settings`);
  await page.locator('#token-days').fill('2');
  await page.locator('#token-generate').click();
  const token = (await page.locator('#token-value').textContent()).trim();
  assert.match(token, /^nd_[A-Za-z0-9_-]{43}$/);
  await page.locator('#tokens-table').getByText('gateway').first().waitFor();
  await screenshot(page, 'settings-light', { mask: [page.locator('#token-value')] });

  const client = new OpenAI({ baseURL: app.endpoint, apiKey: token, maxRetries: 0 });
  const completion = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Say hello from the web UI test.' }], max_tokens: 16,
  });
  assert.ok(completion.choices[0].message.content.length > 0, 'the completion has content');
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Stream a few words.' }], max_tokens: 8, stream: true,
  });
  let streamed = '';
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(streamed.length > 0, 'the stream has content');

  // Export from the apps list equals the server's export.
  const serverExport = await adminApi('GET', `/api/v1/apps/${id}/export`);
  assert.equal(serverExport.env.SIM_TOKEN, null, 'the export writes secrets as null');
  await page.goto(`${up.apiUrl}/#/apps`);
  const listExport = await downloadJson(page, appRow(page, id).getByRole('button', { name: 'Export' }), 'list-export');
  assert.deepEqual(listExport.config, serverExport);

  // Import the file into the form and export it again: the same.
  await page.goto(`${up.apiUrl}/#/launch`);
  await page.locator('#launch-import-file').setInputFiles(listExport.file);
  await page.locator('#launch-import-notice').filter({ hasText: 'Filled the form' }).waitFor();
  assert.equal(await page.locator('#launch-name').inputValue(), 'web-sim');
  const reexport = await downloadJson(page, page.locator('#launch-export'), 'reimport-export');
  assert.deepEqual(reexport.config, serverExport);

  // Clone from the apps list: the form contains the same configuration, and
  // the clone with a changed idle limit keeps the source's secret.
  await page.goto(`${up.apiUrl}/#/apps`);
  await appRow(page, id).getByRole('button', { name: 'Clone' }).click();
  await page.waitForURL(new RegExp(`#/launch\\?clone=${id}$`));
  await page.getByRole('heading', { name: /^Clone/ }).waitFor();
  const cloneForm = await downloadJson(page, page.locator('#launch-export'), 'clone-export');
  assert.deepEqual(cloneForm.config, serverExport);
  await page.locator('#launch-idle').fill('0.5');
  await page.locator('#launch-submit').click();
  await page.waitForURL(/#\/apps\/[0-9a-f]+$/);
  const cloneId = decodeURIComponent(page.url().split('#/apps/')[1]);
  assert.notEqual(cloneId, id);
  const cloneExport = await adminApi('GET', `/api/v1/apps/${cloneId}/export`);
  assert.deepEqual(cloneExport, { ...serverExport, idle_time_limit_hours: 0.5 });
  const cloneSecrets = await adminApi('GET', `/api/v1/apps/${cloneId}/export?include_secrets=1`);
  assert.equal(cloneSecrets.env.SIM_TOKEN, 'sim-secret-value');

  // Stop the clone from the list, then delete it after a confirmation.
  await page.goto(`${up.apiUrl}/#/apps`);
  await waitForRowStatus(page, cloneId, 'active');
  await appRow(page, cloneId).getByRole('button', { name: 'Stop' }).click();
  await waitForRowStatus(page, cloneId, 'stopped');
  await appRow(page, cloneId).getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await appRow(page, cloneId).waitFor({ state: 'detached' });
  const remaining = await adminApi('GET', '/api/v1/apps');
  assert.ok(!remaining.apps.some((a) => a.id === cloneId), 'the deleted clone is gone from the API');
});

test('admin settings manage routes, queues and users', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up);
  await page.goto(`${up.apiUrl}/#/settings`);

  await page.locator('#routes-name').fill('web-route');
  await page.locator('#routes-form').getByRole('button').click();
  await page.locator('#routes-table').getByText('web-route').waitFor();
  await page.locator('#queues-name').fill('web-queue');
  await page.locator('#queues-form').getByRole('button').click();
  await page.locator('#queues-table').getByText('web-queue').waitFor();
  await page.locator('#agents-table').getByText('e2e-web-launch').waitFor();

  await page.locator('#user-name').fill('viewer');
  await page.locator('#user-password').fill('viewer password');
  await page.locator('#user-form').getByRole('button', { name: 'Add user' }).click();
  const viewerRow = page.locator('#users-table tr').filter({ hasText: 'viewer' });
  await viewerRow.waitFor();
  await viewerRow.locator('.grant-project').fill('demo');
  await viewerRow.locator('.grant-permission').selectOption('read');
  await viewerRow.getByRole('button', { name: 'Grant' }).click();
  await viewerRow.getByText('demo').waitFor();
  const users = await adminApi('GET', '/api/v1/users');
  assert.deepEqual(users.users.find((u) => u.name === 'viewer').grants, [{ project: 'demo', permission: 'read' }]);

  // The new route and queue are choices of the launch form.
  await page.goto(`${up.apiUrl}/#/launch`);
  await page.locator('#launch-form').waitFor();
  assert.equal(await page.locator('#launch-route option[value="web-route"]').count(), 1);
  assert.equal(await page.locator('#launch-queue option[value="web-queue"]').count(), 1);

  // Deleting the queue needs a confirmation.
  await page.goto(`${up.apiUrl}/#/settings`);
  await page.getByRole('button', { name: 'Delete queue web-queue' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.locator('#queues-table').getByText('web-queue').waitFor({ state: 'detached' });
});

test('pages in the dark theme', async (t) => {
  const page = await newPage(browser, t);
  await login(page, up);
  // The toggle switches the theme and remembers the choice.
  await page.locator('#theme-toggle').click();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.reload();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');

  for (const [hash, name, heading] of [['#/apps', 'apps', 'Apps'], ['#/launch', 'launch', 'Launch an instance'],
    ['#/settings', 'settings', 'Settings']]) {
    await page.goto(`${up.apiUrl}/${hash}`);
    await page.getByRole('heading', { name: heading, exact: true }).waitFor();
    await screenshot(page, `${name}-dark`);
  }
  await page.locator('.user-menu summary').click();
  await page.locator('#logout').click();
  await page.waitForURL(/#\/login$/);
  await screenshot(page, 'login-dark');
  await useTheme(page, 'light');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');

  // After the logout the session cookie no longer works.
  await page.goto(`${up.apiUrl}/#/apps`);
  await page.waitForURL(/#\/login\?next=/);
});
