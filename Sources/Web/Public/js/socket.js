// The /taxi/ WebSocket: reconnect with back-off, `resume` with the last `seq` per trip. It
// connects to the current hub (hubs.js); when the socket drops or cannot open, the next attempt
// goes to the next hub in the list, with the same token and the same `resume`.

import { hubs } from './hubs.js';

export const BACKOFF_START = 500;
export const BACKOFF_MAX = 10000;
const OFFLINE_AFTER_FAILURES = 4;
const MAX_RESUME = 100;

/** Next back-off delay: 0.5 s doubling to 10 s. */
export function nextBackoff(prev) {
  return prev ? Math.min(BACKOFF_MAX, prev * 2) : BACKOFF_START;
}

/** Whether a frame's `data` is a trip (has an id and a status). */
export function isTrip(data) {
  return !!data && typeof data === 'object' && typeof data.id === 'string' && typeof data.status === 'string';
}

/** Frames about a trip whose `data.trip_id` names it (each with a `seq` but the withdrawal). */
export const TRIP_EVENTS = new Set(['trip.location', 'trip.searching', 'trip.driver_arriving', 'trip.driver_arrived', 'trip.offer_withdrawn']);

/** The trip a frame is about, or null. */
export function frameTripId(frame) {
  if (!frame || typeof frame !== 'object') return null;
  if (frame.type === 'echo.message' && isTrip(frame.data)) return frame.data.id;
  if (TRIP_EVENTS.has(frame.type) && frame.data && typeof frame.data.trip_id === 'string') return frame.data.trip_id;
  return null;
}

/**
 * Which `seq` of each trip were seen. `accept` says whether a frame is new and records it, so a
 * replayed event already seen is dropped (no duplicates) while a replayed event that was
 * missed is still taken, even when it comes after a live event with a higher `seq`.
 * `isStale` tells whether a trip state is older than one already seen (not to be shown).
 * A trip's `seq`s are not dense: after a hub restart they jump to the hub's clock in
 * microseconds (about 1.8e15, exact in a JavaScript number, docs/protocol.md §3.1), which a Set
 * and `max` take as they come.
 */
export class SeqBook {
  constructor() {
    this.trips = new Map();  // trip id → {max, stateMax, seen: Set}
    this.mine = new Set();   // trips the user may resume (its rider or driver)
  }
  accept(tripId, seq) {
    if (typeof seq !== 'number') return true;
    let e = this.trips.get(tripId);
    if (!e) e = { max: 0, stateMax: 0, seen: new Set() };
    if (e.seen.has(seq) || (e.seen.size && seq <= e.floor)) return false;
    e.seen.add(seq);
    if (e.seen.size > 512) {
      // forget the oldest half; anything at or below the floor counts as seen
      const sorted = [...e.seen].sort((a, b) => a - b);
      e.floor = sorted[255];
      e.seen = new Set(sorted.slice(256));
    }
    if (seq > e.max) e.max = seq;
    // Keep insertion order = recency, so the newest trips survive the resume cap.
    this.trips.delete(tripId);
    this.trips.set(tripId, e);
    return true;
  }
  /** Records a trip state's seq; true when it is older than a state already seen. */
  noteState(tripId, seq) {
    const e = this.trips.get(tripId);
    if (!e || typeof seq !== 'number') return false;
    if (seq < e.stateMax) return true;
    e.stateMax = seq;
    return false;
  }
  last(tripId) {
    const e = this.trips.get(tripId);
    return e ? e.max : undefined;
  }
  markMine(tripId) { this.mine.add(tripId); }
  /**
   * `resume` data for the trips of this user whose events were seen (at most 100, newest). Each
   * trip resumes from the highest `seq` seen, unless an earlier resume of it has not ended yet
   * (no `resume.done`): then from where that one started, since the replay it was owed may not
   * have arrived, even if live events with higher `seq`s did (docs/protocol.md §3.5).
   */
  resumeData() {
    const trips = {};
    const ids = [...this.trips.keys()].filter((id) => this.mine.has(id));
    for (const id of ids.slice(-MAX_RESUME)) {
      const e = this.trips.get(id);
      if (e.pending === undefined) e.pending = e.max;
      trips[id] = e.pending;
    }
    return Object.keys(trips).length ? { trips } : null;
  }
  /** A `resume.done`: the trip's replay arrived; its resume point moves on to the highest seen. */
  resumed(tripId) {
    const e = this.trips.get(tripId);
    if (e) e.pending = undefined;
  }
  clear() { this.trips.clear(); this.mine.clear(); }
}

/**
 * Events: 'state' (detail: connected|reconnecting|offline), 'frame' (detail: frame, after seq
 * filtering), 'open', and one event per frame type ('echo.message', 'trip.location', 'error',
 * 'trip.searching', 'trip.driver_arriving', 'trip.driver_arrived', 'trip.offer_withdrawn',
 * 'driver.availability', 'operator.drivers', 'operator.stats', 'operator.demand').
 */
export class HubSocket extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.ws = null;
    this.wanted = false;
    this.state = 'offline';
    this.backoff = 0;
    this.failures = 0;
    this.timer = null;
    this.seqs = new SeqBook();
    this.userId = null;
    window.addEventListener('online', () => {
      if (!this.wanted || this.ws) return;
      this.setState('reconnecting');
      this.backoff = 0;
      this.connectSoon(0);
    });
    window.addEventListener('offline', () => { if (this.wanted && !this.connected) this.setState('offline'); });
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  get connected() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  start(userId) {
    if (this.userId !== userId) this.seqs.clear();
    this.userId = userId;
    this.wanted = true;
    if (!this.ws && !this.timer) {
      this.setState('reconnecting');
      this.connect();
    }
  }

  /** Closes on purpose (log out): no reconnect. */
  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.intentional = true; ws.close(1000, 'Log out'); }
    this.seqs.clear();
    this.setState('offline');
  }

  /** Closes the socket as a network failure would: the reconnect logic runs. */
  dropConnection() {
    const ws = this.ws;
    if (!ws) return;
    this.lost(ws);
    try { ws.close(4000, 'Dropped by the page'); } catch { /* already closing */ }
  }

  /** The socket is gone without being asked to: reconnect with back-off. */
  lost(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.intentional || !this.wanted) return;
    hubs.failed(ws.hub);
    if (ws.opened) {
      // A connection that worked: retry soon, starting the back-off again.
      this.backoff = 0;
      this.failures = 0;
      this.setState('reconnecting');
      this.connectSoon(BACKOFF_START);
      return;
    }
    if (navigator.onLine !== false) {
      // The handshake failed; a 401 cannot be read from a WebSocket, so ask REST.
      this.api.refreshAccess().catch(() => { /* 401 ends the session; else retry later */ });
    }
    this.failed();
  }

  connectSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  async connect() {
    if (!this.wanted || this.ws) return;
    let token;
    try {
      token = await this.api.ensureFresh();
    } catch (err) {
      if (err && err.status === 401) return; // session ended: the app shows the log-in screen
      this.failed();
      return;
    }
    if (!this.wanted || this.ws) return;
    const hub = hubs.current;
    const ws = new WebSocket(hubs.socketUrl(`/taxi/?token=${encodeURIComponent(token)}`, hub));
    ws.hub = hub;
    this.ws = ws;
    ws.opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      ws.opened = true;
      this.backoff = 0;
      this.failures = 0;
      const resume = this.seqs.resumeData();
      if (resume) this.send('resume', resume);
      this.setState('connected');
      this.dispatchEvent(new Event('open'));
    };
    ws.onmessage = (ev) => { if (this.ws === ws) this.receive(ev.data); };
    ws.onerror = () => { /* followed by close */ };
    ws.onclose = () => this.lost(ws);
  }

  failed() {
    if (!this.wanted) return;
    this.failures += 1;
    this.backoff = nextBackoff(this.backoff);
    const offline = navigator.onLine === false || this.failures >= OFFLINE_AFTER_FAILURES;
    this.setState(offline ? 'offline' : 'reconnecting');
    this.connectSoon(this.backoff);
  }

  receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    if (frame.type === 'resume.done') {
      if (frame.data && typeof frame.data.trip_id === 'string') this.seqs.resumed(frame.data.trip_id);
      return;
    }
    const tripId = frameTripId(frame);
    if (tripId) {
      if (!this.seqs.accept(tripId, frame.seq)) return;
      if (frame.type === 'echo.message') {
        const t = frame.data;
        // An older state replayed after a newer one: an event (toast) but not the current state.
        if (this.seqs.noteState(tripId, frame.seq)) frame.stale = true;
        const uid = this.userId;
        if ((t.rider && t.rider.id === uid) || (t.driver && t.driver.id === uid)) this.seqs.markMine(tripId);
      } else if (frame.type === 'trip.location' && frame.data.driver_id === this.userId) {
        this.seqs.markMine(tripId);
      }
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
    this.dispatchEvent(new CustomEvent(frame.type, { detail: frame }));
  }

  /** Sends a frame; false when the socket is not open. */
  send(type, data) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify({ type, data }));
    return true;
  }

  /** Subscribes; returns the unsubscribe function. */
  on(type, fn) {
    const h = (ev) => fn(ev.detail, ev);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }
}
