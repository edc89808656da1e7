// The client as an app's HTTP layer, in Node against a real Tessera: fetch's
// paths sent to the app's own API, absolute URLs, getAccessToken, and which
// 401s refresh (refreshOn) or log out.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { createClient, isEndedRefusal, isExpiredRefusal } from "../tessera.js";
import { sleep, startBackend, startTessera, PASSWORD } from "./harness.mjs";

// A 2-second token lives 1 to 2 s (exp is in whole seconds).
const PAST_EXPIRY_MS = 3200;
const REFRESH = "/api/token/refresh";

let tessera;
// Tokens that cannot expire during a test, where the refusal must be `revoked`.
let longLived;
before(async () => {
  tessera = await startTessera('access_token_lifetime = "2s"\nrotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = "0s"');
  longLived = await startTessera('access_token_lifetime = "1h"');
});
after(async () => {
  await tessera.stop();
  await longLived.stop();
});

let users = 0;
async function loggedIn(options = {}, server = tessera) {
  const username = `user${++users}`;
  await server.signup(username);
  const events = { logouts: 0, paths: [] };
  const client = createClient({
    baseUrl: server.origin,
    onLogout: () => events.logouts++,
    onRequest: (r) => events.paths.push(r.path),
    ...options,
  });
  await client.login(username, PASSWORD);
  return { username, client, events };
}

const SIMPLEJWT_EXPIRED = {
  detail: "Given token not valid for any token type",
  code: "token_not_valid",
  messages: [{ token_class: "AccessToken", token_type: "access", message: "Token is expired" }],
};

test("the server serves the package's own files at /static/", async () => {
  for (const [file, type] of [
    ["tessera.js", "text/javascript; charset=utf-8"],
    ["tessera.d.ts", "application/typescript; charset=utf-8"],
  ]) {
    const res = await fetch(`${tessera.origin}/static/${file}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), type);
    assert.equal(await res.text(), readFileSync(new URL(`../${file}`, import.meta.url), "utf8"));
  }
});

test("isExpiredRefusal and isEndedRefusal, the default tests of a 401", () => {
  const tessera = (reason) => ({ detail: "Given token not valid for any token type", code: "token_not_valid", reason });
  assert.equal(isExpiredRefusal(401, tessera("expired")), true);
  for (const reason of ["invalid", "revoked", "wrong_type"]) assert.equal(isExpiredRefusal(401, tessera(reason)), false);
  assert.equal(isExpiredRefusal(401, SIMPLEJWT_EXPIRED), true);
  const invalid = { ...SIMPLEJWT_EXPIRED, messages: [{ ...SIMPLEJWT_EXPIRED.messages[0], message: "Token is invalid" }] };
  assert.equal(isExpiredRefusal(401, invalid), false);
  // simplejwt before 5.3 says the same for both: worth one refresh.
  assert.equal(isExpiredRefusal(401, { detail: "Token is invalid or expired", code: "token_not_valid" }), true);
  assert.equal(isExpiredRefusal(401, { detail: "Token is expired" }), false, "no token_not_valid code");
  assert.equal(isExpiredRefusal(403, tessera("expired")), false);
  assert.equal(isExpiredRefusal(401, null), false);
  assert.equal(isExpiredRefusal(401, "expired"), false);
  assert.equal(isEndedRefusal(401, tessera("revoked")), true);
  assert.equal(isEndedRefusal(401, tessera("invalid")), true);
  assert.equal(isEndedRefusal(401, tessera("expired")), false);
  assert.equal(isEndedRefusal(401, tessera("wrong_type")), false);
  assert.equal(isEndedRefusal(401, SIMPLEJWT_EXPIRED), false);
  assert.equal(isEndedRefusal(401, null), false);
  assert.equal(isEndedRefusal(400, tessera("revoked")), false);
});

test("with apiBaseUrl fetch's paths go to the app's API, Tessera's own calls to Tessera, and simplejwt's expiry refreshes once", async () => {
  const backend = await startBackend();
  try {
    const { client, events } = await loggedIn({ apiBaseUrl: backend.origin, refreshAhead: false });
    const res = await client.fetch("/backend/orders");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { path: "/backend/orders", user: client.token.claims.username });
    assert.equal(backend.seen[0].auth, `Bearer ${await client.getAccessToken()}`);
    // Tessera's own routes still go to Tessera.
    assert.equal((await client.listSessions()).length, 1);
    // An absolute URL goes where it says: Tessera's origin gets the token.
    assert.equal((await client.fetch(`${tessera.origin}/api/auth/me`)).status, 200);
    const refreshes = await tessera.requestsTo(REFRESH);
    await sleep(PAST_EXPIRY_MS);
    const again = await Promise.all([client.fetch("/backend/orders"), client.fetch(new URL("/backend/x", backend.origin))]);
    assert.deepEqual(again.map((r) => r.status), [200, 200]);
    assert.equal(await tessera.requestsTo(REFRESH), refreshes + 1);
    assert.equal(events.paths.filter((p) => p === "/api/token/refresh/").length, 1);
    assert.equal(events.logouts, 0);
  } finally {
    await backend.stop();
  }
});

test("an origin not named gets no token and its 401 is not retried", async () => {
  const backend = await startBackend();
  try {
    const { client, events } = await loggedIn();
    const res = await client.fetch(`${backend.origin}/elsewhere`);
    assert.equal(res.status, 401);
    assert.deepEqual(backend.seen, [{ method: "GET", path: "/elsewhere", auth: null }]);
    assert.deepEqual(events.paths, ["/api/token/", `${backend.origin}/elsewhere`]);
    assert.equal(await client.authorize(`${backend.origin}/x`), null);
  } finally {
    await backend.stop();
  }
});

test("getAccessToken refreshes a token past its expiry once for callers together, and is null when logged out", async () => {
  const { client, events } = await loggedIn({ refreshAhead: false });
  const first = await client.getAccessToken();
  assert.equal(await client.getAccessToken(), first, "not due: no refresh");
  await sleep(PAST_EXPIRY_MS);
  const tokens = await Promise.all([client.getAccessToken(), client.getAccessToken(), client.getAccessToken()]);
  assert.notEqual(tokens[0], first);
  assert.deepEqual(tokens, [tokens[0], tokens[0], tokens[0]]);
  assert.equal(events.paths.filter((p) => p === "/api/token/refresh/").length, 1);
  const me = await fetch(`${tessera.origin}/api/auth/me`, { headers: { Authorization: `Bearer ${tokens[0]}` } });
  assert.equal(me.status, 200);
  await client.logout();
  assert.equal(events.logouts, 1);
  assert.equal(await client.getAccessToken(), null);
});

test("refreshOn decides which 401s refresh: a backend's own expiry body only with a custom test", async () => {
  const expiredBody = { error: "token_expired" };
  const backend = await startBackend({ expiredBody });
  try {
    const plain = await loggedIn({ apiBaseUrl: backend.origin, refreshAhead: false });
    const custom = await loggedIn({
      apiBaseUrl: backend.origin,
      refreshAhead: false,
      refreshOn: (status, body) => isExpiredRefusal(status, body) || (status === 401 && body?.error === "token_expired"),
    });
    await sleep(PAST_EXPIRY_MS);
    const refused = await plain.client.fetch("/orders");
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), expiredBody);
    assert.ok(!plain.events.paths.includes("/api/token/refresh/"));
    assert.equal(plain.client.loggedIn, true, "an unknown 401 does not log out");
    const res = await custom.client.fetch("/orders");
    assert.equal(res.status, 200);
    assert.equal(custom.events.paths.filter((p) => p === "/api/token/refresh/").length, 1);
  } finally {
    await backend.stop();
  }
});

test("client.fetch logs out once when the session ended elsewhere, and logout after that does not tell onLogout again", async () => {
  const { username, client, events } = await loggedIn({}, longLived);
  const other = await longLived.login(username);
  const ended = await fetch(`${longLived.origin}/api/auth/sessions/end-others`, {
    method: "POST",
    headers: { Authorization: `Bearer ${other.access}` },
  });
  assert.equal(ended.status, 204);
  let answers = [];
  for (let i = 0; i < 50 && client.loggedIn; i++) {
    answers = await Promise.all([client.fetch("/api/auth/me"), client.fetch("/api/auth/me")]);
    if (client.loggedIn) await sleep(100);
  }
  assert.deepEqual(answers.map((r) => r.status), [401, 401]);
  assert.equal((await answers[0].json()).reason, "revoked");
  assert.equal(events.logouts, 1);
  await client.logout();
  assert.equal(events.logouts, 2, "an explicit logout is a logout of its own");
});
