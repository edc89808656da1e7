//! The OpenAPI document and Swagger UI: every route documented, every asset local.

use super::app::*;
use serde_json::{Value, json};

/// Both drop-in sets of `compat`.
const BOTH: &str = "compat = [\"flask_jwt_extended\", \"fastapi\"]\nlogin_rate_limit = \"off\"";

/// Every route of docs/API.md (and the documentation's own), as (method, path).
const ROUTES: [(&str, &str); 60] = [
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
    ("post", "/api/auth/mfa/totp"),
    ("delete", "/api/auth/mfa/totp"),
    ("post", "/api/auth/mfa/totp/confirm"),
    ("post", "/api/auth/mfa/recovery-codes"),
    ("post", "/api/auth/mfa/verify"),
    ("post", "/api/auth/mfa/passkey/start"),
    ("post", "/api/auth/mfa/passkey/finish"),
    ("post", "/api/auth/passkeys/register/start"),
    ("post", "/api/auth/passkeys/register/finish"),
    ("get", "/api/auth/passkeys"),
    ("delete", "/api/auth/passkeys/{id}"),
    ("post", "/api/auth/passkeys/login/start"),
    ("post", "/api/auth/passkeys/login/finish"),
    ("post", "/api/auth/password/reset"),
    ("post", "/api/auth/password/reset/confirm"),
    ("post", "/api/auth/email/verify/request"),
    ("post", "/api/auth/email/verify"),
    ("get", "/api/auth/check"),
    ("head", "/api/auth/check"),
    ("get", "/api/admin/users"),
    ("patch", "/api/admin/users/{id}"),
    ("post", "/api/admin/users/{id}/revoke"),
    ("put", "/api/admin/users/{id}/roles"),
    ("delete", "/api/admin/users/{id}/mfa"),
    ("get", "/api/admin/clients"),
    ("post", "/api/admin/clients"),
    ("delete", "/api/admin/clients/{client_id}"),
    ("get", "/api/revocations"),
    ("get", "/api/revocations/stream"),
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
    let s = App::start("").await;
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
    let s = App::start("").await;
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
    let s = App::start("").await;
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
    super::app::package_dir().join("../..")
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
    let s = App::start("").await;
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

#[tokio::test]
async fn without_compat_the_drop_in_routes_are_not_there() {
    let s = App::start("").await;
    for path in ["/login", "/refresh", "/logout", "/token"] {
        let r = s.post(path, json!({})).await;
        assert_eq!(
            (r.status, &r.body),
            (404, &json!({"detail": "Not found."})),
            "{path}"
        );
    }
    let doc = s.get("/openapi.json").await.body;
    for path in ["/login", "/refresh", "/logout", "/token"] {
        assert!(
            doc["paths"].get(path).is_none(),
            "{path} documented but not served"
        );
    }
    assert!(!s.get("/").await.text.contains("Drop-in routes"));
    // One set alone brings only its routes.
    let s = App::start("compat = [\"fastapi\"]").await;
    assert_eq!(s.post("/login", json!({})).await.status, 404);
    assert_eq!(s.post_form("/token", &[]).await.status, 422);
}

#[tokio::test]
async fn the_page_and_the_openapi_document_list_the_compat_routes() {
    let s = App::start(BOTH).await;
    let doc = s.get("/openapi.json").await.body;
    for path in ["/login", "/refresh", "/logout", "/token"] {
        assert_eq!(
            doc["paths"][path]["post"]["tags"],
            json!(["compat"]),
            "{path}"
        );
    }
    let page = s.get("/").await.text;
    assert!(
        page.contains(
            "<code>POST /login</code>, <code>POST /refresh</code> and <code>POST /logout</code>"
        ),
        "{page}"
    );
    assert!(page.contains("<code>POST /token</code>"), "{page}");
    assert!(!page.contains("{{"), "a placeholder left: {page}");
}

#[tokio::test]
async fn the_document_is_json_and_the_docs_page_html() {
    let s = App::start("").await;
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-security-policy"), None);
    let r = s.get("/docs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let policy = r.header("content-security-policy").unwrap();
    assert!(
        policy.contains("style-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
}

#[tokio::test]
async fn every_documented_operation_has_a_tag_a_summary_and_responses() {
    let s = App::start("compat = [\"flask_jwt_extended\", \"fastapi\"]").await;
    let doc = s.get("/openapi.json").await.body;
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let tag = operation["tags"][0].as_str().unwrap_or_default();
            assert!(tags.contains(&tag), "{method} {path}: tag {tag:?}");
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no summary"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
        }
    }
}

#[tokio::test]
async fn a_static_file_that_does_not_exist_is_a_404() {
    let s = App::start("").await;
    for path in ["/static/nope.js", "/static/../Cargo.toml", "/docs/nope.css"] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_flask_routes_answer_in_flasks_shape() {
    let s = App::start("compat = [\"flask_jwt_extended\"]").await;
    let r = s
        .post_raw("/login", "application/x-www-form-urlencoded", "username=a")
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(
        r.body,
        json!({"msg": "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."})
    );
    let r = s.send(s.http.post(s.url("/refresh"))).await;
    assert_eq!(
        (r.status, r.body),
        (401, json!({"msg": "Missing Authorization Header"}))
    );
    let r = s
        .send(
            s.http
                .post(s.url("/refresh"))
                .header("Authorization", "Basic abc"),
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"msg": "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"})
        )
    );
    let r = s
        .post("/login", json!({"username": "nobody", "password": "x"}))
        .await;
    assert_eq!(
        (r.status, r.body),
        (401, json!({"msg": "Bad username or password"}))
    );
}

#[tokio::test]
async fn the_fastapi_route_answers_fastapis_422() {
    let s = App::start("compat = [\"fastapi\"]").await;
    let r = s.post_form("/token", &[("username", "alice")]).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"detail": [{"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": null}]})
    );
    let r = s
        .post_form("/token", &[("username", "nobody"), ("password", "x")])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"detail": "Incorrect username or password"}));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
}
