// The admin part of the settings page: gateway routes, queues, agents with
// their machines and GPUs, users and their project permissions.
import { api } from '../lib/api.js';
import { confirmDialog, h, replace } from '../lib/dom.js';
import { formatAgo, formatBytes, formatTime } from '../lib/format.js';
import { poll } from '../lib/poll.js';
import { runAction, settingsSection, table } from './settings-common.js';

const agentRefreshMs = 5000;

function deleteButton(label, onclick, text = 'Delete') {
  return h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger small', 'aria-label': label, onclick }, text));
}

// A section with a one-field create form and a list, for routes and queues.
function namedResource({ id, title, description, path, listKey, placeholder, columns, row, canDelete }) {
  const section = settingsSection(`settings-${id}`, title, description);
  const name = h('input', { id: `${id}-name`, placeholder, autocomplete: 'off', spellcheck: 'false', required: true });
  const list = h('div');
  const singular = title.toLowerCase().replace(/s$/, '');

  async function reload() {
    const data = await api('GET', path);
    replace(list, table(`${id}-table`, [...columns, ''],
      (data[listKey] || []).map((item) => [...row(item),
        canDelete(item) ? deleteButton(`Delete ${singular} ${item.name}`, () => remove(item.name)) : h('td')]),
      `No ${title.toLowerCase()}.`));
  }

  async function remove(itemName) {
    const ok = await confirmDialog(`Delete the ${singular} ${itemName}?`, { confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    await runAction(section, async () => {
      await api('DELETE', `${path}/${encodeURIComponent(itemName)}`);
      section.notify(`Deleted the ${singular} ${itemName}.`);
    }, reload);
  }

  async function create(event) {
    event.preventDefault();
    section.notify(null);
    const value = name.value.trim();
    if (!value) {
      section.notify(`Enter a name for the new ${singular}.`, 'error');
      name.focus();
      return;
    }
    await runAction(section, async () => {
      await api('POST', path, { name: value });
      name.value = '';
      section.notify(`Created the ${singular} ${value}.`);
    }, reload);
  }

  section.body.append(
    h('form', { class: 'toolbar', id: `${id}-form`, onsubmit: create, style: { alignItems: 'flex-end', marginBottom: '0.8rem' } },
      h('div', {}, h('label', { for: `${id}-name` }, 'Name'), name),
      h('button', { type: 'submit' }, `Create ${singular}`)),
    list);
  return { sections: [section], reload };
}

function routesSection() {
  return namedResource({
    id: 'routes', title: 'Routes', path: '/api/v1/routes', listKey: 'routes', placeholder: 'llama',
    description: 'Fixed endpoint paths (/serve/NAME/v1), held by one running instance at a time.',
    columns: ['Name', 'Held by', 'Created'],
    row: (r) => [h('code', {}, r.name),
      r.instance_id ? h('a', { href: `#/apps/${encodeURIComponent(r.instance_id)}` }, r.instance_id) : h('span', { class: 'muted' }, 'free'),
      formatTime(r.created_at)],
    canDelete: (r) => !r.instance_id,
  });
}

function queuesSection() {
  return namedResource({
    id: 'queues', title: 'Queues', path: '/api/v1/queues', listKey: 'queues', placeholder: 'gpu-a100',
    description: 'Instances wait in a queue until an agent that serves it starts them. The queue default always exists.',
    columns: ['Name', { text: 'Agents', class: 'num' }, { text: 'Queued', class: 'num' }, 'Created'],
    row: (q) => [h('code', {}, q.name), h('td', { class: 'num' }, String(q.agents)), h('td', { class: 'num' }, String(q.queued)), formatTime(q.created_at)],
    canDelete: (q) => q.name !== 'default',
  });
}

function gpuList(gpus) {
  if (!Array.isArray(gpus) || gpus.length === 0) return h('span', { class: 'muted' }, 'none');
  return h('ul', { class: 'plain-list' }, gpus.map((gpu) => h('li', {},
    h('code', {}, gpu.id), ' ', gpu.name || 'GPU', gpu.mem_total_bytes ? ` (${formatBytes(gpu.mem_total_bytes)})` : '')));
}

function machineText(machine, hostname) {
  if (!machine) return hostname || '–';
  const parts = [machine.hostname || hostname || ''];
  if (machine.cpu_count) parts.push(`${machine.cpu_count} CPUs`);
  if (machine.mem_total_bytes) parts.push(formatBytes(machine.mem_total_bytes));
  return parts.filter(Boolean).join(', ');
}

// Agents, refreshed every few seconds so the heartbeat age stays current.
function agentsSection(ctx) {
  const section = settingsSection('settings-agents', 'Agents',
    'Machines that run instances. Each work poll is a heartbeat; an agent silent for too long is declared lost.');
  const list = h('div');
  section.body.append(list);

  async function reload() {
    const data = await api('GET', '/api/v1/agents');
    replace(list, table('agents-table', ['Name', 'Machine', 'Address', 'Queues', 'GPUs', { text: 'Instances', class: 'num' }, 'Last heartbeat'],
      (data.agents || []).map((a) => [h('strong', {}, a.name), machineText(a.machine, a.hostname), a.address || '–',
        (a.queues || []).map((q) => h('span', { class: 'pill tag' }, q)), gpuList(a.gpus),
        h('td', { class: 'num' }, String(a.instances ?? 0)),
        h('span', { title: formatTime(a.last_seen_at) }, formatAgo(a.last_seen_at))]),
      'No agent has registered.'));
  }

  let started = false;
  return {
    sections: [section],
    // The first call loads the list; after it, a poll keeps the heartbeat
    // ages fresh until the page is left.
    reload: async () => {
      await reload();
      if (started) return;
      started = true;
      const timer = setTimeout(() => {
        if (ctx.isCurrent()) poll(ctx, agentRefreshMs, reload, (err) => section.notify(err.message, 'error'));
      }, agentRefreshMs);
      ctx.onCleanup(() => clearTimeout(timer));
    },
  };
}

// Users with their grants: add, delete, grant and revoke a permission.
function usersSection(ctx) {
  const section = settingsSection('settings-users', 'Users and permissions',
    'Permissions are per project: read < write < admin. Admins may do everything.');
  const name = h('input', { id: 'user-name', autocomplete: 'off', spellcheck: 'false', required: true });
  const password = h('input', { id: 'user-password', type: 'password', autocomplete: 'new-password' });
  const admin = h('input', { id: 'user-admin', type: 'checkbox' });
  const list = h('div');

  function grantForm(user) {
    const project = h('input', { 'aria-label': `Project to grant ${user.name}`, placeholder: 'project', list: 'settings-projects', class: 'grant-project', required: true });
    const permission = h('select', { 'aria-label': `Permission for ${user.name}`, class: 'grant-permission' },
      ['read', 'write', 'admin'].map((p) => h('option', { value: p }, p)));
    async function grant(event) {
      event.preventDefault();
      const projectName = project.value.trim();
      if (!projectName) {
        section.notify(`Enter the project to grant ${user.name} a permission on.`, 'error');
        project.focus();
        return;
      }
      await runAction(section, async () => {
        await api('POST', `/api/v1/users/${encodeURIComponent(user.name)}/grants`, { project: projectName, permission: permission.value });
        section.notify(`${user.name} has ${permission.value} on ${projectName}.`);
      }, reload);
    }
    return h('form', { class: 'inline grant-form', onsubmit: grant }, project, permission,
      h('button', { type: 'submit', class: 'secondary small' }, 'Grant'));
  }

  async function revokeGrant(user, grant) {
    const ok = await confirmDialog(`Revoke ${user.name}'s ${grant.permission} permission on ${grant.project}?`, { confirmLabel: 'Revoke', danger: true });
    if (!ok) return;
    await runAction(section, async () => {
      await api('DELETE', `/api/v1/users/${encodeURIComponent(user.name)}/grants/${encodeURIComponent(grant.project)}`);
      section.notify(`Revoked ${user.name}'s permission on ${grant.project}.`);
    }, reload);
  }

  async function removeUser(user) {
    const ok = await confirmDialog(`Delete the user ${user.name}? Their tokens, grants, vault entries and password are removed at once.`,
      { confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    await runAction(section, async () => {
      await api('DELETE', `/api/v1/users/${encodeURIComponent(user.name)}`);
      section.notify(`Deleted the user ${user.name}.`);
    }, reload);
  }

  async function reload() {
    const [data, projects] = await Promise.all([api('GET', '/api/v1/users'), api('GET', '/api/v1/projects')]);
    replace(list,
      h('datalist', { id: 'settings-projects' }, (projects.projects || []).map((p) => h('option', { value: p.name }))),
      table('users-table', ['Name', 'Created', 'Permissions', 'Grant', ''],
        (data.users || []).map((user) => [
          h('strong', {}, user.name, user.admin ? h('span', { class: 'pill', style: { marginLeft: '0.4rem' } }, 'admin') : null),
          formatTime(user.created_at),
          (user.grants || []).length === 0 ? h('span', { class: 'muted' }, 'none')
            : h('ul', { class: 'plain-list' }, user.grants.map((grant) => h('li', {},
              h('code', {}, grant.project), `: ${grant.permission} `,
              h('button', { type: 'button', class: 'link small', 'aria-label': `Revoke ${user.name}'s permission on ${grant.project}`, onclick: () => revokeGrant(user, grant) }, 'revoke')))),
          grantForm(user),
          user.name === 'admin' || user.name === ctx.user.user ? h('td')
            : deleteButton(`Delete user ${user.name}`, () => removeUser(user)),
        ]),
        'No users.'));
  }

  async function add(event) {
    event.preventDefault();
    section.notify(null);
    const userName = name.value.trim();
    if (!userName) {
      section.notify('Enter a name for the new user.', 'error');
      name.focus();
      return;
    }
    await runAction(section, async () => {
      await api('POST', '/api/v1/users', { name: userName, password: password.value || null, admin: admin.checked });
      name.value = '';
      password.value = '';
      admin.checked = false;
      section.notify(`Added the user ${userName}.`);
    }, reload);
  }

  section.body.append(
    h('form', { class: 'toolbar', id: 'user-form', onsubmit: add, style: { alignItems: 'flex-end', marginBottom: '0.8rem' } },
      h('div', {}, h('label', { for: 'user-name' }, 'Name'), name),
      h('div', {}, h('label', { for: 'user-password' }, 'Password'), password),
      h('span', { class: 'inline', style: { paddingBottom: '0.4rem' } }, admin, h('label', { for: 'user-admin' }, 'Administrator')),
      h('button', { type: 'submit' }, 'Add user')),
    h('p', { class: 'hint muted small' }, 'Without a password the user can log in only with an api token an admin creates for them.'),
    list);
  return { sections: [section], reload };
}

// The admin sections, each {sections, reload}.
export function renderAdminSections(ctx) {
  return [routesSection(), queuesSection(), agentsSection(ctx), usersSection(ctx)];
}
