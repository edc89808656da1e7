// The example's page in Chromium, as a user goes through it: the login form,
// the orders loaded with axios through the adapter, a reload after the
// access token expired (one refresh for the page's parallel requests), a
// reload after staff gave the user a role (both services answer 401
// `expired`: the tutorial's interceptor case, one refresh shared, both
// retried), the logout, after which the backend refuses the last token, and
// a session ended elsewhere (the user deactivated), which logs the page out.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { PASSWORD, sleep, startBackend, startBrowser, startPreview, startTessera, waitFor } from "./harness.mjs";

// Short enough to wait out, long enough that the token the page holds at its
// logout outlives the wait for the backend to refuse it as revoked (not
// expired); under 10 s, so that the client schedules no refresh ahead of
// expiry and the reload is what finds the token expired.
const LIFETIME_S = 8;
const ORDERS = ["#1001 The Rust Programming Language", "#1002 A mechanical keyboard"];
const REVOKED = { detail: "Given token not valid for any token type", code: "token_not_valid", reason: "revoked" };
const EXPIRED = { ...REVOKED, reason: "expired" };
/** A token's claims. */
const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

const running = [];
after(async () => {
  for (const process of running.reverse()) await process.stop();
});

const path = (address) => new URL(address).pathname;
const bearer = (auth) => auth?.replace(/^Bearer /, "");

/**
 * The page's requests, each as "METHOD /path STATUS", in the order sent;
 * the two of a page load (sent at once: which comes first is not the
 * page's to say) sorted last, as in PAGE_LOAD.
 */
function lines(requests) {
  const all = requests.map((r) => `${r.method} ${path(r.url)} ${r.status}`);
  const load = (line) => line.startsWith("GET ");
  return [...all.filter((l) => !load(l)), ...all.filter(load).sort()];
}
const PAGE_LOAD = ["GET /api/auth/me 200", "GET /backend/orders 200"];

/** Waits until the page has sent and had answered `count` requests, and returns them (and no more came). */
async function answered(browser, count, what) {
  const seen = [];
  await waitFor(() => `${count} answered requests ${what} (${lines(seen).join(", ")})`, async () => {
    seen.push(...(await browser.network()));
    return seen.length >= count;
  });
  // A moment for any request beyond those expected to show.
  await sleep(300);
  seen.push(...(await browser.network()));
  return seen;
}

test("the tutorial's app on Tessera's axios adapter", { timeout: 180_000 }, async () => {
  // ES256: the backend verifies with the public keys of Tessera's JWKS.
  const tessera = await startTessera(
    `algorithm = "ES256"\naccess_token_lifetime = "${LIFETIME_S}s"\nextra_claims = ["roles"]`,
  );
  running.push(tessera);
  await tessera.signup("alice");
  const backend = await startBackend(tessera, tessera.addClient("orders-backend"));
  running.push(backend);
  // The backend answers 503 until it holds the revocation feed's snapshot.
  let answer = "";
  let probe = null; // a login of its own, renewed should it expire meanwhile
  await waitFor(() => `the backend to accept a token (last: ${answer})`, async () => {
    probe ??= (await tessera.login("alice")).access;
    const res = await fetch(backend.origin + "/orders", { headers: { Authorization: `Bearer ${probe}` } });
    answer = `${res.status} ${await res.text()}`;
    if (res.status === 401) probe = null;
    return res.status === 200;
  });
  const preview = await startPreview(tessera, backend);
  running.push(preview);
  const browser = await startBrowser(tessera.dir);
  running.push(browser);

  await browser.open(preview.origin + "/");
  await waitFor("the login form", async () => (await browser.texts("#login-button")).length === 1);

  // A wrong password: Tessera's refusal, shown by the form.
  await browser.type("#username", "alice");
  await browser.type("#password", "not-the-password");
  await browser.click("#login-button");
  await waitFor("the login error", async () => (await browser.texts("#login-error")).length === 1);
  assert.deepEqual(await browser.texts("#login-error"), ["No active account found with the given credentials"]);

  // The right one: the orders, from the backend, with the access token.
  await browser.type("#password", PASSWORD);
  await browser.click("#login-button");
  await waitFor("the orders", async () => (await browser.texts("#orders li")).length === 2);
  const loaded = Date.now();
  assert.deepEqual(await browser.texts("#orders li"), ORDERS);
  assert.deepEqual(await browser.texts("#user"), ["Logged in as alice"]);
  const login = await answered(browser, 4, "at login");
  assert.deepEqual(lines(login), ["POST /api/token/ 401", "POST /api/token/ 200", ...PAGE_LOAD]);
  const first = bearer(login[2].auth);
  assert.ok(first, "the orders request carried a bearer token");
  assert.equal(login[3].auth, `Bearer ${first}`);
  assert.equal(login[0].auth, null);
  // The tutorial kept the tokens in localStorage; the client keeps them in memory.
  assert.deepEqual(await browser.execute("return [localStorage.length, sessionStorage.length];"), [0, 0]);

  // The access token expires; Reload sends both requests at once: one
  // refresh for the two, then both with the new token. The client counts the
  // lifetime from the token's arrival, so no request goes out with the
  // expired token and none is refused.
  await sleep(loaded + LIFETIME_S * 1000 + 700 - Date.now());
  const refreshesBefore = await tessera.refreshes();
  await browser.click("#reload");
  await waitFor("the orders again", async () => (await browser.texts("#orders li")).length === 2);
  assert.deepEqual(await browser.texts("#orders li"), ORDERS);
  const reload = await answered(browser, 3, "at reload");
  assert.deepEqual(lines(reload), ["POST /api/token/refresh/ 200", ...PAGE_LOAD]);
  assert.equal(reload[0].auth, null);
  const second = bearer(reload[1].auth);
  assert.notEqual(second, first);
  assert.equal(reload[2].auth, `Bearer ${second}`);
  assert.equal((await tessera.refreshes()) - refreshesBefore, 1);
  const direct = await fetch(backend.origin + "/orders", { headers: { Authorization: `Bearer ${second}` } });
  assert.equal(direct.status, 200);
  assert.deepEqual(claims(second).roles, []);

  // Staff give alice a role (`tessera users roles`): the token the page holds
  // is now stale, and both services refuse it as `expired` (the backend
  // through the revocation feed). Reload: both requests are refused, share
  // one refresh, and are sent again with the new token, which has the role.
  assert.equal(tessera.cli("users", "roles", "alice", "--add", "editors"), "editors\n");
  const stale = await waitFor(
    "the backend to refuse the stale token",
    async () => {
      const res = await fetch(backend.origin + "/orders", { headers: { Authorization: `Bearer ${second}` } });
      return res.status === 401 ? res.json() : null;
    },
    5000,
  );
  assert.deepEqual(stale, EXPIRED);
  const before = await tessera.refreshes();
  await browser.click("#reload");
  const retried = await answered(browser, 5, "at the reload after the role");
  assert.deepEqual(lines(retried), [
    "POST /api/token/refresh/ 200",
    "GET /api/auth/me 200",
    "GET /api/auth/me 401",
    "GET /backend/orders 200",
    "GET /backend/orders 401",
  ]);
  assert.equal((await tessera.refreshes()) - before, 1);
  const refused401 = retried.filter((r) => r.status === 401);
  assert.deepEqual(refused401.map((r) => r.auth), [`Bearer ${second}`, `Bearer ${second}`]);
  const resent = retried.filter((r) => r.method === "GET" && r.status === 200);
  const fresh = bearer(resent[0].auth);
  assert.equal(resent[1].auth, `Bearer ${fresh}`);
  assert.deepEqual(claims(fresh).roles, ["editors"]);
  assert.deepEqual(await browser.texts("#orders li"), ORDERS);

  // Log out: the form again, and the backend refuses the token the page held,
  // well before it expires (it follows Tessera's revocation feed).
  await browser.click("#logout");
  await waitFor("the login form after logout", async () => (await browser.texts("#login-button")).length === 1);
  assert.deepEqual(await browser.texts("#orders li"), []);
  assert.equal(await browser.execute("return document.querySelector('#username').value;"), "");
  const logout = await answered(browser, 1, "at logout");
  assert.deepEqual(lines(logout), ["POST /api/auth/logout 204"]);
  assert.equal(logout[0].auth, `Bearer ${fresh}`);
  const loggedOut = await waitFor(
    "the backend to refuse the logged-out token",
    async () => {
      const res = await fetch(backend.origin + "/orders", { headers: { Authorization: `Bearer ${fresh}` } });
      return res.status === 401 ? res.json() : null;
    },
    5000,
  );
  assert.deepEqual(loggedOut, REVOKED);
  const me = await fetch(tessera.origin + "/api/auth/me", { headers: { Authorization: `Bearer ${fresh}` } });
  assert.equal(me.status, 401);
  assert.equal((await me.json()).reason, "revoked");

  // A session ended elsewhere: logged in again, the user is deactivated
  // (`tessera users deactivate`); at the next Reload both services refuse the
  // token as revoked, and the adapter logs out, once, without a refresh.
  await browser.type("#username", "alice");
  await browser.type("#password", PASSWORD);
  await browser.click("#login-button");
  await waitFor("the orders after the second login", async () => (await browser.texts("#orders li")).length === 2);
  const again = await answered(browser, 3, "at the second login");
  assert.deepEqual(lines(again), ["POST /api/token/ 200", ...PAGE_LOAD]);
  const third = bearer(again[1].auth);
  assert.equal(again[2].auth, `Bearer ${third}`);
  assert.notEqual(third, fresh);
  tessera.cli("users", "deactivate", "alice");
  const ended = await waitFor(
    "the backend to refuse the deactivated user's token",
    async () => {
      const res = await fetch(backend.origin + "/orders", { headers: { Authorization: `Bearer ${third}` } });
      return res.status === 401 ? res.json() : null;
    },
    5000,
  );
  assert.deepEqual(ended, REVOKED);
  await browser.click("#reload");
  await waitFor("the login form after the deactivation", async () => (await browser.texts("#login-button")).length === 1);
  const refused = await answered(browser, 2, "after the deactivation");
  assert.deepEqual(lines(refused).sort(), ["GET /api/auth/me 401", "GET /backend/orders 401"]);
  assert.deepEqual(refused.map((r) => r.auth), [`Bearer ${third}`, `Bearer ${third}`]);
});
