// What the example's test runs against: a real Tessera (TESSERA_BIN) on
// SQLite in a directory of its own, the resource server (RESOURCE_SERVER_BIN)
// following its revocation feed, the built page served by `vite preview`
// with the example's own proxy (vite.config.js), and Debian's Chromium
// driven by chromedriver over the W3C WebDriver protocol (node's fetch).
// Each process runs in a process group of its own, killed whole at the end
// (chromedriver's Chromium and its renderers join chromedriver's group).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const PASSWORD = "vivid-otter-canyon-1987!";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const groups = new Set();
// A test that throws may never reach its cleanup: no process outlives node.
process.on("exit", () => {
  for (const pid of groups) killGroup(pid);
});

function killGroup(pid) {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
  groups.delete(pid);
}

/**
 * Polls `probe` every 50 ms until it returns something truthy; throws after
 * `ms` saying `what` (or what the function `what` returns then).
 */
export async function waitFor(what, probe, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const said = typeof what === "function" ? what() : what;
      throw new Error(`waited ${ms} ms for ${said}${last ? `: ${last.message}` : ""}`);
    }
    await sleep(50);
  }
}

/** A port free on 127.0.0.1 now (for the servers whose port is given on the command line). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `command` in a process group of its own, its output to a log file
 * in `dir`. With `listening`, resolves once a line of its standard output
 * says `listening on HOST:PORT`, to "http://HOST:PORT".
 */
async function start(name, command, args, { cwd, env, dir, listening = false }) {
  const logPath = join(dir, `${name}.log`);
  const log = openSync(logPath, "a");
  const child = spawn(command, args, {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", listening ? "pipe" : log, log],
  });
  closeSync(log);
  groups.add(child.pid);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid);
      await exited;
    }
    groups.delete(child.pid);
  };
  const logText = () => readFileSync(logPath, "utf8");
  if (!listening) return { stop, logText, exited };
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s:\n${logText()}`)), 60_000);
    exited.then((code) => reject(new Error(`${name} exited (${code}) before listening:\n${logText()}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const at = line.indexOf("listening on ");
      if (at >= 0) {
        clearTimeout(timer);
        resolve("http://" + line.slice(at + "listening on ".length).trim());
      }
    });
  });
  return { origin, stop, logText, exited };
}

// Tessera reads every TESSERA_* variable as a setting and refuses those it
// does not know (TESSERA_BIN, TESSERA_TEST_REQUIRE_TOOLS are the tests').
function envWithoutTessera() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TESSERA_")));
}

/**
 * Starts `tessera serve` on SQLite with `settings` (TOML lines), and
 * registers a service client holding the `revocations` scope for the backend.
 */
export async function startTessera(settings = "") {
  const bin = process.env.TESSERA_BIN;
  const dir = mkdtempSync(join(tmpdir(), "tessera-vue-"));
  const config = join(dir, "tessera.toml");
  writeFileSync(
    config,
    [
      'bind = "127.0.0.1:0"',
      `database_url = "sqlite://${join(dir, "tessera.db")}"`,
      'signup_rate_limit = "off"',
      'login_rate_limit = "off"',
      'user_rate_limit = "off"',
      settings,
      "",
    ].join("\n"),
  );
  const env = envWithoutTessera();
  env.TESSERA_TEST_INSECURE_HASHING = "1"; // password hashing at test cost
  const server = await start("tessera", bin, ["--config", config, "serve"], { cwd: dir, env, dir, listening: true });
  const origin = server.origin;
  return {
    origin,
    dir,
    logText: server.logText,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    /** Signs `username` up; resolves when Tessera answered 201. */
    async signup(username) {
      const res = await fetch(origin + "/api/auth/signup", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      if (res.status !== 201) throw new Error(`signup ${res.status}: ${await res.text()}`);
    },
    /** Logs `username` in outside the page: {access, refresh}. */
    async login(username) {
      const res = await fetch(origin + "/api/token/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      if (res.status !== 200) throw new Error(`login ${res.status}: ${await res.text()}`);
      return res.json();
    },
    /** Runs a `tessera` command on this server's database; resolves to its standard output. */
    cli(...args) {
      const out = spawnSync(bin, ["--config", config, ...args], { cwd: dir, env, encoding: "utf8", timeout: 30_000 });
      if (out.status !== 0) throw new Error(`tessera ${args.join(" ")} (${out.status}): ${out.stdout}${out.stderr}`);
      return out.stdout;
    },
    /** `tessera clients add NAME --scope revocations`: {id, secret}. */
    addClient(name) {
      const out = this.cli("clients", "add", name, "--scope", "revocations");
      const field = (key) => out.match(new RegExp(`^${key}: (\\S+)$`, "m"))?.[1];
      if (!field("client_id") || !field("client_secret")) throw new Error(`clients add said: ${out}`);
      return { id: field("client_id"), secret: field("client_secret") };
    },
    /** Tessera's count of refreshes it granted (its /metrics). */
    async refreshes() {
      const text = await (await fetch(origin + "/metrics")).text();
      const line = text.split("\n").find((l) => l.startsWith("tessera_tokens_refreshed_total "));
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
    },
  };
}

/** The resource server (examples/resource-server) verifying Tessera's tokens, following its revocation feed. */
export async function startBackend(tessera, client) {
  const env = envWithoutTessera();
  Object.assign(env, {
    TESSERA_JWKS_URL: tessera.origin + "/.well-known/jwks.json",
    TESSERA_CLIENT_ID: client.id,
    TESSERA_CLIENT_SECRET: client.secret,
    BIND: "127.0.0.1:0",
  });
  return start("resource-server", process.env.RESOURCE_SERVER_BIN, [], {
    cwd: tessera.dir,
    env,
    dir: tessera.dir,
    listening: true,
  });
}

/** `vite preview` of the built page (DIST) from the example's copy (APP_DIR), proxying as vite.config.js says. */
export async function startPreview(tessera, backend) {
  const port = await freePort();
  const env = envWithoutTessera();
  Object.assign(env, { AUTH_ORIGIN: tessera.origin, BACKEND_ORIGIN: backend.origin });
  const args = ["preview", "--outDir", process.env.DIST, "--host", "127.0.0.1", "--port", String(port), "--strictPort"];
  const preview = await start("vite-preview", process.env.VITE_BIN, args, { cwd: process.env.APP_DIR, env, dir: tessera.dir });
  const origin = `http://127.0.0.1:${port}`;
  await waitFor(`vite preview on ${origin}\n${preview.logText()}`, async () => (await fetch(origin + "/")).status === 200, 30_000);
  return { origin, stop: preview.stop };
}

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/** Headless Chromium through chromedriver, over the W3C WebDriver protocol. */
export async function startBrowser(dir) {
  const port = await freePort();
  const driver = await start("chromedriver", "/usr/bin/chromedriver", [`--port=${port}`], { dir, env: process.env });
  const base = `http://127.0.0.1:${port}`;
  // An open port is not enough: a session asked for too early is refused.
  await waitFor("chromedriver to be ready", async () => (await (await fetch(base + "/status")).json()).value.ready, 30_000);
  const res = await fetch(base + "/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      capabilities: {
        alwaysMatch: {
          browserName: "chrome",
          "goog:chromeOptions": {
            binary: "/usr/bin/chromium",
            args: [
              "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-quic", "--no-first-run", "--window-size=1024,768",
              `--user-data-dir=${join(dir, "chromium-profile")}`,
            ],
            // Debian's Chromium opens its New Tab Page at start, which every
            // command would wait for; a blank page loads at once.
            prefs: { "session.restore_on_startup": 4, "session.startup_urls": ["about:blank"] },
          },
          // The DevTools network events, read through chromedriver's log
          // endpoint: what the page sent (and with which token), what came back.
          "goog:loggingPrefs": { performance: "ALL" },
        },
      },
    }),
  });
  const session = await res.json();
  if (res.status !== 200) throw new Error(`new WebDriver session: ${res.status} ${JSON.stringify(session)}`);
  const url = `${base}/session/${session.value.sessionId}`;

  async function command(method, path, body) {
    const answer = await fetch(url + path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const data = await answer.json();
    if (answer.status !== 200) throw new Error(`WebDriver ${method} ${path}: ${answer.status} ${JSON.stringify(data.value)}`);
    return data.value;
  }
  const element = async (css) => (await command("POST", "/element", { using: "css selector", value: css }))[ELEMENT];
  const requests = new Map(); // DevTools requestId → what was seen of it

  return {
    open: (address) => command("POST", "/url", { url: address }),
    /** Runs `script` (a function body) in the page; resolves to what it returns. */
    execute: (script, ...args) => command("POST", "/execute/sync", { script, args }),
    /** The text of the elements `css` selects (empty: none). */
    texts(css) {
      return this.execute("return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent.trim());", css);
    },
    async click(css) {
      await command("POST", `/element/${await element(css)}/click`, {});
    },
    async type(css, text) {
      const id = await element(css);
      await command("POST", `/element/${id}/clear`, {});
      await command("POST", `/element/${id}/value`, { text });
    },
    /**
     * The page's requests (XHR and fetch) since the last call, in the order
     * sent: {method, url, auth, status}, status 0 while unanswered. Reading
     * the log empties it; requests still unanswered are kept for the next call.
     */
    async network() {
      const entries = await command("POST", "/se/log", { type: "performance" });
      for (const entry of entries) {
        const { method, params } = JSON.parse(entry.message).message;
        if (method === "Network.requestWillBeSent" && ["XHR", "Fetch"].includes(params.type)) {
          const { url: target, method: verb, headers } = params.request;
          // fetch's Headers lower-case the names; XHR's keep the page's.
          const auth = headers.Authorization ?? headers.authorization ?? null;
          requests.set(params.requestId, { method: verb, url: target, auth, status: 0 });
        } else if (method === "Network.responseReceived" && requests.has(params.requestId)) {
          requests.get(params.requestId).status = params.response.status;
        }
      }
      const done = [];
      for (const [id, request] of requests) {
        if (request.status !== 0) {
          done.push(request);
          requests.delete(id);
        }
      }
      return done;
    },
    async stop() {
      await command("DELETE", "").catch(() => {});
      await driver.stop();
    },
  };
}
