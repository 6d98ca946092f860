// Browser helpers for the web UI tests: Debian's chromium driven by
// playwright-core, pages that fail the test on console errors, screenshots
// and login.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { outputDir } from './lib.mjs';

export const chromiumPath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const screenshotDir = path.join(outputDir, 'screenshots');

// Flags for a headless chromium that talks to nothing but the page's server.
export const chromiumFlags = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// Start a headless chromium. Close it with browser.close() in an after hook.
export async function launch() {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`chromium not found at ${chromiumPath}: install it with scripts/deps.sh --test or set CHROMIUM_BIN`);
  }
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags, timeout: 60000 });
}

// True for the console message Chromium writes for every HTTP error status
// of a fetch() to the API. The UI handles those statuses itself (a 401 opens
// the login dialog, a 400 shows the field error), so they are not errors of
// the page. Any other failed load (a missing module, a 5xx) is.
function isHandledApiStatus(msg) {
  const text = msg.text();
  const url = msg.location().url || '';
  return /^Failed to load resource: the server responded with a status of 4\d\d/.test(text) &&
    url.includes('/api/v1/');
}

// True for the console message of a request to a server that is down,
// which a test that stops the server expects.
function isRefusedConnection(msg) {
  return /net::ERR_CONNECTION_REFUSED/.test(msg.text());
}

// Open a 1280×800 page in a new context. Every console error, uncaught
// page error and JavaScript dialog is collected in page.errors. The UI
// opens no alert, confirm or prompt, so such a dialog means that injected
// script ran. Given the node:test context t, the test fails at its end when
// any error occurred. Requests to any host other than 127.0.0.1 are aborted
// and count as errors, because the UI must not load anything from outside.
// serverDown: true ignores the console errors of refused connections.
export async function newPage(browser, t, { colorScheme = 'light', serverDown = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];

  page.on('console', (msg) => {
    if (msg.type() !== 'error' || isHandledApiStatus(msg)) return;
    if (serverDown && isRefusedConnection(msg)) return;
    page.errors.push(`console error: ${msg.text()} (${msg.location().url || 'no location'})`);
  });
  page.on('pageerror', (err) => page.errors.push(`page error: ${err.message}`));
  page.on('dialog', (dialog) => {
    page.errors.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'blob:' || url.protocol === 'data:' || url.hostname === '127.0.0.1') {
      return route.continue();
    }
    page.errors.push(`request to another host: ${url.href}`);
    return route.abort();
  });

  if (t) {
    t.after(async () => {
      await context.close();
      assertNoPageErrors(page);
    });
  }
  return page;
}

// Fail when the page logged a console error or threw.
export function assertNoPageErrors(page) {
  assert.deepEqual(page.errors, [], `the page had errors:\n${page.errors.join('\n')}`);
}

// Save a full-page PNG as $TEST_OUTPUT/screenshots/NAME.png. mask lists
// locators painted over in the image, for secrets such as a new token.
export async function screenshot(page, name, { mask = [] } = {}) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  // From the top, so that the sticky header is not drawn mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true, mask });
  return file;
}

// Show the UI in "light" or "dark" (the choice the theme toggle stores).
export async function useTheme(page, theme) {
  await page.evaluate((value) => localStorage.setItem('nimdeck-theme', value), theme);
  await page.reload();
}

// Log in through the login page of up (an Up from lib.mjs). Without
// credentials it pastes up's admin api token; with {name, password} it uses
// the password form; with {token} it pastes that token. Resolves once the
// apps list is shown.
export async function login(page, up, credentials = {}) {
  await page.goto(`${up.apiUrl}/#/login`);
  if (credentials.name) {
    await page.getByRole('tab', { name: 'Name and password' }).click();
    await page.locator('#login-name').fill(credentials.name);
    await page.locator('#login-password').fill(credentials.password);
  } else {
    await page.getByRole('tab', { name: 'API token' }).click();
    await page.locator('#login-token').fill(credentials.token || up.adminToken);
  }
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/#\/apps$/, { timeout: 15000 });
  await page.getByRole('heading', { name: 'Apps' }).waitFor();
}
