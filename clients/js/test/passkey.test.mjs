// The passkey calls in Node, which has no authenticator: a stand-in for
// navigator.credentials (the `credentials` option) answers the browser's
// part, and a small HTTP server on 127.0.0.1 stands in for Tessera's passkey
// routes, recording what the client sent. What is checked is the client's
// side of the exchange: the requests, the options handed to the
// authenticator (binary fields as bytes), and the credential sent back in
// WebAuthn's JSON form (base64url without padding). Node has no
// PublicKeyCredential, so these are the client's own conversions, the ones
// a browser without parseCreationOptionsFromJSON and toJSON gets.
// Chromium's virtual authenticator drives the real ceremonies against a
// real server (crates/tessera-server/tests/browser.rs); the last test here
// checks the conversions on a real Tessera's options, up to the browser's part.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { createClient } from "../tessera.js";
import { startTessera, PASSWORD } from "./harness.mjs";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const bytesOf = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

/** An unsigned JWT with these claims: the client decodes, never verifies. */
function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT", kid: "k" })}.${part(claims)}.c2ln`;
}

const ACCESS = jwt({ token_type: "access", username: "pk", exp: 4e9, iat: 4e9 - 300, fresh: true });
const CHALLENGE = Uint8Array.from([1, 2, 3, 250, 251, 252, 253, 254, 255]);
const USER_ID = Uint8Array.from([9, 8, 7]);
const CRED_ID = Uint8Array.from([200, 201, 202, 203]);

// The answers of the stand-in server, by "METHOD path".
const ROUTES = {
  "POST /api/token/": () => [200, { access: ACCESS, refresh: "r" }],
  "POST /api/auth/passkeys/register/start": () => [
    200,
    {
      publicKey: {
        rp: { id: "localhost", name: "Tessera" },
        user: { id: b64url(USER_ID), name: "pk", displayName: "pk" },
        challenge: b64url(CHALLENGE),
        pubKeyCredParams: [{ type: "public-key", alg: -7 }],
        excludeCredentials: [{ type: "public-key", id: b64url(CRED_ID) }],
      },
    },
  ],
  "POST /api/auth/passkeys/register/finish": () => [
    201,
    { id: "p1", name: "laptop", created_at: 1700000000, last_used_at: null, recovery_codes: ["a", "b"] },
  ],
  "GET /api/auth/passkeys": () => [200, [{ id: "p1", name: "laptop", created_at: 1700000000, last_used_at: null }]],
  "DELETE /api/auth/passkeys/p%2F1": () => [204, null],
  "POST /api/auth/mfa/passkey/start": () => [
    200,
    { publicKey: { challenge: b64url(CHALLENGE), rpId: "localhost", allowCredentials: [{ type: "public-key", id: b64url(CRED_ID) }] } },
  ],
  "POST /api/auth/mfa/passkey/finish": () => [200, { access: ACCESS, refresh: "r2" }],
  "POST /api/auth/passkeys/login/start": () => [
    403,
    { detail: "Logging in with a passkey alone is off on this server.", code: "passkey_login_disabled" },
  ],
};

let server;
let origin;
let seen = [];
before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: body ? JSON.parse(body) : null });
      const route = ROUTES[`${req.method} ${req.url}`];
      const [status, answer] = route ? route() : [404, { detail: "Not found." }];
      res.writeHead(status, answer === null ? {} : { "Content-Type": "application/json" });
      res.end(answer === null ? undefined : JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((resolve) => server.close(resolve)));

/** A credential as the browser's authenticator hands it over, without toJSON (an older browser). */
function attestation() {
  return {
    id: b64url(CRED_ID),
    rawId: CRED_ID.buffer.slice(0),
    type: "public-key",
    authenticatorAttachment: "platform",
    response: {
      clientDataJSON: new TextEncoder().encode('{"type":"webauthn.create"}').buffer,
      attestationObject: Uint8Array.from([0xa3, 0x63, 0xff]).buffer,
      getTransports: () => ["internal"],
    },
    getClientExtensionResults: () => ({ credProps: { rk: true } }),
  };
}

function assertionOf() {
  // A view into a larger buffer: only its own bytes count.
  const big = Uint8Array.from([0, 0, 5, 6, 7, 0]);
  return {
    id: b64url(CRED_ID),
    rawId: CRED_ID.buffer.slice(0),
    type: "public-key",
    response: {
      clientDataJSON: new TextEncoder().encode('{"type":"webauthn.get"}').buffer,
      authenticatorData: Uint8Array.from([1, 1]).buffer,
      signature: new Uint8Array(big.buffer, 2, 3),
      userHandle: USER_ID.buffer.slice(0),
    },
    getClientExtensionResults: () => ({}),
  };
}

/** A stand-in for navigator.credentials that records what it was asked. */
function authenticator() {
  const asked = { create: [], get: [] };
  return {
    asked,
    credentials: {
      create: async (options) => (asked.create.push(options), attestation()),
      get: async (options) => (asked.get.push(options), assertionOf()),
    },
  };
}

test("registerPasskey with the session: start, the authenticator, finish with the credential in JSON", async () => {
  const { asked, credentials } = authenticator();
  const client = createClient({ baseUrl: origin, credentials });
  await client.login("pk", "pw");
  seen = [];
  const added = await client.registerPasskey({ name: "laptop" });
  assert.deepEqual(added, { id: "p1", name: "laptop", created_at: 1700000000, last_used_at: null, recovery_codes: ["a", "b"] });

  assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), [
    "POST /api/auth/passkeys/register/start",
    "POST /api/auth/passkeys/register/finish",
  ]);
  for (const r of seen) assert.equal(r.headers.authorization, `Bearer ${ACCESS}`);
  assert.deepEqual(seen[0].body, {});

  assert.equal(asked.create.length, 1);
  const options = asked.create[0].publicKey;
  assert.deepEqual(bytesOf(options.challenge), Buffer.from(CHALLENGE));
  assert.deepEqual(bytesOf(options.user.id), Buffer.from(USER_ID));
  assert.equal(options.user.name, "pk");
  assert.deepEqual(bytesOf(options.excludeCredentials[0].id), Buffer.from(CRED_ID));
  assert.deepEqual(options.pubKeyCredParams, [{ type: "public-key", alg: -7 }]);

  assert.deepEqual(seen[1].body, {
    name: "laptop",
    credential: {
      id: "yMnKyw",
      rawId: "yMnKyw",
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: { credProps: { rk: true } },
      response: {
        clientDataJSON: b64url('{"type":"webauthn.create"}'),
        attestationObject: "o2P_",
        transports: ["internal"],
      },
    },
  });
});

test("registerPasskey with an enrolment token sends that token, and no name unless given", async () => {
  const { credentials } = authenticator();
  const client = createClient({ baseUrl: origin, credentials });
  seen = [];
  await client.registerPasskey({ enrolmentToken: "enrol-1" });
  assert.deepEqual(seen.map((r) => [r.path, r.headers.authorization]), [
    ["/api/auth/passkeys/register/start", "Bearer enrol-1"],
    ["/api/auth/passkeys/register/finish", "Bearer enrol-1"],
  ]);
  assert.equal("name" in seen[1].body, false);
  assert.equal(client.loggedIn, false);
});

test("listPasskeys and deletePasskey", async () => {
  const client = createClient({ baseUrl: origin, credentials: authenticator().credentials });
  await client.login("pk", "pw");
  seen = [];
  assert.deepEqual(await client.listPasskeys(), [{ id: "p1", name: "laptop", created_at: 1700000000, last_used_at: null }]);
  assert.equal(await client.deletePasskey("p/1"), undefined);
  assert.deepEqual(seen.map((r) => `${r.method} ${r.path} ${r.headers.authorization}`), [
    `GET /api/auth/passkeys Bearer ${ACCESS}`,
    `DELETE /api/auth/passkeys/p%2F1 Bearer ${ACCESS}`,
  ]);
});

test("verifyWithPasskey: the mfa token on both steps, the assertion in JSON, the login's headers", async () => {
  const { asked, credentials } = authenticator();
  const client = createClient({ baseUrl: origin, credentials, transport: "header" });
  seen = [];
  const view = await client.verifyWithPasskey("mfa-1");
  assert.equal(view.claims.username, "pk");
  assert.equal(client.loggedIn, true);
  assert.equal(await client.getAccessToken(), ACCESS);

  assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), [
    "POST /api/auth/mfa/passkey/start",
    "POST /api/auth/mfa/passkey/finish",
  ]);
  assert.equal(seen[0].headers.authorization, undefined);
  assert.deepEqual(seen[0].body, { mfa_token: "mfa-1" });
  const options = asked.get[0].publicKey;
  assert.deepEqual(bytesOf(options.challenge), Buffer.from(CHALLENGE));
  assert.deepEqual(bytesOf(options.allowCredentials[0].id), Buffer.from(CRED_ID));
  assert.equal(options.rpId, "localhost");
  assert.deepEqual(seen[1].body, {
    mfa_token: "mfa-1",
    credential: {
      id: "yMnKyw",
      rawId: "yMnKyw",
      type: "public-key",
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64url('{"type":"webauthn.get"}'),
        authenticatorData: "AQE",
        signature: "BQYH",
        userHandle: "CQgH",
      },
    },
  });
  assert.equal(seen[1].headers["x-token-transport"], undefined);

  // In cookie transport the finish asks for cookies, as the login does.
  const cookie = createClient({ baseUrl: origin, credentials, transport: "cookie" });
  seen = [];
  await cookie.verifyWithPasskey("mfa-2").catch(() => {});
  assert.equal(seen[1].headers["x-token-transport"], "cookie");
});

test("loginWithPasskey refused: the server's detail and code, and no authenticator asked", async () => {
  const { asked, credentials } = authenticator();
  const client = createClient({ baseUrl: origin, credentials });
  seen = [];
  const error = await client.loginWithPasskey().then(
    () => assert.fail("the login was not refused"),
    (e) => e,
  );
  assert.equal(error.status, 403);
  assert.equal(error.code, "passkey_login_disabled");
  assert.equal(error.message, "Logging in with a passkey alone is off on this server.");
  assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), ["POST /api/auth/passkeys/login/start"]);
  assert.deepEqual(seen[0].body, {});
  assert.equal(asked.get.length, 0);
  assert.equal(client.loggedIn, false);
});

test("without WebAuthn the passkey calls say so", async () => {
  const client = createClient({ baseUrl: origin, credentials: null });
  const error = await client.verifyWithPasskey("mfa-3").catch((e) => e);
  assert.equal(error.message, "passkeys need WebAuthn: this browser has no navigator.credentials");
});

// A real Tessera's options, as the authenticator gets them; the user
// declines (the browser's NotAllowedError), which rejects as it is.
test("a real Tessera's options reach the authenticator as bytes; the user declining rejects as the browser's error", async () => {
  const tessera = await startTessera('public_url = "http://localhost:8000"\npasskey_login = true');
  const off = await startTessera('public_url = "http://localhost:8000"');
  try {
    await tessera.signup("pk1");
    const asked = {};
    const declined = () => Object.assign(new Error("The operation either timed out or was not allowed."), { name: "NotAllowedError" });
    const credentials = {
      create: async (options) => ((asked.create = options.publicKey), Promise.reject(declined())),
      get: async (options) => ((asked.get = options.publicKey), Promise.reject(declined())),
    };
    const client = createClient({ baseUrl: tessera.origin, credentials });
    await client.login("pk1", PASSWORD);
    const refused = await client.registerPasskey({ name: "laptop" }).catch((e) => e);
    assert.equal(refused.name, "NotAllowedError");
    assert.deepEqual(asked.create.rp, { id: "localhost", name: "Tessera" });
    assert.equal(asked.create.user.name, "pk1");
    assert.ok(asked.create.user.id instanceof Uint8Array && asked.create.user.id.length > 0);
    assert.ok(asked.create.challenge instanceof Uint8Array);
    assert.equal(asked.create.challenge.length, 32);
    assert.deepEqual(asked.create.excludeCredentials, []);
    assert.deepEqual(await client.listPasskeys(), []);

    const alone = await client.loginWithPasskey().catch((e) => e);
    assert.equal(alone.name, "NotAllowedError");
    assert.equal(asked.get.rpId, "localhost");
    assert.ok(asked.get.challenge instanceof Uint8Array);
    assert.equal(asked.get.challenge.length, 32);
    assert.deepEqual(asked.get.allowCredentials, []);
    assert.equal(client.loggedIn, true, "the session from the password stays");

    // Where logins with a passkey alone are off, the server says so first.
    const elsewhere = createClient({ baseUrl: off.origin, credentials });
    const disabled = await elsewhere.loginWithPasskey().catch((e) => e);
    assert.equal(disabled.status, 403);
    const detail = "Logging in with a passkey alone is off on this server: log in with your password.";
    assert.deepEqual(disabled.body, { detail, code: "passkey_login_disabled" });
    assert.equal(disabled.code, "passkey_login_disabled");
    assert.equal(disabled.message, detail);
  } finally {
    await tessera.stop();
    await off.stop();
  }
});
