// DOM helpers shared by every view: element construction, clearing,
// downloads and clipboard copy, without any framework.

// Build an element. Keys of attrs: `class`, `style` (string or object),
// `dataset` (object), `on<event>` (a function, added as listener), `value`,
// `checked` and `selected` (set as properties). A true value becomes an
// empty attribute, and null, undefined or false leave the attribute out.
// Children may be nodes, strings, numbers or nested arrays, and null,
// undefined and false children are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    setAttribute(el, key, value);
  }
  append(el, children);
  return el;
}

function setAttribute(el, key, value) {
  if (value === null || value === undefined || value === false) return;
  if (key.startsWith('on') && typeof value === 'function') {
    el.addEventListener(key.slice(2).toLowerCase(), value);
  } else if (key === 'style' && typeof value === 'object') {
    Object.assign(el.style, value);
  } else if (key === 'dataset') {
    Object.assign(el.dataset, value);
  } else if (key === 'value' || key === 'checked' || key === 'selected') {
    el[key] = value;
  } else if (value === true) {
    el.setAttribute(key, '');
  } else {
    el.setAttribute(key, String(value));
  }
}

// Append children (same forms as h) to an element and return it.
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Remove every child of el, then append the given children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

// Save text as a file through a temporary object URL.
export function download(filename, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Copy text to the clipboard. navigator.clipboard needs a secure context
// (https or localhost), so plain http on another host falls back to a
// selected textarea and execCommand. Returns true when the copy succeeded.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission denied or no focus: try the fallback below.
    }
  }
  const area = h('textarea', { readonly: true, style: { position: 'fixed', opacity: '0' } });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

// A button that copies text (a string or a function returning one) and
// shows the result on its label for two seconds.
export function copyButton(text, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'secondary' }, label);
  button.addEventListener('click', async () => {
    const ok = await copyText(typeof text === 'function' ? text() : text);
    button.textContent = ok ? 'Copied' : 'Copy failed: select and copy by hand';
    setTimeout(() => { button.textContent = label; }, 2000);
  });
  return button;
}

// Read a File chosen in an <input type=file> as text.
export function readFileText(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error || new Error(`could not read ${file.name}`));
    reader.readAsText(file);
  });
}

// Ask a yes/no question in a modal <dialog>. Resolves true when the user
// confirms; Escape, the cancel button and closing the dialog resolve false.
export function confirmDialog(message, { confirmLabel = 'OK', danger = false } = {}) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'danger' : null, value: 'ok' }, confirmLabel);
    const dialog = h('dialog', { class: 'confirm-dialog', 'aria-label': message },
      h('p', {}, message), h('div', { class: 'toolbar' }, cancel, ok));
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    ok.addEventListener('click', () => { answer = true; dialog.close(); });
    // Leaving the page (the back button) resolves false and removes the dialog.
    const onNavigate = () => dialog.close();
    window.addEventListener('hashchange', onNavigate);
    dialog.addEventListener('close', () => {
      window.removeEventListener('hashchange', onNavigate);
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
