// The hubs this page talks to. Several hub nodes may act as one hub (a cluster): the page then
// gets their origins in a `hubs` query parameter, comma separated
// (`?hubs=http://127.0.0.1:8001,http://127.0.0.1:8002`); without it, the page's own origin is
// the only hub. REST calls and the socket go to the current hub; when it cannot be reached, the
// client moves on to the next one in the list (wrapping) and stays where it got through.

const CURRENT_KEY = 'taxihub.hub';

/** The hub origins named by a page's query string, in order, without duplicates; else [pageOrigin]. */
export function parseHubs(search, pageOrigin) {
  const list = [];
  const raw = new URLSearchParams(search || '').get('hubs');
  for (const part of (raw || '').split(',')) {
    const text = part.trim();
    if (!text) continue;
    let url;
    try { url = new URL(text); } catch { continue; }
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !list.includes(url.origin)) list.push(url.origin);
  }
  return list.length ? list : [pageOrigin];
}

/** Events: 'change' (detail: the new current hub's origin). */
export class Hubs extends EventTarget {
  constructor(list, pageOrigin, storage = null) {
    super();
    this.list = list;
    this.pageOrigin = pageOrigin;
    this.storage = storage;
    // This window keeps its hub across reloads (a dead first hub is not tried again each time).
    const remembered = storage ? storage.getItem(CURRENT_KEY) : null;
    this.index = Math.max(0, list.indexOf(remembered));
  }

  get current() { return this.list[this.index]; }
  get count() { return this.list.length; }

  /** `origin` failed a call or the socket: move to the next hub, unless another call already did. */
  failed(origin) {
    if (this.list.length > 1 && origin === this.current) {
      this.index = (this.index + 1) % this.list.length;
      if (this.storage) this.storage.setItem(CURRENT_KEY, this.current);
      this.dispatchEvent(new CustomEvent('change', { detail: this.current }));
    }
    return this.current;
  }

  /** The URL of `path` (`/api/...`) on `hub`: relative when it is the page's own origin. */
  url(path, hub = this.current) {
    return hub === this.pageOrigin ? path : hub + path;
  }

  /** The WebSocket URL of `path` on `hub` (ws: for http:, wss: for https:). */
  socketUrl(path, hub = this.current) {
    const url = new URL(path, hub);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }
}

export const hubs = new Hubs(parseHubs(location.search, location.origin), location.origin, sessionStorage);
