// Settings (#/settings): the user's tokens, embed keys and vault entries;
// for admins also routes, queues, agents, users and project permissions.
import { api } from '../lib/api.js';
import { confirmDialog, copyButton, h, replace } from '../lib/dom.js';
import { formatTime } from '../lib/format.js';
import { renderAdminSections } from './settings-admin.js';
import { runAction, settingsSection, table } from './settings-common.js';

function tokenState(token) {
  if (token.revoked) return h('span', { class: 'status-muted' }, 'revoked');
  if (token.expires_at !== null && token.expires_at <= Date.now()) return h('span', { class: 'status-warn' }, 'expired');
  return h('span', { class: 'status-ok' }, 'valid');
}

// Token creation, the one-time display of a new token, and the token and
// embed key lists (both from GET /api/v1/tokens).
function tokensSections(ctx) {
  const tokens = settingsSection('settings-tokens', 'Tokens',
    'Gateway tokens call model endpoints (the openai client\'s api_key); api tokens log in and script the REST API.');
  const embeds = settingsSection('settings-embed-keys', 'Embed keys',
    'Read-only keys for one instance\'s plots, made by a plot\'s "embed" action on the instance page.');

  const days = h('input', { id: 'token-days', type: 'number', min: 0, step: 'any', value: '30', required: true });
  const scope = h('select', { id: 'token-scope' },
    h('option', { value: 'gateway' }, 'gateway: call model endpoints'),
    h('option', { value: 'api' }, 'api: REST API and login'));
  // Only an admin may create a token for another user.
  const forUser = ctx.user.admin ? h('input', { id: 'token-user', placeholder: ctx.user.user, autocomplete: 'off', spellcheck: 'false' }) : null;
  const created = h('div', { id: 'token-created', hidden: true });
  const tokenList = h('div');
  const embedList = h('div');

  async function reload() {
    const data = await api('GET', '/api/v1/tokens');
    const all = data.tokens || [];
    const showUser = ctx.user.admin;
    const revokeCell = (token, section) => h('td', { class: 'actions' },
      token.revoked || token.builtin ? (token.builtin ? h('span', { class: 'muted small' }, 'built in') : null)
        : h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Revoke token ${token.id}`,
          onclick: () => revoke(token, section),
        }, 'Revoke'));

    const regular = all.filter((t) => t.scope !== 'embed');
    replace(tokenList, table('tokens-table',
      ['ID', 'Scope', showUser ? 'User' : null, 'Created', 'Expires', 'State', ''].filter((x) => x !== null),
      regular.map((t) => [h('code', {}, t.id), t.scope, showUser ? t.user : null, formatTime(t.created_at),
        t.expires_at === null ? 'never' : formatTime(t.expires_at), tokenState(t), revokeCell(t, tokens)].filter((x) => x !== null)),
      'No tokens yet.'));

    const embedKeys = all.filter((t) => t.scope === 'embed');
    replace(embedList, table('embed-keys-table',
      ['ID', 'Instance', showUser ? 'User' : null, 'Created', 'Expires', 'State', ''].filter((x) => x !== null),
      embedKeys.map((t) => [h('code', {}, t.id),
        t.instance_id ? h('a', { href: `#/apps/${encodeURIComponent(t.instance_id)}` }, t.instance_id) : '–',
        showUser ? t.user : null, formatTime(t.created_at),
        t.expires_at === null ? 'never' : formatTime(t.expires_at), tokenState(t), revokeCell(t, embeds)].filter((x) => x !== null)),
      'No embed keys.'));
  }

  async function revoke(token, section) {
    const what = token.scope === 'embed' ? 'embed key' : `${token.scope} token`;
    const ok = await confirmDialog(`Revoke ${what} ${token.id}? Everything that uses it is refused at once.`,
      { confirmLabel: 'Revoke', danger: true });
    if (!ok) return;
    await runAction(section, async () => {
      await api('DELETE', `/api/v1/tokens/${encodeURIComponent(token.id)}`);
      section.notify(`Revoked ${what} ${token.id}.`);
    }, reload);
  }

  async function create(event) {
    event.preventDefault();
    tokens.notify(null);
    created.hidden = true;
    const value = Number(days.value);
    if (!days.value.trim() || !(value > 0)) {
      tokens.notify(`The expiry must be a positive number of days, got "${days.value}".`, 'error');
      days.focus();
      return;
    }
    await runAction(tokens, async () => {
      const body = { scope: scope.value, days: value };
      if (forUser && forUser.value.trim()) body.user = forUser.value.trim();
      const token = await api('POST', '/api/v1/tokens', body);
      const code = h('code', { id: 'token-value' }, token.token);
      replace(created, h('div', { class: 'notice ok' },
        h('p', {}, `New ${token.scope} token ${token.id} for ${token.user}, valid until ${formatTime(token.expires_at)}. `,
          h('strong', {}, 'It is shown only this once:'), ' copy it now.'),
        h('div', { class: 'secret-box' }, code, copyButton(token.token, 'Copy token'))));
      created.hidden = false;
    }, reload);
  }

  tokens.body.append(
    h('form', { class: 'toolbar', id: 'token-form', onsubmit: create, style: { alignItems: 'flex-end', marginBottom: '0.8rem' } },
      h('div', {}, h('label', { for: 'token-scope' }, 'Scope'), scope),
      h('div', { style: { width: '11rem' } }, h('label', { for: 'token-days' }, 'Expires in (days)'), days),
      forUser ? h('div', { style: { width: '12rem' } }, h('label', { for: 'token-user' }, 'For user'), forUser) : null,
      h('button', { type: 'submit', id: 'token-generate' }, 'Generate token')),
    created, tokenList);
  embeds.body.append(embedList);
  return { sections: [tokens, embeds], reload, forget: () => { created.replaceChildren(); } };
}

// Vault entries: values go in, only names and times come back.
function vaultSection() {
  const section = settingsSection('settings-vault', 'Vault',
    'Secrets such as NGC_API_KEY, set in the environment of every instance you launch. Values are encrypted and never shown again.');
  const name = h('input', { id: 'vault-name', placeholder: 'NGC_API_KEY', autocomplete: 'off', spellcheck: 'false', required: true });
  const value = h('input', { id: 'vault-value', type: 'password', autocomplete: 'new-password', required: true });
  const list = h('div');

  async function reload() {
    const data = await api('GET', '/api/v1/vault');
    replace(list, table('vault-table', ['Name', 'Updated', ''],
      (data.entries || []).map((entry) => [h('code', {}, entry.name), formatTime(entry.updated_at),
        h('td', { class: 'actions' }, h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Delete vault entry ${entry.name}`,
          onclick: () => remove(entry.name),
        }, 'Delete'))]),
      'The vault is empty.'));
  }

  async function remove(entryName) {
    const ok = await confirmDialog(`Delete the vault entry ${entryName}? Instances launched later no longer get it.`,
      { confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    await runAction(section, async () => {
      await api('DELETE', `/api/v1/vault/${encodeURIComponent(entryName)}`);
      section.notify(`Deleted ${entryName}.`);
    }, reload);
  }

  async function save(event) {
    event.preventDefault();
    section.notify(null);
    const entryName = name.value.trim();
    if (!entryName) {
      section.notify('Enter a name for the vault entry.', 'error');
      name.focus();
      return;
    }
    await runAction(section, async () => {
      await api('PUT', `/api/v1/vault/${encodeURIComponent(entryName)}`, { value: value.value });
      // The value leaves the page as soon as it is stored.
      value.value = '';
      name.value = '';
      section.notify(`Saved ${entryName}.`);
    }, reload);
  }

  section.body.append(
    h('form', { class: 'toolbar', id: 'vault-form', onsubmit: save, style: { alignItems: 'flex-end', marginBottom: '0.8rem' } },
      h('div', {}, h('label', { for: 'vault-name' }, 'Name'), name),
      h('div', { style: { flex: '1', minWidth: '14rem' } }, h('label', { for: 'vault-value' }, 'Value'), value),
      h('button', { type: 'submit', id: 'vault-save' }, 'Save')),
    list);
  return { sections: [section], reload };
}

export default async function render(root, ctx) {
  const tokenParts = tokensSections(ctx);
  const vaultParts = vaultSection();
  const parts = [tokenParts, vaultParts];
  if (ctx.user.admin) parts.push(...renderAdminSections(ctx));

  const sections = parts.flatMap((part) => part.sections);
  const jump = h('nav', { class: 'toolbar settings-jump', 'aria-label': 'Settings sections' },
    sections.map((section) => h('button', {
      type: 'button', class: 'secondary small',
      onclick: () => {
        section.element.scrollIntoView({ block: 'start' });
        section.element.querySelector('h2').focus();
      },
    }, section.element.querySelector('h2').textContent)));
  for (const section of sections) section.element.querySelector('h2').tabIndex = -1;

  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Settings'), h('span', { class: 'spacer' }), jump),
    ...sections.map((section) => section.element));

  // Each section loads on its own, so one failing list does not hide the rest.
  await Promise.all(parts.map((part, i) => part.reload().catch((err) => parts[i].sections[0].notify(err.message, 'error'))));
  ctx.onCleanup(() => tokenParts.forget());

  // #/settings?section=tokens (or vault, embed-keys, routes, queues,
  // agents, users) opens the page at that section.
  const target = ctx.query.section && document.getElementById(`settings-${ctx.query.section}`);
  if (target && ctx.isCurrent()) {
    target.scrollIntoView({ block: 'start' });
    target.querySelector('h2').focus();
  }
}
