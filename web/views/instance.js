// The instance dashboard (#/apps/ID): status, endpoint and curl command,
// metric plots with a time-range picker and embed codes, the live console
// log and the status history.
import { api, ApiError } from '../lib/api.js';
import { h, replace, copyButton } from '../lib/dom.js';
import { formatDuration, formatTime, isLive, statusBadge } from '../lib/format.js';
import { poll } from '../lib/poll.js';
import { METRICS, RANGES, createPlot, loadCss, metricsQuery } from '../lib/plot.js';

const INSTANCE_POLL_MS = 2000;
const METRICS_POLL_MS = 5000;
const LOG_POLL_MS = 1000;
// Lines kept in the console element; older ones are removed as new ones come.
const LOG_LINES_KEPT = 2000;
const LOG_PAGE = 1000;
// Pages read per poll, so a long log does not stall the first paint.
const LOG_PAGES_PER_POLL = 10;
const DEFAULT_RANGE = RANGES[1];

// The served model id from the configuration: env NIM_SERVED_MODEL_NAME,
// else `--model NAME` or `--model=NAME` in the command; null when neither.
export function servedModel(config) {
  const env = (config && config.env) || {};
  if (typeof env.NIM_SERVED_MODEL_NAME === 'string' && env.NIM_SERVED_MODEL_NAME) {
    return env.NIM_SERVED_MODEL_NAME;
  }
  const command = Array.isArray(config && config.command) ? config.command : [];
  for (let i = 0; i < command.length; i++) {
    if (command[i] === '--model' && typeof command[i + 1] === 'string') return command[i + 1];
    if (typeof command[i] === 'string' && command[i].startsWith('--model=')) return command[i].slice(8);
  }
  return null;
}

// Quote a string for a POSIX shell.
function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

// A chat completion request for the endpoint. $GATEWAY_TOKEN stands for the
// token because the UI has no gateway token to fill in.
export function curlCommand(endpoint, model) {
  const body = {
    model: model || 'MODEL',
    messages: [{ role: 'user', content: 'Write a haiku about GPUs.' }],
    max_tokens: 64,
  };
  const url = `${endpoint || 'ENDPOINT'}/chat/completions`;
  return [
    `curl ${shellQuote(url)} \\`,
    '  -H "Authorization: Bearer $GATEWAY_TOKEN" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join('\n');
}

function idleText(app) {
  if (app.idle_seconds === null || app.idle_seconds === undefined) {
    return app.status === 'queued' || app.status === 'loading' ? 'not yet serving' : '–';
  }
  const limit = app.idle_time_limit_hours;
  const limitText = limit ? `stops after ${formatDuration(limit * 3600)} idle` : 'never stopped when idle';
  return `${formatDuration(app.idle_seconds)} (${limitText})`;
}

function htmlAttr(text) {
  return String(text).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

// The <iframe> snippet for one plot of an instance over `range` seconds,
// readable with `token`.
export function embedSnippet(id, key, token, title, range) {
  const src = `${location.origin}/embed/${encodeURIComponent(id)}/${key}#key=${token}&range=${range}`;
  return `<iframe src="${htmlAttr(src)}" title="${htmlAttr(title)}" width="640" height="320" `
    + 'style="border:0" loading="lazy"></iframe>';
}

// The dialog that creates an embed key for one plot and shows its snippet.
function openEmbedDialog(app, key, range) {
  const metric = METRICS[key];
  const days = h('input', { type: 'number', id: 'embed-days', min: '0.01', max: '3650', step: 'any', value: '30' });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const result = h('div', { hidden: true });
  const create = h('button', { type: 'button', 'data-testid': 'embed-create' }, 'Create embed key');
  const close = h('button', { type: 'button', class: 'secondary' }, 'Close');
  const dialog = h('dialog', { class: 'embed-dialog', 'aria-label': `Embed ${metric.title}` },
    h('h2', {}, `Embed “${metric.title}”`),
    h('p', { class: 'muted small' },
      'An embed key can read the plots of this instance and nothing else. ',
      'It is shown once, inside the snippet.'),
    h('div', { class: 'inline' }, h('label', { for: 'embed-days' }, 'Valid for'), days, 'days', create),
    error,
    result,
    h('div', { class: 'toolbar' }, close));

  create.addEventListener('click', async () => {
    error.hidden = true;
    create.disabled = true;
    try {
      const token = await api('POST', '/api/v1/tokens', {
        scope: 'embed', instance_id: app.id, days: Number(days.value),
      });
      const snippet = embedSnippet(app.id, key, token.token, `${app.name}: ${metric.title}`, range.range);
      const area = h('textarea', { readonly: true, 'data-testid': 'embed-snippet', 'aria-label': 'Embed snippet' });
      area.value = snippet;
      replace(result,
        h('label', {}, 'Paste this into a page'),
        area,
        h('div', { class: 'toolbar' }, copyButton(() => area.value, 'Copy snippet')),
        h('p', { class: 'muted small' },
          `The key expires ${formatTime(token.expires_at)}. Revoke it at any time under `,
          h('a', { href: '#/settings?section=embed-keys' }, 'Settings'), '; the frame then shows that it was refused.'));
      result.hidden = false;
      days.disabled = true;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      create.disabled = false;
    }
  });
  close.addEventListener('click', () => dialog.close());
  // Its "Settings" link, or the browser's back button, leaves the page: the
  // dialog goes with it.
  const onNavigate = () => dialog.close();
  window.addEventListener('hashchange', onNavigate);
  dialog.addEventListener('close', () => {
    window.removeEventListener('hashchange', onNavigate);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}

// The facts panel and the curl box; refresh(app) updates both.
function buildOverview(root) {
  const status = h('span', {});
  const reason = h('span', { 'data-testid': 'status-reason' });
  const idle = h('span', { 'data-testid': 'idle-time' });
  const endpoint = h('code', { 'data-testid': 'endpoint' });
  const endpointCopy = h('span', {});
  const agent = h('span', {});
  const gpus = h('span', {});
  const started = h('span', {});
  const curl = h('pre', { 'data-testid': 'curl-command' });
  const modelHint = h('p', { class: 'muted small' });

  root.append(h('div', { class: 'grid-2' },
    h('section', { class: 'panel', 'aria-label': 'Status' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { 'data-testid': 'status' }, status),
        h('dt', {}, 'Reason'), h('dd', {}, reason),
        h('dt', {}, 'Idle time'), h('dd', {}, idle),
        h('dt', {}, 'Endpoint'), h('dd', { class: 'endpoint-line' }, endpoint, endpointCopy),
        h('dt', {}, 'Agent'), h('dd', {}, agent),
        h('dt', {}, 'GPUs'), h('dd', {}, gpus),
        h('dt', {}, 'Started'), h('dd', {}, started))),
    h('section', { class: 'panel curl-box', 'aria-label': 'Call the endpoint' },
      h('div', { class: 'toolbar' },
        h('strong', {}, 'Call it with curl'),
        h('span', {}, copyButton(() => curl.textContent, 'Copy command'))),
      curl,
      h('p', { class: 'muted small' },
        'Set GATEWAY_TOKEN to one of your gateway tokens first. ',
        h('a', { href: '#/settings?section=tokens', 'data-testid': 'generate-token' }, 'Generate token'), '.'),
      modelHint)));

  const endpointNote = h('span', { class: 'muted small', 'data-testid': 'endpoint-ended', hidden: true },
    'ended: no longer served');
  endpointCopy.after(endpointNote);

  let shownEndpoint;
  return function refresh(app) {
    replace(status, statusBadge(app.status, app.status_reason));
    reason.textContent = app.status_reason || '–';
    idle.textContent = idleText(app);
    agent.textContent = app.agent || '–';
    gpus.textContent = Array.isArray(app.gpus) && app.gpus.length ? app.gpus.join(', ') : 'none';
    started.textContent = app.started_at ? formatTime(app.started_at) : '–';

    if (app.endpoint !== shownEndpoint) {
      shownEndpoint = app.endpoint;
      endpoint.textContent = app.endpoint || 'none yet';
      replace(endpointCopy, app.endpoint ? copyButton(app.endpoint, 'Copy') : null);
    }
    // A stopped or failed instance keeps its URL, but nothing serves it any more.
    endpointNote.hidden = !app.endpoint || isLive(app.status);
    const model = servedModel(app.config);
    curl.textContent = curlCommand(app.endpoint, model);
    modelHint.textContent = model ? ''
      : 'Replace MODEL with the served model id: GET /v1/models on the endpoint lists it.';
    modelHint.hidden = Boolean(model);
  };
}

// The plot grid and the range picker, refreshed every few seconds; errors go
// to onError. Returns {picker}.
function buildPlots(root, ctx, app, onError) {
  let range = DEFAULT_RANGE;
  const plots = [];
  const grid = h('div', { class: 'plots' });

  for (const key of Object.keys(METRICS)) {
    const metric = METRICS[key];
    const body = h('div', {});
    const embed = h('button', {
      type: 'button', class: 'secondary small', 'data-testid': `embed-${key}`,
      title: `Get an <iframe> snippet that shows this plot alone`,
    }, 'Embed');
    embed.addEventListener('click', () => openEmbedDialog(app, key, range));
    grid.append(h('section', { class: 'plot-card', 'aria-label': metric.title },
      h('div', { class: 'plot-card-head' }, h('h3', {}, metric.title), embed),
      body));
    plots.push(createPlot(body, key));
  }
  root.append(grid);
  ctx.onCleanup(() => plots.forEach((plot) => plot.destroy()));

  const buttons = RANGES.map((entry) => h('button', {
    type: 'button', 'aria-pressed': entry === range ? 'true' : 'false',
    'data-range': entry.range,
  }, entry.label));
  const picker = h('div', { class: 'range-picker', role: 'group', 'aria-label': 'Time range', 'data-testid': 'range-picker' }, buttons);

  async function refresh() {
    const response = await api('GET', `/api/v1/apps/${encodeURIComponent(app.id)}/metrics?${metricsQuery(range)}`);
    for (const plot of plots) plot.update(response);
  }
  const refreshNow = poll(ctx, METRICS_POLL_MS, refresh, onError);

  buttons.forEach((button, i) => button.addEventListener('click', () => {
    range = RANGES[i];
    buttons.forEach((b, j) => b.setAttribute('aria-pressed', j === i ? 'true' : 'false'));
    refreshNow();
  }));
  return { picker };
}

// Stick to the bottom of the console unless the user scrolled up.
function isAtBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 24;
}

function logTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// The console log, following new lines every second; errors go to onError.
function buildConsole(root, ctx, id, onError) {
  const box = h('div', {
    class: 'console', role: 'log', tabindex: '0', 'aria-label': 'Console log', 'data-testid': 'console',
  });
  const follow = h('button', { type: 'button', class: 'secondary small', hidden: true }, 'Follow new lines');
  const note = h('span', { class: 'muted small' });
  root.append(h('section', { class: 'panel' },
    h('div', { class: 'console-head' }, h('h2', {}, 'Console log'), note, follow),
    box));

  let after = 0;
  let sticky = true;
  box.addEventListener('scroll', () => {
    sticky = isAtBottom(box);
    follow.hidden = sticky;
  });
  follow.addEventListener('click', () => {
    sticky = true;
    follow.hidden = true;
    box.scrollTop = box.scrollHeight;
  });

  function appendLines(lines) {
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      fragment.append(h('div', { class: `console-line stream-${line.stream}`, 'data-seq': line.seq },
        h('time', { datetime: new Date(line.time).toISOString() }, logTime(line.time)),
        line.text));
    }
    box.append(fragment);
    let extra = box.childElementCount - LOG_LINES_KEPT;
    while (extra-- > 0) box.firstElementChild.remove();
    note.textContent = box.childElementCount >= LOG_LINES_KEPT ? `last ${LOG_LINES_KEPT} lines` : '';
  }

  poll(ctx, LOG_POLL_MS, async () => {
    for (let page = 0; page < LOG_PAGES_PER_POLL; page++) {
      const res = await api('GET', `/api/v1/apps/${encodeURIComponent(id)}/logs?after=${after}&limit=${LOG_PAGE}`);
      const lines = res.lines || [];
      if (lines.length) appendLines(lines);
      after = typeof res.next === 'number' && res.next >= after ? res.next : after;
      if (lines.length < LOG_PAGE) break;
    }
    if (sticky) box.scrollTop = box.scrollHeight;
  }, onError);
}

// The status history table; refresh() reads it again.
function buildHistory(root, id) {
  const body = h('tbody', { 'data-testid': 'history' });
  root.append(h('section', { class: 'panel' },
    h('h2', {}, 'Status history'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Status'), h('th', {}, 'Reason'))),
      body))));

  return async function refresh() {
    const res = await api('GET', `/api/v1/apps/${encodeURIComponent(id)}/history`);
    const rows = (res.history || []).slice().reverse();
    replace(body, rows.map((row) => h('tr', {},
      h('td', {}, formatTime(row.time)),
      h('td', {}, statusBadge(row.status, row.reason)),
      h('td', {}, row.reason || ''))));
  };
}

export default async function render(root, ctx) {
  loadCss('/ui/vendor/uPlot.min.css');
  loadCss('/ui/views/dashboard.css');
  const id = ctx.params.id;

  let app;
  try {
    app = await api('GET', `/api/v1/apps/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(root, h('section', { class: 'panel error-panel', role: 'alert' },
        h('h1', {}, 'Instance not found'),
        h('p', {}, `No instance ${id} that you can read. `, h('a', { href: '#/apps' }, 'Back to the apps list'), '.')));
      return;
    }
    throw err;
  }
  if (!ctx.isCurrent || ctx.isCurrent()) document.title = `${app.name} · nimdeck`;

  const headStatus = h('span', {});
  const updateError = h('span', { class: 'update-error', role: 'status' });
  const head = h('div', { class: 'page-head dash-head' },
    h('h1', {}, app.name), headStatus,
    h('span', { class: 'muted' }, `${app.project} · ${app.id}`),
    updateError, h('span', { class: 'spacer' }));
  root.append(head);

  const showError = (err) => {
    updateError.textContent = `Update failed: ${err.message}`;
  };
  const refreshOverview = buildOverview(root);
  const { picker } = buildPlots(root, ctx, app, showError);
  head.append(picker);
  const consoleRow = h('div', { class: 'grid-2 dash-bottom' });
  root.append(consoleRow);
  buildConsole(consoleRow, ctx, id, showError);
  const refreshHistory = buildHistory(consoleRow, id);

  let lastTransition = null;
  poll(ctx, INSTANCE_POLL_MS, async () => {
    app = await api('GET', `/api/v1/apps/${encodeURIComponent(id)}`);
    updateError.textContent = '';
    replace(headStatus, statusBadge(app.status, app.status_reason));
    refreshOverview(app);
    const transition = `${app.status}\n${app.status_reason}`;
    if (transition !== lastTransition) {
      lastTransition = transition;
      await refreshHistory();
    }
  }, showError);
}
