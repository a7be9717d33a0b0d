// Rider dashboard: the current trip, recent trips, and a link to request a trip.

import { h, statusBadge, fullName, formatTime, avatar, syncList, FINISHED } from '../dom.js';
import { isTrip } from '../socket.js';

export function tripItem(t, extra = null) {
  return h('li', { dataset: { tripId: t.id, status: t.status }, class: 'trip-item' },
    h('a', { href: `#/trip/${t.id}`, class: 'trip-link' },
      h('span', { class: 'trip-route' },
        h('span', { class: 'addr' }, t.pick_up_address), h('span', { class: 'arrow', 'aria-hidden': 'true' }, ' → '),
        h('span', { class: 'addr' }, t.drop_off_address)),
      h('span', { class: 'trip-meta' }, statusBadge(t.status), h('time', { datetime: t.created }, formatTime(t.created)), extra)));
}

export function render(outlet, ctx) {
  const me = ctx.user;
  const current = h('div', { id: 'current-trip', class: 'card current-trip', 'aria-live': 'polite' });
  const recent = h('ul', { id: 'recent-trips', class: 'trip-list' });
  const loading = h('p', { class: 'muted' }, 'Loading your trips…');
  outlet.append(h('section', { id: 'rider-dashboard', class: 'dashboard' },
    h('div', { class: 'page-head' },
      h('h1', {}, `Hello, ${me.first_name || me.username}`),
      h('a', { href: '#/rider/request', id: 'request-trip-link', class: 'button primary' }, 'Request a trip')),
    h('h2', {}, 'Current trip'), current,
    h('h2', {}, 'Recent trips'), loading, recent));

  const trips = new Map();
  const draw = () => {
    const list = [...trips.values()].sort((a, b) => String(b.created).localeCompare(String(a.created)));
    const cur = list.find((t) => !FINISHED.has(t.status));
    const sig = cur ? `${cur.id}|${cur.status}|${cur.updated}` : '-';
    if (current.dataset.version !== sig) {
    current.dataset.version = sig;
    current.replaceChildren();
    if (cur) {
      current.dataset.tripId = cur.id;
      current.append(
        h('div', { class: 'current-head' }, statusBadge(cur.status),
          cur.driver ? h('span', { class: 'driver-chip' }, avatar(cur.driver, 28), fullName(cur.driver)) : h('span', { class: 'muted' }, 'Waiting for a driver…')),
        h('p', { class: 'trip-route' }, `${cur.pick_up_address} → ${cur.drop_off_address}`),
        h('a', { href: `#/trip/${cur.id}`, class: 'button' }, 'Open trip'));
    } else {
      delete current.dataset.tripId;
      current.append(h('p', { class: 'muted' }, 'No trip right now.'));
    }
    }
    syncList(recent, list.map((t) => ({ key: t.id, version: `${t.status}|${t.updated}`, build: () => tripItem(t) })),
      h('li', { class: 'empty muted' }, 'No trips yet.'));
  };

  let alive = true;
  ctx.api.trips().then((list) => {
    if (!alive) return;
    loading.remove();
    for (const t of list || []) if (!trips.has(t.id)) trips.set(t.id, t);
    draw();
  }).catch((err) => {
    if (alive && err.status !== 401) loading.textContent = `Could not load your trips: ${err.message}`;
  });
  draw();

  const off = ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!isTrip(t) || frame.stale || !t.rider || t.rider.id !== me.id) return;
    trips.set(t.id, t);
    draw();
  });
  return () => { alive = false; off(); };
}
