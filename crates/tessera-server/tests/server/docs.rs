//! The OpenAPI document and Swagger UI: every route documented, every asset local.

use super::harness::*;
use serde_json::Value;

/// Every route of docs/API.md (and the documentation's own), as (method, path).
const ROUTES: [(&str, &str); 40] = [
    ("post", "/api/token"),
    ("post", "/api/token/refresh"),
    ("post", "/api/token/verify"),
    ("post", "/api/token/blacklist"),
    ("post", "/oauth/token"),
    ("post", "/oauth/revoke"),
    ("post", "/oauth/introspect"),
    ("post", "/api/auth/signup"),
    ("get", "/api/auth/me"),
    ("post", "/api/auth/password"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/password/reset"),
    ("post", "/api/auth/password/reset/confirm"),
    ("post", "/api/auth/email/verify/request"),
    ("post", "/api/auth/email/verify"),
    ("get", "/api/auth/check"),
    ("head", "/api/auth/check"),
    ("get", "/api/admin/users"),
    ("patch", "/api/admin/users/{id}"),
    ("post", "/api/admin/users/{id}/revoke"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("post", "/api/auth/sessions/end-others"),
    ("get", "/api/admin/users/{id}/sessions"),
    ("delete", "/api/admin/users/{id}/sessions/{sid}"),
    ("get", "/api/admin/audit"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/{file}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/auth/check"),
    ("put", "/api/auth/check"),
    ("patch", "/api/auth/check"),
    ("delete", "/api/auth/check"),
    ("get", "/"),
    ("get", "/static/{file}"),
];

#[tokio::test]
async fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
    let s = Server::start("").await;
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = &r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Tessera");
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let me = &doc["paths"]["/api/auth/me"]["get"];
    assert_eq!(me["security"][0]["bearer"], serde_json::json!([]));
    for status in ["200", "401"] {
        assert!(
            me["responses"][status].is_object(),
            "/api/auth/me lacks {status}"
        );
    }
    let login = &doc["paths"]["/api/token"]["post"]["requestBody"]["content"];
    assert!(
        login["application/json"].is_object()
            && login["application/x-www-form-urlencoded"].is_object()
    );
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_answers() {
    let s = Server::start("").await;
    let doc = s.get("/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented += 1;
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not in the documented list"
            );
            let concrete = path
                .replace("{id}", "1")
                .replace("{sid}", "0123456789abcdef0123456789abcdef")
                .replace("/docs/{file}", "/docs/swagger-ui.css")
                .replace("{file}", "tessera.js");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.send(s.http.request(m, s.url(&concrete))).await;
            assert!(
                r.status != 404 && r.status != 405,
                "{method} {path}: {}",
                r.status
            );
            assert!(r.status < 500);
        }
    }
    assert_eq!(documented, ROUTES.len());
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_with_no_network() {
    let s = Server::start("").await;
    for path in ["/docs", "/docs/"] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text.contains("swagger-ui"));
    }
    let page = s.get("/docs").await.text;
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads something from elsewhere"
    );
    let assets: Vec<String> = page
        .split(['"', '\''])
        .filter(|piece| piece.starts_with("/docs/"))
        .map(str::to_owned)
        .collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets
        .iter()
        .chain(["/docs/swagger-initializer.js".to_owned()].iter())
    {
        let r = s.get(asset).await;
        assert_eq!(r.status, 200, "{asset}");
    }
    let init = s.get("/docs/swagger-initializer.js").await.text;
    assert!(init.contains("/openapi.json"), "{init}");
    let missing = s.get("/docs/nope.js").await;
    assert_eq!(missing.status, 404);
    let _: Value = missing.body;
}

fn repository() -> std::path::PathBuf {
    super::harness::package_dir().join("../..")
}

#[test]
fn docs_api_md_describes_every_route() {
    let api = std::fs::read_to_string(repository().join("docs/API.md")).unwrap();
    for (_, path) in ROUTES {
        assert!(
            api.contains(&format!("{path}`")) || api.contains(&format!("{path}/`")),
            "docs/API.md does not describe {path}"
        );
    }
}

#[test]
fn nothing_in_the_repository_points_outside_it() {
    // Spelled in two halves so that this file does not match itself.
    let outside = ["..", "/shared"].concat();
    let mut offenders = Vec::new();
    let mut pending = vec![repository()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), ".git" | "target" | "swagger-ui") {
                    pending.push(path);
                }
            } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&outside)) {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files naming {outside}: {offenders:?}"
    );
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_json_is_never_sniffed() {
    let s = Server::start("").await;
    for path in [
        "/",
        "/static/app.js",
        "/static/tessera.js",
        "/docs",
        "/docs/",
        "/docs/swagger-ui.css",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        let policy = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"));
        // No inline script, no other origin, no framing.
        let scripts = policy
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_else(|| panic!("{path}: {policy}"));
        assert_eq!(scripts, "script-src 'self'", "{path}");
        assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
        assert!(
            !policy.contains("http") && !policy.contains('*'),
            "{path}: {policy}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    // The page itself holds no inline script for the policy to block.
    let page = s.get("/").await.text;
    for tag in page.split("<script").skip(1) {
        assert!(
            tag.trim_start().starts_with("type=\"module\" src=") || tag.contains(" src="),
            "{tag:.80}"
        );
    }
    // JSON answers are not pages, and are never sniffed.
    for path in ["/healthz", "/api/auth/me", "/nope"] {
        let r = s.get(path).await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(r.header("content-security-policy").is_none(), "{path}");
    }
}
