// The web UI shell: hash router, navigation bar, user menu and theme
// toggle. Each page is a view module in views/ that exports
// `default async function render(root, ctx)`.
import { api, ApiError, onUnauthorized } from './lib/api.js';
import { h, replace } from './lib/dom.js';
import { currentTheme, setTheme } from './lib/theme.js';
import { createLoginForm } from './views/login.js';

// How often a page that cannot reach the server tries again.
const RETRY_MS = 3000;

// Hash routes in match order. `keys` name the capture groups of `pattern`;
// `nav` is the navigation link shown as current.
const routes = [
  { pattern: /^\/login$/, view: 'login', title: 'Log in', public: true },
  { pattern: /^\/apps$/, view: 'apps', title: 'Apps', nav: 'apps' },
  { pattern: /^\/apps\/([^/]+)$/, view: 'instance', title: 'Instance', keys: ['id'], nav: 'apps' },
  { pattern: /^\/launch$/, view: 'launch', title: 'Launch', nav: 'launch' },
  { pattern: /^\/endpoints$/, view: 'endpoints', title: 'Model Endpoints', nav: 'endpoints' },
  { pattern: /^\/settings$/, view: 'settings', title: 'Settings', nav: 'settings' },
];

const navLinks = [
  { nav: 'apps', label: 'Apps', hash: '#/apps' },
  { nav: 'launch', label: 'Launch', hash: '#/launch' },
  { nav: 'endpoints', label: 'Model Endpoints', hash: '#/endpoints' },
  { nav: 'settings', label: 'Settings', hash: '#/settings' },
];

const state = {
  user: null, // {user, admin} once known
  cleanups: [],
  generation: 0, // bumped on every navigation, so stale renders stop
  viewFailed: false, // the current view threw instead of rendering
  relogin: null, // the open "session ended" dialog
};

const header = document.getElementById('app-header');
const root = document.getElementById('app-main');

// Percent-decode a route parameter. A malformed escape such as "%E0%A4" is
// kept as typed, so that the page shows "not found" instead of failing.
function decodeParam(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// Split "#/apps/ab12?x=1" into the route, its params and its query.
function parseHash(hash) {
  const raw = hash.replace(/^#/, '') || '/apps';
  const [path, queryString = ''] = raw.split('?', 2);
  const query = Object.fromEntries(new URLSearchParams(queryString));
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const params = {};
    (route.keys || []).forEach((key, i) => { params[key] = decodeParam(match[i + 1]); });
    return { route, params, query, path };
  }
  return null;
}

function navigate(hash) {
  if (location.hash === hash) {
    render();
  } else {
    location.hash = hash;
  }
}

function runCleanups() {
  const cleanups = state.cleanups;
  state.cleanups = [];
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // A failing cleanup must not keep the next page from rendering.
    }
  }
}

async function fetchUser() {
  try {
    const who = await api('GET', '/api/v1/whoami');
    return { user: who.user, admin: Boolean(who.admin) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

async function logout() {
  // Without a user, the 401s of requests still in flight are not taken for
  // an ended session.
  state.user = null;
  runCleanups();
  try {
    await api('POST', '/api/v1/logout');
  } catch {
    // The session may already be gone; the login page follows either way.
  }
  navigate('#/login');
}

function toggleTheme() {
  setTheme(currentTheme() === 'dark' ? 'light' : 'dark');
  renderHeader(parseHash(location.hash));
}

function renderUserMenu() {
  const user = state.user;
  return h('details', { class: 'user-menu' },
    h('summary', { 'aria-label': `User menu for ${user.user}` }, user.user, user.admin ? h('span', { class: 'pill' }, 'admin') : null),
    h('div', { class: 'user-menu-body panel' },
      h('p', {}, 'Signed in as ', h('strong', {}, user.user), user.admin ? ' (administrator)' : ''),
      h('button', { type: 'button', class: 'secondary', id: 'logout', onclick: logout }, 'Log out')));
}

function renderHeader(match) {
  const current = match && match.route.nav;
  const dark = currentTheme() === 'dark';
  replace(header,
    h('a', { class: 'brand', href: state.user ? '#/apps' : '#/login' }, 'nimdeck'),
    state.user ? h('nav', { 'aria-label': 'Main' },
      navLinks.map((link) => h('a', {
        href: link.hash,
        class: link.nav === current ? 'current' : null,
        'aria-current': link.nav === current ? 'page' : null,
      }, link.label))) : null,
    h('span', { class: 'spacer' }),
    h('button', {
      type: 'button', class: 'secondary theme-toggle', id: 'theme-toggle',
      'aria-pressed': dark ? 'true' : 'false', onclick: toggleTheme,
      title: 'Switch between light and dark theme',
    }, dark ? 'Light theme' : 'Dark theme'),
    state.user ? renderUserMenu() : null);
}

function renderError(title, err) {
  replace(root, h('section', { class: 'panel error-panel', role: 'alert' },
    h('h1', {}, title), h('p', {}, err && err.message ? err.message : String(err))));
}

// True when the server responds at all, whatever the status. A failed
// request then has another cause than a stopped server.
async function serverResponds() {
  try {
    await fetch('/api/v1/health', { cache: 'no-store', credentials: 'omit' });
    return true;
  } catch {
    return false;
  }
}

// Show the page for a server that does not respond: what happened, and a
// retry every few seconds that shows the page again once the server is back.
function renderUnreachable(generation) {
  const retry = h('button', { type: 'button', id: 'unreachable-retry', onclick: () => render() }, 'Try again now');
  replace(root, h('section', { class: 'panel error-panel', role: 'alert', id: 'server-unreachable' },
    h('h1', {}, 'The server cannot be reached'),
    h('p', {}, `nimdeck's server at ${location.origin} does not respond. It may have stopped or be restarting, or the network between you and it is down.`),
    h('p', { class: 'muted' }, `This page tries again every ${RETRY_MS / 1000} seconds and comes back by itself once the server responds.`),
    h('div', { class: 'toolbar' }, retry)));
  const timer = setInterval(async () => {
    if (generation === state.generation && await serverResponds() && generation === state.generation) render();
  }, RETRY_MS);
  state.cleanups.push(() => clearInterval(timer));
}

// Show a failed page. A server that does not respond gets its own message
// and retries, and any other failure is shown as it is.
async function renderFailure(generation, title, err) {
  const reachable = await serverResponds();
  if (generation !== state.generation) return;
  if (reachable) {
    renderError(title, err);
  } else {
    renderUnreachable(generation);
  }
}

// A 401 while a page is open means the session ended (logged out in
// another tab, expired, its token revoked). Rather than leave the page and
// lose what was typed in it, a dialog offers to log in again. The page then
// carries on, or is shown afresh when another user logged in.
function openReloginDialog() {
  if (state.relogin) return;
  const previous = state.user;
  const toLoginPage = h('button', { type: 'button', class: 'secondary', id: 'relogin-leave' }, 'Go to the login page');
  const dialog = h('dialog', { class: 'relogin-dialog', id: 'relogin-dialog', 'aria-label': 'Your session has ended' });
  const form = createLoginForm({
    idPrefix: 'relogin',
    heading: 'Your session has ended',
    intro: h('p', { class: 'muted' }, 'You were logged out in another tab, the session expired, or the token it used was revoked. ',
      'Log in again to carry on: this page keeps what you typed in it.'),
    actions: [toLoginPage],
    onLoggedIn(user) {
      const sameUser = previous && user.user === previous.user && user.admin === previous.admin;
      state.user = user;
      dialog.close();
      if (!sameUser || state.viewFailed) {
        render();
      } else {
        renderHeader(parseHash(location.hash));
      }
    },
  });
  toLoginPage.addEventListener('click', () => {
    dialog.close();
    state.user = null;
    navigate(`#/login?next=${encodeURIComponent(location.hash || '#/apps')}`);
  });
  // Escape would leave the page behind a dead session: the two buttons are
  // the ways out.
  dialog.addEventListener('cancel', (event) => event.preventDefault());
  dialog.addEventListener('close', () => {
    dialog.remove();
    state.relogin = null;
  });
  dialog.append(form.element);
  state.relogin = dialog;
  document.body.append(dialog);
  dialog.showModal();
  form.focus();
}

// Show the page for the current hash: clean up the previous one, make
// sure a user is logged in (except on #/login), then run the view.
async function render() {
  runCleanups();
  const generation = ++state.generation;
  const match = parseHash(location.hash);
  if (!match) {
    navigate('#/apps');
    return;
  }
  if (match.route.public && state.relogin) state.relogin.close();

  state.viewFailed = false;
  if (!match.route.public && !state.user) {
    try {
      state.user = await fetchUser();
    } catch (err) {
      if (generation !== state.generation) return;
      renderHeader(match);
      await renderFailure(generation, 'The server cannot be reached', err);
      return;
    }
    if (generation !== state.generation) return;
    if (!state.user) {
      const next = encodeURIComponent(location.hash || '#/apps');
      navigate(`#/login?next=${next}`);
      return;
    }
  }

  renderHeader(match);
  document.title = `${match.route.title} · nimdeck`;
  replace(root, h('p', { class: 'muted loading-note' }, 'Loading…'));

  const ctx = {
    params: match.params,
    query: match.query,
    user: state.user,
    navigate,
    // Register fn to run when the page is left; runs at once when the
    // page has already been left.
    onCleanup(fn) {
      if (generation !== state.generation) {
        fn();
      } else {
        state.cleanups.push(fn);
      }
    },
    // For the login view: the logged-in user, or null after a logout.
    setUser(user) {
      state.user = user;
    },
    isCurrent: () => generation === state.generation,
  };

  try {
    const module = await import(`./views/${match.route.view}.js`);
    if (generation !== state.generation) return;
    root.replaceChildren();
    await module.default(root, ctx);
  } catch (err) {
    if (generation !== state.generation) return;
    state.viewFailed = true;
    await renderFailure(generation, `${match.route.title} could not be shown`, err);
  }
}

// A 401 anywhere means the session ended (expired, token revoked, user
// deleted): log in again in a dialog over the page.
onUnauthorized(() => {
  const match = parseHash(location.hash);
  if (!state.user || (match && match.route.public)) return;
  openReloginDialog();
});

// Escape or a click elsewhere closes the user menu, as for any menu.
document.addEventListener('keydown', (event) => {
  const menu = header.querySelector('.user-menu[open]');
  if (event.key !== 'Escape' || !menu) return;
  menu.open = false;
  menu.querySelector('summary').focus();
});
document.addEventListener('click', (event) => {
  const menu = header.querySelector('.user-menu[open]');
  if (menu && !menu.contains(event.target)) menu.open = false;
});

window.addEventListener('hashchange', render);
render();
