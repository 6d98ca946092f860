// Apps list: every instance the user can read, refreshed every few seconds
// in place, with stop, clone, export and delete actions.
import { api } from '../lib/api.js';
import { confirmDialog, download, h, replace } from '../lib/dom.js';
import { formatDuration, formatTime, isLive, statusBadge } from '../lib/format.js';
import { poll } from '../lib/poll.js';

const refreshMs = 3000;

// Filename for an exported configuration: "NAME-ID.json" with only safe
// characters.
function exportFilename(app) {
  const base = `${app.name || 'instance'}-${app.id}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${base}.json`;
}

export default async function render(root, ctx) {
  const notice = h('div', { class: 'notice', role: 'status', hidden: true });
  const refreshError = h('div', { class: 'notice warn', role: 'alert', hidden: true });
  const filterInput = h('input', { id: 'apps-filter', type: 'search', placeholder: 'name, project, tag, id or status' });
  const hideEnded = h('input', { id: 'apps-hide-ended', type: 'checkbox' });
  const tbody = h('tbody');
  const emptyRow = h('p', { class: 'empty', hidden: true });
  const rows = new Map(); // instance id → row record
  let apps = [];

  function showNotice(text, tone = 'ok') {
    notice.className = `notice ${tone}`;
    replace(notice, text);
    notice.hidden = false;
  }

  async function act(label, fn) {
    try {
      await fn();
    } catch (err) {
      showNotice(`${label} failed: ${err.message}`, 'error');
    }
    refresh();
  }

  async function stopApp(app) {
    await act(`Stopping ${app.name}`, async () => {
      await api('POST', `/api/v1/apps/${encodeURIComponent(app.id)}/stop`);
      showNotice(`Stop requested for ${app.name} (${app.id}).`);
    });
  }

  async function exportApp(app) {
    await act(`Exporting ${app.name}`, async () => {
      const config = await api('GET', `/api/v1/apps/${encodeURIComponent(app.id)}/export`);
      download(exportFilename(app), `${JSON.stringify(config, null, 2)}\n`);
      showNotice(`Exported the configuration of ${app.name} as ${exportFilename(app)}; secrets are written as null.`);
    });
  }

  async function deleteApp(app) {
    const ok = await confirmDialog(`Delete instance ${app.name} (${app.id})? Its console log, metrics and history are deleted too.`,
      { confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    await act(`Deleting ${app.name}`, async () => {
      await api('DELETE', `/api/v1/apps/${encodeURIComponent(app.id)}`);
      showNotice(`Deleted ${app.name} (${app.id}).`);
    });
  }

  // The actions depend only on whether the instance is live, so the cell is
  // rebuilt only when that changes and keyboard focus survives refreshes.
  function actionButtons(app) {
    const live = isLive(app.status);
    return [
      live ? h('button', { type: 'button', class: 'secondary small', onclick: () => stopApp(app), disabled: app.status === 'stopping', 'aria-label': `Stop ${app.name} ${app.id}` }, 'Stop') : null,
      h('button', { type: 'button', class: 'secondary small', onclick: () => ctx.navigate(`#/launch?clone=${encodeURIComponent(app.id)}`), 'aria-label': `Clone ${app.name} ${app.id}` }, 'Clone'),
      h('button', { type: 'button', class: 'secondary small', onclick: () => exportApp(app), 'aria-label': `Export ${app.name} ${app.id}` }, 'Export'),
      live ? null : h('button', { type: 'button', class: 'danger small', onclick: () => deleteApp(app), 'aria-label': `Delete ${app.name} ${app.id}` }, 'Delete'),
    ];
  }

  function newRow(app) {
    const cells = {
      status: h('td', { class: 'app-status' }), name: h('td'), project: h('td'), tags: h('td', { class: 'app-tags' }),
      idle: h('td', { class: 'num app-idle' }), endpoint: h('td', { class: 'mono small app-endpoint' }),
      created: h('td', { class: 'small' }), actions: h('td', { class: 'actions' }),
    };
    const tr = h('tr', { dataset: { id: app.id } }, Object.values(cells));
    return { tr, cells, signature: {}, app };
  }

  // Replace a cell's content only when its text form changed.
  function setCell(row, key, signature, build) {
    if (row.signature[key] === signature) return;
    row.signature[key] = signature;
    replace(row.cells[key], build());
  }

  function updateRow(row, app) {
    row.app = app;
    setCell(row, 'status', `${app.status}|${app.status_reason}`, () => [
      statusBadge(app.status, app.status_reason),
      // A failure reason may hold many lines of the instance's output: the
      // cell shows two lines and the title attribute the whole text.
      app.status_reason
        ? h('div', { class: 'muted small app-reason', title: app.status_reason }, app.status_reason)
        : null]);
    setCell(row, 'name', `${app.name}|${app.id}`, () => [
      h('a', { href: `#/apps/${encodeURIComponent(app.id)}` }, app.name || app.id),
      h('div', { class: 'muted small mono' }, app.id)]);
    setCell(row, 'project', app.project, () => app.project);
    setCell(row, 'tags', (app.tags || []).join(','), () => (app.tags || []).map((tag) => h('span', { class: 'pill tag' }, tag)));
    const limit = app.idle_time_limit_hours ? ` of ${formatDuration(app.idle_time_limit_hours * 3600)}` : '';
    setCell(row, 'idle', `${formatDuration(app.idle_seconds)}${limit}`, () => [
      formatDuration(app.idle_seconds), limit ? h('div', { class: 'muted small' }, `limit ${formatDuration(app.idle_time_limit_hours * 3600)}`) : null]);
    setCell(row, 'endpoint', `${app.endpoint}|${isLive(app.status)}`, () =>
      app.endpoint && isLive(app.status) ? app.endpoint : h('span', { class: 'muted' }, app.endpoint ? '(ended)' : '–'));
    setCell(row, 'created', String(app.created_at), () => formatTime(app.created_at));
    // The handlers close over `app`; the row's latest one is used through row.app.
    setCell(row, 'actions', `${isLive(app.status)}|${app.status === 'stopping'}`, () => actionButtons(row.app));
  }

  function matchesFilter(app) {
    if (hideEnded.checked && !isLive(app.status)) return false;
    const needle = filterInput.value.trim().toLowerCase();
    if (!needle) return true;
    const haystack = [app.id, app.name, app.project, app.status, app.owner, app.route, ...(app.tags || [])]
      .filter(Boolean).join(' ').toLowerCase();
    return haystack.includes(needle);
  }

  function renderRows() {
    const seen = new Set();
    let previous = null;
    for (const app of apps) {
      if (!matchesFilter(app)) continue;
      seen.add(app.id);
      let row = rows.get(app.id);
      if (!row) {
        row = newRow(app);
        rows.set(app.id, row);
      }
      updateRow(row, app);
      // Keep the server's order (newest first) while moving as few rows
      // as possible, so a focused button stays in the document.
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (expected !== row.tr) tbody.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    emptyRow.hidden = seen.size > 0;
    replace(emptyRow, apps.length === 0
      ? ['No instances yet. ', h('a', { href: '#/launch' }, 'Launch one'), '.']
      : 'No instance matches the filter.');
  }

  async function load() {
    const data = await api('GET', '/api/v1/apps');
    if (!ctx.isCurrent()) return;
    apps = data.apps || [];
    refreshError.hidden = true;
    renderRows();
  }

  filterInput.addEventListener('input', renderRows);
  hideEnded.addEventListener('change', renderRows);

  root.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Apps'),
      h('span', { class: 'spacer' }),
      h('a', { class: 'button', href: '#/launch' }, 'Launch')),
    notice, refreshError,
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar', style: { marginBottom: '0.6rem' } },
        h('label', { for: 'apps-filter', class: 'sr-only' }, 'Filter'),
        h('div', { style: { flex: '1', maxWidth: '24rem' } }, filterInput),
        h('span', { class: 'inline' }, hideEnded, h('label', { for: 'apps-hide-ended' }, 'Hide stopped and failed'))),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'apps-table' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'Status'), h('th', {}, 'Name'), h('th', {}, 'Project'), h('th', {}, 'Tags'),
            h('th', { class: 'num' }, 'Idle'), h('th', {}, 'Endpoint'), h('th', {}, 'Created'),
            h('th', { class: 'actions' }, h('span', { class: 'sr-only' }, 'Actions')))),
          tbody)),
      emptyRow));

  const refresh = poll(ctx, refreshMs, load, (err) => {
    if (!ctx.isCurrent()) return;
    replace(refreshError, `Could not refresh the list: ${err.message}`);
    refreshError.hidden = false;
  });
}
