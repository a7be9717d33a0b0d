// Operator dashboard (read-only): every driver on a canvas from `operator.drivers`, trips by
// status, the live trips, and the hub's health from `operator.stats`.

import { h, STATUSES, STATUS_LABELS, syncList, fullName } from '../dom.js';
import { project } from '../map.js';

const COLORS = { free: '#16a34a', busy: '#ea580c' };

/**
 * Draws drivers ([id, lat, lng, busy]) into a 2D context of css size w×h: one path per
 * colour, no per-driver objects. Returns the number drawn.
 */
export function drawDrivers(g, drivers, w, h, dpr = 1, view = null) {
  // view: an object kept between calls ({current}) so the fitted area stays put
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const n = drivers.length;
  if (!n) return 0;
  // Fit the view to the drivers (Web Mercator at zoom 0, scaled).
  let minX = Infinity; let maxX = -Infinity; let minY = Infinity; let maxY = -Infinity;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  let drawn = 0;
  for (let i = 0; i < n; i++) {
    const d = drivers[i];
    if (!Array.isArray(d) || !Number.isFinite(d[1]) || !Number.isFinite(d[2])) { xs[i] = NaN; continue; }
    const p = project(d[1], d[2], 0);
    xs[i] = p.x; ys[i] = p.y;
    if (p.x < minX) minX = p.x; if (p.x > maxX) maxX = p.x;
    if (p.y < minY) minY = p.y; if (p.y > maxY) maxY = p.y;
  }
  if (!Number.isFinite(minX)) return 0;
  // Keep the previous view while it still holds every driver and is not far too wide, so the
  // picture does not jump at every frame.
  const need = { minX, maxX, minY, maxY };
  let v = view && view.current;
  const fits = v && minX >= v.minX && maxX <= v.maxX && minY >= v.minY && maxY <= v.maxY
    && (maxX - minX) * 4 >= v.maxX - v.minX - v.minSpan && (maxY - minY) * 4 >= v.maxY - v.minY - v.minSpan;
  if (!fits) {
    const minSpan = 0.012; // about 2 km at mid latitudes (world pixels at zoom 0)
    const cx = (need.minX + need.maxX) / 2;
    const cy = (need.minY + need.maxY) / 2;
    const sx = Math.max(minSpan, (need.maxX - need.minX) * 1.2);
    const sy = Math.max(minSpan, (need.maxY - need.minY) * 1.2);
    v = { minX: cx - sx / 2, maxX: cx + sx / 2, minY: cy - sy / 2, maxY: cy + sy / 2, minSpan };
    if (view) view.current = v;
  }
  const pad = 14;
  const spanX = v.maxX - v.minX;
  const spanY = v.maxY - v.minY;
  const k = Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY);
  const ox = w / 2 - ((v.minX + v.maxX) / 2) * k;
  const oy = h / 2 - ((v.minY + v.maxY) / 2) * k;
  // a light grid for scale
  g.beginPath();
  const step = 64;
  for (let x = ((ox % step) + step) % step; x < w; x += step) { g.moveTo(x, 0); g.lineTo(x, h); }
  for (let y = ((oy % step) + step) % step; y < h; y += step) { g.moveTo(0, y); g.lineTo(w, y); }
  g.strokeStyle = 'rgba(148, 163, 184, 0.12)';
  g.lineWidth = 1;
  g.stroke();
  const r = n > 1000 ? 1.6 : n > 100 ? 2.5 : 4;
  for (const busy of [0, 1]) {
    g.beginPath();
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(xs[i]) || (drivers[i][3] ? 1 : 0) !== busy) continue;
      const x = xs[i] * k + ox;
      const y = ys[i] * k + oy;
      g.rect(x - r, y - r, 2 * r, 2 * r);
      drawn += 1;
    }
    g.fillStyle = busy ? COLORS.busy : COLORS.free;
    g.fill();
  }
  return drawn;
}

function fmtNumber(v, digits = 0) {
  return Number.isFinite(v) ? v.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';
}

export function render(outlet, ctx) {
  const canvas = h('canvas', { id: 'operator-map', role: 'img', 'aria-label': 'Map of every connected driver', dataset: { drivers: '0' } });
  const legend = h('p', { class: 'legend small' },
    h('span', { class: 'dot free' }), ' free ', h('span', { class: 'dot busy' }), ' on a trip · ',
    h('span', { id: 'driver-total' }, '0'), ' drivers with a position');
  const counts = h('ul', { id: 'trip-counts', class: 'counts' },
    ...STATUSES.map((s) => h('li', { dataset: { status: s }, class: `count count-${s.toLowerCase()}` },
      h('span', { class: 'count-label' }, STATUS_LABELS[s]), h('span', { class: 'count-value' }, '0'))));
  const metric = (key, label) => h('div', { class: 'metric', dataset: { metric: key } },
    h('dt', {}, label), h('dd', { class: 'metric-value' }, '–'));
  const health = h('dl', { id: 'health', class: 'health' },
    metric('connections', 'Connections'),
    metric('drivers_online', 'Drivers online'),
    metric('drivers_availability', 'Busy · offline · stale'),
    metric('messages_in_per_second', 'Messages in / s'),
    metric('messages_out_per_second', 'Messages out / s'),
    metric('snapshot_lag', 'Snapshot lag'),
    metric('store_state', 'Store'));
  const live = h('ul', { id: 'live-trips', class: 'trip-list live-trips' });
  const waiting = h('p', { class: 'muted small', id: 'operator-waiting' }, 'Waiting for the hub’s first report…');

  outlet.append(h('section', { id: 'operator-dashboard', class: 'dashboard operator' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Operations'), waiting),
    h('div', { class: 'operator-grid' },
      h('div', { class: 'card map-card' }, h('h2', {}, 'Drivers'), h('div', { class: 'canvas-wrap' }, canvas), legend),
      h('div', { class: 'card' }, h('h2', {}, 'Trips by status'), counts),
      h('div', { class: 'card' }, h('h2', {}, 'Hub health'), health),
      h('div', { class: 'card live-card' }, h('h2', {}, 'Live trips'), live))));

  // ---- the drivers canvas ----
  const g = canvas.getContext('2d');
  let drivers = [];
  let dirty = true;
  const viewState = { current: null };
  let frame = 0;
  let cssW = 0;
  let cssH = 0;
  const resize = () => {
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    cssW = Math.max(1, Math.round(rect.width));
    cssH = Math.max(1, Math.round(rect.height));
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    viewState.current = null;
    dirty = true;
    schedule();
  };
  const paint = () => {
    frame = 0;
    if (!dirty) return;
    dirty = false;
    const n = drawDrivers(g, drivers, cssW, cssH, window.devicePixelRatio || 1, viewState);
    canvas.dataset.drivers = String(n);
    legendTotal.textContent = String(n);
  };
  const schedule = () => { if (!frame) frame = requestAnimationFrame(paint); };
  const legendTotal = legend.querySelector('#driver-total');
  const ro = new ResizeObserver(resize);
  ro.observe(canvas);

  const offs = [];
  offs.push(ctx.socket.on('operator.drivers', (frame) => {
    const list = frame.data && frame.data.drivers;
    if (!Array.isArray(list)) return;
    drivers = list;
    dirty = true;
    schedule();
  }));

  // ---- stats ----
  const setMetric = (key, text, state) => {
    const el = health.querySelector(`[data-metric="${key}"]`);
    el.querySelector('.metric-value').textContent = text;
    if (state) el.dataset.state = state; else delete el.dataset.state;
  };
  offs.push(ctx.socket.on('operator.stats', (frame) => {
    const s = frame.data || {};
    waiting.hidden = true;
    const trips = s.trips || {};
    for (const st of STATUSES) {
      const li = counts.querySelector(`[data-status="${st}"]`);
      const v = Number(trips[st]) || 0;
      li.dataset.count = String(v);
      li.querySelector('.count-value').textContent = fmtNumber(v);
    }
    const store = s.store || {};
    setMetric('connections', fmtNumber(s.connections));
    setMetric('drivers_online', fmtNumber(s.drivers_online));
    const d = s.drivers || {};
    setMetric('drivers_availability', `${fmtNumber(d.busy || 0)} · ${fmtNumber(d.offline || 0)} · ${fmtNumber(d.stale || 0)}`);
    setMetric('messages_in_per_second', fmtNumber(s.messages_in_per_second, 1));
    setMetric('messages_out_per_second', fmtNumber(s.messages_out_per_second, 1));
    setMetric('snapshot_lag', Number.isFinite(store.lag_seconds) ? `${store.lag_seconds.toFixed(2)} s` : '–',
      store.lag_seconds > 10 ? 'warning' : null);
    const stateText = [store.state || 'unknown', store.kind ? `(${store.kind})` : '',
      Number.isFinite(store.pending) && store.pending ? `${store.pending} pending` : ''].filter(Boolean).join(' ');
    setMetric('store_state', stateText, store.state === 'failing' ? 'error' : store.state === 'loading' ? 'warning' : null);
    const stateEl = health.querySelector('[data-metric="store_state"]');
    stateEl.dataset.value = store.state || '';
    stateEl.title = store.last_error ? `Last error: ${store.last_error}` : '';

    const recent = Array.isArray(s.recent_trips) ? s.recent_trips : [];
    syncList(live, recent.filter((t) => t && t.id).map((t) => ({
      key: t.id,
      version: `${t.status}|${t.updated}|${t.driver ? t.driver.id : ''}`,
      build: () => h('li', { dataset: { tripId: t.id, status: t.status }, class: 'trip-item' },
        h('a', { href: `#/trip/${t.id}`, class: 'trip-link' },
          h('span', { class: 'trip-route' }, `${t.pick_up_address} → ${t.drop_off_address}`),
          h('span', { class: 'trip-meta' },
            h('span', { class: `badge badge-${String(t.status).toLowerCase()}` }, t.status),
            h('span', { class: 'who' }, 'Rider ', h('strong', { class: 'rider-username' }, t.rider ? t.rider.username : '–'),
              ' · Driver ', h('strong', { class: 'driver-username' }, t.driver ? t.driver.username : '–')),
            h('span', { class: 'sr-only' }, t.rider ? fullName(t.rider) : '')))),
    })), h('li', { class: 'empty muted' }, 'No trips yet.'));
  }));

  return () => {
    for (const off of offs) off();
    ro.disconnect();
    if (frame) cancelAnimationFrame(frame);
  };
}
