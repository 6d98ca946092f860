// Building blocks of the settings sections: a panel with its own notice
// line, and table helpers.
import { h, replace } from '../lib/dom.js';

// A settings panel. Returns {element, notify(text, tone), body}: notify
// shows a result or error line at the top of the panel.
export function settingsSection(id, title, description) {
  const notice = h('div', { class: 'notice', role: 'status', hidden: true });
  const body = h('div', { class: 'section-body' });
  const element = h('section', { class: 'panel settings-section', id, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    description ? h('p', { class: 'muted' }, description) : null,
    notice, body);
  function notify(text, tone = 'ok') {
    if (!text) {
      notice.hidden = true;
      return;
    }
    notice.className = `notice ${tone}`;
    notice.setAttribute('role', tone === 'error' ? 'alert' : 'status');
    replace(notice, text);
    notice.hidden = false;
  }
  return { element, body, notify };
}

// A table with the given column headers and rows (arrays of cells), or
// `emptyText` when there are no rows.
export function table(id, headers, rows, emptyText) {
  if (rows.length === 0) return h('p', { class: 'empty', id }, emptyText);
  return h('div', { class: 'table-wrap' },
    h('table', { id },
      h('thead', {}, h('tr', {}, headers.map((label) => (label && typeof label === 'object' && !(label instanceof Node)
        ? h('th', { class: label.class }, label.text)
        : h('th', {}, label))))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => (cell instanceof HTMLTableCellElement ? cell : h('td', {}, cell))))))));
}

// Run an action of a section: show its error in the section instead of
// letting it escape, and reload the section afterwards.
export async function runAction(section, fn, reload) {
  try {
    await fn();
  } catch (err) {
    section.notify(err.message, 'error');
  }
  if (reload) await reload().catch((err) => section.notify(err.message, 'error'));
}
