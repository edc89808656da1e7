//! The revocation feed end to end: Tessera and the resource-server example
//! (examples/resource-server, following the feed with tessera-verify) as
//! processes. Every way Tessera revokes a token is refused by the service
//! within a second, and the service asks Tessera nothing per token.
//!
//! These tests choose their databases themselves (the two-instance ones
//! need PostgreSQL), so they run in the `server` binary only.

use super::harness::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SETTINGS: &str = "algorithm = \"ES256\"\nlogin_rate_limit = \"off\"\n\
                            user_rate_limit = \"off\"\n";

/// The contract's bound on how long a revocation takes to reach a service.
const WITHIN: Duration = Duration::from_secs(1);

/// The resource-server example's binary: `cargo test --workspace` builds it
/// beside this test's (the example has an integration test of its own);
/// when only this package is tested, it is built here, in a clean
/// environment so that nothing of this test's own leaks into the build.
pub async fn example_binary() -> PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let exe = std::env::current_exe().expect("the test binary");
            // target/<profile>/deps/server-... -> target/<profile>
            let profile = exe.parent().and_then(|p| p.parent()).expect("a target dir");
            let binary = profile.join("resource-server");
            if binary.exists() {
                return binary;
            }
            let target = profile.parent().expect("the target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .env_clear()
                .args([
                    "build",
                    "-q",
                    "-p",
                    "resource-server",
                    "--bin",
                    "resource-server",
                ])
                .arg("--target-dir")
                .arg(target)
                .current_dir(package_dir());
            for name in [
                "PATH",
                "HOME",
                "CARGO_HOME",
                "RUSTUP_HOME",
                "RUSTUP_TOOLCHAIN",
            ] {
                if let Some(value) = std::env::var_os(name) {
                    build.env(name, value);
                }
            }
            let status = build.status().await.expect("run cargo");
            assert!(status.success(), "building examples/resource-server failed");
            assert!(binary.exists(), "{}", binary.display());
            binary
        })
        .await
        .clone()
}

/// The resource-server example, running.
pub struct Service {
    _child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl Service {
    /// Starts the example: keys from `keys`'s JWKS, the feed from `feed`
    /// as service client `id` with `secret`.
    pub async fn start(keys: &Server, feed: &Server, id: &str, secret: &str) -> Service {
        let mut child = Command::new(example_binary().await)
            .env("TESSERA_JWKS_URL", keys.url("/.well-known/jwks.json"))
            .env("TESSERA_URL", feed.url(""))
            .env("TESSERA_CLIENT_ID", id)
            .env("TESSERA_CLIENT_SECRET", secret)
            .env("BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the resource server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the resource server started")
            .expect("its output")
            .expect("a line");
        let addr = line.strip_prefix("listening on ").expect("its address");
        Service {
            base: format!("http://{addr}"),
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    /// `GET path` with `token`: the status and the body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers");
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    /// Waits until the service accepts `token` on `path` (it answers 503
    /// until its first snapshot has loaded).
    pub async fn accepts(&self, path: &str, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get(path, token).await;
            if status == 200 {
                return;
            }
            assert_eq!(status, 503, "{body}");
            assert!(
                Instant::now() < deadline,
                "the service never followed the feed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How long after `since` the service refuses `token` on `path` as
    /// revoked; fails past a few seconds.
    pub async fn refuses(&self, path: &str, token: &str, since: Instant) -> Duration {
        self.refuses_as(path, token, since, "revoked").await
    }

    /// [`Service::refuses`] with this `reason`.
    pub async fn refuses_as(
        &self,
        path: &str,
        token: &str,
        since: Instant,
        reason: &str,
    ) -> Duration {
        loop {
            let (status, body) = self.get(path, token).await;
            if status == 401 {
                assert_eq!(
                    body,
                    json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": reason})
                );
                return since.elapsed();
            }
            assert_eq!(status, 200, "{body}");
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "{path}: the revocation never reached the service"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A service client registered with the CLI: (client_id, client_secret).
pub async fn register(s: &Server, name: &str, scope: &str) -> (String, String) {
    let (code, out, err) = s
        .cli(&["clients", "add", name, "--scope", scope], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .expect("printed")
            .to_owned()
    };
    (field("client_id"), field("client_secret"))
}

/// A token of client `id` (client_credentials, HTTP Basic).
pub async fn client_token(s: &Server, id: &str, secret: &str) -> String {
    let r = s
        .send(
            s.http
                .post(s.url("/oauth/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["access_token"].as_str().expect("a token").to_owned()
}

/// Every way of revoking, made on `a` while `service` follows `b`'s feed
/// (the same server, or another instance), each refused within a second.
/// Returns how many tokens the service verified.
pub async fn every_revocation_reaches(a: &Server, service: &Service) -> usize {
    let mut verified = 0;
    let (root, _) = a.superuser("root").await;
    let id_of = |access: &str| segment(access, 1)["user_id"].as_i64().expect("user_id");
    let cases = [
        "logout",
        "password",
        "admin revoke",
        "deactivation",
        "RFC 7009",
    ];
    for (n, case) in cases.into_iter().enumerate() {
        let name = format!("user{n}");
        let (access, _) = a.user(&name).await;
        service.accepts("/orders", &access).await;
        // Verified again and again: none of these asks Tessera anything.
        for _ in 0..20 {
            assert_eq!(service.get("/orders", &access).await.0, 200);
            verified += 1;
        }
        let id = id_of(&access);
        let since = Instant::now();
        let r = match case {
            "logout" => a.logout(&access).await,
            "password" => {
                a.send(a.http.post(a.url("/api/auth/password")).bearer_auth(&access).json(
                    &json!({"old_password": PASSWORD, "new_password": "amber-falcon-river-2031!"}),
                ))
                .await
            }
            "admin revoke" => {
                a.send(
                    a.http
                        .post(a.url(&format!("/api/admin/users/{id}/revoke")))
                        .bearer_auth(&root),
                )
                .await
            }
            "deactivation" => {
                a.send(
                    a.http
                        .patch(a.url(&format!("/api/admin/users/{id}")))
                        .bearer_auth(&root)
                        .json(&json!({"is_active": false})),
                )
                .await
            }
            _ => a.post_form("/oauth/revoke", &[("token", access.as_str())]).await,
        };
        assert!(r.status < 300, "{case}: {} {}", r.status, r.text);
        let took = service.refuses("/orders", &access, since).await;
        eprintln!("{case}: refused by the service after {took:?}");
        assert!(took <= WITHIN, "{case} reached the service after {took:?}");
    }
    // Another service's client token, refused once Tessera removes it.
    let (partner, secret) = register(a, "partner", "").await;
    let token = client_token(a, &partner, &secret).await;
    service.accepts("/internal/orders/count", &token).await;
    verified += 1;
    let since = Instant::now();
    let r = a
        .send(
            a.http
                .delete(a.url(&format!("/api/admin/clients/{partner}")))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let took = service
        .refuses("/internal/orders/count", &token, since)
        .await;
    eprintln!("client removal: refused by the service after {took:?}");
    assert!(
        took <= WITHIN,
        "the removal reached the service after {took:?}"
    );
    verified
}

#[tokio::test]
async fn a_following_service_refuses_every_revocation_within_a_second_without_asking_per_token() {
    if on_postgres() {
        return;
    }
    let tessera = Server::start_process(SETTINGS).await;
    let (id, secret) = register(&tessera, "orders", "revocations").await;
    let service = Service::start(&tessera, &tessera, &id, &secret).await;
    let verified = every_revocation_reaches(&tessera, &service).await;
    assert!(verified > 100);

    // What the service asked Tessera: its token, the keys, the snapshot and
    // the stream, a handful of times; never a question per token.
    let log = tessera
        .log_until(|log| log.contains("path=/api/revocations/stream"))
        .await;
    let count = |path: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("path={path}}}")) || l.contains(&format!("path={path} "))
            })
            .count()
    };
    assert_eq!(count("/oauth/introspect"), 0, "{log}");
    for path in [
        "/api/revocations",
        "/api/revocations/stream",
        "/.well-known/jwks.json",
    ] {
        let n = count(path);
        assert!((1..=3).contains(&n), "{path}: {n} requests\n{log}");
    }
    // The client token: one grant for the service, and the test's own.
    let grants = log
        .lines()
        .filter(|l| l.contains("path=/oauth/token}") && l.contains("status=200"))
        .count();
    assert!((1..=3).contains(&grants), "{grants} grants\n{log}");
}

#[tokio::test]
async fn a_service_following_another_instance_refuses_within_a_second_on_postgresql() {
    if on_postgres() {
        return;
    }
    let Some(mut servers) = Server::start_together(Database::Postgres, SETTINGS, 2).await else {
        return;
    };
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");
    let (id, secret) = register(&a, "orders", "revocations").await;
    let service = Service::start(&a, &b, &id, &secret).await;
    every_revocation_reaches(&a, &service).await;
}

#[tokio::test]
async fn a_service_following_another_instance_refuses_within_a_second_with_redis() {
    if on_postgres() {
        return;
    }
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let settings = prefix.config(SETTINGS);
    let Some(mut servers) = Server::start_together(Database::Postgres, &settings, 2).await else {
        return;
    };
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");
    let (id, secret) = register(&a, "orders", "revocations").await;
    let service = Service::start(&a, &b, &id, &secret).await;
    every_revocation_reaches(&a, &service).await;
}

/// A refresh on `s`: the new access and refresh tokens.
async fn refresh_on(s: &Server, token: String) -> (String, String) {
    let r = s
        .post("/api/token/refresh/", json!({"refresh": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let field = |name: &str| r.body[name].as_str().expect(name).to_owned();
    (field("access"), field("refresh"))
}

/// How long after `since` `s` refuses `token` on /api/auth/me as expired;
/// fails past a few seconds.
async fn expired_after(s: &Server, token: &str, since: Instant) -> Duration {
    loop {
        let r = s.me(token).await;
        if r.status == 401 {
            assert_refused(&r, "expired");
            return since.elapsed();
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the change never reached the instance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_role_taken_away_expires_older_access_tokens_on_the_other_instance_and_at_a_follower() {
    if on_postgres() {
        return;
    }
    let settings = format!(
        "{SETTINGS}extra_claims = [\"roles\"]\nrotate_refresh_tokens = true\n\
         blacklist_after_rotation = true\n"
    );
    let Some(mut servers) = Server::start_together(Database::Postgres, &settings, 2).await else {
        return;
    };
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");
    let (id, secret) = register(&a, "orders", "revocations").await;
    let service = Service::start(&a, &b, &id, &secret).await;
    let (root, _) = a.superuser("root").await;
    let (_, refresh) = b.user("alice").await;
    let user_id = segment(&refresh, 1)["user_id"].clone();
    let set_roles = |roles: serde_json::Value| {
        a.send(
            a.http
                .put(a.url(&format!("/api/admin/users/{user_id}/roles")))
                .bearer_auth(&root)
                .json(&json!({ "roles": roles })),
        )
    };
    let r = set_roles(json!(["editors"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // B reads the user at the refresh: the new token has the role at once.
    let (access, refresh) = refresh_on(&b, refresh).await;
    assert_eq!(segment(&access, 1)["roles"], json!(["editors"]));
    service.accepts("/orders", &access).await;
    assert_eq!(b.me(&access).await.status, 200);

    let since = Instant::now();
    let r = set_roles(json!([])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let on_b = expired_after(&b, &access, since).await;
    let at_service = service
        .refuses_as("/orders", &access, since, "expired")
        .await;
    eprintln!("role removed: expired on B after {on_b:?}, at the service after {at_service:?}");
    assert!(on_b <= WITHIN, "B refused it after {on_b:?}");
    assert!(
        at_service <= WITHIN,
        "the service refused it after {at_service:?}"
    );
    // The refresh token still works, on either instance, and gives a token
    // without the role that both accept; nobody was logged out.
    let (access, _) = refresh_on(&b, refresh).await;
    assert_eq!(segment(&access, 1)["roles"], json!([]));
    assert_eq!(a.me(&access).await.status, 200);
    service.accepts("/orders", &access).await;
    let sessions = a.get_with_token("/api/auth/sessions", &access).await;
    assert_eq!(
        sessions.body["results"].as_array().map(Vec::len),
        Some(1),
        "{}",
        sessions.text
    );
}
