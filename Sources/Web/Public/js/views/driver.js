// Driver dashboard: requested trips (nearest first; an offer with its countdown and a Decline
// button), the current trip, completed trips, the online, position-sharing and route-simulation
// switches, and a map with the driver's car.

import { h, statusBadge, fullName, formatDistance, syncList, ACTIVE } from '../dom.js';
import { MapView } from '../map.js';
import { isTrip } from '../socket.js';
import { haversine } from '../simulator.js';
import { tripItem } from './rider.js';

/** Seconds left of an offer, for its countdown. */
export function secondsLeft(offer, now = Date.now()) {
  return Math.max(0, Math.ceil((offer.expiresAt - now) / 1000));
}

/** An offer's line: round, distance and ETA, the countdown, and #decline-<trip id>. */
export function offerControls(ctx, tripId, offer) {
  const countdown = h('span', { class: 'offer-countdown', dataset: { tripId } }, `${secondsLeft(offer)} s left`);
  const decline = h('button', { type: 'button', class: 'ghost small decline-offer', id: `decline-${tripId}` }, 'Decline');
  decline.addEventListener('click', (ev) => {
    ev.preventDefault();
    if (!ctx.driver.decline(tripId)) ctx.toast('Not connected to the hub; try again in a moment.', 'error');
    else decline.disabled = true;
  });
  const eta = Number.isFinite(offer.eta) ? ` · about ${Math.max(1, Math.round(offer.eta / 60))} min away` : '';
  return h('div', { class: 'offer', dataset: { tripId } },
    h('span', { class: 'muted small' }, `Offer (round ${offer.round})${eta}`), ' ', countdown, ' ', decline);
}

/** The #share-position / #simulate-route / #sim-speed switches (also on the trip screen), and #driver-online. */
export function driverControls(ctx) {
  const d = ctx.driver;
  const online = h('input', { type: 'checkbox', id: 'driver-online', role: 'switch', class: 'switch' });
  const share = h('input', { type: 'checkbox', id: 'share-position', role: 'switch', class: 'switch' });
  const sim = h('input', { type: 'checkbox', id: 'simulate-route', role: 'switch', class: 'switch' });
  const speed = h('input', { type: 'number', id: 'sim-speed', name: 'sim_speed', min: 1, max: 100, step: 1, value: d.speed, inputmode: 'decimal' });
  const where = h('p', { class: 'muted small position-readout', 'aria-live': 'off' });
  const box = h('div', { class: 'driver-controls', role: 'group', 'aria-label': 'Position' },
    h('label', { class: 'switch-label', for: 'driver-online' }, online, h('span', {}, 'Online (get offers)')),
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
    online.checked = d.online;
    share.checked = d.sharing;
    sim.checked = d.simulating || !!d.simPending;
    const p = d.lastPosition;
    where.textContent = p ? `Last position ${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}` : 'No position shared yet.';
  };
  online.addEventListener('change', () => d.setOnline(online.checked));
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
    syncList(requested, req.map(({ t }) => {
      const offer = ctx.driver.offers.get(t.id);
      return {
        key: t.id, version: `${t.status}|${t.updated}|${offer ? offer.expiresAt : '-'}`,
        build: () => {
          const item = tripItem(t, h('span', { class: 'distance' }));
          if (offer) item.append(offerControls(ctx, t.id, offer));
          return item;
        },
      };
    }), h('li', { class: 'empty muted' }, loaded ? (ctx.driver.online ? 'No requests right now. New ones appear here.' : 'You are offline: no offers.') : 'Loading…'));
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
  // An offer that ended while the trip still waits (expired, declined, withdrawn) leaves the list.
  const offWithdrawn = ctx.socket.on('trip.offer_withdrawn', (frame) => {
    const id = frame.data && frame.data.trip_id;
    const t = trips.get(id);
    if (t && t.status === 'REQUESTED') trips.delete(id);
    draw();
  });
  const onOffers = () => draw();
  ctx.driver.addEventListener('offers', onOffers);
  ctx.driver.addEventListener('change', onOffers);
  const ticker = setInterval(() => {
    for (const span of requested.querySelectorAll('.offer-countdown')) {
      const offer = ctx.driver.offers.get(span.dataset.tripId);
      span.textContent = offer ? `${secondsLeft(offer)} s left` : '';
    }
  }, 1000);

  return () => {
    alive = false;
    off();
    offWithdrawn();
    clearInterval(ticker);
    ctx.driver.removeEventListener('position', onPosition);
    ctx.driver.removeEventListener('offers', onOffers);
    ctx.driver.removeEventListener('change', onOffers);
    map.destroy();
  };
}
