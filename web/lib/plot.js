// Time-series plots of an instance's metrics and status history, drawn with
// uPlot in the colours of the current theme.
import uPlot from '/ui/vendor/uPlot.esm.js';

// Adds a stylesheet link to the document once per href.
export function loadCss(href) {
  if (document.querySelector(`link[rel="stylesheet"][href="${href}"]`)) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.append(link);
}

// ---- value formatting ----------------------------------------------------

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function round(value, digits) {
  const text = value.toFixed(digits);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

// Three significant figures at most, so axis labels stay narrow.
function short(value) {
  const abs = Math.abs(value);
  if (abs >= 100) return round(value, 0);
  if (abs >= 10) return round(value, 1);
  return round(value, 2);
}

function formatBytes(value) {
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1024 && unit < BINARY_UNITS.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${short(scaled)} ${BINARY_UNITS[unit]}`;
}

function formatCount(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${short(value / 1e9)} G`;
  if (abs >= 1e6) return `${short(value / 1e6)} M`;
  if (abs >= 1e4) return `${short(value / 1e3)} k`;
  return short(value);
}

function formatMillis(value) {
  return Math.abs(value) >= 1000 ? `${short(value / 1000)} s` : `${short(value)} ms`;
}

const FORMATTERS = {
  count: formatCount,
  rate: (v) => `${formatCount(v)}/s`,
  ms: formatMillis,
  percent: (v) => `${short(v)} %`,
  bytes: formatBytes,
  bytes_per_s: (v) => `${formatBytes(v)}/s`,
  celsius: (v) => `${short(v)} °C`,
};

// Formats a value of one of the units in METRICS; null or NaN becomes "–".
export function formatValue(unit, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return (FORMATTERS[unit] || formatCount)(value);
}

// ---- the plots -----------------------------------------------------------

// Each plot: a title, a unit and its series (the names of
// GET /api/v1/apps/ID/metrics, with legend labels). `total` names the
// `totals` entry summed over the range, for plots of counts; the others show
// their peak. The keys are also the METRIC part of embed URLs.
export const METRICS = {
  requests: {
    title: 'Requests', unit: 'count', total: 'requests',
    series: [['requests', 'requests'], ['errors', 'errors']],
  },
  tokens_per_second: {
    title: 'Tokens per second', unit: 'rate', total: 'completion_tokens', totalUnit: 'count',
    totalLabel: 'completion tokens',
    series: [['tokens_per_second', 'completion tokens/s']],
  },
  latency: {
    title: 'Latency', unit: 'ms',
    series: [['latency_ms_mean', 'mean'], ['latency_ms_p95', 'p95']],
  },
  ttft: {
    title: 'Time to first token', unit: 'ms',
    series: [['ttft_ms_mean', 'mean']],
  },
  cpu: {
    title: 'CPU', unit: 'percent',
    series: [['cpu_percent', 'host'], ['instance_cpu_percent', 'instance']],
  },
  network: {
    title: 'Network throughput', unit: 'bytes_per_s',
    series: [
      ['net_rx_bytes_per_s', 'host received'], ['net_tx_bytes_per_s', 'host sent'],
      ['instance_net_rx_bytes_per_s', 'instance received'],
      ['instance_net_tx_bytes_per_s', 'instance sent'],
    ],
  },
  disk: {
    title: 'Disk', unit: 'bytes_per_s',
    series: [
      ['disk_read_bytes_per_s', 'host read'], ['disk_write_bytes_per_s', 'host written'],
      ['instance_disk_read_bytes_per_s', 'instance read'],
      ['instance_disk_write_bytes_per_s', 'instance written'],
    ],
  },
  memory: {
    title: 'Memory', unit: 'bytes',
    series: [
      ['mem_used_bytes', 'host used'], ['mem_total_bytes', 'host total'],
      ['instance_mem_used_bytes', 'instance used'],
    ],
  },
  gpu_util: {
    title: 'GPU utilization', unit: 'percent',
    series: [['gpu_util_percent', 'mean over GPUs']],
  },
  gpu_memory: {
    title: 'GPU memory', unit: 'bytes',
    series: [['gpu_mem_used_bytes', 'used'], ['gpu_mem_total_bytes', 'total']],
  },
  gpu_temp: {
    title: 'GPU temperature', unit: 'celsius',
    series: [['gpu_temp_c', 'hottest GPU']],
  },
};

// The time ranges of the picker. Each step keeps a range at 400 buckets or
// fewer, and at 10 s or more because agents sample machine series every 5 s:
// a shorter step would leave every other bucket empty.
export const RANGES = [
  { label: '15 min', range: 900, step: 10 },
  { label: '1 h', range: 3600, step: 10 },
  { label: '6 h', range: 21600, step: 60 },
  { label: '24 h', range: 86400, step: 300 },
  { label: '7 d', range: 604800, step: 1800 },
];

// The query string of a metrics request for one RANGES entry.
export function metricsQuery(range) {
  return `step=${range.step}&range=${range.range}`;
}

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

// Colours read from the theme's CSS variables when a plot is (re)built.
function themeColors() {
  return {
    fg: cssVar('--fg', '#1f2328'),
    muted: cssVar('--muted', '#656d76'),
    border: cssVar('--border', '#d0d7de'),
    series: [
      cssVar('--plot-1', '#2f6fdb'),
      cssVar('--plot-2', '#d9822b'),
      cssVar('--plot-3', '#1f9d55'),
      cssVar('--plot-4', '#9b51e0'),
    ],
  };
}

// Calls fn whenever the theme may have changed: an attribute of <html> or
// <body> (class, data-theme, style) or the system colour scheme. Returns the
// function that stops watching.
function watchTheme(fn) {
  const observer = new MutationObserver(fn);
  const attributeFilter = ['class', 'data-theme', 'style'];
  observer.observe(document.documentElement, { attributes: true, attributeFilter });
  if (document.body) observer.observe(document.body, { attributes: true, attributeFilter });
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  media.addEventListener('change', fn);
  return () => {
    observer.disconnect();
    media.removeEventListener('change', fn);
  };
}

function lastNonNull(values) {
  for (let i = values.length - 1; i >= 0; i--) {
    if (values[i] !== null && values[i] !== undefined) return values[i];
  }
  return null;
}

function maxNonNull(values) {
  let max = null;
  for (const v of values) {
    if (v !== null && v !== undefined && (max === null || v > max)) max = v;
  }
  return max;
}

// The plot's summary from one metrics response: the latest non-null value of
// its first series, and its total (counts) or peak (the others) over the range.
export function summarize(metric, response) {
  const name = metric.series[0][0];
  const values = (response.series && response.series[name]) || [];
  const last = lastNonNull(values);
  const max = maxNonNull(values);
  let total = null;
  if (metric.total) {
    const totals = response.totals || {};
    total = typeof totals[metric.total] === 'number'
      ? totals[metric.total]
      : values.reduce((sum, v) => sum + (v || 0), 0);
  }
  return { last, max, total };
}

function summaryText(metric, summary) {
  const parts = [`latest ${formatValue(metric.unit, summary.last)}`];
  if (metric.total) {
    const label = metric.totalLabel ? ` ${metric.totalLabel}` : '';
    parts.push(`total ${formatValue(metric.totalUnit || metric.unit, summary.total)}${label}`);
  } else {
    parts.push(`peak ${formatValue(metric.unit, summary.max)}`);
  }
  return `${parts.join(', ')} in this range`;
}

// One chart in `host`, rebuilt when the theme changes and resized with the
// host. buildOptions(colors, width, height) returns the uPlot options.
class Chart {
  constructor(host, height, buildOptions) {
    this.host = host;
    this.height = height;
    this.buildOptions = buildOptions;
    this.data = null;
    this.uplot = null;
    this.stopTheme = watchTheme(() => this.rebuild());
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(host);
  }

  width() {
    return Math.max(200, Math.floor(this.host.clientWidth));
  }

  setData(data) {
    this.data = data;
    if (this.uplot && this.uplot.series.length === data.length) {
      this.uplot.setData(data);
    } else {
      this.rebuild();
    }
  }

  rebuild() {
    if (this.uplot) this.uplot.destroy();
    this.uplot = null;
    if (!this.data) return;
    const options = this.buildOptions(themeColors(), this.width(), this.height);
    this.uplot = new uPlot(options, this.data, this.host);
  }

  resize() {
    if (!this.uplot) return;
    const width = this.width();
    if (width !== this.uplot.width || this.height !== this.uplot.height) {
      this.uplot.setSize({ width, height: this.height });
    }
  }

  setHeight(height) {
    this.height = height;
    this.resize();
  }

  clear() {
    if (this.uplot) this.uplot.destroy();
    this.uplot = null;
    this.data = null;
  }

  destroy() {
    this.clear();
    this.stopTheme();
    this.resizer.disconnect();
  }
}

// Minimum pixels between two time ticks. A label such as "10:20pm" is about
// 50 px wide, and the default of uPlot 1.6.32 (50 px) lets neighbours touch
// or overlap in the narrow plot cards of the dashboard.
const TIME_TICK_SPACE = 72;

function axis(colors, extra = {}) {
  return {
    stroke: colors.muted,
    grid: { stroke: colors.border, width: 1 },
    ticks: { stroke: colors.border, width: 1 },
    ...extra,
  };
}

// Width of a y axis that fits its longest label (about 7 px a character at
// uPlot's default 12 px font), so that labels such as "9.54 MiB/s" are not cut.
function axisSize(u, values) {
  if (!values) return 40;
  const longest = values.reduce((max, v) => Math.max(max, String(v).length), 0);
  return longest * 7 + 22;
}

// Indices of the values drawn as points: those without a non-null
// neighbour, which a line alone would not show because nulls are gaps.
function isolatedPoints(u, seriesIdx) {
  const values = u.data[seriesIdx];
  const shown = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] === null || values[i] === undefined) continue;
    const before = i > 0 ? values[i - 1] : null;
    const after = i + 1 < values.length ? values[i + 1] : null;
    if ((before === null || before === undefined) && (after === null || after === undefined)) shown.push(i);
  }
  return shown;
}

function metricOptions(metric, colors, width, height) {
  const format = (v) => formatValue(metric.unit, v);
  return {
    width,
    height,
    cursor: { drag: { x: false, y: false } },
    // From 0, with room above the peak so that its point is not cut.
    scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
    axes: [
      axis(colors, { space: TIME_TICK_SPACE }),
      axis(colors, { size: axisSize, values: (u, splits) => splits.map(format) }),
    ],
    series: [
      {},
      ...metric.series.map(([, label], i) => ({
        label,
        stroke: colors.series[i % colors.series.length],
        width: 2,
        spanGaps: false,
        points: { show: true, size: 5, filter: isolatedPoints, fill: colors.series[i % colors.series.length] },
        value: (u, v) => format(v),
      })),
    ],
  };
}

// A plot of one METRICS entry in `container`, with a text summary that tests
// and screen readers can read: an element with data-testid="plot-KEY" and
// the attributes data-last, data-max and data-total (empty when unknown).
// Call update(response) with each GET /api/v1/apps/ID/metrics response and
// destroy() when the view goes away.
export function createPlot(container, key, { height = 170 } = {}) {
  const metric = METRICS[key];
  if (!metric) throw new Error(`unknown plot ${key}`);

  const summary = document.createElement('p');
  summary.className = 'plot-summary';
  summary.setAttribute('data-testid', `plot-${key}`);
  summary.textContent = 'loading…';
  const empty = document.createElement('p');
  empty.className = 'plot-empty';
  empty.hidden = true;
  const chartHost = document.createElement('div');
  chartHost.className = 'plot-chart';
  container.append(summary, empty, chartHost);

  const chart = new Chart(chartHost, height, (colors, width, h) => metricOptions(metric, colors, width, h));

  function update(response) {
    const series = response.series || {};
    const time = response.time || [];
    const columns = metric.series.map(([name]) => series[name] || time.map(() => null));
    const reported = metric.series.some(([name]) => Array.isArray(series[name]));
    const anyValue = columns.some((values) => values.some((v) => v !== null && v !== undefined));

    const s = summarize(metric, response);
    summary.setAttribute('data-last', s.last ?? '');
    summary.setAttribute('data-max', s.max ?? '');
    summary.setAttribute('data-total', s.total ?? '');
    summary.textContent = summaryText(metric, s);

    if (!anyValue) {
      empty.textContent = reported ? 'No data in this time range.' : 'No data: not reported for this instance.';
      empty.hidden = false;
      chartHost.hidden = true;
      summary.setAttribute('data-empty', reported ? 'range' : 'absent');
      chart.clear();
      return;
    }
    summary.removeAttribute('data-empty');
    empty.hidden = true;
    chartHost.hidden = false;
    chart.setData([time, ...columns]);
  }

  return {
    metric,
    update,
    setHeight: (h) => chart.setHeight(h),
    destroy: () => chart.destroy(),
  };
}

// ---- status history ------------------------------------------------------

export const STATUSES = ['queued', 'loading', 'active', 'idle', 'stopping', 'stopped', 'failed'];

function statusOptions(colors, width, height) {
  return {
    width,
    height,
    cursor: { drag: { x: false, y: false } },
    legend: { show: false },
    scales: { x: { time: true }, y: { range: [-0.5, STATUSES.length - 0.5] } },
    axes: [
      axis(colors, { space: TIME_TICK_SPACE }),
      axis(colors, {
        size: 76,
        splits: () => STATUSES.map((_, i) => i),
        values: (u, splits) => splits.map((i) => STATUSES[i] ?? ''),
      }),
    ],
    series: [
      {},
      {
        label: 'status',
        stroke: colors.series[0],
        width: 2,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { size: 6, fill: colors.series[0] },
      },
    ],
  };
}

// A step plot of an instance's statuses over time in `container`. Call
// update(history, nowMs) with the `history` array of
// GET /api/v1/apps/ID/history; the last status is drawn up to nowMs.
export function createStatusPlot(container, { height = 180 } = {}) {
  const chartHost = document.createElement('div');
  chartHost.className = 'plot-chart';
  container.append(chartHost);
  const chart = new Chart(chartHost, height, statusOptions);

  function update(history, nowMs = Date.now()) {
    const rows = (history || []).filter((row) => STATUSES.includes(row.status));
    if (rows.length === 0) {
      chart.clear();
      return;
    }
    const times = rows.map((row) => row.time / 1000);
    const levels = rows.map((row) => STATUSES.indexOf(row.status));
    const lastTime = times[times.length - 1];
    times.push(Math.max(lastTime, nowMs / 1000));
    levels.push(levels[levels.length - 1]);
    chart.setData([times, levels]);
  }

  return { update, destroy: () => chart.destroy() };
}
