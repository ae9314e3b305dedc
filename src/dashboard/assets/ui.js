// Small DOM helpers: every page builds its elements with h(), which sets
// text as text (never HTML), so nothing the API returns can become markup.

/** h('button', {class: 'primary', onclick: f}, 'Save') */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
/** An SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Replaces the children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
/** A time in the viewer's time zone (or '—'). */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : timeFmt.format(d);
}
/** A <time> element showing a time in the viewer's zone. */
export function timeEl(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, time(iso)) : '—';
}

/** US dollars with up to 4 decimals. */
export function money(v) {
  const n = Number(v || 0);
  return n.toLocaleString(undefined, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: n !== 0 && Math.abs(n) < 1 ? 4 : 2 });
}

/** A short message in the corner (errors stay until closed). */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null },
    h('span', {}, message),
    h('button', { class: 'link', 'aria-label': 'Dismiss', onclick: () => t.remove() }, '×'));
  box.append(t);
  if (kind !== 'error') setTimeout(() => t.remove(), 5000);
}

/** The words of an error for a person (`label`: the field's label, when known). */
export function errorText(e, label) {
  if (!e) return 'Something went wrong.';
  if (e.status === 0) return 'Voxplane cannot be reached. Check your connection and try again.';
  let m = e.message || 'Something went wrong.';
  const d = e.details;
  if (d && d.field && label) m = `${label}: ${m}`;
  else if (d && d.field && !m.includes(d.field)) m += ` (${d.field})`;
  if (d && typeof d.expected === 'string') m += ` (expected: ${d.expected})`;
  return m;
}

/** An inline error box (role=alert) for a form or a page. */
export function errorBox(e, label) {
  return h('p', { class: 'error', role: 'alert' }, errorText(e, label));
}

/** Asks a yes/no question in a modal <dialog>; resolves true on confirm. */
export function confirmDialog(question, confirmLabel = 'Confirm', danger = true) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title' });
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    mount(dlg,
      h('h2', { id: 'dlg-title' }, question),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => done(true) }, confirmLabel)));
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'muted' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

/** A form whose submit runs fn(values); shows errors in words, disables while busy. */
export function form(attrs, children, fn) {
  const err = h('div', { class: 'form-error' });
  const f = h('form', { ...attrs, novalidate: attrs.novalidate }, children, err);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    mount(err);
    for (const bad of f.querySelectorAll('[aria-invalid]')) bad.removeAttribute('aria-invalid');
    const values = Object.fromEntries(new FormData(f).entries());
    const buttons = f.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await fn(values, f);
    } catch (e) {
      // The field the API names is marked, named by its label, and focused.
      const name = e.details && e.details.field;
      const input = name && [...f.elements].find((x) => x.name === name);
      const label = input && input.id && f.querySelector(`label[for="${input.id}"]`);
      mount(err, errorBox(e, label ? label.textContent : undefined));
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return f;
}

/** A table with headings, or the empty state in words. */
export function table(columns, rows, empty, caption) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { 'data-label': c.label }, c.render(r))))))));
}

/** Client-side pagination of a list: renders one page and the pager. */
export function paged(items, perPage, render) {
  const box = h('div', {});
  let page = 0;
  const draw = () => {
    const pages = Math.max(1, Math.ceil(items.length / perPage));
    page = Math.min(page, pages - 1);
    const slice = items.slice(page * perPage, (page + 1) * perPage);
    mount(box, render(slice),
      pages > 1 ? h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; draw(); } }, 'Previous'),
        h('span', {}, `Page ${page + 1} of ${pages}`),
        h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page += 1; draw(); } }, 'Next')) : null);
  };
  draw();
  return box;
}

/** A page heading with optional actions on the right. */
export function header(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

/** A status badge. */
export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

/** Copies text, with a toast. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied to the clipboard');
  } catch {
    toast('Copy did not work here: select the text and copy it by hand', 'error');
  }
}

/** A room's name without the project's LiveKit prefix (`<prefix>_name` → `name`). */
export function shortRoom(name, prefix) {
  return name && prefix && name.startsWith(`${prefix}_`) ? name.slice(prefix.length + 1) : name;
}
