// Second factors through the client, in Node against a real Tessera: TOTP
// enrolment, a login's second step with a code and with a recovery code,
// the refusals an app must tell apart, removal. The codes are made by pyotp
// (the test tools' Python environment), not by this package.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createClient } from "../tessera.js";
import { startTessera, PASSWORD } from "./harness.mjs";

const PYTHON = join(process.env.TESSERA_PYTHON_VENV || join(homedir(), ".cache/tessera-pyjwt"), "bin/python");

/** pyotp's code of `uri` for the 30-second step `offset` steps from now. */
function code(uri, offset = 0) {
  return execFileSync(
    PYTHON,
    ["-c", "import pyotp, sys, time; print(pyotp.parse_uri(sys.argv[1]).at(time.time() + 30 * int(sys.argv[2])))", uri, String(offset)],
    { encoding: "utf8" },
  ).trim();
}

const pyotp = existsSync(PYTHON) && (() => {
  try {
    execFileSync(PYTHON, ["-c", "import pyotp"]);
    return true;
  } catch {
    return false;
  }
})();
const missing = pyotp ? false : `pyotp is missing from ${PYTHON}: run .ci/install-test-tools`;
if (missing && process.env.TESSERA_TEST_REQUIRE_TOOLS) throw new Error(missing);

let tessera;
let required;
before(async () => {
  tessera = await startTessera();
  required = await startTessera('mfa = "required"');
});
after(async () => {
  await tessera?.stop();
  await required?.stop();
});

async function loginRefused(client, username, password = PASSWORD) {
  return client.login(username, password).then(
    () => assert.fail("the login did not ask for a second factor"),
    (error) => error,
  );
}

test("enrolment, then a login's second step with a code and with a recovery code", { skip: missing }, async () => {
  await tessera.signup("mfa1");
  const client = createClient({ baseUrl: tessera.origin });
  await client.login("mfa1", PASSWORD);
  const started = await client.startTotpEnrolment();
  assert.match(started.secret, /^[A-Z2-7]{32}$/);
  assert.ok(started.otpauth_uri.startsWith("otpauth://totp/Tessera:mfa1?"), started.otpauth_uri);
  assert.ok(started.qr_svg.includes("<svg"));
  const recovery = await client.confirmTotp(code(started.otpauth_uri));
  assert.equal(recovery.length, 10);
  assert.ok(recovery.every((c) => /^[2-9a-z]{5}-[2-9a-z]{5}$/.test(c)), recovery.join(" "));

  // The password alone now asks for the second factor.
  const other = createClient({ baseUrl: tessera.origin });
  const asked = await loginRefused(other, "mfa1");
  assert.equal(asked.status, 401);
  assert.equal(asked.code, "mfa_required");
  assert.deepEqual(asked.methods, ["totp", "recovery_code"]);
  assert.equal(typeof asked.mfaToken, "string");
  assert.equal(other.loggedIn, false);

  // A wrong code: refused, the token still usable; then the next step's code.
  const wrong = await other.verifySecondFactor(asked.mfaToken, { code: "000000" }).catch((e) => e);
  assert.equal(wrong.status, 401);
  assert.equal(wrong.code, "mfa_code_invalid");
  const view = await other.verifySecondFactor(asked.mfaToken, { code: code(started.otpauth_uri, 1) });
  assert.deepEqual(view.claims.amr, ["pwd", "otp", "mfa"]);
  assert.equal(other.loggedIn, true);
  const me = await other.fetch("/api/auth/me");
  assert.equal(me.status, 200);
  assert.equal((await me.json()).username, "mfa1");

  // The token is used up; a recovery code on a new login works once.
  const spent = await other.verifySecondFactor(asked.mfaToken, { code: code(started.otpauth_uri, 1) }).catch((e) => e);
  assert.equal(spent.code, "mfa_token_invalid");
  const third = createClient({ baseUrl: tessera.origin });
  const again = await loginRefused(third, "mfa1");
  await third.verifySecondFactor(again.mfaToken, { recoveryCode: recovery[0] });
  assert.equal(third.loggedIn, true);
  const fourth = createClient({ baseUrl: tessera.origin });
  const once = await loginRefused(fourth, "mfa1");
  const used = await fourth.verifySecondFactor(once.mfaToken, { recoveryCode: recovery[0] }).catch((e) => e);
  assert.equal(used.code, "mfa_code_invalid");

  // New recovery codes void the old; removal with one of them; then the password alone logs in.
  const fresh = await third.regenerateRecoveryCodes();
  assert.equal(fresh.length, 10);
  assert.equal(fresh.filter((c) => recovery.includes(c)).length, 0);
  const old = await third.removeTotp({ recoveryCode: recovery[1] }).catch((e) => e);
  assert.equal(old.status, 400);
  await third.removeTotp({ recoveryCode: fresh[0] });
  const plain = createClient({ baseUrl: tessera.origin });
  const plainView = await plain.login("mfa1", PASSWORD);
  assert.deepEqual(plainView.claims.amr, ["pwd"]);
});

test("enrolment needs a fresh login: a refreshed token is refused", { skip: missing }, async () => {
  await tessera.signup("mfa2");
  const client = createClient({ baseUrl: tessera.origin, refreshAhead: false });
  await client.login("mfa2", PASSWORD);
  assert.equal(await client.refresh(), true);
  const refused = await client.startTotpEnrolment().catch((e) => e);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, "fresh_token_required");
});

test("a server that requires a second factor: the login's enrolment token enrols, then the login asks for the code", { skip: missing }, async () => {
  await required.signup("mfa3");
  const client = createClient({ baseUrl: required.origin });
  const refused = await client.login("mfa3", PASSWORD).catch((e) => e);
  assert.equal(refused.status, 401);
  assert.equal(refused.code, "mfa_enrolment_required");
  assert.equal(typeof refused.enrolmentToken, "string");
  assert.equal(client.loggedIn, false);
  // The enrolment token is no access token.
  const me = await fetch(`${required.origin}/api/auth/me`, { headers: { Authorization: `Bearer ${refused.enrolmentToken}` } });
  assert.equal(me.status, 401);
  const started = await client.startTotpEnrolment(refused.enrolmentToken);
  const recovery = await client.confirmTotp(code(started.otpauth_uri), refused.enrolmentToken);
  assert.equal(recovery.length, 10);
  const asked = await client.login("mfa3", PASSWORD).catch((e) => e);
  assert.equal(asked.code, "mfa_required");
  const view = await client.verifySecondFactor(asked.mfaToken, { code: code(started.otpauth_uri, 1) });
  assert.deepEqual(view.claims.amr, ["pwd", "otp", "mfa"]);
  assert.equal(client.loggedIn, true);
});
