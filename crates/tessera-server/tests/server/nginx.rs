//! The README's nginx `auth_request` snippet, run by a real nginx in front of
//! Tessera and a stand-in application.

use super::harness::*;
use axum::http::HeaderMap;
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// nginx from Debian's nginx-light (which has the auth_request module).
fn nginx() -> Option<&'static Path> {
    let nginx = Path::new("/usr/sbin/nginx");
    tools_present("nginx (Debian's nginx-light)", &[nginx]).then_some(nginx)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `n`th ```nginx block of the README (from 0).
fn readme_snippet(n: usize) -> String {
    let readme = std::fs::read_to_string(package_dir().join("../../README.md")).unwrap();
    let block = readme
        .split("```nginx\n")
        .nth(n + 1)
        .unwrap_or_else(|| panic!("README has no nginx snippet {n}"));
    block[..block.find("```").expect("the snippet ends")].to_owned()
}

/// A real nginx running `snippet` inside its `http` block, with its files in
/// `dir`; returns it and its address once it answers `/healthz`.
async fn start_nginx(nginx: &Path, dir: &Path, snippet: &str) -> tokio::process::Child {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{snippet}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    tokio::process::Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx")
}

/// Waits until nginx at `front` answers `/healthz` (from the Tessera behind it).
async fn until_up(front: &str, dir: &Path) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{front}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

#[tokio::test]
async fn the_readme_nginx_snippet_protects_an_application() {
    let Some(nginx) = nginx() else { return };
    // nginx connects from 127.0.0.1; clients come from other loopback addresses.
    let s = Server::start(
        "trusted_proxies = [\"127.0.0.1\"]\ntoken_locations = [\"headers\", \"cookies\"]\ncookie_secure = false",
    )
    .await;
    let (access, refresh) = s.user("alice").await;

    // The application: echoes the identity nginx passed on.
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap();
    let echo = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        axum::Json(json!({"user_id": get("x-user-id"), "username": get("x-username")}))
    });
    tokio::spawn(async move { axum::serve(app, echo).await });

    let port = free_port();
    let tessera_addr = s.base.trim_start_matches("http://").to_owned();
    let snippet = readme_snippet(0)
        .replace("127.0.0.1:8000", &tessera_addr)
        .replace("127.0.0.1:9000", &app_addr.to_string())
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
    let dir = s.dir().join("nginx");
    let mut child = start_nginx(nginx, &dir, &snippet).await;
    let front = format!("http://127.0.0.1:{port}");
    until_up(&front, &dir).await;
    let client = reqwest::Client::new();

    let r = client.get(format!("{front}/orders")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{front}/orders"))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{front}/orders"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"user_id": "1", "username": "alice"}));
    // POST with a body goes through too: the subrequest carries no body.
    let r = client
        .post(format!("{front}/orders"))
        .bearer_auth(&access)
        .json(&json!({"item": "book"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Login through the proxy.
    let r = client
        .post(format!("{front}/api/token/"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Throttling stays per client: one client's failed logins through nginx
    // do not lock out another's.
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let (attacker, user) = (from(2), from(3));
    let login = |client: &reqwest::Client, name: &str, password: &str| {
        client
            .post(format!("{front}/api/token/"))
            .json(&json!({"username": name, "password": password}))
            .send()
    };
    for i in 0..10 {
        let r = login(&attacker, &format!("guess{i}"), "wrong-password-x")
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = login(&attacker, "alice", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429, "the attacker's address is throttled");
    let r = login(&user, "alice", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200, "another client is not");

    // Cookie sessions: a POST through nginx needs the CSRF header, as it
    // would at Tessera itself; a GET does not.
    let r = user
        .post(format!("{front}/api/token/"))
        .header("X-Token-Transport", "cookie")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = |name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    let (access_cookie, csrf) = (cookie("access_token_cookie"), cookie("csrf_access_token"));
    let cookies = format!("access_token_cookie={access_cookie}; csrf_access_token={csrf}");
    let with_cookies = |request: reqwest::RequestBuilder| request.header("Cookie", &cookies);
    let r = with_cookies(user.get(format!("{front}/orders")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = with_cookies(user.post(format!("{front}/orders")))
        .json(&json!({"item": "book"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a cookie POST without the CSRF header");
    let r = with_cookies(user.post(format!("{front}/orders")))
        .header("X-CSRF-TOKEN", &csrf)
        .json(&json!({"item": "book"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.start_kill().ok();
    let _ = child.wait().await;
}

/// The number `metric` reads in a Prometheus text page, summed over labels.
fn metric_total(page: &str, metric: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(metric) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn the_readme_two_instance_example_behind_nginx_works() {
    let Some(nginx) = nginx() else { return };
    if on_postgres() {
        return;
    }
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let settings = prefix.config(
        "trusted_proxies = [\"127.0.0.1\"]\nrotate_refresh_tokens = true\nblacklist_after_rotation = true",
    );
    let Some(servers) = Server::start_together(Database::Postgres, &settings, 2).await else {
        return;
    };
    let (a, b) = (&servers[0], &servers[1]);
    let port = free_port();
    let snippet = readme_snippet(1)
        .replace("10.0.0.11:8000", a.base.trim_start_matches("http://"))
        .replace("10.0.0.12:8000", b.base.trim_start_matches("http://"))
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(snippet, readme_snippet(1), "the addresses were replaced");
    let dir = a.dir().join("nginx");
    let mut child = start_nginx(nginx, &dir, &snippet).await;
    let front = format!("http://127.0.0.1:{port}");
    until_up(&front, &dir).await;

    // A client of the deployment: sign up, log in, refresh (rotating) and
    // log out, each request to whichever instance nginx picks.
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{front}{path}")).json(&body).send()
    };
    let r = post(
        "/api/auth/signup",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let login: serde_json::Value = post(
        "/api/token/",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut refresh = login["refresh"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        let r = post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let access = body["access"].as_str().unwrap();
        let me = client
            .get(format!("{front}/api/auth/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let rotated_into = body["refresh"].as_str().unwrap().to_owned();
        // The token just rotated away, presented again within the grace
        // period (another tab), gets the same successor, whichever instance
        // gets it.
        let old = post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .unwrap();
        assert_eq!(old.status(), 200);
        let again: serde_json::Value = old.json().await.unwrap();
        assert_eq!(again["refresh"], rotated_into.as_str());
        // (A new login for the next round.)
        let login: serde_json::Value = post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        refresh = login["refresh"].as_str().unwrap().to_owned();
    }
    // Both instances served: nginx spread the requests.
    for s in [a, b] {
        let page = s.get("/metrics").await.text;
        // (Of the 25 requests above, nginx's round robin gives each about half.)
        assert!(
            metric_total(&page, "tessera_http_requests_total") >= 8.0,
            "{page}"
        );
    }
    // One client's failed logins count on both instances (Redis), and
    // nginx's address is not what is throttled (trusted_proxies).
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let (attacker, user) = (from(2), from(3));
    for i in 0..10 {
        let r = attacker
            .post(format!("{front}/api/token/"))
            .json(&json!({"username": format!("guess{i}"), "password": "wrong-password-x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    for client in [&attacker, &user] {
        let r = client
            .post(format!("{front}/api/token/"))
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let want = if std::ptr::eq(client, &attacker) {
            429
        } else {
            200
        };
        assert_eq!(r.status(), want);
    }
    child.start_kill().ok();
    let _ = child.wait().await;
}
