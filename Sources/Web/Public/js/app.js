// Start-up and the hash router (#/login, #/rider, #/trip/<id>, …).

import { api } from './api.js';
import { HubSocket, isTrip } from './socket.js';
import { hubs } from './hubs.js';
import { RouteSimulator } from './simulator.js';
import { DEFAULT_CENTER } from './map.js';
import { h, toast, fullName, ACTIVE, FINISHED } from './dom.js';
import * as landing from './views/landing.js';
import * as login from './views/login.js';
import * as signup from './views/signup.js';
import * as rider from './views/rider.js';
import * as request from './views/request.js';
import * as trip from './views/trip.js';
import * as driver from './views/driver.js';
import * as operator from './views/operator.js';

const socket = new HubSocket(api);

const HOME = { rider: '#/rider', driver: '#/driver', operator: '#/operator' };

/** The driver's position sharing, route simulation and active trip: they outlive the views. */
class DriverServices extends EventTarget {
  constructor() {
    super();
    this.userId = null;
    this.lastPosition = null;
    this.activeTrip = null;
    this.watchId = null;
    this.sim = null;
    this.speed = 15;
    this.online = true;
    // Live offers of trips with a pick-up point: trip id → {expiresAt (ms, this clock), round, distance, eta}.
    this.offers = new Map();
  }

  get sharing() { return this.watchId !== null; }
  get simulating() { return !!this.sim; }

  begin(userId) {
    if (this.userId === userId) return;
    this.end();
    this.userId = userId;
    try {
      const saved = JSON.parse(localStorage.getItem(`taxihub.position.${userId}`) || 'null');
      if (saved && Number.isFinite(saved.lat) && Number.isFinite(saved.lng)) this.lastPosition = saved;
    } catch { /* ignore a damaged entry */ }
    api.trips().then((trips) => {
      const mine = (trips || []).find((t) => t.driver && t.driver.id === userId && ACTIVE.has(t.status));
      if (mine && !this.activeTrip) this.setActiveTrip(mine);
    }).catch(() => {});
  }

  end() {
    this.setSharing(false);
    this.setSimulating(false);
    this.userId = null;
    this.lastPosition = null;
    this.activeTrip = null;
    this.online = true;
    this.offers.clear();
  }

  /** Goes offline (no offers; a trip under way goes on) or back online (docs/protocol.md §3.7). */
  setOnline(on) {
    this.online = !!on;
    if (!on) this.offers.clear();
    socket.send('update.availability', { online: this.online });
    this.changed();
  }

  /** An offer's frame (`echo.message` with `offer`), a withdrawal, or a trip that stopped waiting. */
  noteOffer(t, offer) {
    if (offer && t.status === 'REQUESTED') {
      const seconds = Number(offer.expires_in);
      this.offers.set(t.id, { ...offer, expiresAt: Date.now() + (Number.isFinite(seconds) ? seconds * 1000 : 0) });
    } else if (!offer && t.status !== 'REQUESTED') {
      this.offers.delete(t.id);
    } else {
      return;
    }
    this.dispatchEvent(new Event('offers'));
  }

  offerEnded(tripId) {
    if (this.offers.delete(tripId)) this.dispatchEvent(new Event('offers'));
  }

  /** Says no to a live offer; the withdrawal frame takes it off the list. */
  decline(tripId) {
    return socket.send('decline.trip', { id: tripId });
  }

  changed() { this.dispatchEvent(new Event('change')); }

  /** Follows trip states: the driver's own active trip. */
  noteTrip(t) {
    if (!this.userId || !t.driver || t.driver.id !== this.userId) {
      if (this.activeTrip && this.activeTrip.id === t.id) this.setActiveTrip(null);
      return;
    }
    if (ACTIVE.has(t.status)) this.setActiveTrip(t);
    else if (this.activeTrip && this.activeTrip.id === t.id && FINISHED.has(t.status)) this.setActiveTrip(null);
  }

  setActiveTrip(t) {
    this.activeTrip = t;
    this.changed();
  }

  report(loc, { send = true } = {}) {
    this.lastSent = Date.now();
    this.lastPosition = { lat: loc.lat, lng: loc.lng, heading: loc.heading ?? null };
    try { localStorage.setItem(`taxihub.position.${this.userId}`, JSON.stringify(this.lastPosition)); } catch { /* full */ }
    if (send) socket.send('update.location', loc);
    this.dispatchEvent(new CustomEvent('position', { detail: this.lastPosition }));
  }

  setSharing(on) {
    if (on && this.watchId === null) {
      if (!navigator.geolocation) {
        toast('This browser cannot share its location.', 'error');
        this.changed();
        return;
      }
      this.watchId = navigator.geolocation.watchPosition((pos) => {
        if (this.sim) return; // the simulation drives the car
        const c = pos.coords;
        const loc = { lat: c.latitude, lng: c.longitude, timestamp: Math.round(pos.timestamp || Date.now()) };
        if (Number.isFinite(c.heading) && c.heading >= 0 && c.heading < 360) loc.heading = c.heading;
        if (Number.isFinite(c.speed) && c.speed >= 0) loc.speed = Math.min(100, c.speed);
        if (Number.isFinite(c.accuracy) && c.accuracy >= 0) loc.accuracy = Math.min(100000, c.accuracy);
        this.report(loc);
      }, (err) => {
        toast(`Your position is not available: ${err.message || 'permission denied'}.`, 'warning');
        if (err.code === 1) this.setSharing(false);
      }, { enableHighAccuracy: true, maximumAge: 2000, timeout: 20000 });
      // A device standing still reports no new fix; the hub takes a driver without one for
      // `stalePositionAfter` (30 s) as stale and offers it nothing: say it is still there.
      this.keepAlive = setInterval(() => {
        if (this.sim || !this.lastPosition || Date.now() - (this.lastSent || 0) < 10000) return;
        const p = this.lastPosition;
        const loc = { lat: p.lat, lng: p.lng, timestamp: Date.now() };
        if (Number.isFinite(p.heading)) loc.heading = p.heading;
        this.report(loc);
      }, 5000);
    } else if (!on && this.watchId !== null) {
      navigator.geolocation.clearWatch(this.watchId);
      this.watchId = null;
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
    this.changed();
  }

  async startPoint() {
    if (this.lastPosition) return this.lastPosition;
    if (navigator.geolocation) {
      const p = await new Promise((resolve) => {
        navigator.geolocation.getCurrentPosition(
          (pos) => resolve({ lat: pos.coords.latitude, lng: pos.coords.longitude }),
          () => resolve(null),
          { timeout: 2000, maximumAge: 60000 },
        );
        setTimeout(() => resolve(null), 2500);
      });
      if (p) return p;
    }
    return { ...DEFAULT_CENTER };
  }

  async setSimulating(on) {
    if (on && !this.sim) {
      this.simPending = true;
      const start = await this.startPoint();
      if (!this.simPending) return;
      this.simPending = false;
      this.sim = new RouteSimulator({
        start,
        getTrip: () => this.activeTrip,
        getSpeed: () => this.speed,
        report: (loc) => this.report(loc),
      });
      this.sim.start();
    } else if (!on) {
      this.simPending = false;
      if (this.sim) { this.sim.stop(); this.sim = null; }
    }
    this.changed();
  }
}

const driverServices = new DriverServices();

/**
 * What the events of the rider's trips said, kept across screens (the dashboard and the trip
 * page both show it): trip id → {round, arrival: 'arriving' | 'arrived', eta: seconds}.
 * 'change' (detail: trip id) after each update.
 */
class TripLive extends EventTarget {
  constructor() {
    super();
    this.trips = new Map();
  }

  get(tripId) { return this.trips.get(tripId) || {}; }

  note(tripId, fn) {
    if (typeof tripId !== 'string') return;
    const e = this.trips.get(tripId) || {};
    fn(e);
    this.trips.set(tripId, e);
    this.dispatchEvent(new CustomEvent('change', { detail: tripId }));
  }

  forget(tripId) { this.trips.delete(tripId); }

  clear() { this.trips.clear(); }
}

const tripLive = new TripLive();
socket.on('trip.searching', (f) => tripLive.note(f.data && f.data.trip_id, (e) => { e.round = f.data.round; }));
socket.on('trip.driver_arriving', (f) => tripLive.note(f.data && f.data.trip_id, (e) => { e.arrival = e.arrival || 'arriving'; }));
socket.on('trip.driver_arrived', (f) => tripLive.note(f.data && f.data.trip_id, (e) => { e.arrival = 'arrived'; }));
socket.on('trip.location', (f) => {
  const d = f.data;
  if (d && Number.isFinite(d.pickup_eta)) tripLive.note(d.trip_id, (e) => { e.eta = d.pickup_eta; });
});

const ctx = {
  api,
  socket,
  driver: driverServices,
  tripLive,
  toast,
  get user() { return api.user; },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  home(user = api.user) { return (user && HOME[user.group]) || '#/'; },
  config: () => api.clientConfig(),
  /** After log-in: start the session's socket and go home. */
  loggedIn(user) {
    socket.stop();
    driverServices.end();
    tripLive.clear();
    startSession();
    ctx.navigate(ctx.home(user));
  },
  logOut() {
    socket.stop();
    driverServices.end();
    tripLive.clear();
    api.logOut();
    updateHeader();
    ctx.navigate('#/');
  },
};

// ---- toasts for trip events and errors ----

function tripToast(t) {
  const me = api.user;
  if (!me) return;
  const mineAsRider = t.rider && t.rider.id === me.id;
  const mineAsDriver = t.driver && t.driver.id === me.id;
  const to = t.drop_off_address ? ` to ${t.drop_off_address}` : '';
  let text = null;
  let kind = 'info';
  switch (t.status) {
    case 'REQUESTED':
      if (mineAsRider) { text = `Trip requested: ${t.pick_up_address} → ${t.drop_off_address}.`; }
      else if (me.group === 'driver') { text = `New trip nearby: pick-up at ${t.pick_up_address}.`; kind = 'success'; }
      break;
    case 'STARTED':
      if (mineAsRider) { text = `${fullName(t.driver) || 'A driver'} accepted your trip and is on the way.`; kind = 'success'; }
      else if (mineAsDriver) { text = `You accepted the trip: drive to ${t.pick_up_address}.`; kind = 'success'; }
      else if (me.group === 'driver') text = `A trip${to} was taken by another driver.`;
      break;
    case 'IN_PROGRESS':
      if (mineAsRider) text = `You have been picked up; on the way${to}.`;
      else if (mineAsDriver) text = `Trip in progress: drive${to}.`;
      else if (me.group === 'driver') text = `A trip${to} was taken by another driver.`;
      break;
    case 'COMPLETED':
      if (mineAsRider || mineAsDriver) { text = `Trip completed${to}.`; kind = 'success'; }
      else if (me.group === 'driver') text = `A trip${to} was taken by another driver.`;
      break;
    case 'CANCELED':
      if (t.cancel_reason === 'no_driver_found') {
        text = mineAsRider ? `No driver found for your trip${to}. You can try again.` : `No driver took the trip${to}.`;
      } else {
        text = mineAsRider ? `Your trip${to} was canceled.` : `The rider canceled the trip${to}.`;
      }
      kind = 'warning';
      break;
    default:
      break;
  }
  if (text) toast(text, kind);
}

socket.on('echo.message', (frame) => {
  if (!isTrip(frame.data)) return; // an echo reply
  if (!frame.stale) {
    driverServices.noteTrip(frame.data);
    driverServices.noteOffer(frame.data, frame.offer || null);
    if (FINISHED.has(frame.data.status)) tripLive.forget(frame.data.id);
  }
  tripToast(frame.data);
});

socket.on('trip.offer_withdrawn', (frame) => {
  const d = frame.data || {};
  driverServices.offerEnded(d.trip_id);
  if (d.reason === 'expired') toast('An offer expired.', 'info');
});

socket.on('trip.driver_arriving', () => toast('Your driver is arriving.', 'success'));
socket.on('trip.driver_arrived', () => toast('Your driver has arrived at the pick-up.', 'success'));

// A hub forgets a driver's break when its last connection closes: say it again on every connect.
socket.addEventListener('open', () => {
  if (api.user && api.user.group === 'driver' && !driverServices.online) socket.send('update.availability', { online: false });
});

socket.on('error', (frame) => {
  const d = frame.data || {};
  if (d.request_type === 'resume') return; // a resume of a trip we no longer belong to: harmless
  if (d.code === 'rate_limited') return;   // the next position goes through
  toast(d.message || 'The hub refused a message.', 'error');
});

// ---- header ----

const stateLabels = { connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' };

function showConnection(state = socket.state) {
  const el = document.getElementById('connection-state');
  el.dataset.state = state;
  el.dataset.hub = hubs.current;
  el.querySelector('.connection-label').textContent = stateLabels[state] || state;
  el.title = `Connection: ${stateLabels[state] || state} · hub ${hubs.current}`;
  // With several hubs, which one this page is on (host and port), after the state.
  let hub = el.querySelector('.connection-hub');
  if (hubs.count > 1) {
    if (!hub) { hub = h('span', { class: 'connection-hub' }); el.append(hub); }
    hub.textContent = new URL(hubs.current).host;
  } else if (hub) {
    hub.remove();
  }
}
socket.on('state', showConnection);
hubs.addEventListener('change', () => showConnection());

function updateHeader() {
  const user = api.user;
  const box = document.getElementById('user-box');
  const logout = document.getElementById('logout');
  box.replaceChildren();
  if (user && api.loggedIn) {
    box.append(h('a', { href: ctx.home(user), class: 'user-link' },
      h('span', { class: 'user-name' }, fullName(user)),
      h('span', { class: 'user-group' }, user.group)));
    logout.hidden = false;
  } else {
    logout.hidden = true;
  }
  if (!api.loggedIn) showConnection('offline');
}

// ---- router ----

const routes = [
  { re: /^#?\/?$/, view: landing, public: true },
  { re: /^#\/login$/, view: login, public: true },
  { re: /^#\/signup$/, view: signup, public: true },
  { re: /^#\/rider$/, view: rider, group: 'rider' },
  { re: /^#\/rider\/request$/, view: request, group: 'rider' },
  { re: /^#\/driver$/, view: driver, group: 'driver' },
  { re: /^#\/operator$/, view: operator, group: 'operator' },
  { re: /^#\/trip\/([0-9a-fA-F-]{1,64})$/, view: trip },
];

let cleanup = null;
let generation = 0;

function route() {
  const hash = location.hash || '#/';
  const user = api.loggedIn ? api.user : null;
  let match = null;
  let params = [];
  for (const r of routes) {
    const m = hash.match(r.re);
    if (m) { match = r; params = m.slice(1); break; }
  }
  if (!match) { ctx.navigate(user ? ctx.home(user) : '#/'); return; }
  if (!match.public && !user) { ctx.navigate('#/login'); return; }
  if (match.group && user.group !== match.group) { ctx.navigate(ctx.home(user)); return; }
  if (match.view === landing && user) { ctx.navigate(ctx.home(user)); return; }

  if (cleanup) { try { cleanup(); } catch { /* a view failing to clean up must not stop the app */ } }
  cleanup = null;
  const outlet = document.getElementById('view');
  outlet.replaceChildren();
  updateHeader();
  const gen = ++generation;
  const result = match.view.render(outlet, ctx, ...params);
  cleanup = typeof result === 'function' ? result : null;
  if (gen === generation) {
    const heading = outlet.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      if (!outlet.contains(document.activeElement) || document.activeElement === document.body) {
        heading.focus({ preventScroll: true });
      }
    }
    document.title = `${heading ? heading.textContent + ' · ' : ''}TaxiHub`;
  }
}

function startSession() {
  const user = api.user;
  if (!user) return;
  socket.start(user.id);
  if (user.group === 'driver') driverServices.begin(user.id);
  api.scheduleRefresh();
  updateHeader();
}

api.addEventListener('session-ended', () => {
  socket.stop();
  driverServices.end();
  tripLive.clear();
  updateHeader();
  if (location.hash !== '#/login') {
    ctx.navigate('#/login');
    return;
  }
  // Already on the log-in screen: show the message without wiping the form. Without the screen
  // yet, an earlier end of the session set the hash and its hashchange is still to come; that
  // render shows the message (rendering now as well would let the second render find it taken).
  const message = document.getElementById('login-message');
  const text = message ? api.takeFlash() : null;
  if (text) { message.textContent = text; message.hidden = false; }
});

window.addEventListener('hashchange', route);
document.getElementById('logout').addEventListener('click', () => ctx.logOut());

window.taxiHub = {
  dropConnection() { socket.dropConnection(); },
  get state() { return socket.state; },
};

// Swallow nothing silently but keep stray promise rejections out of the console:
window.addEventListener('unhandledrejection', (ev) => {
  const r = ev.reason;
  if (r && r.name === 'ApiError') ev.preventDefault();
});

async function boot() {
  showConnection('offline');
  if (api.loggedIn) {
    // A stored session: make sure the tokens still work (refresh if expired).
    try {
      await api.ensureFresh();
      startSession();
    } catch (err) {
      if (err && err.status !== 401) startSession(); // the hub is unreachable: keep trying
    }
  }
  route();
  api.clientConfig();
}

boot();
