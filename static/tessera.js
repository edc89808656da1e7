// Tessera's browser client: a plain ES module, no build step, no dependencies.
//
//   import { createClient } from "/static/tessera.js";
//   const client = createClient({ baseUrl: "", transport: "cookie", onLogout() { ... } });
//   await client.login("alice", "correct horse battery staple");
//   const res = await client.fetch("/api/auth/me");
//
// Tokens live in memory ("header" transport) or in HttpOnly cookies ("cookie"
// transport); never in localStorage or sessionStorage. When a call fails because
// the access token expired, the client refreshes once and retries once; calls
// that hit the expiry together share that one refresh (single flight), so a
// rotated refresh token is never presented twice.

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Decodes the JSON inside a base64url segment of a JWT (display only: no verification). */
export function decodeSegment(segment) {
  let bytes;
  if (typeof Uint8Array.fromBase64 === "function") {
    bytes = Uint8Array.fromBase64(segment, { alphabet: "base64url" });
  } else {
    const binary = atob(segment.replace(/-/g, "+").replace(/_/g, "/"));
    bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Creates a client for a Tessera server. */
export function createClient({
  baseUrl = "",
  transport = "header",
  onLogout = () => {},
  onRequest = () => {},
} = {}) {
  if (transport !== "header" && transport !== "cookie") {
    throw new Error(`transport must be "header" or "cookie", not ${transport}`);
  }
  let access = null; // header transport: the access token, in memory only
  let refreshToken = null; // header transport: the refresh token, in memory only
  let csrf = { access: null, refresh: null }; // cookie transport: values to echo
  let view = null; // { header, claims } of the current access token
  let generation = 0; // counts access tokens, so a late 401 can tell it is stale
  let refreshing = null; // the refresh in flight, shared by every caller

  const url = (path) => baseUrl.replace(/\/$/, "") + path;

  async function request(path, init = {}) {
    const method = (init.method || "GET").toUpperCase();
    const started = performance.now();
    const res = await fetch(url(path), {
      ...init,
      method,
      credentials: transport === "cookie" ? "include" : "same-origin",
    });
    onRequest({ method, path, status: res.status, ms: Math.round(performance.now() - started) });
    return res;
  }

  // After a page reload the CSRF values are gone from memory; the browser
  // still has them as readable cookies (Cookie Store API, where available).
  async function cookieValue(name) {
    if (globalThis.cookieStore) {
      const cookie = await globalThis.cookieStore.get(name);
      return cookie ? cookie.value : null;
    }
    return null;
  }

  function adopt(data) {
    if (transport === "header") {
      access = data.access;
      if (data.refresh) refreshToken = data.refresh;
      const [header, claims] = access.split(".");
      view = { header: decodeSegment(header), claims: decodeSegment(claims) };
    } else {
      view = { header: data.header, claims: data.claims };
      csrf.access = data.claims.csrf || null;
      if (data.refresh_csrf) csrf.refresh = data.refresh_csrf;
    }
    generation += 1;
  }

  function forget() {
    access = null;
    refreshToken = null;
    csrf = { access: null, refresh: null };
    view = null;
    generation += 1;
  }

  function lost() {
    forget();
    onLogout();
  }

  async function attempt(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const method = (init.method || "GET").toUpperCase();
    if (transport === "header" && access) {
      headers.set("Authorization", `Bearer ${access}`);
    }
    if (transport === "cookie" && !SAFE_METHODS.has(method)) {
      const value = csrf.access || (await cookieValue("csrf_access_token"));
      if (value) headers.set("X-CSRF-TOKEN", value);
    }
    return request(path, { ...init, method, headers });
  }

  async function doRefresh() {
    let res;
    if (transport === "header") {
      if (!refreshToken) {
        lost();
        return false;
      }
      res = await request("/api/token/refresh/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh: refreshToken }),
      });
    } else {
      const value = csrf.refresh || (await cookieValue("csrf_refresh_token"));
      res = await request("/api/token/refresh/", {
        method: "POST",
        headers: value ? { "X-CSRF-TOKEN": value } : {},
      });
    }
    if (!res.ok) {
      lost();
      return false;
    }
    adopt(await res.json());
    return true;
  }

  /** Refreshes the access token; concurrent callers share one request. */
  function refresh() {
    if (!refreshing) {
      refreshing = doRefresh().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  /** Like window.fetch, with the token attached and one refresh on expiry. */
  async function authedFetch(path, init = {}) {
    const sentWith = generation;
    const res = await attempt(path, init);
    if (res.status !== 401) return res;
    const body = await res.clone().json().catch(() => ({}));
    if (body.reason !== "expired") return res;
    // Another call may have refreshed while this one was on its way.
    const ready = sentWith === generation ? await refresh() : true;
    return ready ? attempt(path, init) : res;
  }

  return {
    transport,
    /** Logs in; resolves to the access token's decoded header and claims. */
    async login(username, password) {
      const headers = { "Content-Type": "application/json" };
      if (transport === "cookie") headers["X-Token-Transport"] = "cookie";
      const res = await request("/api/token/", {
        method: "POST",
        headers,
        body: JSON.stringify({ username, password }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw Object.assign(new Error(data.detail || `login failed (${res.status})`), { status: res.status, body: data });
      adopt(data);
      return view;
    },
    /** Creates an account; resolves to {id, username, email}. */
    async signup(username, password, email = "") {
      const res = await request("/api/auth/signup", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password, email }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw Object.assign(new Error(`signup failed (${res.status})`), { status: res.status, body: data });
      return data;
    },
    /** Ends the session on the server and forgets the tokens. */
    async logout() {
      const init = { method: "POST" };
      if (transport === "header" && refreshToken) {
        init.headers = { "Content-Type": "application/json" };
        init.body = JSON.stringify({ refresh: refreshToken });
      }
      try {
        await authedFetch("/api/auth/logout", init);
      } finally {
        lost();
      }
    },
    fetch: authedFetch,
    refresh,
    /** The current access token's decoded header and claims, or null. */
    get token() {
      return view;
    },
    /** Whether the client holds a session. */
    get loggedIn() {
      return view !== null;
    },
  };
}
