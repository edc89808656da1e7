// The page at /: drives the client module and shows what it does.
import { createClient } from "/static/tessera.js";

const $ = (id) => document.getElementById(id);
const SESSION_BUTTONS = [
  "me",
  "burst",
  "refresh",
  "logout",
  "sessions-reload",
  "end-others",
  "totp-start",
  "recovery-regenerate",
  "totp-remove-send",
  "passkey-add-send",
];
let client = null;
// The second step of a login that asked for it: its mfaToken.
let pendingFactor = null;
// A login refused until the user enrols (the server's `mfa` setting): its enrolment token.
let pendingEnrolment = null;

// The token locations the server accepts, filled in by the server (page.rs):
// offer only the transports that work here.
const locations = new Set((document.documentElement.dataset.tokenLocations || "").split(","));
const offered = { header: locations.has("headers"), cookie: locations.has("cookies") };

function log({ method, path, status, ms }) {
  const item = document.createElement("li");
  item.textContent = `${method} ${path} → ${status} (${ms} ms)`;
  item.className = status < 400 ? "ok" : "error";
  $("log").prepend(item);
}

function transport() {
  return document.querySelector('input[name="transport"]:checked').value;
}

function newClient(chosen) {
  const made = createClient({
    transport: chosen,
    onRequest: log,
    // Only the page's current client speaks for the page.
    onLogout: () => made === client && showLoggedOut(),
  });
  return made;
}

function enable(on) {
  for (const id of SESSION_BUTTONS) $(id).disabled = !on;
}

// The token may be unknown while logged in: in cookie transport it is in an
// HttpOnly cookie, and a session restored after a reload (or refreshed by
// another tab) shows its claims after this tab's next refresh.
function show(token) {
  const unknown = "(in the HttpOnly cookie: shown after the next refresh)";
  $("header").textContent = token ? JSON.stringify(token.header, null, 2) : unknown;
  $("claims").textContent = token ? JSON.stringify(token.claims, null, 2) : unknown;
  enable(true);
}

// Fills the list `id` with an item per entry `fetch` gives, each made by
// `itemOf`; empty while logged out, or when the entries cannot be fetched.
async function fillList(id, fetch, itemOf) {
  const list = $(id);
  if (!client || !client.loggedIn) {
    list.replaceChildren();
    return;
  }
  const entries = await fetch().catch(() => []);
  list.replaceChildren(...entries.map(itemOf));
}

// A button of class `className` saying `label` that runs `onClick`.
function actionButton(className, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}

// The user's sessions, each with an "end" button but the current one. The
// User-Agent is what a client sent: text only, never markup.
async function showSessions() {
  await fillList("session-list", () => client.listSessions(), (session) => {
    const item = document.createElement("li");
    item.dataset.session = session.id;
    const text = document.createElement("span");
    text.textContent = `${session.user_agent || "(no User-Agent)"} from ${session.ip}, since ${session.created}, last used ${session.last_used}`;
    item.append(text);
    if (session.current) {
      const mark = document.createElement("strong");
      mark.textContent = " (this one)";
      item.append(mark);
    } else {
      item.append(
        actionButton("end-session", "End", async () => {
          await client.endSession(session.id).catch(() => {});
          await showSessions();
        }),
      );
    }
    return item;
  });
}

function showLoggedOut() {
  $("status").textContent = "Not logged in.";
  $("header").textContent = "–";
  $("claims").textContent = "–";
  $("countdown").textContent = "–";
  $("session-list").replaceChildren();
  $("passkey-list").replaceChildren();
  $("totp-enrolment").hidden = true;
  $("recovery-codes-shown").hidden = true;
  enable(false);
}

function tick() {
  if (!client || !client.loggedIn) return;
  const exp = client.token?.claims?.exp;
  if (typeof exp !== "number") {
    $("countdown").textContent = "unknown until the next refresh";
    return;
  }
  const left = exp - Date.now() / 1000;
  $("countdown").textContent = left > 0 ? `${left.toFixed(1)} s` : "expired (the next call refreshes)";
}
setInterval(tick, 200);

// A failed request (the network, not a status) shows in the result, not as an
// unhandled rejection.
function on(id, event, handler) {
  $(id).addEventListener(event, async (e) => {
    try {
      await handler(e);
    } catch (err) {
      $("result").textContent = `failed: ${err.message}`;
    }
  });
}

for (const [name, id] of [["header", "transport-header"], ["cookie", "transport-cookie"]]) {
  $(id).disabled = !offered[name];
  $(`${id}-off`).hidden = offered[name];
}
if (!offered.header && offered.cookie) $("transport-cookie").checked = true;

on("signup", "click", async () => {
  try {
    const user = await createClient({ onRequest: log }).signup($("username").value, $("password").value, $("email").value);
    $("status").textContent = `Signed up as ${user.username} (id ${user.id}). Log in now.`;
  } catch (e) {
    $("status").textContent = `Sign-up refused: ${JSON.stringify(e.body ?? e.message)}`;
  }
});

on("credentials", "submit", async (event) => {
  event.preventDefault();
  // A new login ends the page's session first: the old client would keep
  // its tokens, and its refreshes ahead of expiry, alive.
  if (client && client.loggedIn) await client.logout().catch(() => {});
  client = newClient(transport());
  $("second-factor").hidden = true;
  pendingFactor = null;
  pendingEnrolment = null;
  try {
    await loggedIn(await client.login($("username").value, $("password").value));
  } catch (e) {
    refused(e);
  }
});

// What the page asks for after the password: the factors the user has.
function askForFactor(methods) {
  const passkey = methods.includes("passkey");
  const totp = methods.includes("totp");
  $("mfa-passkey").hidden = !passkey;
  if (passkey && totp) return "Enter the code your authenticator app shows or a recovery code, or use a passkey.";
  if (passkey) return "Use a passkey, or enter a recovery code.";
  return "Enter the code your authenticator app shows, or a recovery code.";
}

// A login refused: a second factor to set up or to give, or a plain refusal.
function refused(e, what = "Login") {
  if (e.code === "mfa_enrolment_required") {
    pendingEnrolment = e.enrolmentToken;
    $("totp-start").disabled = false;
    $("passkey-add-send").disabled = false;
    $("status").textContent = "This server requires a second factor: set up an authenticator app or add a passkey below, then log in again.";
    return;
  }
  if (e.code === "mfa_required") {
    pendingFactor = e.mfaToken;
    $("second-factor").hidden = false;
    $("status").textContent = askForFactor(e.methods || []);
    $("mfa-code").focus();
    return;
  }
  $("status").textContent = `${what} refused: ${e.message}`;
  enable(false);
}

// A passkey alone, no username or password (the server's `passkey_login`).
on("passkey-login", "click", async () => {
  if (client && client.loggedIn) await client.logout().catch(() => {});
  client = newClient(transport());
  $("second-factor").hidden = true;
  pendingFactor = null;
  pendingEnrolment = null;
  try {
    await loggedIn(await client.loginWithPasskey());
  } catch (e) {
    refused(e, "Passkey login");
  }
});

async function loggedIn(token) {
  // `claim_names` may carry the username under another name: then the name as typed.
  const name = token.claims.username ?? $("username").value;
  $("status").textContent = `Logged in as ${name} (${client.transport} transport).`;
  show(token);
  tick();
  await Promise.all([showSessions(), showPasskeys()]);
}

// Six digits are the app's code; anything else a recovery code.
function factorOf(text) {
  const typed = text.trim();
  return /^\d{6}$/.test(typed) ? { code: typed } : { recoveryCode: typed };
}

on("second-factor", "submit", async (event) => {
  event.preventDefault();
  try {
    const token = await client.verifySecondFactor(pendingFactor, factorOf($("mfa-code").value));
    $("second-factor").hidden = true;
    pendingFactor = null;
    await loggedIn(token);
  } catch (e) {
    // A wrong code may be tried again; a spent or expired token needs the password again.
    if (e.code === "mfa_token_invalid") $("second-factor").hidden = true;
    $("status").textContent = `Second factor refused: ${e.message}`;
  }
});

on("mfa-passkey", "click", async () => {
  try {
    const token = await client.verifyWithPasskey(pendingFactor);
    $("second-factor").hidden = true;
    pendingFactor = null;
    await loggedIn(token);
  } catch (e) {
    if (e.code === "mfa_token_invalid") $("second-factor").hidden = true;
    $("status").textContent = `Second factor refused: ${e.message}`;
  }
});

// Seconds since the epoch as RFC 3339, to the second.
function when(seconds) {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

// The user's passkeys, each with a "Remove" button. Their names are what
// the user typed: text only, never markup.
async function showPasskeys() {
  await fillList("passkey-list", () => client.listPasskeys(), (passkey) => {
    const item = document.createElement("li");
    item.dataset.passkey = passkey.id;
    const text = document.createElement("span");
    const used = passkey.last_used_at === null ? "not used yet" : `last used ${when(passkey.last_used_at)}`;
    text.textContent = `${passkey.name}, added ${when(passkey.created_at)}, ${used}`;
    const remove = actionButton("remove-passkey", "Remove", async () => {
      try {
        await client.deletePasskey(passkey.id);
        $("factor-status").textContent = `The passkey ${passkey.name} is removed.`;
      } catch (e) {
        $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
      }
      await showPasskeys();
    });
    item.append(text, " ", remove);
    return item;
  });
}

function showRecoveryCodes(codes) {
  $("recovery-codes").replaceChildren(
    ...codes.map((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      return item;
    }),
  );
  $("recovery-codes-shown").hidden = false;
}

// The messages of a refused factor call: field messages (lists), and the
// `detail` (a refusal's `code` is a string, its reason's name, not a message).
function factorRefusal(e) {
  const body = e.body || {};
  const list = (field) => (Array.isArray(field) ? field : []);
  const messages = [...list(body.code), ...list(body.recovery_code), ...list(body.name), ...list(body.credential), ...list(body.non_field_errors)];
  if (body.detail) messages.push(body.detail);
  return messages.length ? messages.join(" ") : e.message;
}

on("totp-start", "click", async () => {
  try {
    const started = await client.startTotpEnrolment(pendingEnrolment ?? undefined);
    $("totp-secret").textContent = started.secret;
    // The server's own SVG, as an image (the page's policy allows data: images, not inline markup).
    $("totp-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(started.qr_svg)}`;
    $("totp-enrolment").hidden = false;
    $("recovery-codes-shown").hidden = true;
    $("factor-status").textContent = "Enrolment begun: confirm with a code.";
  } catch (e) {
    $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
  }
});

on("totp-confirm", "submit", async (event) => {
  event.preventDefault();
  try {
    showRecoveryCodes(await client.confirmTotp($("totp-code").value.trim(), pendingEnrolment ?? undefined));
    $("totp-enrolment").hidden = true;
    $("factor-status").textContent = "The authenticator app is set up: logins now ask for its code.";
    if (pendingEnrolment) {
      pendingEnrolment = null;
      $("totp-start").disabled = true;
      $("passkey-add-send").disabled = true;
      $("status").textContent = "Set up: log in again, with a code.";
    }
  } catch (e) {
    $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
  }
});

on("recovery-regenerate", "click", async () => {
  try {
    showRecoveryCodes(await client.regenerateRecoveryCodes());
    $("factor-status").textContent = "New recovery codes: the old ones no longer work.";
  } catch (e) {
    $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
  }
});

on("totp-remove", "submit", async (event) => {
  event.preventDefault();
  try {
    await client.removeTotp(factorOf($("totp-remove-code").value));
    $("recovery-codes-shown").hidden = true;
    $("factor-status").textContent = "The second factor is removed.";
  } catch (e) {
    $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
  }
});

on("passkey-add", "submit", async (event) => {
  event.preventDefault();
  $("factor-status").textContent = "Waiting for the passkey…";
  try {
    const added = await client.registerPasskey({
      name: $("passkey-name").value.trim() || undefined,
      enrolmentToken: pendingEnrolment ?? undefined,
    });
    if (added.recovery_codes) showRecoveryCodes(added.recovery_codes);
    else $("recovery-codes-shown").hidden = true;
    $("factor-status").textContent = `The passkey ${added.name} is added: logins now ask for it.`;
    if (pendingEnrolment) {
      pendingEnrolment = null;
      $("totp-start").disabled = true;
      $("passkey-add-send").disabled = true;
      $("status").textContent = "Set up: log in again, with the passkey.";
    }
    await showPasskeys();
  } catch (e) {
    $("factor-status").textContent = `Refused: ${factorRefusal(e)}`;
  }
});

on("me", "click", async () => {
  const res = await client.fetch("/api/auth/me");
  $("result").textContent = `${res.status} ${JSON.stringify(await res.json().catch(() => null), null, 2)}`;
  if (client.loggedIn) show(client.token);
});

on("burst", "click", async () => {
  $("result").textContent = "…";
  const answers = await Promise.all(Array.from({ length: 5 }, () => client.fetch("/api/auth/me")));
  const ok = answers.filter((r) => r.ok).length;
  $("result").textContent = `${ok} of 5 succeeded`;
  if (client.loggedIn) show(client.token);
});

on("refresh", "click", async () => {
  const ok = await client.refresh();
  $("result").textContent = ok ? "refreshed" : "refresh failed: logged out";
  if (client.loggedIn) show(client.token);
});

on("sessions-reload", "click", () => showSessions());

on("end-others", "click", async () => {
  await client.endOtherSessions().catch(() => {});
  await showSessions();
});

on("logout", "click", async () => {
  await client.logout();
  $("result").textContent = "logged out";
});

// Password reset and verification, when the server mails: "forgot password",
// and the links of the mails (`?reset=TOKEN`, `?verify=TOKEN`). The token
// leaves the address bar at once, so that it stays out of the history.
const mailing = document.documentElement.dataset.email === "on";
const linked = new URLSearchParams(location.search);
const resetToken = linked.get("reset");
const verifyToken = linked.get("verify");
if (resetToken || verifyToken) history.replaceState(null, "", location.pathname);
$("recovery").hidden = !mailing && !resetToken && !verifyToken;

function refusal(e) {
  const body = e.body || {};
  const messages = [...(body.token || []), ...(body.new_password || []), ...(body.email || [])];
  if (body.detail) messages.push(body.detail);
  return messages.length ? messages.join(" ") : e.message;
}

on("forgot", "submit", async (event) => {
  event.preventDefault();
  try {
    await createClient({ onRequest: log }).requestPasswordReset($("forgot-email").value);
    $("recovery-status").textContent = "If an account has this address, a reset link is on its way.";
  } catch (e) {
    $("recovery-status").textContent = `Refused: ${refusal(e)}`;
  }
});

if (resetToken) {
  $("forgot").hidden = true;
  $("reset-form").hidden = false;
  $("new-password").focus();
}

on("reset-form", "submit", async (event) => {
  event.preventDefault();
  try {
    await createClient({ onRequest: log }).confirmPasswordReset(resetToken, $("new-password").value);
    $("reset-form").hidden = true;
    $("recovery-status").textContent = "Password changed. Log in with the new password.";
  } catch (e) {
    $("recovery-status").textContent = `Not changed: ${refusal(e)}`;
  }
});

if (verifyToken) {
  $("forgot").hidden = true;
  createClient({ onRequest: log })
    .verifyEmail(verifyToken)
    .then(() => ($("recovery-status").textContent = "Email address verified. You can log in."))
    .catch((e) => ($("recovery-status").textContent = `Not verified: ${refusal(e)}`));
}

// A cookie session outlives the page: pick it up after a reload.
async function restore() {
  if (!offered.cookie) return;
  const candidate = newClient("cookie");
  const user = await candidate.restore().catch(() => null);
  // Someone may have logged in while this was on its way.
  if (!user || client) return;
  client = candidate;
  $("transport-cookie").checked = true;
  $("status").textContent = `Logged in as ${user.username} (cookie transport).`;
  $("result").textContent = `200 ${JSON.stringify(user, null, 2)}`;
  show(client.token);
  tick();
  await Promise.all([showSessions(), showPasskeys()]);
}
restore();
