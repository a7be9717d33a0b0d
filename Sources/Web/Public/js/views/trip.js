// Trip detail: status, people, the live map (pick-up, drop-off, car, recorded track) and the
// one next action: cancel (or, when no driver was found, try again) for the rider; accept or
// decline an offer / picked up / complete for the driver. The rider sees the search round, the
// driver's ETA, and when it is arriving and has arrived.

import { h, avatar, fullName, formatTime, STATUS_LABELS, FINISHED } from '../dom.js';
import { MapView } from '../map.js';
import { isTrip } from '../socket.js';
import { driverControls, offerControls } from './driver.js';
import { progressLine } from './rider.js';
import { haversine } from '../simulator.js';

const TAKEN = 'This trip was taken by another driver.';

const RIDER_TEXT = {
  REQUESTED: 'Looking for a driver near you…',
  STARTED: 'Your driver is on the way to the pick-up.',
  IN_PROGRESS: 'On the way to the drop-off.',
  COMPLETED: 'You have arrived. Thanks for riding!',
  CANCELED: 'This trip was canceled.',
};
const DRIVER_TEXT = {
  REQUESTED: 'A rider is waiting for a driver.',
  STARTED: 'Drive to the pick-up.',
  IN_PROGRESS: 'Drive to the drop-off.',
  COMPLETED: 'Trip completed.',
  CANCELED: 'The rider canceled this trip.',
};
// The driver's next step: [label, status sent].
const NEXT = {
  REQUESTED: ['Accept', 'STARTED'],
  STARTED: ['Picked up — drive to drop-off', 'IN_PROGRESS'],
  IN_PROGRESS: ['Complete', 'COMPLETED'],
};

export function render(outlet, ctx, tripId) {
  tripId = tripId.toLowerCase();
  const me = ctx.user;
  const isDriver = me.group === 'driver';
  const isRider = me.group === 'rider';

  const status = h('span', { id: 'trip-status', class: 'badge' }, '…');
  const statusText = h('p', { id: 'trip-status-text', class: 'status-text', 'aria-live': 'polite' });
  const route = h('p', { class: 'trip-route' });
  const people = h('div', { class: 'people' });
  const cancel = h('button', { type: 'button', id: 'cancel-trip', class: 'danger', hidden: true }, 'Cancel trip');
  const action = h('button', { type: 'button', id: 'trip-action', class: 'primary big', hidden: true }, '');
  const taken = h('p', { id: 'trip-taken', class: 'notice warning', role: 'alert', hidden: true }, TAKEN);
  // The rider's live line: search round, ETA, arriving, arrived.
  const progress = h('p', { id: 'trip-progress', class: 'muted', 'aria-live': 'polite', hidden: true });
  const retry = h('button', { type: 'button', id: 'retry-trip', class: 'primary', hidden: true }, 'Try again');
  const offerBox = h('div', { id: 'trip-offer' });
  let retrying = null;
  let pickupRadius = 0;
  ctx.config().then((c) => { pickupRadius = Number(c.pickup_radius) || 0; draw(); });
  // Metres still to the pick-up while the hub would refuse "picked up" (pickupRadius); null: allowed.
  const tooFar = () => {
    if (!trip || trip.status !== 'STARTED' || !trip.pick_up_location || !(pickupRadius > 0)) return null;
    const pos = ctx.driver.lastPosition;
    if (!pos) return Infinity;
    const d = haversine(pos, trip.pick_up_location);
    return d > pickupRadius ? d : null;
  };
  const info = h('p', { class: 'muted small trip-times' });
  const mapEl = h('div', { id: 'map', class: 'map-box' });
  const back = h('a', { href: ctx.home(me), class: 'button ghost' }, 'Back to dashboard');
  const section = h('section', { id: 'trip-detail', class: 'trip-detail', dataset: { tripId } },
    h('div', { class: 'split' },
      h('div', { class: 'card trip-card' },
        h('div', { class: 'page-head' }, h('h1', {}, 'Trip'), status),
        statusText, progress, route, people, taken, isDriver ? offerBox : null,
        h('div', { class: 'actions' }, isRider ? cancel : null, isRider ? retry : null, isDriver ? action : null, back),
        isDriver ? driverControls(ctx) : null,
        info),
      h('div', { class: 'map-wrap' }, mapEl)));
  outlet.append(section);

  const map = new MapView(mapEl, { label: 'Map of the trip' });
  ctx.config().then((c) => map.setTileUrl(c.tile_url));

  let alive = true;
  let trip = null;
  let lostRace = false;
  let busy = false;
  let busyTimer = null;
  const track = new Map(); // seq → point
  let carHeading = null;

  const mine = () => trip && trip.driver && trip.driver.id === me.id;
  const takenByOther = () => isDriver && trip && trip.driver && trip.driver.id !== me.id;

  function setBusy(on) {
    busy = on;
    clearTimeout(busyTimer);
    if (on) busyTimer = setTimeout(() => { busy = false; draw(); }, 8000);
  }

  function drawTrack() {
    const pts = [...track.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    map.setRoute(pts);
    if (pts.length && !(isDriver && mine())) {
      const last = pts[pts.length - 1];
      map.setMarker('car', last, { heading: Number.isFinite(last.heading) ? last.heading : carHeading, title: 'Driver' });
    }
  }

  function draw() {
    if (!trip) return;
    section.dataset.status = trip.status;
    status.textContent = trip.status;
    status.className = `badge badge-${trip.status.toLowerCase()}`;
    status.title = STATUS_LABELS[trip.status] || trip.status;
    const noDriver = trip.status === 'CANCELED' && trip.cancel_reason === 'no_driver_found';
    statusText.textContent = noDriver
      ? (isRider ? 'No driver found. You can try again.' : 'No driver took this trip.')
      : (isDriver ? DRIVER_TEXT : RIDER_TEXT)[trip.status] || '';
    const live = ctx.tripLive.get(tripId); // round, ETA, arriving/arrived: app.js keeps them
    const line = isRider ? progressLine(trip, live) : '';
    progress.textContent = line;
    progress.hidden = !line;
    progress.dataset.arrival = live.arrival || '';
    route.replaceChildren(
      h('span', { class: 'pin-label pick' }, 'A'), ' ', h('span', { class: 'addr', id: 'trip-pick-up' }, trip.pick_up_address),
      h('br'),
      h('span', { class: 'pin-label drop' }, 'B'), ' ', h('span', { class: 'addr', id: 'trip-drop-off' }, trip.drop_off_address));
    people.replaceChildren(
      h('div', { class: 'person', id: 'trip-rider' }, avatar(trip.rider, 40),
        h('div', {}, h('span', { class: 'muted small' }, 'Rider'), h('strong', {}, fullName(trip.rider)))),
      trip.driver
        ? h('div', { class: 'person', id: 'trip-driver' }, avatar(trip.driver, 40),
          h('div', {}, h('span', { class: 'muted small' }, 'Driver'), h('strong', {}, fullName(trip.driver))))
        : h('div', { class: 'person muted', id: 'trip-driver' }, 'No driver yet'));
    info.textContent = `Requested ${formatTime(trip.created)} · updated ${formatTime(trip.updated)}`;

    map.setMarker('pick-up', trip.pick_up_location || null, { title: `Pick-up: ${trip.pick_up_address}` });
    map.setMarker('drop-off', trip.drop_off_location || null, { title: `Drop-off: ${trip.drop_off_address}` });

    if (isRider) {
      const canCancel = trip.status === 'REQUESTED' || trip.status === 'STARTED';
      cancel.hidden = !canCancel;
      cancel.disabled = busy;
      retry.hidden = !noDriver;
      retry.disabled = !!retrying;
    }
    if (isDriver) {
      const offer = trip.status === 'REQUESTED' ? ctx.driver.offers.get(tripId) : null;
      offerBox.replaceChildren(...(offer ? [offerControls(ctx, tripId, offer)] : []));
    }
    if (isDriver) {
      const other = takenByOther() || lostRace;
      taken.hidden = !other;
      const next = NEXT[trip.status];
      const can = next && !other && (trip.status === 'REQUESTED' || mine());
      action.hidden = !can;
      if (can) {
        const far = mine() ? tooFar() : null;
        action.textContent = far === null ? next[0]
          : Number.isFinite(far) ? `Drive to the pick-up (${Math.round(far)} m to go)` : 'Share your position to pick the rider up';
        action.dataset.next = next[1];
        action.disabled = busy || far !== null;
      }
      const pos = ctx.driver.lastPosition;
      if (pos && (mine() || trip.status === 'REQUESTED')) map.setMarker('car', pos, { heading: pos.heading, title: 'You' });
      else if (other) map.setMarker('car', null);
    }
  }

  function merge(t) {
    if (!trip || !t.updated || !trip.updated || String(t.updated) >= String(trip.updated)) trip = t;
  }

  function loadTrack() {
    if (!(isRider || mine() || me.group === 'operator')) return;
    ctx.api.track(tripId).then((res) => {
      if (!alive || !res) return;
      for (const p of res.points || []) if (!track.has(p.seq)) track.set(p.seq, p);
      drawTrack();
    }).catch(() => { /* no track yet */ });
  }

  ctx.api.trip(tripId).then((t) => {
    if (!alive) return;
    merge(t);
    draw();
    loadTrack();
  }).catch((err) => {
    if (!alive || err.status === 401) return;
    if (err.status === 404) {
      status.textContent = 'Not found';
      if (isDriver) {
        taken.hidden = false;
        taken.textContent = 'This trip is no longer available: another driver took it, or it was canceled.';
      } else {
        statusText.textContent = 'This trip does not exist or is not yours.';
      }
    } else {
      statusText.textContent = `Could not load the trip: ${err.message}`;
    }
  });

  const offs = [];
  offs.push(ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!isTrip(t) || t.id !== tripId || frame.stale) return;
    const hadDriver = trip && trip.driver;
    trip = t; // frames arrive in seq order (older ones are dropped by the socket)
    setBusy(false);
    if (!hadDriver && t.driver && (isRider || mine())) loadTrack();
    draw();
  }));
  const onLive = (ev) => { if (ev.detail === tripId) draw(); };
  ctx.tripLive.addEventListener('change', onLive);
  offs.push(ctx.socket.on('trip.location', (frame) => {
    const d = frame.data;
    if (!d || d.trip_id !== tripId) return;
    if (Number.isFinite(d.heading)) carHeading = d.heading;
    track.set(d.seq ?? frame.seq, { lat: d.lat, lng: d.lng, heading: d.heading, seq: d.seq ?? frame.seq });
    drawTrack();
  }));
  offs.push(ctx.socket.on('error', (frame) => {
    const d = frame.data || {};
    if (d.request_type === 'update.trip' || d.request_type === 'cancel.trip') {
      if (d.code === 'trip_taken' && isDriver && busy) lostRace = true;
      setBusy(false);
      draw();
    }
  }));
  const onPosition = (ev) => {
    if (!trip || !isDriver) return;
    const pos = ev.detail;
    if (mine() || trip.status === 'REQUESTED') map.setMarker('car', pos, { heading: pos.heading, title: 'You' });
    if (mine() && !FINISHED.has(trip.status) && trip.status !== 'REQUESTED') map.addRoutePoint(pos);
    if (mine() && trip.status === 'STARTED') draw();
  };
  ctx.driver.addEventListener('position', onPosition);

  // No driver found: the same request again, then its page.
  retry.addEventListener('click', () => {
    if (!trip || retrying) return;
    const data = { pick_up_address: trip.pick_up_address, drop_off_address: trip.drop_off_address, rider: me.id };
    if (trip.pick_up_location) data.pick_up_location = trip.pick_up_location;
    if (trip.drop_off_location) data.drop_off_location = trip.drop_off_location;
    if (!ctx.socket.send('create.trip', data)) { ctx.toast('Not connected to the hub; try again in a moment.', 'error'); return; }
    retrying = { pick: data.pick_up_address, drop: data.drop_off_address };
    draw();
  });
  offs.push(ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!retrying || !isTrip(t) || t.id === tripId || t.status !== 'REQUESTED' || !t.rider || t.rider.id !== me.id) return;
    if (t.pick_up_address !== retrying.pick || t.drop_off_address !== retrying.drop) return;
    retrying = null;
    ctx.navigate(`#/trip/${t.id}`);
  }));
  const onOffers = () => draw();
  ctx.driver.addEventListener('offers', onOffers);
  const ticker = setInterval(() => {
    const span = offerBox.querySelector('.offer-countdown');
    const offer = ctx.driver.offers.get(tripId);
    if (span && offer) span.textContent = `${Math.max(0, Math.ceil((offer.expiresAt - Date.now()) / 1000))} s left`;
  }, 1000);

  cancel.addEventListener('click', () => {
    if (!trip || busy) return;
    if (ctx.socket.send('cancel.trip', { id: tripId })) { setBusy(true); draw(); }
    else ctx.toast('Not connected to the hub; try again in a moment.', 'error');
  });
  action.addEventListener('click', () => {
    if (!trip || busy || !action.dataset.next) return;
    if (ctx.socket.send('update.trip', { id: tripId, status: action.dataset.next, driver: me.id })) { setBusy(true); draw(); }
    else ctx.toast('Not connected to the hub; try again in a moment.', 'error');
  });

  return () => {
    alive = false;
    clearTimeout(busyTimer);
    clearInterval(ticker);
    for (const off of offs) off();
    ctx.driver.removeEventListener('offers', onOffers);
    ctx.driver.removeEventListener('position', onPosition);
    ctx.tripLive.removeEventListener('change', onLive);
    map.destroy();
  };
}
