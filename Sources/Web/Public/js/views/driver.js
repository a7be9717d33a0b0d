// Driver dashboard: requested trips (nearest first), the current trip, completed trips, the
// position-sharing and route-simulation switches, and a map with the driver's car.

import { h, statusBadge, fullName, formatDistance, syncList, ACTIVE } from '../dom.js';
import { MapView } from '../map.js';
import { isTrip } from '../socket.js';
import { haversine } from '../simulator.js';
import { tripItem } from './rider.js';

/** The #share-position / #simulate-route / #sim-speed switches (also on the trip screen). */
export function driverControls(ctx) {
  const d = ctx.driver;
  const share = h('input', { type: 'checkbox', id: 'share-position', role: 'switch', class: 'switch' });
  const sim = h('input', { type: 'checkbox', id: 'simulate-route', role: 'switch', class: 'switch' });
  const speed = h('input', { type: 'number', id: 'sim-speed', name: 'sim_speed', min: 1, max: 100, step: 1, value: d.speed, inputmode: 'decimal' });
  const where = h('p', { class: 'muted small position-readout', 'aria-live': 'off' });
  const box = h('div', { class: 'driver-controls', role: 'group', 'aria-label': 'Position' },
    h('label', { class: 'switch-label', for: 'share-position' }, share, h('span', {}, 'Share my position')),
    h('label', { class: 'switch-label', for: 'simulate-route' }, sim, h('span', {}, 'Simulate a route')),
    h('span', { class: 'speed-field' }, h('label', { for: 'sim-speed' }, 'Speed (m/s)'), speed),
    where);

  let attached = false;
  const sync = () => {
    if (box.isConnected) attached = true;
    else if (attached) { // the screen changed: stop listening
      d.removeEventListener('change', sync);
      d.removeEventListener('position', sync);
      return;
    }
    share.checked = d.sharing;
    sim.checked = d.simulating || !!d.simPending;
    const p = d.lastPosition;
    where.textContent = p ? `Last position ${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}` : 'No position shared yet.';
  };
  share.addEventListener('change', () => d.setSharing(share.checked));
  sim.addEventListener('change', () => d.setSimulating(sim.checked));
  speed.addEventListener('input', () => {
    const v = Number(speed.value);
    if (Number.isFinite(v) && v > 0) d.speed = Math.min(100, v);
  });
  d.addEventListener('change', sync);
  d.addEventListener('position', sync);
  sync();
  return box;
}

/** Sorts requested trips by distance from `pos` (trips without a pick-up location last). */
export function sortByDistance(trips, pos) {
  const dist = (t) => (pos && t.pick_up_location ? haversine(pos, t.pick_up_location) : Infinity);
  return trips.map((t) => ({ t, d: dist(t) }))
    .sort((a, b) => (a.d - b.d) || String(b.t.created).localeCompare(String(a.t.created)));
}

export function render(outlet, ctx) {
  const me = ctx.user;
  const requested = h('ul', { id: 'requested-trips', class: 'trip-list', 'aria-live': 'polite' });
  const current = h('div', { id: 'current-trip', class: 'card current-trip' });
  const completed = h('ul', { id: 'completed-trips', class: 'trip-list' });
  const mapEl = h('div', { id: 'map', class: 'map-box small-map' });
  outlet.append(h('section', { id: 'driver-dashboard', class: 'dashboard' },
    h('div', { class: 'page-head' }, h('h1', {}, `Hello, ${me.first_name || me.username}`)),
    h('div', { class: 'split' },
      h('div', {},
        h('h2', {}, 'Current trip'), current,
        h('h2', {}, 'Requested trips'), requested,
        h('h2', {}, 'Completed trips'), completed),
      h('div', { class: 'card' },
        h('h2', {}, 'Your car'),
        driverControls(ctx),
        h('div', { class: 'map-wrap' }, mapEl)))));

  const map = new MapView(mapEl, { label: 'Map of your car' });
  ctx.config().then((c) => map.setTileUrl(c.tile_url));
  const showCar = () => {
    const p = ctx.driver.lastPosition;
    map.setMarker('car', p, { heading: p ? p.heading : null, title: 'You' });
  };
  showCar();

  const trips = new Map();
  let loaded = false;

  const draw = () => {
    const all = [...trips.values()];
    const pos = ctx.driver.lastPosition;
    const req = sortByDistance(all.filter((t) => t.status === 'REQUESTED'), pos);
    syncList(requested, req.map(({ t }) => ({
      key: t.id, version: `${t.status}|${t.updated}`, build: () => tripItem(t, h('span', { class: 'distance' })),
    })), h('li', { class: 'empty muted' }, loaded ? 'No requests right now. New ones appear here.' : 'Loading…'));
    for (const { t, d } of req) {
      const span = requested.querySelector(`li[data-trip-id="${t.id}"] .distance`);
      if (span) span.textContent = Number.isFinite(d) ? `${formatDistance(d)} away` : '';
    }

    const cur = all.filter((t) => t.driver && t.driver.id === me.id && ACTIVE.has(t.status))
      .sort((a, b) => String(b.updated).localeCompare(String(a.updated)))[0];
    const sig = cur ? `${cur.id}|${cur.status}|${cur.updated}` : '-';
    if (current.dataset.version === sig) return drawCompleted(all);
    current.dataset.version = sig;
    current.replaceChildren();
    if (cur) {
      current.dataset.tripId = cur.id;
      current.append(
        h('div', { class: 'current-head' }, statusBadge(cur.status), h('span', {}, `Rider: ${fullName(cur.rider)}`)),
        h('p', { class: 'trip-route' }, `${cur.pick_up_address} → ${cur.drop_off_address}`),
        h('a', { href: `#/trip/${cur.id}`, class: 'button primary' }, 'Open trip'));
    } else {
      delete current.dataset.tripId;
      current.append(h('p', { class: 'muted' }, 'No trip right now. Pick one from the requests.'));
    }

    drawCompleted(all);
  };
  const drawCompleted = (all) => {
    const done = all.filter((t) => t.driver && t.driver.id === me.id && t.status === 'COMPLETED')
      .sort((a, b) => String(b.updated).localeCompare(String(a.updated)));
    syncList(completed, done.map((t) => ({ key: t.id, version: `${t.status}|${t.updated}`, build: () => tripItem(t) })),
      h('li', { class: 'empty muted' }, 'None yet.'));
  };

  let alive = true;
  ctx.api.trips().then((list) => {
    if (!alive) return;
    loaded = true;
    for (const t of list || []) if (!trips.has(t.id)) trips.set(t.id, t);
    draw();
  }).catch(() => { loaded = true; if (alive) draw(); });
  draw();

  const off = ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!isTrip(t) || frame.stale) return;
    if (t.status !== 'REQUESTED' && !(t.driver && t.driver.id === me.id)) trips.delete(t.id);
    else trips.set(t.id, t);
    draw();
  });
  const onPosition = () => { showCar(); draw(); };
  ctx.driver.addEventListener('position', onPosition);

  return () => {
    alive = false;
    off();
    ctx.driver.removeEventListener('position', onPosition);
    map.destroy();
  };
}
