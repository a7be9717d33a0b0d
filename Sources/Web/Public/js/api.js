// REST calls, tokens in local storage, refresh before expiry, 401 → log in. Calls go to the
// current hub (hubs.js); one that cannot reach it is tried on the next hub, each hub once.

import { hubs } from './hubs.js';

const ACCESS_KEY = 'taxihub.access';
const REFRESH_KEY = 'taxihub.refresh';
const FLASH_KEY = 'taxihub.flash';
export const SESSION_ENDED = 'Your session has ended; please log in again.';

/** Decodes a JWT's payload (no verification: the hub verifies). Returns null when malformed. */
export function decodeJwt(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === 'object' ? payload : null;
  } catch {
    return null;
  }
}

/** Seconds before `exp` at which the access token is refreshed. */
export const REFRESH_MARGIN = 60;

/** Milliseconds from `nowMs` until the token should be refreshed (≥ 0). */
export function refreshDelay(payload, nowMs = Date.now()) {
  if (!payload || typeof payload.exp !== 'number') return 0;
  return Math.max(0, payload.exp * 1000 - REFRESH_MARGIN * 1000 - nowMs);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(ApiError.describe(status, body));
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
  static describe(status, body) {
    if (body && typeof body === 'object') {
      if (typeof body.detail === 'string') return body.detail;
      const msgs = [];
      for (const [k, v] of Object.entries(body)) {
        const text = Array.isArray(v) ? v.join(' ') : String(v);
        msgs.push(k === 'non_field_errors' ? text : `${k}: ${text}`);
      }
      if (msgs.length) return msgs.join(' ');
    }
    return status ? `The request failed (HTTP ${status}).` : 'The hub could not be reached.';
  }
}

/**
 * A token of this window's session. Each window keeps its own (sessionStorage), so a rider and a
 * driver can use two windows of one browser; a new window starts from the last log-in on this
 * browser, kept in local storage.
 */
function storedToken(key) {
  let value = sessionStorage.getItem(key);
  if (value === null) {
    value = localStorage.getItem(key);
    if (value !== null) sessionStorage.setItem(key, value);
  }
  return value;
}

class Api extends EventTarget {
  constructor() {
    super();
    this.refreshTimer = null;
    this.refreshing = null;
  }

  get access() { return storedToken(ACCESS_KEY); }
  get refreshToken() { return storedToken(REFRESH_KEY); }

  /** The signed-in user (from the access token's payload), or null. */
  get user() {
    const p = decodeJwt(this.access);
    if (!p) return null;
    return {
      id: p.id, username: p.username, first_name: p.first_name || '', last_name: p.last_name || '',
      group: p.group, photo: p.photo || null,
    };
  }

  get loggedIn() { return !!(this.access && this.refreshToken); }

  setTokens(access, refresh) {
    for (const storage of [sessionStorage, localStorage]) {
      storage.setItem(ACCESS_KEY, access);
      if (refresh) storage.setItem(REFRESH_KEY, refresh);
    }
    this.scheduleRefresh();
    this.dispatchEvent(new Event('tokens'));
  }

  clearTokens() {
    // Another window's later log-in stays remembered for new windows.
    if (localStorage.getItem(REFRESH_KEY) === sessionStorage.getItem(REFRESH_KEY)) {
      localStorage.removeItem(ACCESS_KEY);
      localStorage.removeItem(REFRESH_KEY);
    }
    sessionStorage.removeItem(ACCESS_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** Flash message shown on the log-in screen (e.g. after a 401). */
  setFlash(text) { sessionStorage.setItem(FLASH_KEY, text); }
  takeFlash() {
    const t = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
    return t;
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const payload = decodeJwt(this.access);
    if (!payload || !this.refreshToken) return;
    // setTimeout's maximum is about 24.8 days; tokens live far less.
    const delay = Math.min(refreshDelay(payload), 2 ** 31 - 1);
    this.refreshTimer = setTimeout(() => {
      this.refreshAccess().catch(() => { /* network trouble: retried on the next call */ });
    }, delay);
  }

  /** Ends the session: tokens gone, the app goes to the log-in screen with a message. */
  sessionEnded(message = SESSION_ENDED) {
    const wasIn = this.loggedIn;
    this.clearTokens();
    if (message) this.setFlash(message);
    this.dispatchEvent(new CustomEvent('session-ended', { detail: { message, wasIn } }));
  }

  async raw(method, path, { body, auth = false, headers = {} } = {}) {
    const init = { method, headers: { Accept: 'application/json', ...headers } };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    if (auth) init.headers.Authorization = `Bearer ${this.access}`;
    let res;
    for (let tried = 1; ; tried += 1) {
      const hub = hubs.current;
      try {
        res = await fetch(hubs.url(path, hub), init);
        break;
      } catch {
        // No answer (refused, unreachable, or a CORS refusal): the next hub, if any is left.
        if (tried >= hubs.count) throw new ApiError(0, null);
        hubs.failed(hub);
      }
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text.slice(0, 200) }; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  /** Refreshes the access token. A 401 ends the session. One refresh at a time. */
  refreshAccess() {
    if (this.refreshing) return this.refreshing;
    const refresh = this.refreshToken;
    if (!refresh) {
      this.sessionEnded();
      return Promise.reject(new ApiError(401, { detail: SESSION_ENDED }));
    }
    this.refreshing = (async () => {
      try {
        const data = await this.raw('POST', '/api/token/refresh/', { body: { refresh } });
        if (this.refreshToken === refresh) this.setTokens(data.access);
        return data.access;
      } catch (err) {
        if (err.status === 401 || err.status === 400) this.sessionEnded();
        throw err;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Refreshes first when the access token is (nearly) expired. */
  async ensureFresh() {
    if (!this.loggedIn) {
      this.sessionEnded();
      throw new ApiError(401, { detail: SESSION_ENDED });
    }
    const payload = decodeJwt(this.access);
    if (!payload || refreshDelay(payload) === 0) await this.refreshAccess();
    return this.access;
  }

  /** An authenticated call: a 401 sends the user to the log-in screen. */
  async authed(method, path, opts = {}) {
    await this.ensureFresh();
    try {
      return await this.raw(method, path, { ...opts, auth: true });
    } catch (err) {
      if (err.status === 401) this.sessionEnded();
      throw err;
    }
  }

  // ---- the API ----
  async logIn(username, password) {
    const data = await this.raw('POST', '/api/log_in/', { body: { username, password } });
    this.setTokens(data.access, data.refresh);
    return this.user;
  }

  signUp(formData) { return this.raw('POST', '/api/sign_up/', { body: formData }); }

  logOut() { this.clearTokens(); }

  trips() { return this.authed('GET', '/api/trip/'); }
  trip(id) { return this.authed('GET', `/api/trip/${encodeURIComponent(id)}/`); }
  track(id) { return this.authed('GET', `/api/trip/${encodeURIComponent(id)}/track/`); }

  clientConfig() {
    if (!this.configPromise) {
      this.configPromise = this.raw('GET', '/api/client/').catch(() => ({ tile_url: '' }));
    }
    return this.configPromise;
  }
}

export const api = new Api();
