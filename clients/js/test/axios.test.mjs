// The axios adapter with real axios against a real Tessera: the race of the
// tutorials' interceptor (five requests that find the token expired) with
// rotation on and no grace period, where a second refresh of one token would
// be a reuse that ends the session; and a session ended elsewhere.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClient } from "../tessera.js";
import { attachTessera } from "../axios.js";
import { loadAxios, sleep, startBackend, startTessera, PASSWORD } from "./harness.mjs";

// Rotation with blacklisting and no grace period: of two refreshes of one
// token, the second is a reuse that revokes the whole session.
const ROTATION = `access_token_lifetime = "2s"
rotate_refresh_tokens = true
blacklist_after_rotation = true
refresh_grace_period = "0s"`;
// A token's exp is in whole seconds: a 2-second token lives 1 to 2 s, so
// calls right after a login find it live, and this long after it expired.
const PAST_EXPIRY_MS = 3200;
// The refresh route as Tessera's metrics name it (trailing slash trimmed).
const REFRESH = "/api/token/refresh";

let axios;
let tessera;
// For sessions ended elsewhere: tokens that cannot expire during the test,
// so that the refusal is `revoked`, not `expired` (which comes first).
let longLived;
before(async () => {
  axios = await loadAxios();
  tessera = await startTessera(ROTATION);
  longLived = await startTessera('access_token_lifetime = "1h"\nrotate_refresh_tokens = true\nblacklist_after_rotation = true');
});
after(async () => {
  await tessera.stop();
  await longLived.stop();
});

let users = 0;
/** A new user, logged in through a new client with an axios instance on Tessera attached. */
async function session(options = {}, server = tessera) {
  const username = `user${++users}`;
  await server.signup(username);
  const events = { logouts: 0, refreshes: 0 };
  const client = createClient({
    baseUrl: server.origin,
    onLogout: () => events.logouts++,
    onRequest: (r) => r.path === "/api/token/refresh/" && events.refreshes++,
    ...options,
  });
  await client.login(username, PASSWORD);
  const api = axios.create({ baseURL: server.origin });
  const statuses = [];
  // Added before attaching: axios runs response interceptors in the order
  // added, so this one sees every answer, the 401s the adapter retries too.
  api.interceptors.response.use(
    (res) => (statuses.push(res.status), res),
    (err) => {
      statuses.push(err.response?.status ?? "network");
      throw err;
    },
  );
  attachTessera(api, client);
  return { username, client, api, events, statuses };
}

test("five requests after expiry share one refresh (on their 401s), rotation on, and the session survives", async () => {
  const { client, api, events, statuses } = await session({ refreshAhead: false });
  const refreshesBefore = await tessera.requestsTo(REFRESH);
  const first = client.token.claims.jti;
  await sleep(PAST_EXPIRY_MS);
  const answers = await Promise.all(Array.from({ length: 5 }, () => api.get("/api/auth/me")));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
  assert.ok(answers.every((a) => a.data.username === client.token.claims.username));
  // Five 401s (all sent with the expired token), five retries answered 200.
  assert.deepEqual(statuses.filter((s) => s === 401).length, 5, String(statuses));
  assert.deepEqual(statuses.filter((s) => s === 200).length, 5, String(statuses));
  assert.equal(await tessera.requestsTo(REFRESH), refreshesBefore + 1);
  assert.equal(events.refreshes, 1);
  assert.notEqual(client.token.claims.jti, first);
  // The session lives on: a later request, and the rotated refresh token works.
  assert.equal((await api.get("/api/auth/me")).status, 200);
  assert.equal(await client.refresh(), true);
  assert.equal((await api.get("/api/auth/me")).status, 200);
  assert.equal(events.logouts, 0);
  assert.equal(client.loggedIn, true);
});

test("with refreshAhead (the default) five requests after expiry share one refresh made before they are sent", async () => {
  const { client, api, events, statuses } = await session();
  const refreshesBefore = await tessera.requestsTo(REFRESH);
  await sleep(PAST_EXPIRY_MS);
  const answers = await Promise.all(Array.from({ length: 5 }, () => api.get("/api/auth/me")));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.equal(await tessera.requestsTo(REFRESH), refreshesBefore + 1);
  assert.equal(events.refreshes, 1);
  assert.equal(client.token.claims.fresh, false);
  assert.equal(events.logouts, 0);
});

test("a session ended elsewhere logs out once, with no refresh, and later requests carry no token", async () => {
  const { username, client, api, events } = await session({}, longLived);
  const token = await client.getAccessToken();
  // Another login of the same user ends every other session (this client's).
  const other = await longLived.login(username);
  const ended = await fetch(longLived.origin + "/api/auth/sessions/end-others", {
    method: "POST",
    headers: { Authorization: `Bearer ${other.access}` },
  });
  assert.equal(ended.status, 204);
  // Refused within a second on every instance: wait until this one refuses it.
  for (let i = 0; i < 50; i++) {
    const res = await fetch(longLived.origin + "/api/auth/me", { headers: { Authorization: `Bearer ${token}` } });
    if (res.status === 401) break;
    await sleep(100);
  }
  const refreshesBefore = await longLived.requestsTo(REFRESH);
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => api.get("/api/auth/me")));
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal(r.reason.response.status, 401);
    assert.deepEqual(r.reason.response.data, {
      detail: "Given token not valid for any token type",
      code: "token_not_valid",
      reason: "revoked",
    });
  }
  assert.equal(events.logouts, 1);
  assert.equal(client.loggedIn, false);
  assert.equal(await client.getAccessToken(), null);
  assert.equal(await longLived.requestsTo(REFRESH), refreshesBefore);
  // Logged out: the next request goes without a token, and nobody is told twice.
  const next = await api.get("/api/auth/me").catch((e) => e.response);
  assert.equal(next.status, 401);
  assert.equal(next.data.code, "not_authenticated");
  assert.equal(next.config.headers.get("Authorization"), undefined);
  assert.equal(events.logouts, 1);
});

test("an app's API on another origin gets the token, is refreshed for on simplejwt's expired 401, and others get nothing", async () => {
  const backend = await startBackend();
  const elsewhere = await startBackend();
  try {
    const { client, events } = await session({ refreshAhead: false, tokenOrigins: [backend.origin] });
    const api = axios.create({ baseURL: backend.origin });
    attachTessera(api, client);
    const res = await api.get("/orders");
    assert.equal(res.status, 200);
    assert.equal(backend.seen[0].auth, `Bearer ${await client.getAccessToken()}`);
    await sleep(PAST_EXPIRY_MS);
    const [a, b] = await Promise.all([api.get("/orders"), api.get("/orders?page=2")]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    // Two refused with simplejwt's 401 (no reason), one refresh, two retries.
    const retried = backend.seen.slice(1);
    assert.deepEqual(retried.map((s) => s.path).sort(), ["/orders", "/orders", "/orders?page=2", "/orders?page=2"]);
    const fresh = `Bearer ${await client.getAccessToken()}`;
    assert.deepEqual(retried.map((s) => s.auth === fresh).sort(), [false, false, true, true]);
    assert.equal(events.refreshes, 1);
    // An origin the client was not told of: the request goes out untouched.
    const plain = await api.get(elsewhere.origin + "/public").catch((e) => e.response);
    assert.equal(plain.status, 401);
    assert.deepEqual(elsewhere.seen, [{ method: "GET", path: "/public", auth: null }]);
    assert.equal(events.logouts, 0);
  } finally {
    await backend.stop();
    await elsewhere.stop();
  }
});

test("detaching stops the adapter", async () => {
  const backend = await startBackend();
  try {
    const { client } = await session({ tokenOrigins: [backend.origin] });
    const api = axios.create({ baseURL: backend.origin });
    const detach = attachTessera(api, client);
    assert.equal((await api.get("/a")).status, 200);
    detach();
    const res = await api.get("/b").catch((e) => e.response);
    assert.equal(res.status, 401);
    assert.deepEqual(backend.seen.map((s) => s.auth === null), [false, true]);
  } finally {
    await backend.stop();
  }
});
