// The map: street tiles from `tile_url` when reachable, else a plain vector view.
// Web-Mercator projection, 256 px tiles, integer zoom levels.

export const TILE = 256;
export const MIN_ZOOM = 2;
export const MAX_ZOOM = 18;
export const FIT_MAX_ZOOM = 16;
export const DEFAULT_CENTER = Object.freeze({ lat: 40.7128, lng: -74.006 });
const MAX_LAT = 85.05112878;
const SVG_NS = 'http://www.w3.org/2000/svg';

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** World pixel coordinates of a point at a zoom level. */
export function project(lat, lng, zoom) {
  const size = TILE * 2 ** zoom;
  const s = Math.sin((clamp(lat, -MAX_LAT, MAX_LAT) * Math.PI) / 180);
  return {
    x: ((lng + 180) / 360) * size,
    y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size,
  };
}

/** The point at world pixel coordinates. */
export function unproject(x, y, zoom) {
  const size = TILE * 2 ** zoom;
  const lng = (x / size) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / size;
  const lat = (180 / Math.PI) * Math.atan(Math.sinh(n));
  return { lat, lng: ((((lng + 180) % 360) + 360) % 360) - 180 };
}

/** The centre and the highest zoom (≤ maxZoom) at which all points fit in width×height. */
export function fitView(points, width, height, { padding = 40, maxZoom = FIT_MAX_ZOOM } = {}) {
  const pts = points.filter((p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lng));
  if (!pts.length) return null;
  const a = pts.map((p) => project(p.lat, p.lng, 0));
  const minX = Math.min(...a.map((p) => p.x));
  const maxX = Math.max(...a.map((p) => p.x));
  const minY = Math.min(...a.map((p) => p.y));
  const maxY = Math.max(...a.map((p) => p.y));
  const availW = Math.max(32, width - 2 * padding);
  const availH = Math.max(32, height - 2 * padding);
  let zoom = maxZoom;
  while (zoom > MIN_ZOOM) {
    const k = 2 ** zoom;
    if ((maxX - minX) * k <= availW && (maxY - minY) * k <= availH) break;
    zoom -= 1;
  }
  const center = unproject((minX + maxX) / 2, (minY + maxY) / 2, 0);
  return { center, zoom };
}

/** Fills a tile URL template. */
export function tileSrc(template, z, x, y) {
  return template.replace(/\{z\}/g, z).replace(/\{x\}/g, x).replace(/\{y\}/g, y)
    .replace(/\{s\}/g, 'abc'[(x + y) % 3]);
}

let probe = null;
/** Resolves 'tiles' when one tile of the template loads, else 'vector'. Probed once per page. */
export function tileMode(template) {
  if (!template) return Promise.resolve('vector');
  if (probe && probe.template === template) return probe.promise;
  const promise = new Promise((resolve) => {
    const img = new Image();
    const timer = setTimeout(() => { img.onload = img.onerror = null; resolve('vector'); }, 5000);
    img.onload = () => { clearTimeout(timer); resolve(img.naturalWidth > 0 ? 'tiles' : 'vector'); };
    img.onerror = () => { clearTimeout(timer); resolve('vector'); };
    img.src = tileSrc(template, 0, 0, 0);
  });
  probe = { template, promise };
  return promise;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

let uid = 0;

const MARKER_LABELS = { car: 'Car', 'pick-up': 'Pick-up', 'drop-off': 'Drop-off' };

export class MapView {
  /**
   * @param {HTMLElement} container the #map element
   * @param {{tileUrl?: string, onClick?: (p: {lat: number, lng: number}) => void, label?: string}} opts
   */
  constructor(container, opts = {}) {
    this.el = container;
    this.onClick = opts.onClick || null;
    this.center = { ...DEFAULT_CENTER };
    this.zoom = 13;
    this.markers = new Map();
    this.route = [];
    this.userMoved = false;
    this.mode = 'vector';
    this.tileUrl = '';
    this.tiles = new Map();
    this.id = ++uid;
    this.build(opts.label || 'Map');
    this.resizeObserver = new ResizeObserver(() => this.refit());
    this.resizeObserver.observe(this.el);
    this.setTileUrl(opts.tileUrl || '');
  }

  build(label) {
    const el = this.el;
    el.classList.add('map');
    el.dataset.mode = 'vector';
    el.tabIndex = 0;
    el.setAttribute('role', 'application');
    el.setAttribute('aria-roledescription', 'map');
    el.setAttribute('aria-label', `${label}. Drag or use the arrow keys to move, + and − to zoom${this.onClick ? ', click to choose a point' : ''}.`);
    el.replaceChildren();

    this.tileLayer = document.createElement('div');
    this.tileLayer.className = 'map-tiles';

    this.svg = svg('svg', { class: 'map-overlay', 'aria-hidden': 'true' });
    const defs = svg('defs');
    const pat = svg('pattern', { id: `map-grid-${this.id}`, width: 64, height: 64, patternUnits: 'userSpaceOnUse' });
    pat.append(
      svg('rect', { width: 64, height: 64, class: 'map-grid-bg' }),
      svg('path', { d: 'M 0 0 L 64 0 M 0 0 L 0 64', class: 'map-grid-major' }),
      svg('path', { d: 'M 32 0 L 32 64 M 0 32 L 64 32', class: 'map-grid-minor' }),
    );
    this.gridPattern = pat;
    defs.append(pat);
    this.grid = svg('rect', { class: 'map-grid', x: 0, y: 0, width: '100%', height: '100%', fill: `url(#map-grid-${this.id})` });
    this.routeHalo = svg('polyline', { class: 'map-route-halo', fill: 'none' });
    this.routeLine = svg('polyline', { class: 'map-route', fill: 'none', 'data-route': 'track' });
    this.markerLayer = svg('g', { class: 'map-markers' });
    this.svg.append(defs, this.grid, this.routeHalo, this.routeLine, this.markerLayer);

    const controls = document.createElement('div');
    controls.className = 'map-controls';
    const mk = (text, aria, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = text;
      b.setAttribute('aria-label', aria);
      b.addEventListener('click', (e) => { e.stopPropagation(); fn(); });
      b.addEventListener('pointerdown', (e) => e.stopPropagation());
      return b;
    };
    controls.append(
      mk('+', 'Zoom in', () => this.zoomBy(1)),
      mk('−', 'Zoom out', () => this.zoomBy(-1)),
      mk('⤢', 'Fit the map to the trip', () => { this.userMoved = false; this.refit(); }),
    );

    this.attribution = document.createElement('div');
    this.attribution.className = 'map-attribution';
    this.attribution.hidden = true;
    const a = document.createElement('a');
    a.href = 'https://www.openstreetmap.org/copyright';
    a.target = '_blank';
    a.rel = 'noopener';
    a.textContent = '© OpenStreetMap contributors';
    this.attribution.append(a);

    el.append(this.tileLayer, this.svg, controls, this.attribution);

    el.addEventListener('pointerdown', (e) => this.pointerDown(e));
    el.addEventListener('keydown', (e) => this.keyDown(e));
  }

  async setTileUrl(url) {
    this.tileUrl = url || '';
    const mode = await tileMode(this.tileUrl);
    if (this.destroyed) return;
    this.mode = mode;
    this.el.dataset.mode = mode;
    this.attribution.hidden = mode !== 'tiles';
    this.grid.style.display = mode === 'tiles' ? 'none' : '';
    this.render();
  }

  size() {
    return { w: this.el.clientWidth || 320, h: this.el.clientHeight || 240 };
  }

  // ---- markers and route ----

  /** Places (or with null removes) a marker: 'car', 'pick-up' or 'drop-off'. */
  setMarker(name, point, { heading = null, title } = {}) {
    let m = this.markers.get(name);
    if (!point || !Number.isFinite(point.lat) || !Number.isFinite(point.lng)) {
      if (m) { m.el.remove(); this.markers.delete(name); this.changed(); }
      return;
    }
    if (!m) {
      m = { el: this.markerElement(name), point };
      this.markers.set(name, m);
      this.markerLayer.append(m.el);
      // the car on top
      const car = this.markers.get('car');
      if (car && name !== 'car') this.markerLayer.append(car.el);
    }
    m.point = { lat: point.lat, lng: point.lng };
    m.el.setAttribute('data-lat', String(point.lat));
    m.el.setAttribute('data-lng', String(point.lng));
    if (title) m.el.querySelector('title').textContent = title;
    if (name === 'car') {
      const arrow = m.el.querySelector('.map-car-heading');
      if (Number.isFinite(heading)) {
        arrow.style.display = '';
        arrow.setAttribute('transform', `rotate(${heading})`);
      } else {
        arrow.style.display = 'none';
      }
    }
    this.changed();
  }

  markerElement(name) {
    const g = svg('g', { class: `map-marker map-marker-${name}`, 'data-marker': name });
    g.append(svg('title'));
    g.querySelector('title').textContent = MARKER_LABELS[name] || name;
    if (name === 'car') {
      const heading = svg('path', { class: 'map-car-heading', d: 'M 0 -19 L 6 -10 L -6 -10 Z' });
      heading.style.display = 'none';
      g.append(
        svg('circle', { r: 16, class: 'map-car-halo' }),
        heading,
        svg('circle', { r: 9, class: 'map-car-body' }),
        svg('circle', { r: 3.5, class: 'map-car-dot' }),
      );
    } else {
      const letter = name === 'pick-up' ? 'A' : 'B';
      const text = svg('text', { x: 0, y: -20, 'text-anchor': 'middle', 'dominant-baseline': 'central' });
      text.textContent = letter;
      g.append(
        svg('path', { class: 'map-pin', d: 'M 0 0 C -4 -9 -13 -13 -13 -21 A 13 13 0 1 1 13 -21 C 13 -13 4 -9 0 0 Z' }),
        text,
      );
    }
    return g;
  }

  marker(name) {
    const m = this.markers.get(name);
    return m ? m.point : null;
  }

  setRoute(points) {
    this.route = (points || []).filter((p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lng))
      .map((p) => ({ lat: p.lat, lng: p.lng }));
    this.changed();
  }

  addRoutePoint(p) {
    if (!p || !Number.isFinite(p.lat) || !Number.isFinite(p.lng)) return;
    this.route.push({ lat: p.lat, lng: p.lng });
    this.changed();
  }

  // ---- view ----

  points() {
    return [...[...this.markers.values()].map((m) => m.point), ...this.route];
  }

  changed() {
    if (!this.userMoved) this.refit(false);
    this.scheduleRender();
  }

  refit(force = true) {
    if (this.userMoved && !force) { this.scheduleRender(); return; }
    if (!this.userMoved) {
      const { w, h } = this.size();
      const v = fitView(this.points(), w, h);
      if (v) { this.center = v.center; this.zoom = v.zoom; }
    }
    this.scheduleRender();
  }

  setView(center, zoom) {
    this.center = { lat: center.lat, lng: center.lng };
    if (zoom !== undefined) this.zoom = clamp(Math.round(zoom), MIN_ZOOM, MAX_ZOOM);
    this.scheduleRender();
  }

  zoomBy(d) {
    this.userMoved = true;
    this.zoom = clamp(this.zoom + d, MIN_ZOOM, MAX_ZOOM);
    this.scheduleRender();
  }

  panBy(dx, dy) {
    this.userMoved = true;
    const c = project(this.center.lat, this.center.lng, this.zoom);
    this.center = unproject(c.x + dx, c.y + dy, this.zoom);
    this.scheduleRender();
  }

  /** The point under container pixel (x, y). */
  pointAt(x, y) {
    const { w, h } = this.size();
    const c = project(this.center.lat, this.center.lng, this.zoom);
    return unproject(c.x + x - w / 2, c.y + y - h / 2, this.zoom);
  }

  scheduleRender() {
    if (this.frame || this.destroyed) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    if (this.destroyed) return;
    const { w, h } = this.size();
    const z = this.zoom;
    const c = project(this.center.lat, this.center.lng, z);
    const ox = w / 2 - c.x;
    const oy = h / 2 - c.y;
    const screen = (p) => {
      const q = project(p.lat, p.lng, z);
      return [q.x + ox, q.y + oy];
    };
    for (const m of this.markers.values()) {
      const [x, y] = screen(m.point);
      m.el.setAttribute('transform', `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    }
    const pts = this.route.map((p) => screen(p).map((v) => v.toFixed(1)).join(',')).join(' ');
    this.routeLine.setAttribute('points', pts);
    this.routeHalo.setAttribute('points', pts);
    const mod = (v, n) => ((v % n) + n) % n;
    this.gridPattern.setAttribute('x', mod(ox, 64).toFixed(1));
    this.gridPattern.setAttribute('y', mod(oy, 64).toFixed(1));
    if (this.mode === 'tiles') this.renderTiles(c, w, h, ox, oy);
    else if (this.tiles.size) { this.tileLayer.replaceChildren(); this.tiles.clear(); }
  }

  renderTiles(c, w, h, ox, oy) {
    const z = this.zoom;
    const n = 2 ** z;
    const x0 = Math.floor((c.x - w / 2) / TILE);
    const x1 = Math.floor((c.x + w / 2) / TILE);
    const y0 = Math.max(0, Math.floor((c.y - h / 2) / TILE));
    const y1 = Math.min(n - 1, Math.floor((c.y + h / 2) / TILE));
    const keep = new Set();
    for (let ty = y0; ty <= y1; ty++) {
      for (let tx = x0; tx <= x1; tx++) {
        const key = `${z}/${tx}/${ty}`;
        keep.add(key);
        let img = this.tiles.get(key);
        if (!img) {
          img = document.createElement('img');
          img.alt = '';
          img.draggable = false;
          img.className = 'map-tile';
          img.onerror = () => { img.style.visibility = 'hidden'; };
          img.src = tileSrc(this.tileUrl, z, ((tx % n) + n) % n, ty);
          this.tiles.set(key, img);
          this.tileLayer.append(img);
        }
        img.style.transform = `translate(${Math.round(tx * TILE + ox)}px, ${Math.round(ty * TILE + oy)}px)`;
      }
    }
    for (const [key, img] of this.tiles) {
      if (!keep.has(key)) { img.remove(); this.tiles.delete(key); }
    }
  }

  // ---- input ----

  pointerDown(e) {
    if (e.button !== 0 || e.target.closest('button, a')) return;
    const rect = this.el.getBoundingClientRect();
    const start = { x: e.clientX, y: e.clientY };
    const startCenter = project(this.center.lat, this.center.lng, this.zoom);
    let dragging = false;
    const move = (ev) => {
      const dx = ev.clientX - start.x;
      const dy = ev.clientY - start.y;
      if (!dragging && Math.hypot(dx, dy) < 5) return;
      dragging = true;
      this.userMoved = true;
      this.el.classList.add('map-dragging');
      this.center = unproject(startCenter.x - dx, startCenter.y - dy, this.zoom);
      this.scheduleRender();
    };
    const up = (ev) => {
      this.el.removeEventListener('pointermove', move);
      this.el.removeEventListener('pointerup', up);
      this.el.removeEventListener('pointercancel', up);
      this.el.classList.remove('map-dragging');
      if (!dragging && ev.type === 'pointerup' && this.onClick) {
        this.onClick(this.pointAt(ev.clientX - rect.left, ev.clientY - rect.top));
      }
    };
    try { this.el.setPointerCapture(e.pointerId); } catch { /* not capturable */ }
    this.el.addEventListener('pointermove', move);
    this.el.addEventListener('pointerup', up);
    this.el.addEventListener('pointercancel', up);
  }

  keyDown(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const step = 80;
    const actions = {
      '+': () => this.zoomBy(1), '=': () => this.zoomBy(1),
      '-': () => this.zoomBy(-1), '_': () => this.zoomBy(-1), '−': () => this.zoomBy(-1),
      ArrowLeft: () => this.panBy(-step, 0), ArrowRight: () => this.panBy(step, 0),
      ArrowUp: () => this.panBy(0, -step), ArrowDown: () => this.panBy(0, step),
    };
    const fn = actions[e.key];
    if (!fn) {
      if (e.key === 'Enter' && e.target === this.el && this.onClick) {
        e.preventDefault();
        this.onClick({ ...this.center });
      }
      return;
    }
    e.preventDefault();
    fn();
  }

  destroy() {
    this.destroyed = true;
    if (this.frame) cancelAnimationFrame(this.frame);
    this.resizeObserver.disconnect();
  }
}
