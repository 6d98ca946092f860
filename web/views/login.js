// Login page: a user's name and password, or a pasted api-scope token.
// Both become an HttpOnly session cookie set by POST /api/v1/login. The
// same form, built by createLoginForm, logs in again in a dialog when a
// session ends while a page is open (see app.js).
import { api } from '../lib/api.js';
import { h, replace } from '../lib/dom.js';

// Build the login form. idPrefix names its elements (`${idPrefix}-name`,
// `-password`, `-token`), heading is its title, intro an optional element
// below it, actions more buttons beside "Log in", and onLoggedIn({user,
// admin}) runs after a successful login. Returns {element, focus}.
export function createLoginForm({ idPrefix, heading, intro = null, actions = [], onLoggedIn }) {
  let mode = 'password';
  const id = (name) => `${idPrefix}-${name}`;
  const errorBox = h('div', { class: 'notice error', role: 'alert', hidden: true });

  const nameInput = h('input', { id: id('name'), name: 'username', autocomplete: 'username', required: true });
  const passwordInput = h('input', { id: id('password'), type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const tokenInput = h('input', { id: id('token'), type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'nd_…', required: true });

  const passwordFields = h('div', { id: id('panel-password'), role: 'tabpanel', 'aria-labelledby': id('tab-password') },
    h('div', { class: 'field' }, h('label', { for: id('name') }, 'Name'), nameInput),
    h('div', { class: 'field' }, h('label', { for: id('password') }, 'Password'), passwordInput));
  const tokenFields = h('div', { id: id('panel-token'), role: 'tabpanel', 'aria-labelledby': id('tab-token') },
    h('div', { class: 'field' }, h('label', { for: id('token') }, 'API token'), tokenInput,
      h('div', { class: 'hint' }, 'An api-scope token, e.g. from ', h('code', {}, 'nimdeck tokens create --scope api'),
        '. Gateway and embed tokens cannot log in.')));

  const tabPassword = h('button', { type: 'button', role: 'tab', id: id('tab-password'), class: 'secondary', 'aria-controls': id('panel-password') }, 'Name and password');
  const tabToken = h('button', { type: 'button', role: 'tab', id: id('tab-token'), class: 'secondary', 'aria-controls': id('panel-token') }, 'API token');
  const submit = h('button', { type: 'submit' }, 'Log in');

  function showMode(next, focus) {
    mode = next;
    const isPassword = mode === 'password';
    tabPassword.setAttribute('aria-selected', String(isPassword));
    tabToken.setAttribute('aria-selected', String(!isPassword));
    tabPassword.tabIndex = isPassword ? 0 : -1;
    tabToken.tabIndex = isPassword ? -1 : 0;
    passwordFields.hidden = !isPassword;
    tokenFields.hidden = isPassword;
    // Hidden required inputs would block the submit, so only the shown
    // tab's inputs are required.
    nameInput.required = isPassword;
    passwordInput.required = isPassword;
    tokenInput.required = !isPassword;
    errorBox.hidden = true;
    if (focus) (isPassword ? nameInput : tokenInput).focus();
  }

  tabPassword.addEventListener('click', () => showMode('password', true));
  tabToken.addEventListener('click', () => showMode('token', true));
  // Arrow keys move between tabs, as in any tab list.
  const tabList = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Log in with' }, tabPassword, tabToken);
  tabList.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    event.preventDefault();
    showMode(mode === 'password' ? 'token' : 'password', false);
    (mode === 'password' ? tabPassword : tabToken).focus();
  });

  async function onSubmit(event) {
    event.preventDefault();
    errorBox.hidden = true;
    submit.disabled = true;
    const body = mode === 'password'
      ? { name: nameInput.value.trim(), password: passwordInput.value }
      : { token: tokenInput.value.trim() };
    try {
      const who = await api('POST', '/api/v1/login', body);
      // Neither the password nor the token stays in the page.
      passwordInput.value = '';
      tokenInput.value = '';
      await onLoggedIn({ user: who.user, admin: Boolean(who.admin) });
    } catch (err) {
      let message = err.message;
      if (err.status === 401) {
        message = mode === 'password'
          ? 'Wrong name or password.'
          : 'This token is not valid: it is unknown, expired, revoked, or not an api-scope token.';
      }
      replace(errorBox, message);
      errorBox.hidden = false;
      (mode === 'password' ? passwordInput : tokenInput).select();
    } finally {
      submit.disabled = false;
    }
  }

  const element = h('form', { class: 'login-form', onsubmit: onSubmit },
    h(idPrefix === 'login' ? 'h1' : 'h2', {}, heading), intro,
    tabList, passwordFields, tokenFields, errorBox,
    h('div', { class: 'toolbar' }, submit, actions));
  showMode('password', false);
  return { element, focus: () => nameInput.focus() };
}

export default async function render(root, ctx) {
  const form = createLoginForm({
    idPrefix: 'login',
    heading: 'Log in to nimdeck',
    onLoggedIn(user) {
      ctx.setUser(user);
      const next = ctx.query.next && ctx.query.next.startsWith('#/') && !ctx.query.next.startsWith('#/login')
        ? ctx.query.next : '#/apps';
      ctx.navigate(next);
    },
  });
  root.append(h('div', { class: 'panel login-box' }, form.element));
  form.focus();
}
