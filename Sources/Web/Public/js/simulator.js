// The driver's "simulate a route" switch: drives the car along a street-like path at a set
// speed and reports one position per second.

const R = 6371008.8; // mean Earth radius, metres
const rad = (d) => (d * Math.PI) / 180;
const deg = (r) => (r * 180) / Math.PI;
export const BLOCK_METRES = 500;
export const WAIT_BLOCK_METRES = 120;

/** Great-circle distance in metres. */
export function haversine(a, b) {
  const dLat = rad(b.lat - a.lat);
  const dLng = rad(b.lng - a.lng);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Initial bearing from a to b, degrees clockwise from north, 0 ≤ h < 360. */
export function bearing(a, b) {
  const y = Math.sin(rad(b.lng - a.lng)) * Math.cos(rad(b.lat));
  const x = Math.cos(rad(a.lat)) * Math.sin(rad(b.lat)) - Math.sin(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.cos(rad(b.lng - a.lng));
  const h = (deg(Math.atan2(y, x)) + 360) % 360;
  return h >= 360 ? 0 : h;
}

/** The point `metres` north and `east` metres east of p (small distances). */
export function offset(p, north, east) {
  const lat = p.lat + deg(north / R);
  const lng = p.lng + deg(east / (R * Math.cos(rad(p.lat))));
  return { lat, lng };
}

/** Street-like path from a to b: first along the latitude (north/south), then the longitude. */
export function streetPath(a, b) {
  const corner = { lat: b.lat, lng: a.lng };
  const path = [];
  if (haversine(a, corner) > 0.5) path.push(corner);
  path.push({ lat: b.lat, lng: b.lng });
  return path;
}

/** A square block of about `size` metres starting (and ending) at p, driven clockwise. */
export function blockPath(p, size = BLOCK_METRES) {
  const n = offset(p, size, 0);
  const ne = offset(p, size, size);
  const e = offset(p, 0, size);
  return [n, ne, e, { lat: p.lat, lng: p.lng }];
}

/**
 * Moves `metres` from `pos` along `path` (waypoints consumed from the front).
 * Returns {pos, path, heading}; `path` is what remains.
 */
export function advance(pos, path, metres) {
  let cur = { lat: pos.lat, lng: pos.lng };
  const rest = path.slice();
  let left = metres;
  let heading = null;
  while (rest.length && left > 0) {
    const target = rest[0];
    const d = haversine(cur, target);
    if (d > 0.01) heading = bearing(cur, target);
    if (d <= left) {
      cur = { lat: target.lat, lng: target.lng };
      left -= d;
      rest.shift();
    } else {
      const f = left / d;
      cur = { lat: cur.lat + (target.lat - cur.lat) * f, lng: cur.lng + (target.lng - cur.lng) * f };
      left = 0;
    }
  }
  return { pos: cur, path: rest, heading };
}

/**
 * Runs the simulation. `getTrip()` gives the driver's active trip (or null);
 * `report(location)` sends it; `getSpeed()` in m/s.
 */
export class RouteSimulator {
  constructor({ start, getTrip, getSpeed, report }) {
    this.pos = { lat: start.lat, lng: start.lng };
    this.home = { lat: start.lat, lng: start.lng };
    this.getTrip = getTrip;
    this.getSpeed = getSpeed;
    this.report = report;
    this.path = [];
    this.goal = null; // 'block' | 'pick-up:<id>' | 'drop-off:<id>' | 'arrived:<…>'
    this.heading = null;
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    this.emit(0);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  get running() { return !!this.timer; }

  plan() {
    const trip = this.getTrip();
    let target = null;
    let goal = 'block';
    if (trip && trip.status === 'STARTED' && trip.pick_up_location) {
      target = trip.pick_up_location;
      goal = `pick-up:${trip.id}`;
    } else if (trip && trip.status === 'IN_PROGRESS' && trip.drop_off_location) {
      target = trip.drop_off_location;
      goal = `drop-off:${trip.id}`;
    }
    if (goal === this.goal) return;
    if (goal === this.arrived) {
      // Waiting at the pick-up or drop-off for the trip to move on: circle a small block.
      if (!this.path.length) this.path = blockPath(this.waitAt, WAIT_BLOCK_METRES);
      return;
    }
    this.goal = goal;
    this.arrived = null;
    if (target) {
      this.path = streetPath(this.pos, target);
    } else {
      this.home = { ...this.pos };
      this.path = blockPath(this.home);
    }
  }

  tick() {
    this.plan();
    const speed = Math.max(0, Math.min(100, Number(this.getSpeed()) || 0));
    const step = advance(this.pos, this.path, speed);
    this.pos = step.pos;
    this.path = step.path;
    if (step.heading !== null) this.heading = step.heading;
    if (!this.path.length) {
      if (this.goal === 'block') {
        this.path = blockPath(this.home);
      } else if (this.goal) {
        this.arrived = this.goal; // circle near the pick-up / drop-off until the trip moves on
        this.waitAt = { ...this.pos };
        this.goal = null;
      }
    }
    this.emit(speed);
  }

  emit(speed) {
    const loc = { lat: this.pos.lat, lng: this.pos.lng, speed, timestamp: Date.now() };
    if (this.heading !== null) loc.heading = Math.round(this.heading * 10) / 10 % 360;
    this.report(loc);
  }
}
