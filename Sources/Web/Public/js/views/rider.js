// Rider dashboard: every open trip with its state (search round, driver, ETA, arriving,
// arrived), the finished trips, and a link to request a trip.

import { h, statusBadge, fullName, formatTime, avatar, syncList, FINISHED } from '../dom.js';
import { isTrip } from '../socket.js';

export function tripItem(t, extra = null) {
  const noDriver = t.status === 'CANCELED' && t.cancel_reason === 'no_driver_found'
    ? h('span', { class: 'muted small no-driver' }, 'No driver found') : null;
  return h('li', { dataset: { tripId: t.id, status: t.status }, class: 'trip-item' },
    h('a', { href: `#/trip/${t.id}`, class: 'trip-link' },
      h('span', { class: 'trip-route' },
        h('span', { class: 'addr' }, t.pick_up_address), h('span', { class: 'arrow', 'aria-hidden': 'true' }, ' → '),
        h('span', { class: 'addr' }, t.drop_off_address)),
      h('span', { class: 'trip-meta' }, statusBadge(t.status), noDriver, h('time', { datetime: t.created }, formatTime(t.created)), extra)));
}

/**
 * The rider's live line of an open trip, from what the trip's events said (`live`: {round,
 * arrival: 'arriving' | 'arrived', eta: seconds}); '' when there is nothing beyond the status.
 */
export function progressLine(t, live = {}) {
  if (t.status === 'REQUESTED' && live.round) return `Looking for a driver (round ${live.round}).`;
  if (t.status === 'STARTED') {
    if (live.arrival === 'arrived') return 'Your driver has arrived at the pick-up.';
    if (live.arrival === 'arriving') return 'Your driver is arriving.';
    if (Number.isFinite(live.eta)) return `Your driver is about ${Math.max(1, Math.round(live.eta / 60))} min away.`;
  }
  return '';
}

const OPEN_TEXT = {
  REQUESTED: 'Looking for a driver…',
  STARTED: 'Your driver is on the way to the pick-up.',
  IN_PROGRESS: 'On the way to the drop-off.',
};

/** One open trip on the dashboard: status, driver, live line, route, and a link to it. */
function openItem(t, live) {
  return h('li', { class: 'open-trip', dataset: { tripId: t.id, status: t.status, arrival: live.arrival || '' } },
    h('div', { class: 'current-head' }, statusBadge(t.status),
      t.driver ? h('span', { class: 'driver-chip' }, avatar(t.driver, 28), fullName(t.driver)) : h('span', { class: 'muted' }, 'No driver yet')),
    h('p', { class: 'trip-state' }, progressLine(t, live) || OPEN_TEXT[t.status] || ''),
    h('p', { class: 'trip-route' }, `${t.pick_up_address} → ${t.drop_off_address}`),
    h('a', { href: `#/trip/${t.id}`, class: 'button' }, 'Open trip'));
}

export function render(outlet, ctx) {
  const me = ctx.user;
  const open = h('ul', { id: 'open-trips', class: 'open-trips' });
  const current = h('div', { id: 'current-trip', class: 'card current-trip', 'aria-live': 'polite' }, open);
  const recent = h('ul', { id: 'recent-trips', class: 'trip-list' });
  const loading = h('p', { class: 'muted' }, 'Loading your trips…');
  const openHeading = h('h2', {}, 'Open trips');
  outlet.append(h('section', { id: 'rider-dashboard', class: 'dashboard' },
    h('div', { class: 'page-head' },
      h('h1', {}, `Hello, ${me.first_name || me.username}`),
      h('a', { href: '#/rider/request', id: 'request-trip-link', class: 'button primary' }, 'Request a trip')),
    openHeading, current,
    h('h2', {}, 'Recent trips'), loading, recent));

  const trips = new Map();
  const draw = () => {
    const list = [...trips.values()].sort((a, b) => String(b.created).localeCompare(String(a.created)));
    const unfinished = list.filter((t) => !FINISHED.has(t.status));
    current.dataset.count = String(unfinished.length);
    openHeading.textContent = unfinished.length > 1 ? `Open trips (${unfinished.length})` : 'Open trips';
    syncList(open, unfinished.map((t) => {
      const l = ctx.tripLive.get(t.id); // round, ETA, arriving/arrived: app.js keeps them
      return { key: t.id, version: `${t.status}|${t.updated}|${progressLine(t, l)}`, build: () => openItem(t, l) };
    }), h('li', { class: 'empty muted' }, 'No trip right now.'));
    syncList(recent, list.filter((t) => FINISHED.has(t.status))
      .map((t) => ({ key: t.id, version: `${t.status}|${t.updated}`, build: () => tripItem(t) })),
    h('li', { class: 'empty muted' }, 'No finished trips yet.'));
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

  const offs = [];
  offs.push(ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!isTrip(t) || frame.stale || !t.rider || t.rider.id !== me.id) return;
    trips.set(t.id, t);
    draw();
  }));
  const onLive = (ev) => { if (trips.has(ev.detail)) draw(); };
  ctx.tripLive.addEventListener('change', onLive);
  return () => { alive = false; for (const off of offs) off(); ctx.tripLive.removeEventListener('change', onLive); };
}
