// Formatting shared by the views: durations, times, byte sizes and the
// status badge of an instance.
import { h } from './dom.js';

// "45 s", "12 min", "3 h 20 min", "2 d 4 h" from a number of seconds;
// "–" for null or undefined.
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

// Local date and time of an API time (milliseconds since the epoch).
export function formatTime(ms) {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toLocaleString();
}

// "5 s ago" style age of an API time (milliseconds since the epoch).
export function formatAgo(ms) {
  if (ms === null || ms === undefined) return 'never';
  return `${formatDuration((Date.now() - ms) / 1000)} ago`;
}

// "1.5 GiB" from a number of bytes.
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

// Symbol and CSS class per instance status. Symbols are text so that the
// badge needs no images; the status word is always written beside them.
const statusLook = {
  queued: { symbol: '◷', tone: 'muted' },
  loading: { symbol: '◌', tone: 'warn' },
  active: { symbol: '●', tone: 'ok' },
  idle: { symbol: '◐', tone: 'idle' },
  stopping: { symbol: '◼', tone: 'warn' },
  stopped: { symbol: '■', tone: 'muted' },
  failed: { symbol: '✕', tone: 'err' },
};

// A badge with the status symbol and word; title carries the reason.
export function statusBadge(status, reason) {
  const look = statusLook[status] || { symbol: '?', tone: 'muted' };
  return h('span', {
    class: `status status-${look.tone}${status === 'loading' ? ' status-spin' : ''}`,
    title: reason || status,
    dataset: { status: status || 'unknown' },
  }, h('span', { class: 'status-symbol', 'aria-hidden': 'true' }, look.symbol), ` ${status || 'unknown'}`);
}

// True for the statuses of a live instance: one that has not ended yet.
export function isLive(status) {
  return ['queued', 'loading', 'active', 'idle', 'stopping'].includes(status);
}
