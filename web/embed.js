// The embed page (/embed/ID/METRIC#key=TOKEN): one live plot of one
// instance, read with an embed key. The key stays in the URL fragment, which
// browsers never send to a server, and goes to the API only as
// `Authorization: Bearer`. Requests omit cookies, so a visitor's own session
// can never stand in for a missing or revoked key.
import { h, replace } from './lib/dom.js';
import { statusBadge } from './lib/format.js';
import { METRICS, RANGES, createPlot, metricsQuery } from './lib/plot.js';

const REFRESH_MS = 10000;
const DEFAULT_RANGE = RANGES[1];
const REFUSED = 'Refused: missing or revoked embed key. Ask the owner of this plot for a new embed code.';

const main = document.getElementById('embed-main');

// {id, metric} from the path /embed/ID/METRIC; null when it has another shape.
function parsePath() {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts.length !== 3 || parts[0] !== 'embed') return null;
  return { id: decodeURIComponent(parts[1]), metric: decodeURIComponent(parts[2]) };
}

// key, range and theme from the fragment "#key=nd_...&range=900&theme=dark".
function parseFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const seconds = Number(params.get('range'));
  return {
    key: params.get('key') || '',
    range: RANGES.find((entry) => entry.range === seconds) || DEFAULT_RANGE,
    theme: params.get('theme'),
  };
}

// GET an API path with the embed key. Resolves to {status, body}.
async function getWithKey(path, key) {
  const res = await fetch(path, {
    headers: { Authorization: `Bearer ${key}` },
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return { status: res.status, body };
}

function showMessage(text, testid) {
  replace(main, h('p', { class: 'refused', role: 'alert', 'data-testid': testid }, text));
}

// Plot height that fills the frame below the head and above the legend.
function plotHeight(head) {
  return Math.max(120, window.innerHeight - head.offsetHeight - 80);
}

let stopCurrent = null;

// Render the page for the current URL; returns a function that stops it.
function start() {
  const target = parsePath();
  const { key, range, theme } = parseFragment();
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;

  if (!target || !METRICS[target.metric]) {
    const known = Object.keys(METRICS).join(', ');
    showMessage(`Unknown plot in ${location.pathname}: the path is /embed/ID/METRIC, and METRIC is one of ${known}.`, 'embed-error');
    return () => {};
  }
  if (!key) {
    showMessage(REFUSED, 'embed-refused');
    return () => {};
  }

  const metric = METRICS[target.metric];
  const title = h('h1', {}, metric.title);
  const status = h('span', {});
  const note = h('span', { class: 'muted small', role: 'status' });
  const head = h('div', { class: 'embed-head' }, title, status, note, h('span', { class: 'muted small' }, range.label));
  const body = h('div', {});
  replace(main, head, body);
  const plot = createPlot(body, target.metric, { height: plotHeight(head) });
  const onResize = () => plot.setHeight(plotHeight(head));
  window.addEventListener('resize', onResize);

  let timer = null;
  let stopped = false;
  const id = encodeURIComponent(target.id);

  async function refresh() {
    const info = await getWithKey(`/api/v1/embed/${id}`, key);
    if (info.status === 401 || info.status === 403) return 'refused';
    if (info.status === 404) return 'not found';
    if (info.status !== 200) throw new Error(`HTTP ${info.status}`);
    title.textContent = `${info.body.name} · ${metric.title}`;
    document.title = `${info.body.name}: ${metric.title}`;
    replace(status, statusBadge(info.body.status));

    const metrics = await getWithKey(`/api/v1/apps/${id}/metrics?${metricsQuery(range)}`, key);
    if (metrics.status === 401 || metrics.status === 403) return 'refused';
    if (metrics.status !== 200) throw new Error(`HTTP ${metrics.status}`);
    plot.update(metrics.body);
    note.textContent = '';
    return 'ok';
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener('resize', onResize);
    plot.destroy();
  }

  async function tick() {
    let outcome;
    try {
      outcome = await refresh();
    } catch (err) {
      // A network error or a server restart: keep the last plot and retry.
      note.textContent = `Update failed (${err.message}); retrying.`;
      outcome = 'retry';
    }
    if (stopped) return;
    if (outcome === 'refused' || outcome === 'not found') {
      // Refused keys do not come back, so polling ends here.
      stop();
      showMessage(outcome === 'refused' ? REFUSED : `Instance ${target.id} not found.`, `embed-${outcome.replace(' ', '-')}`);
      return;
    }
    timer = setTimeout(tick, REFRESH_MS);
  }
  tick();
  return stop;
}

window.addEventListener('hashchange', () => {
  if (stopCurrent) stopCurrent();
  stopCurrent = start();
});
stopCurrent = start();
