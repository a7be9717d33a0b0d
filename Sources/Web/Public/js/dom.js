// Small DOM and formatting helpers shared by the views.

/**
 * Creates an element: h('button', {type: 'button', onclick: fn, dataset: {x: 1}}, 'text', child…).
 * Attributes whose value is null, undefined or false are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const STATUS_LABELS = {
  REQUESTED: 'Requested',
  STARTED: 'Driver on the way',
  IN_PROGRESS: 'In progress',
  COMPLETED: 'Completed',
  CANCELED: 'Canceled',
};
export const STATUSES = ['REQUESTED', 'STARTED', 'IN_PROGRESS', 'COMPLETED', 'CANCELED'];
export const FINISHED = new Set(['COMPLETED', 'CANCELED']);
export const ACTIVE = new Set(['STARTED', 'IN_PROGRESS']);

export function statusBadge(status) {
  return h('span', { class: `badge badge-${String(status).toLowerCase()}`, dataset: { status } },
    STATUS_LABELS[status] || status);
}

/** "Ann Rider" or the username. */
export function fullName(user) {
  if (!user) return '';
  const n = `${user.first_name || ''} ${user.last_name || ''}`.trim();
  return n || user.username || `User ${user.id}`;
}

export function avatar(user, size = 40) {
  const label = fullName(user);
  if (user && user.photo) {
    return h('img', { class: 'avatar', src: user.photo, alt: `Photo of ${label}`, width: size, height: size });
  }
  const initials = label.split(/\s+/).map((w) => w[0] || '').join('').slice(0, 2).toUpperCase() || '?';
  return h('span', { class: 'avatar avatar-initials', 'aria-hidden': 'true', style: `width:${size}px;height:${size}px` }, initials);
}

export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatDistance(m) {
  if (!Number.isFinite(m)) return '';
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(m < 10000 ? 1 : 0)} km`;
}

const toastTimers = new WeakMap();
/** Shows a toast in #toasts for ~6 s. kind: info | success | warning | error. */
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return null;
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-text' }, text), close);
  const dismiss = () => {
    clearTimeout(toastTimers.get(el));
    el.classList.add('toast-leaving');
    setTimeout(() => el.remove(), 200);
  };
  close.addEventListener('click', dismiss);
  toastTimers.set(el, setTimeout(dismiss, 6000));
  box.append(el);
  while (box.children.length > 8) box.firstElementChild.remove();
  return el;
}

/** Puts a .form-error message after an input (or in a container); null clears. */
export function fieldError(container, message) {
  let el = container.querySelector(':scope > .form-error');
  if (!message) { if (el) el.remove(); return; }
  if (!el) { el = h('p', { class: 'form-error', role: 'alert' }); container.append(el); }
  el.textContent = message;
}

/**
 * Keyed list update: keeps the <li> of each key (so elements stay the same between updates),
 * rebuilds an item only when its `version` changes, and puts them in the given order.
 * items: [{key, version, build: () => HTMLElement}].
 */
export function syncList(ul, items, empty = null) {
  const old = new Map();
  for (const li of [...ul.children]) {
    if (li.dataset.key) old.set(li.dataset.key, li); else li.remove();
  }
  let prev = null;
  for (const it of items) {
    let li = old.get(it.key);
    old.delete(it.key);
    if (!li || li.dataset.version !== it.version) {
      const fresh = it.build();
      fresh.dataset.key = it.key;
      fresh.dataset.version = it.version;
      if (li) li.replaceWith(fresh);
      li = fresh;
    }
    const want = prev ? prev.nextSibling : ul.firstChild;
    if (li !== want) ul.insertBefore(li, want);
    prev = li;
  }
  for (const li of old.values()) li.remove();
  if (!items.length && empty) ul.append(empty);
}
