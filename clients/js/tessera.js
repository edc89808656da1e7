// Tessera's browser client: a plain ES module, no build step, no dependencies.
// Its TypeScript declarations are beside it (tessera.d.ts). The npm package
// @tessera/client (clients/js/ in Tessera's repository) is these files, and
// the server serves the same ones at /static/tessera.js and /static/tessera.d.ts.
//
//   import { createClient } from "@tessera/client"; // or "/static/tessera.js"
//   const client = createClient({ baseUrl: "", transport: "cookie", onLogout() { ... } });
//   if (!(await client.restore())) await client.login("alice", "correct horse battery staple");
//   const res = await client.fetch("/api/auth/me");
//
// It can be an app's HTTP layer: `apiBaseUrl` sends fetch's paths to the
// app's own API instead of Tessera, `tokenOrigins` names the other origins
// that get the token, and axios.js (@tessera/client/axios) attaches the same
// session to an axios instance.
//
// Tokens live in memory ("header" transport) or in HttpOnly cookies ("cookie"
// transport); never in localStorage or sessionStorage. When a call fails because
// the access token expired, the client refreshes once and retries once; calls
// that hit the expiry together share that one refresh (single flight), so a
// rotated refresh token is never presented twice. In cookie transport the tabs
// of a browser share the refresh cookie, so the single flight spans them too
// (the Web Locks API). A token that lives 10 s or more is also refreshed
// shortly before it expires.
//
// Passkeys (WebAuthn) go through `navigator.credentials` (the `credentials`
// option replaces it, e.g. in tests): registerPasskey, verifyWithPasskey (a
// login's second step) and loginWithPasskey (no password).

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const CSRF_ACCESS = "csrf_access_token";
const CSRF_REFRESH = "csrf_refresh_token";
// Below this lifetime (seconds) no refresh ahead: the lead could not be both
// at least 1 s and about a tenth of the life, and tokens that short are for
// trying things out, where the refresh on expiry is the thing to watch.
const AHEAD_MIN_LIFETIME = 10;
// A refresh holds every tab's lock: one that hangs is given up after this (ms).
const REFRESH_TIMEOUT = 30_000;

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

/** Bytes from base64url (the WebAuthn JSON forms' binary fields), by the platform's own decoders. */
function fromBase64url(text) {
  if (typeof Uint8Array.fromBase64 === "function") {
    return Uint8Array.fromBase64(text, { alphabet: "base64url" });
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** base64url without padding of an ArrayBuffer or view, by the platform's own encoders. */
function toBase64url(buffer) {
  const bytes = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer);
  if (typeof bytes.toBase64 === "function") return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A list of credential descriptors with their ids as bytes. */
function descriptors(list) {
  return list ? list.map((d) => ({ ...d, id: fromBase64url(d.id) })) : list;
}

/**
 * The server's creation options (WebAuthn's JSON form) as
 * navigator.credentials.create takes them: the browser's own parser where it
 * has one, else the binary fields decoded here.
 */
function creationOptions(json) {
  const parse = globalThis.PublicKeyCredential?.parseCreationOptionsFromJSON;
  if (typeof parse === "function") return parse.call(globalThis.PublicKeyCredential, json);
  const options = { ...json, challenge: fromBase64url(json.challenge), user: { ...json.user, id: fromBase64url(json.user.id) } };
  if (json.excludeCredentials) options.excludeCredentials = descriptors(json.excludeCredentials);
  return options;
}

/** The server's request options (WebAuthn's JSON form) as navigator.credentials.get takes them. */
function requestOptions(json) {
  const parse = globalThis.PublicKeyCredential?.parseRequestOptionsFromJSON;
  if (typeof parse === "function") return parse.call(globalThis.PublicKeyCredential, json);
  const options = { ...json, challenge: fromBase64url(json.challenge) };
  if (json.allowCredentials) options.allowCredentials = descriptors(json.allowCredentials);
  return options;
}

/**
 * A new or asserted credential in WebAuthn's JSON form, as the server reads
 * it: the browser's own toJSON where it has one, else the same fields made here.
 */
function credentialJson(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const r = credential.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  const json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: typeof credential.getClientExtensionResults === "function" ? credential.getClientExtensionResults() : {},
  };
  if (credential.authenticatorAttachment) json.authenticatorAttachment = credential.authenticatorAttachment;
  return json;
}

/** The origin of `baseUrl` as the page resolves it, or null outside a page. */
function originOf(baseUrl) {
  try {
    return new URL(baseUrl || "/", globalThis.location?.href).origin;
  } catch {
    return null;
  }
}

/** An Error for a refused call, with the answer's status and body. */
function failure(what, res, body) {
  return Object.assign(new Error(`${what} failed (${res.status})`), { status: res.status, body });
}

/** Whether a message of a 401's body says the token expired. */
function saysExpired(text) {
  return typeof text === "string" && /expired/i.test(text);
}

/**
 * The default test of which 401s mean "refresh and retry": Tessera's
 * `reason: "expired"`, and simplejwt's `token_not_valid` (which has no
 * reason) when its messages say the token expired ("Token is expired";
 * "Token is invalid or expired" in simplejwt before 5.3, which cannot tell,
 * so a refresh is tried: it costs one refresh and one retry at most).
 */
export function isExpiredRefusal(status, body) {
  if (status !== 401 || body === null || typeof body !== "object") return false;
  if (body.reason !== undefined) return body.reason === "expired";
  if (body.code !== "token_not_valid") return false;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  return saysExpired(body.detail) || messages.some((m) => saysExpired(m && m.message));
}

/**
 * The default test of which 401s end the session here: Tessera's reasons
 * `invalid` and `revoked` (a logout elsewhere, a password change, a
 * deactivated user: refreshing cannot help).
 */
export function isEndedRefusal(status, body) {
  return status === 401 && body !== null && typeof body === "object" && (body.reason === "invalid" || body.reason === "revoked");
}

/** Whether `text` is an absolute URL (with a scheme, or protocol-relative). */
function isAbsolute(text) {
  return /^[a-z][a-z0-9+.-]*:/i.test(text) || text.startsWith("//");
}

/** Milliseconds before expiry that a token of `lifetime` seconds counts as due: a tenth, 1 to 30 s, for tokens of 10 s or more. */
function leadMs(lifetime) {
  return lifetime >= AHEAD_MIN_LIFETIME ? Math.min(30, Math.max(1, lifetime / 10)) * 1000 : 0;
}

/** Creates a client for a Tessera server. */
export function createClient({
  baseUrl = "",
  transport = "header",
  onLogout = () => {},
  onRequest = () => {},
  refreshAhead = true,
  apiBaseUrl = baseUrl,
  tokenOrigins = [],
  refreshOn = isExpiredRefusal,
  logoutOn = isEndedRefusal,
  credentials = globalThis.navigator?.credentials,
} = {}) {
  if (transport !== "header" && transport !== "cookie") {
    throw new Error(`transport must be "header" or "cookie", not ${transport}`);
  }
  const origin = originOf(baseUrl);
  // The origins whose calls carry the session: Tessera's, the app's API's,
  // and those the app named. A call elsewhere goes out untouched, so that a
  // URL from outside (a link in data, a third-party API) never gets the token.
  const trusted = new Set([origin, originOf(apiBaseUrl), ...tokenOrigins.map((o) => originOf(String(o)))]);
  trusted.delete(null);
  // The CSRF cookies belong to the server's origin: a page elsewhere cannot
  // read them (and must not read its own cookies of the same name instead).
  const cookiesReadable = origin !== null && origin === globalThis.location?.origin;
  let access = null; // header transport: the access token, in memory only
  let refreshToken = null; // header transport: the refresh token, in memory only
  // Cookie transport: the CSRF values from the last answer, for when the
  // cookies cannot be read; the cookies come first, as another tab may have
  // replaced them.
  let csrf = { access: null, refresh: null };
  let view = null; // { header, claims } of the current access token, when known
  let arrived = 0; // performance.now() when the current access token arrived
  let session = false; // whether the client holds (or restored) a session
  let generation = 0; // counts access tokens, so a late 401 can tell it is stale
  let refreshing = null; // the refresh in flight, shared by every caller
  let aheadTimer = null; // the refresh scheduled shortly before expiry

  const join = (base, path) => base.replace(/\/$/, "") + path;
  const url = (path) => join(baseUrl, path);

  // Sends one call and tells onRequest; `label` is what the record names.
  async function send(target, init, label) {
    const method = (init.method || "GET").toUpperCase();
    const started = performance.now();
    const res = await fetch(target, { ...init, method });
    onRequest({ method, path: label, status: res.status, ms: Math.round(performance.now() - started) });
    return res;
  }

  // A call to one of Tessera's own routes.
  function request(path, init = {}) {
    return send(url(path), { ...init, credentials: transport === "cookie" ? "include" : "same-origin" }, path);
  }

  // Where a call of fetch goes: an absolute URL as given, a path under
  // apiBaseUrl (Tessera's baseUrl unless the app named its own API).
  function resolve(input) {
    const text = String(input);
    return isAbsolute(text) ? text : join(apiBaseUrl, text);
  }

  function carriesToken(target) {
    return trusted.has(originOf(target));
  }

  // The readable CSRF cookies: after a reload the values are gone from
  // memory, and after another tab refreshed the ones in memory are stale.
  async function cookieValue(name) {
    if (!cookiesReadable) return null;
    if (globalThis.cookieStore) {
      const cookie = await globalThis.cookieStore.get(name);
      return cookie ? cookie.value : null;
    }
    if (typeof document === "undefined") return null;
    for (const pair of document.cookie.split("; ")) {
      const at = pair.indexOf("=");
      if (at > 0 && pair.slice(0, at) === name) return pair.slice(at + 1);
    }
    return null;
  }

  async function csrfValue(kind) {
    const cookie = await cookieValue(kind === "access" ? CSRF_ACCESS : CSRF_REFRESH);
    return cookie ?? csrf[kind];
  }

  /** What names the current access token: a later value means a refresh happened. */
  function current() {
    return transport === "header" ? Promise.resolve(access) : csrfValue("access");
  }

  function adopt(data) {
    if (transport === "header") {
      const [header, claims] = data.access.split(".");
      view = { header: decodeSegment(header), claims: decodeSegment(claims) };
      access = data.access;
      if (data.refresh) refreshToken = data.refresh;
    } else {
      view = { header: data.header, claims: data.claims };
      csrf.access = data.claims.csrf || null;
      if (data.refresh_csrf) csrf.refresh = data.refresh_csrf;
    }
    arrived = performance.now();
    session = true;
    generation += 1;
    scheduleAhead();
  }

  // A refresh when about a tenth of the lifetime is left (1 to 30 s), counted
  // from now, when the token arrived: the browser's clock may be off the
  // server's, whose exp and iat only give the lifetime.
  function scheduleAhead() {
    clearTimeout(aheadTimer);
    aheadTimer = null;
    const claims = view && view.claims;
    if (!refreshAhead || !claims) return;
    const lifetime = claims.exp - claims.iat;
    if (!(lifetime >= AHEAD_MIN_LIFETIME)) return;
    const delay = Math.min(lifetime * 1000 - leadMs(lifetime), 2 ** 31 - 1);
    const since = transport === "header" ? access : csrf.access;
    aheadTimer = setTimeout(() => {
      aheadTimer = null;
      // A failure shows on the next call (which refreshes on expiry) or
      // through onLogout; nothing to report here.
      refresh(since).catch(() => {});
    }, delay);
    // Outside a browser (Node, server-side rendering) a pending refresh must
    // not keep the process alive.
    aheadTimer.unref?.();
  }

  // Whether the access token is past its expiry, or within the lead of a
  // refresh ahead, as counted from its arrival (the server's clock may be
  // off this one's; exp and iat only give the lifetime). Unknown claims (a
  // restored cookie session) are never due: the server says when.
  function due() {
    const claims = view && view.claims;
    if (!session || !claims) return false;
    const lifetime = claims.exp - claims.iat;
    if (!(lifetime > 0)) return false;
    return performance.now() >= arrived + lifetime * 1000 - leadMs(lifetime);
  }

  function forget() {
    access = null;
    refreshToken = null;
    csrf = { access: null, refresh: null };
    view = null;
    session = false;
    generation += 1;
    clearTimeout(aheadTimer);
    aheadTimer = null;
  }

  function lost() {
    forget();
    onLogout();
  }

  // What a call to `target` carries: null for an origin that gets no token;
  // else the headers to add, the fetch credentials mode, and a ticket naming
  // the token sent (for recover). Refreshes first when the token is due and
  // refreshAhead is on, so a call after a pause needs no 401 to find out.
  async function authorize(target, method = "GET") {
    if (!carriesToken(String(target))) return null;
    if (refreshAhead && due()) await refresh(await current());
    const sentWith = await current();
    const headers = {};
    if (transport === "header" && access) headers.Authorization = `Bearer ${access}`;
    if (transport === "cookie" && !SAFE_METHODS.has(method.toUpperCase()) && sentWith) {
      headers["X-CSRF-TOKEN"] = sentWith;
    }
    return {
      headers,
      credentials: transport === "cookie" ? "include" : "same-origin",
      ticket: { generation, sentWith },
    };
  }

  // After a 401 to a call that carried the token (its `ticket`): whether to
  // send it again. A refusal that means expiry refreshes (one refresh for
  // every call that found the token expired together) unless the token was
  // replaced since the call left; one that means the session ended logs out,
  // once, unless the token was replaced since (then the new one is tried).
  async function recover(ticket, status, body) {
    if (!ticket) return false;
    const stale = ticket.generation !== generation;
    if (refreshOn(status, body)) return stale ? session : refresh(ticket.sentWith);
    if (logoutOn(status, body)) {
      if (stale) return session;
      if (session) lost();
      return false;
    }
    return false;
  }

  async function getAccessToken() {
    if (transport !== "header") return null;
    if (due()) await refresh(access);
    return access;
  }

  async function doRefresh() {
    const signal = globalThis.AbortSignal?.timeout?.(REFRESH_TIMEOUT);
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
        signal,
      });
    } else {
      const value = await csrfValue("refresh");
      res = await request("/api/token/refresh/", {
        method: "POST",
        headers: value ? { "X-CSRF-TOKEN": value } : {},
        signal,
      });
    }
    if (!res.ok) {
      lost();
      return false;
    }
    adopt(await res.json());
    return true;
  }

  // Refreshes, unless the token named `since` (when given) was replaced
  // meanwhile: by this tab, or, in cookie transport, by another tab, whose
  // new cookies this tab then uses (it cannot know their claims).
  async function refreshUnlessDone(since) {
    if (since !== undefined) {
      const now = await current();
      if (now !== since) {
        if (now === null) {
          // Logged out meanwhile (in cookie transport, maybe by another tab).
          if (session) lost();
          return false;
        }
        if (transport === "cookie") {
          view = null;
          csrf.access = now;
          generation += 1;
          clearTimeout(aheadTimer);
          aheadTimer = null;
        }
        return true;
      }
    }
    return doRefresh();
  }

  // One refresh at a time across the tabs of this browser (same origin): in
  // cookie transport they present the one refresh cookie, and with rotation
  // and blacklist_after_rotation two of them at once revoke the session.
  // Without the Web Locks API (an old browser, or a page not served from a
  // secure context: https or localhost) the single flight is this tab's own.
  // Nothing can replace the lock across tabs: a BroadcastChannel cannot claim
  // atomically and tokens stay out of web storage. The check of the CSRF
  // cookie in refreshUnlessDone still spares a refresh another tab finished.
  function exclusive(task) {
    const locks = globalThis.navigator?.locks;
    if (transport === "cookie" && locks) {
      return locks.request(`tessera refresh ${origin}`, () => task());
    }
    return task();
  }

  /** Refreshes the access token; concurrent callers share one request. */
  function refresh(since) {
    if (!refreshing) {
      refreshing = exclusive(() => refreshUnlessDone(since)).finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  // A call to `target` with the token attached when its origin gets it, and
  // one retry when recover says so.
  async function authedCall(target, init, label) {
    const method = (init.method || "GET").toUpperCase();
    const attempt = async () => {
      const auth = await authorize(target, method);
      if (!auth) return { res: await send(target, { ...init, method }, label), ticket: null };
      const headers = new Headers(init.headers || {});
      for (const [name, value] of Object.entries(auth.headers)) headers.set(name, value);
      const res = await send(target, { ...init, method, headers, credentials: auth.credentials }, label);
      return { res, ticket: auth.ticket };
    };
    const { res, ticket } = await attempt();
    if (res.status !== 401 || !ticket) return res;
    const body = await res.clone().json().catch(() => null);
    return (await recover(ticket, res.status, body)) ? (await attempt()).res : res;
  }

  /** Like window.fetch, with the token attached and one refresh on expiry. */
  function authedFetch(input, init = {}) {
    return authedCall(resolve(input), init, String(input));
  }

  // A call to one of Tessera's own routes, with the session.
  function own(path, init = {}) {
    return authedCall(url(path), init, path);
  }

  /** POSTs `body` as JSON without credentials; rejects with the answer's body when refused. */
  async function postJson(path, body, what) {
    const res = await request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw failure(what, res, await res.json().catch(() => ({})));
  }

  // The error of a refused login step: the answer's `detail` as its message,
  // its status, body and `code`, and what a second factor needs.
  function refusal(what, res, data) {
    const error = new Error(data.detail || `${what} failed (${res.status})`);
    Object.assign(error, { status: res.status, body: data, code: data.code });
    if (data.code === "mfa_required") Object.assign(error, { mfaToken: data.mfa_token, methods: data.methods });
    if (data.code === "mfa_enrolment_required") error.enrolmentToken = data.enrolment_token;
    return error;
  }

  // POSTs a step of a login (the password, or the second factor) and adopts
  // the tokens it answers; a refusal rejects with its body, and a second
  // factor asked for with its `mfaToken` and `methods`.
  async function loginStep(path, body, what) {
    const headers = { "Content-Type": "application/json" };
    if (transport === "cookie") headers["X-Token-Transport"] = "cookie";
    const res = await request(path, { method: "POST", headers, body: JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw refusal(what, res, data);
    // A server without cookie mode ignores X-Token-Transport and answers
    // with the tokens themselves.
    const expected = transport === "cookie" ? data.claims : data.access;
    if (!expected) {
      const why = transport === "cookie" ? 'cookie transport is off on this server (no "cookies" in token_locations)' : "the answer has no access token";
      throw Object.assign(new Error(why), { status: res.status });
    }
    adopt(data);
    return view;
  }

  // A call of one of the second-factor routes, with the session; resolves
  // to its JSON body (null for a 204), rejects with it when refused.
  async function factorCall(path, method, body, what) {
    const init = { method };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    const res = await own(path, init);
    const data = res.status === 204 ? null : await res.json().catch(() => ({}));
    if (!res.ok) throw failure(what, res, data || {});
    return data;
  }

  // An enrolment call: with the session, or, for a user whose login must
  // enrol first, with the `enrolmentToken` that login's refusal carried.
  async function enrolmentCall(path, body, enrolmentToken, what) {
    if (!enrolmentToken) return factorCall(path, "POST", body, what);
    const headers = { Authorization: `Bearer ${enrolmentToken}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await request(path, { method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw failure(what, res, data);
    return data;
  }

  // The start of a passkey login (either step): the options for
  // navigator.credentials.get, or a refusal as loginStep's.
  async function ceremonyStart(path, body, what) {
    const res = await request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw refusal(what, res, data);
    return data;
  }

  // The browser's WebAuthn (or the `credentials` option's stand-in).
  function authenticator() {
    if (!credentials || typeof credentials.create !== "function" || typeof credentials.get !== "function") {
      throw new Error("passkeys need WebAuthn: this browser has no navigator.credentials");
    }
    return credentials;
  }

  // A passkey's assertion for the server's `{publicKey}` request options.
  async function assertion(started) {
    const credential = await authenticator().get({ publicKey: requestOptions(started.publicKey) });
    if (!credential) throw new Error("no passkey was chosen");
    return credentialJson(credential);
  }

  // `{code}` or `{recoveryCode}` as the server's fields.
  function secondFactor({ code, recoveryCode } = {}) {
    return recoveryCode !== undefined ? { recovery_code: recoveryCode } : { code };
  }

  return {
    transport,
    /**
     * Logs in; resolves to the access token's decoded header and claims. For
     * a user with a second factor, rejects with an error whose `code` is
     * "mfa_required", carrying `mfaToken` and `methods`: finish the login
     * with verifySecondFactor.
     */
    async login(username, password) {
      return loginStep("/api/token/", { username, password }, "login");
    },
    /**
     * The second step of a login that answered "mfa_required": `mfaToken`
     * from that refusal, and `{code}` (the authenticator app's six digits)
     * or `{recoveryCode}`. Resolves as login does; a wrong code rejects with
     * `code` "mfa_code_invalid" (the mfaToken stays usable), a spent or
     * expired mfaToken with "mfa_token_invalid" (log in again).
     */
    async verifySecondFactor(mfaToken, factor) {
      return loginStep("/api/auth/mfa/verify", { mfa_token: mfaToken, ...secondFactor(factor) }, "second factor");
    },
    /**
     * Begins TOTP enrolment (needs a fresh login, or the `enrolmentToken` of
     * a login refused with "mfa_enrolment_required"): resolves to {secret,
     * otpauth_uri, qr_svg}, shown this once; confirmTotp puts it in force.
     */
    async startTotpEnrolment(enrolmentToken) {
      return enrolmentCall("/api/auth/mfa/totp", undefined, enrolmentToken, "starting TOTP enrolment");
    },
    /**
     * Confirms enrolment with a code of the new secret (and the same
     * `enrolmentToken`, if one began it); resolves to the ten recovery codes,
     * shown this once. After an enrolment token, log in again with a code.
     */
    async confirmTotp(code, enrolmentToken) {
      return (await enrolmentCall("/api/auth/mfa/totp/confirm", { code }, enrolmentToken, "confirming TOTP")).recovery_codes;
    },
    /** Removes the TOTP factor and its recovery codes, given `{code}` or `{recoveryCode}`. */
    async removeTotp(factor) {
      await factorCall("/api/auth/mfa/totp", "DELETE", secondFactor(factor), "removing TOTP");
    },
    /**
     * Registers a passkey of this browser's (or of a security key): needs a
     * fresh login (with the second factor, if the user has one), or the
     * `enrolmentToken` of a login refused with "mfa_enrolment_required".
     * Resolves to the new passkey, {id, name, created_at, last_used_at}, with
     * `recovery_codes` (shown this once) when it is the user's first factor.
     */
    async registerPasskey({ name, enrolmentToken } = {}) {
      const started = await enrolmentCall("/api/auth/passkeys/register/start", {}, enrolmentToken, "starting passkey registration");
      const credential = await authenticator().create({ publicKey: creationOptions(started.publicKey) });
      if (!credential) throw new Error("no passkey was made");
      const body = { credential: credentialJson(credential) };
      if (name) body.name = name;
      return enrolmentCall("/api/auth/passkeys/register/finish", body, enrolmentToken, "registering the passkey");
    },
    /** The user's passkeys: [{id, name, created_at, last_used_at}]. */
    async listPasskeys() {
      return factorCall("/api/auth/passkeys", "GET", undefined, "listing passkeys");
    },
    /** Removes one of the user's passkeys (needs a fresh login). */
    async deletePasskey(id) {
      await factorCall(`/api/auth/passkeys/${encodeURIComponent(id)}`, "DELETE", undefined, "removing the passkey");
    },
    /**
     * The second step of a login that answered "mfa_required" with
     * "passkey" among its `methods`, answered with one of the user's
     * passkeys. Resolves as login does; rejects as verifySecondFactor does,
     * or with the browser's error when no passkey answered.
     */
    async verifyWithPasskey(mfaToken) {
      const started = await ceremonyStart("/api/auth/mfa/passkey/start", { mfa_token: mfaToken }, "second factor");
      const credential = await assertion(started);
      return loginStep("/api/auth/mfa/passkey/finish", { mfa_token: mfaToken, credential }, "second factor");
    },
    /**
     * Logs in with a passkey alone, no username or password (on a server
     * whose `passkey_login` setting is on; else rejects with `code`
     * "passkey_login_disabled"). Resolves as login does.
     */
    async loginWithPasskey() {
      const started = await ceremonyStart("/api/auth/passkeys/login/start", {}, "passkey login");
      const credential = await assertion(started);
      return loginStep("/api/auth/passkeys/login/finish", { credential }, "passkey login");
    },
    /** Ten new recovery codes; the old ones stop working. */
    async regenerateRecoveryCodes() {
      return (await factorCall("/api/auth/mfa/recovery-codes", "POST", undefined, "making new recovery codes")).recovery_codes;
    },
    /**
     * Picks up the session the browser still holds after a reload: in cookie
     * transport, when the CSRF cookie is readable, asks /api/auth/me (and
     * refreshes once if the access token expired). Resolves to the user, or
     * null (header transport: the tokens were in the memory of the page that
     * is gone).
     */
    async restore() {
      if (transport !== "cookie" || !(await cookieValue(CSRF_ACCESS))) return null;
      const res = await own("/api/auth/me");
      if (!res.ok) {
        forget();
        return null;
      }
      const user = await res.json();
      session = true;
      return user;
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
    /** Asks for a password-reset link to be mailed to `email`; the answer is the same whoever has it. */
    async requestPasswordReset(email) {
      await postJson("/api/auth/password/reset", { email }, "asking for a reset link");
    },
    /** Sets a new password with the token of a reset link; rejects with the field messages (`body`). */
    async confirmPasswordReset(token, newPassword) {
      await postJson("/api/auth/password/reset/confirm", { token, new_password: newPassword }, "resetting the password");
    },
    /** Verifies the address with the token of a verification link. */
    async verifyEmail(token) {
      await postJson("/api/auth/email/verify", { token }, "verifying the address");
    },
    /** Mails the logged-in user a new verification link. */
    async requestVerification() {
      const res = await own("/api/auth/email/verify/request", { method: "POST" });
      if (!res.ok) throw failure("asking for a verification link", res, await res.json().catch(() => ({})));
    },
    /** Ends the session on the server and forgets the tokens. */
    async logout() {
      const init = { method: "POST" };
      if (transport === "header" && refreshToken) {
        init.headers = { "Content-Type": "application/json" };
        init.body = JSON.stringify({ refresh: refreshToken });
      }
      const before = generation;
      try {
        await own("/api/auth/logout", init);
      } finally {
        // A refusal saying the session had ended already logged out (and
        // told onLogout, which hears of one logout once).
        if (generation === before || session) lost();
      }
    },
    /**
     * The user's sessions (logins) not ended: [{id, created, last_used, ip,
     * user_agent, current}], most recently used first.
     */
    async listSessions() {
      const res = await own("/api/auth/sessions");
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw failure("listing sessions", res, data);
      return data.results;
    },
    /** Ends one session (a lost phone's) as a logout would. */
    async endSession(id) {
      const res = await own(`/api/auth/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (!res.ok) throw failure("ending the session", res, await res.json().catch(() => ({})));
    },
    /** Ends every session of the user but this one. */
    async endOtherSessions() {
      const res = await own("/api/auth/sessions/end-others", { method: "POST" });
      if (!res.ok) throw failure("ending the other sessions", res, await res.json().catch(() => ({})));
    },
    fetch: authedFetch,
    /** The access token, refreshed first when due; null without one (logged out, or cookie transport). */
    getAccessToken,
    /** For adapters of other HTTP libraries: what a call to `url` carries (null: nothing). */
    authorize,
    /** For adapters: after a 401 to a call authorized with `ticket`, whether to send it again. */
    recover,
    /** Refreshes now; resolves to false when refused (the client is then logged out). */
    refresh: () => refresh(),
    /**
     * The current access token's decoded header and claims, or null: also
     * when logged in without knowing them (a cookie session restored, or
     * refreshed by another tab, until this tab's next refresh).
     */
    get token() {
      return view;
    },
    /** Whether the client holds a session. */
    get loggedIn() {
      return session;
    },
  };
}
