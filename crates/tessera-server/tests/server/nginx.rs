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

/// The ```nginx block of the README.
fn readme_snippet() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```nginx\n")
        .expect("README has an nginx snippet")
        + "```nginx\n".len();
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_owned()
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
    let snippet = readme_snippet()
        .replace("127.0.0.1:8000", &tessera_addr)
        .replace("127.0.0.1:9000", &app_addr.to_string())
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
    let dir = s.dir().join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{snippet}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = tokio::process::Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");

    let front = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{front}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );

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
