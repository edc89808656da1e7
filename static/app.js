// The page at /: drives the client module and shows what it does.
import { createClient } from "/static/tessera.js";

const $ = (id) => document.getElementById(id);
let client = null;

function log({ method, path, status, ms }) {
  const item = document.createElement("li");
  item.textContent = `${method} ${path} → ${status} (${ms} ms)`;
  item.className = status < 400 ? "ok" : "error";
  $("log").prepend(item);
}

function transport() {
  return document.querySelector('input[name="transport"]:checked').value;
}

function newClient() {
  client = createClient({ transport: transport(), onRequest: log, onLogout: showLoggedOut });
  return client;
}

function show(token) {
  $("header").textContent = JSON.stringify(token.header, null, 2);
  $("claims").textContent = JSON.stringify(token.claims, null, 2);
  for (const id of ["me", "burst", "refresh", "logout"]) $(id).disabled = false;
}

function showLoggedOut() {
  $("status").textContent = "Not logged in.";
  $("header").textContent = "–";
  $("claims").textContent = "–";
  $("countdown").textContent = "–";
  for (const id of ["me", "burst", "refresh", "logout"]) $(id).disabled = true;
}

function tick() {
  const token = client && client.token;
  if (!token) return;
  const left = token.claims.exp - Date.now() / 1000;
  $("countdown").textContent = left > 0 ? `${left.toFixed(1)} s` : "expired (the next call refreshes)";
}
setInterval(tick, 200);

$("signup").addEventListener("click", async () => {
  try {
    const user = await newClient().signup($("username").value, $("password").value, $("email").value);
    $("status").textContent = `Signed up as ${user.username} (id ${user.id}). Log in now.`;
  } catch (e) {
    $("status").textContent = `Sign-up refused: ${JSON.stringify(e.body)}`;
  }
});

$("credentials").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const token = await newClient().login($("username").value, $("password").value);
    $("status").textContent = `Logged in as ${token.claims.username} (${client.transport} transport).`;
    show(token);
    tick();
  } catch (e) {
    $("status").textContent = `Login refused: ${e.message}`;
  }
});

$("me").addEventListener("click", async () => {
  const res = await client.fetch("/api/auth/me");
  $("result").textContent = `${res.status} ${JSON.stringify(await res.json().catch(() => null), null, 2)}`;
  if (client.token) show(client.token);
});

$("burst").addEventListener("click", async () => {
  $("result").textContent = "…";
  const answers = await Promise.all(Array.from({ length: 5 }, () => client.fetch("/api/auth/me")));
  const ok = answers.filter((r) => r.ok).length;
  $("result").textContent = `${ok} of 5 succeeded`;
  if (client.token) show(client.token);
});

$("refresh").addEventListener("click", async () => {
  const ok = await client.refresh();
  $("result").textContent = ok ? "refreshed" : "refresh failed: logged out";
  if (client.token) show(client.token);
});

$("logout").addEventListener("click", async () => {
  await client.logout();
  $("result").textContent = "logged out";
});
