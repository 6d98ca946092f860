// Model Endpoints (#/endpoints): every serving endpoint the user can read,
// the instances still loading, a details panel with each instance's status
// history, and a CSV download of the table.
import { api } from '../lib/api.js';
import { h, replace, copyButton } from '../lib/dom.js';
import { formatDuration, statusBadge } from '../lib/format.js';
import { poll } from '../lib/poll.js';
import { createStatusPlot, formatValue, loadCss } from '../lib/plot.js';

const POLL_MS = 5000;
// Instances shown in the details panel; an endpoint normally has one.
const DETAIL_INSTANCES_MAX = 4;

function number(value, digits) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}

// The cells of one row, serving or loading. The table heads follow the same order.
function rowCells(row, loading) {
  return [
    h('td', {}, h('strong', {}, row.path), row.route ? null : h('span', { class: 'pill', title: 'An ephemeral path that lives as long as its instance' }, 'ephemeral')),
    h('td', {}, row.model || '–'),
    h('td', { class: 'mono small' }, row.endpoint || '–'),
    h('td', {}, (row.instances || []).map((id, i) => [i ? ', ' : null,
      h('a', { href: `#/apps/${encodeURIComponent(id)}`, onclick: (e) => e.stopPropagation() }, id)])),
    loading
      ? h('td', {}, statusBadge(row.status))
      : h('td', { class: 'num' }, formatDuration(row.uptime_seconds)),
    h('td', { class: 'num' }, row.requests ?? '–'),
    h('td', { class: 'num' }, number(row.requests_per_minute, 1)),
    h('td', { class: 'num' }, formatValue('ms', row.latency_ms_mean)),
  ];
}

function tableHead(loading) {
  const heads = ['Endpoint', 'Model', 'URL', 'Instances', loading ? 'Status' : 'Uptime',
    'Requests', 'Requests/min', 'Mean latency'];
  return h('thead', {}, h('tr', {}, heads.map((text, i) => h('th', { class: i >= 4 && !(loading && i === 4) ? 'num' : null }, text))));
}

// The details of the selected endpoint: its URL, model and instances, each
// with a link to its dashboard and a status history plot. onClose runs when
// its Close button is pressed.
function buildDetails(ctx, onClose) {
  const panel = h('section', { class: 'panel endpoint-details', 'data-testid': 'endpoint-details', hidden: true, 'aria-live': 'polite' });
  let plots = [];
  let shownKey = null;

  function clearPlots() {
    plots.forEach((plot) => plot.destroy());
    plots = [];
  }
  ctx.onCleanup(clearPlots);

  async function show(row) {
    if (!row) {
      panel.hidden = true;
      clearPlots();
      shownKey = null;
      return;
    }
    const ids = (row.instances || []).slice(0, DETAIL_INSTANCES_MAX);
    const apps = await Promise.all(ids.map((id) => api('GET', `/api/v1/apps/${encodeURIComponent(id)}`).catch(() => null)));
    const histories = await Promise.all(ids.map((id) => api('GET', `/api/v1/apps/${encodeURIComponent(id)}/history`).catch(() => ({ history: [] }))));

    const key = `${row.path}\n${ids.join(',')}`;
    if (key !== shownKey) {
      shownKey = key;
      clearPlots();
      const items = ids.map((id, i) => {
        const app = apps[i];
        const plotHost = h('div', {});
        plots.push(createStatusPlot(plotHost, { height: 220 }));
        return h('div', { class: 'endpoint-instance', 'data-instance': id },
          h('h3', {}, h('a', { href: `#/apps/${encodeURIComponent(id)}` }, app ? app.name : id), ' ',
            h('span', { class: 'status-slot' }), ' ',
            h('span', { class: 'muted small' }, `${id}${app && app.agent ? ` on agent ${app.agent}` : ''}`)),
          h('p', { class: 'muted small' }, 'Status history'),
          plotHost);
      });
      replace(panel,
        h('div', { class: 'toolbar' }, h('h2', {}, row.path), h('span', { class: 'spacer' }),
          h('button', { type: 'button', class: 'secondary small', onclick: onClose }, 'Close')),
        h('dl', { class: 'facts' },
          h('dt', {}, 'URL'), h('dd', { class: 'endpoint-line' }, h('code', {}, row.endpoint || '–'),
            row.endpoint ? copyButton(row.endpoint, 'Copy') : null),
          h('dt', {}, 'Model'), h('dd', {}, row.model || '–'),
          h('dt', {}, 'Route'), h('dd', {}, row.route || 'none (ephemeral path)')),
        items);
    }
    ids.forEach((id, i) => {
      const slot = panel.querySelector(`[data-instance="${CSS.escape(id)}"] .status-slot`);
      if (slot && apps[i]) replace(slot, statusBadge(apps[i].status, apps[i].status_reason));
      plots[i].update(histories[i].history);
    });
    panel.hidden = false;
  }

  return { panel, show };
}

export default async function render(root, ctx) {
  loadCss('/ui/vendor/uPlot.min.css');
  loadCss('/ui/views/dashboard.css');

  const updateError = h('span', { class: 'update-error', role: 'status' });
  const servingBody = h('tbody', { 'data-testid': 'endpoints-serving' });
  const loadingBody = h('tbody', { 'data-testid': 'endpoints-loading' });
  const servingEmpty = h('p', { class: 'empty', hidden: true }, 'No endpoint is serving. Launch an instance to get one.');
  const loadingEmpty = h('p', { class: 'empty', hidden: true }, 'No instance is loading.');
  // An empty table shows only its "no endpoint" line, not bare headings.
  const servingWrap = h('div', { class: 'table-wrap', hidden: true },
    h('table', { class: 'endpoints', 'aria-label': 'Serving endpoints' }, tableHead(false), servingBody));
  const loadingWrap = h('div', { class: 'table-wrap', hidden: true },
    h('table', { class: 'endpoints', 'aria-label': 'Loading endpoints' }, tableHead(true), loadingBody));
  let selected = null;
  let latest = { endpoints: [], loading: [] };

  const details = buildDetails(ctx, () => select(null));
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Model Endpoints'), updateError, h('span', { class: 'spacer' }),
      h('a', {
        class: 'button secondary', href: '/api/v1/endpoints?format=csv', download: 'endpoints.csv',
        'data-testid': 'endpoints-csv',
      }, 'Download CSV')),
    h('section', { class: 'panel endpoints-panel' },
      h('h2', {}, 'Serving'),
      servingWrap,
      servingEmpty),
    details.panel,
    h('section', { class: 'panel endpoints-panel' },
      h('h2', {}, 'Loading'),
      h('p', { class: 'muted small' }, 'Instances that have an endpoint but do not serve yet.'),
      loadingWrap,
      loadingEmpty));

  function findSelected() {
    if (!selected) return null;
    return [...latest.endpoints, ...latest.loading].find((row) => row.path === selected) || null;
  }

  function renderRows(body, rows, loading) {
    replace(body, rows.map((row) => {
      const tr = h('tr', {
        tabindex: '0', 'data-path': row.path, 'aria-selected': row.path === selected ? 'true' : 'false',
        title: 'Show details',
      }, rowCells(row, loading));
      tr.addEventListener('click', () => select(row.path));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          select(row.path);
        }
      });
      return tr;
    }));
  }

  function renderTables() {
    renderRows(servingBody, latest.endpoints, false);
    renderRows(loadingBody, latest.loading, true);
    servingEmpty.hidden = latest.endpoints.length > 0;
    loadingEmpty.hidden = latest.loading.length > 0;
    servingWrap.hidden = !servingEmpty.hidden;
    loadingWrap.hidden = !loadingEmpty.hidden;
  }

  // Show the details of path, or hide them when path is null or already shown.
  function select(path) {
    selected = selected === path ? null : path;
    renderTables();
    details.show(findSelected()).catch((err) => {
      updateError.textContent = `Details failed: ${err.message}`;
    });
  }

  poll(ctx, POLL_MS, async () => {
    const res = await api('GET', '/api/v1/endpoints');
    latest = { endpoints: res.endpoints || [], loading: res.loading || [] };
    updateError.textContent = '';
    renderTables();
    await details.show(findSelected());
  }, (err) => {
    updateError.textContent = `Update failed: ${err.message}`;
  });
}
