// What the client's tests run against: a real Tessera (the binary named by
// TESSERA_BIN, run-tests passes the one `cargo test --workspace` built) on
// SQLite in a directory of its own, axios from the test tools' directory,
// and small HTTP servers standing in for an app's own API.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir, homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

export const PASSWORD = "vivid-otter-canyon-1987!";

/**
 * axios as the test tools installed it. An ES module resolves bare imports
 * next to itself, not through NODE_PATH, so it is imported by its path.
 */
export async function loadAxios() {
  const modules = process.env.TESSERA_NODE_MODULES || join(homedir(), ".cache/tessera-node/node_modules");
  return (await import(pathToFileURL(join(modules, "axios/index.js")).href)).default;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `tessera serve` with `settings` (TOML lines) added to a SQLite config. */
export async function startTessera(settings = "") {
  const bin = process.env.TESSERA_BIN;
  if (!bin) throw new Error("set TESSERA_BIN to the tessera binary (run-tests does)");
  const dir = mkdtempSync(join(tmpdir(), "tessera-js-"));
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
  // Tessera reads every TESSERA_* variable as a setting and refuses those
  // it does not know (TESSERA_BIN is the tests' own).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TESSERA_")));
  env.TESSERA_TEST_INSECURE_HASHING = "1"; // password hashing at test cost
  // Its log (a line per request) goes to a file, shown when it fails to start.
  const logPath = join(dir, "server.log");
  const log = openSync(logPath, "a");
  const child = spawn(bin, ["--config", config, "serve"], { cwd: dir, env, stdio: ["ignore", "pipe", log] });
  closeSync(log);
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tessera did not start within 60 s")), 60_000);
    child.once("exit", (code) =>
      reject(new Error(`tessera exited (${code}) before listening:\n${readFileSync(logPath, "utf8")}`)),
    );
    createInterface({ input: child.stdout }).on("line", (line) => {
      const at = line.indexOf("listening on ");
      if (at >= 0) {
        clearTimeout(timer);
        resolve("http://" + line.slice(at + "listening on ".length).trim());
      }
    });
  });
  return {
    origin,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
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
    /** Logs `username` in outside any client: {access, refresh}. */
    async login(username) {
      const res = await fetch(origin + "/api/token/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      if (res.status !== 200) throw new Error(`login ${res.status}: ${await res.text()}`);
      return res.json();
    },
    /**
     * How many requests Tessera answered on `route` (its metrics' name for
     * it: "/api/token/refresh"), any status: its own count, from /metrics.
     */
    async requestsTo(route) {
      const text = await (await fetch(origin + "/metrics")).text();
      let total = 0;
      for (const line of text.split("\n")) {
        if (line.startsWith("tessera_http_requests_total{") && line.includes(`route="${route}"`)) {
          total += Number(line.slice(line.lastIndexOf(" ") + 1));
        }
      }
      return total;
    },
  };
}

/** The claims of a JWT, unverified. */
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

/**
 * An app's own API on 127.0.0.1, as a simplejwt backend answers: it reads
 * the bearer token's claims without verifying them (its verification is not
 * what is tested) and refuses an expired token with simplejwt's 401, whose
 * body has no `reason`. `expiredBody` replaces that body. Records every
 * request's Authorization header.
 */
export async function startBackend({ expiredBody } = {}) {
  const seen = [];
  const server = createServer((req, res) => {
    const auth = req.headers.authorization ?? null;
    seen.push({ method: req.method, path: req.url, auth });
    const answer = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!auth || !auth.startsWith("Bearer ")) {
      return answer(401, { detail: "Authentication credentials were not provided." });
    }
    const claims = claimsOf(auth.slice("Bearer ".length));
    if (claims.exp * 1000 <= Date.now()) {
      return answer(
        401,
        expiredBody ?? {
          detail: "Given token not valid for any token type",
          code: "token_not_valid",
          messages: [{ token_class: "AccessToken", token_type: "access", message: "Token is expired" }],
        },
      );
    }
    answer(200, { path: req.url, user: claims.username });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    seen,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
