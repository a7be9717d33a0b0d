// Request a trip: addresses, pick-up (and drop-off) points from geolocation or map clicks,
// create.trip over the socket, then the trip's detail.

import { h, fieldError } from '../dom.js';
import { MapView } from '../map.js';
import { isTrip } from '../socket.js';

const fmt = (p) => `${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}`;

export function render(outlet, ctx) {
  const me = ctx.user;
  const points = { 'pick-up': null, 'drop-off': null };

  const pickUp = h('input', { id: 'pick_up_address', name: 'pick_up_address', type: 'text', required: true, maxlength: 255, autocomplete: 'street-address' });
  const dropOff = h('input', { id: 'drop_off_address', name: 'drop_off_address', type: 'text', required: true, maxlength: 255 });
  const pickUpPoint = h('output', { id: 'pick-up-point', class: 'point', 'aria-live': 'polite', for: 'map' }, 'Not chosen');
  const dropOffPoint = h('output', { id: 'drop-off-point', class: 'point', 'aria-live': 'polite' }, 'Not chosen');
  const useMyLocation = h('button', { type: 'button', id: 'use-my-location', class: 'small' }, 'Use my location');
  const clearPoints = h('button', { type: 'button', id: 'clear-points', class: 'small ghost' }, 'Clear points');
  const modePick = h('input', { type: 'radio', name: 'click_sets', value: 'pick-up', checked: true });
  const modeDrop = h('input', { type: 'radio', name: 'click_sets', value: 'drop-off' });
  const mapEl = h('div', { id: 'map', class: 'map-box' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Request trip');
  const general = h('div', { class: 'form-general' });

  const form = h('form', { id: 'request-form', class: 'card form', novalidate: true },
    h('div', { class: 'field', dataset: { field: 'pick_up_address' } }, h('label', { for: 'pick_up_address' }, 'Pick-up address'), pickUp),
    h('div', { class: 'field', dataset: { field: 'drop_off_address' } }, h('label', { for: 'drop_off_address' }, 'Drop-off address'), dropOff),
    h('fieldset', { class: 'field choice' },
      h('legend', {}, 'A click on the map sets the'),
      h('label', { class: 'radio' }, modePick, ' pick-up point'),
      h('label', { class: 'radio' }, modeDrop, ' drop-off point')),
    h('div', { class: 'points' },
      h('p', {}, h('span', { class: 'pin-label pick' }, 'A'), ' Pick-up point: ', pickUpPoint),
      h('p', {}, h('span', { class: 'pin-label drop' }, 'B'), ' Drop-off point: ', dropOffPoint),
      h('div', { class: 'row' }, useMyLocation, clearPoints)),
    general,
    h('div', { class: 'form-actions' }, h('a', { href: '#/rider', class: 'button ghost' }, 'Back'), submit));

  outlet.append(h('section', { class: 'request-trip' },
    h('h1', {}, 'Request a trip'),
    h('div', { class: 'split' }, form, h('div', { class: 'map-wrap' }, mapEl))));

  const map = new MapView(mapEl, { label: 'Map of the trip', onClick: (p) => setPoint(modeDrop.checked ? 'drop-off' : 'pick-up', p, true) });
  ctx.config().then((c) => map.setTileUrl(c.tile_url));
  if (ctx.driver.lastPosition) map.setView(ctx.driver.lastPosition, 14);

  function setPoint(which, p, fromClick = false) {
    points[which] = p ? { lat: p.lat, lng: p.lng } : null;
    const out = which === 'pick-up' ? pickUpPoint : dropOffPoint;
    if (p) {
      out.dataset.lat = String(p.lat);
      out.dataset.lng = String(p.lng);
      out.textContent = fmt(p);
    } else {
      delete out.dataset.lat;
      delete out.dataset.lng;
      out.textContent = 'Not chosen';
    }
    map.setMarker(which, points[which]);
    // After the pick-up is chosen, the next click sets the drop-off.
    if (fromClick && which === 'pick-up' && p) modeDrop.checked = true;
  }

  clearPoints.addEventListener('click', () => {
    setPoint('pick-up', null);
    setPoint('drop-off', null);
    modePick.checked = true;
  });

  useMyLocation.addEventListener('click', () => {
    fieldError(general, null);
    if (!navigator.geolocation) {
      fieldError(general, 'This browser cannot tell where you are; click the map instead.');
      return;
    }
    useMyLocation.disabled = true;
    useMyLocation.textContent = 'Locating…';
    navigator.geolocation.getCurrentPosition((pos) => {
      if (!alive) return;
      useMyLocation.disabled = false;
      useMyLocation.textContent = 'Use my location';
      setPoint('pick-up', { lat: pos.coords.latitude, lng: pos.coords.longitude });
      modeDrop.checked = true;
    }, (err) => {
      if (!alive) return;
      useMyLocation.disabled = false;
      useMyLocation.textContent = 'Use my location';
      fieldError(general, `Your location is not available (${err.message || 'denied'}); click the map instead.`);
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  });

  let alive = true;
  let pending = null; // {pick, drop} while waiting for the hub to create the trip
  let pendingTimer = null;

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll('.form-error')) el.remove();
    const pick = pickUp.value.trim();
    const drop = dropOff.value.trim();
    let bad = false;
    if (!pick) { fieldError(form.querySelector('[data-field=pick_up_address]'), 'Enter a pick-up address.'); bad = true; }
    if (!drop) { fieldError(form.querySelector('[data-field=drop_off_address]'), 'Enter a drop-off address.'); bad = true; }
    if (bad) return;
    const data = { pick_up_address: pick, drop_off_address: drop, rider: me.id };
    if (points['pick-up']) {
      data.pick_up_location = points['pick-up'];
      if (points['drop-off']) data.drop_off_location = points['drop-off'];
    }
    if (!ctx.socket.send('create.trip', data)) {
      fieldError(general, 'Not connected to the hub; try again in a moment.');
      return;
    }
    pending = { pick, drop };
    submit.disabled = true;
    submit.textContent = 'Requesting…';
    clearTimeout(pendingTimer);
    pendingTimer = setTimeout(() => {
      if (!alive || !pending) return;
      pending = null;
      submit.disabled = false;
      submit.textContent = 'Request trip';
      fieldError(general, 'The hub did not answer; check your trips before trying again.');
    }, 15000);
  });

  const offTrip = ctx.socket.on('echo.message', (frame) => {
    const t = frame.data;
    if (!pending || !isTrip(t) || t.status !== 'REQUESTED' || !t.rider || t.rider.id !== me.id) return;
    if (t.pick_up_address !== pending.pick || t.drop_off_address !== pending.drop) return;
    pending = null;
    clearTimeout(pendingTimer);
    ctx.navigate(`#/trip/${t.id}`);
  });
  const offError = ctx.socket.on('error', (frame) => {
    if (!pending || !frame.data || frame.data.request_type !== 'create.trip') return;
    pending = null;
    clearTimeout(pendingTimer);
    submit.disabled = false;
    submit.textContent = 'Request trip';
    fieldError(general, frame.data.message);
  });

  return () => { alive = false; offTrip(); offError(); clearTimeout(pendingTimer); map.destroy(); };
}
