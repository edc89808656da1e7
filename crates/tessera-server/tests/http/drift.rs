//! The OpenAPI document against the answers: for every route with a JSON
//! success body, the answer's fields (at every depth) are exactly those of
//! the schema the document gives for its status, every required one there
//! and none it does not name (where the schema allows no others). The
//! handlers serialise the documented structs, so this fails when one of
//! them, or the document, changes alone.

use super::app::*;
use serde_json::{Value, json};

/// Settings under which every route has a JSON success body: both compat
/// sets, email (nothing is sent: no sender runs in these tests), and no
/// login limit.
const EVERYTHING: &str = "compat = [\"flask_jwt_extended\", \"fastapi\"]\n\
    login_rate_limit = \"off\"\n\
    smtp_url = \"smtp://127.0.0.1:9\"\n\
    public_url = \"https://auth.tessera.test\"\n";

/// The schema named by `$ref`, or `schema` itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(name) => {
            let name = name.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Why `value` does not have exactly the fields of `schema`, if it does not.
fn mismatch(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    let schema = resolve(doc, schema);
    for alternatives in ["oneOf", "anyOf"] {
        if let Some(variants) = schema[alternatives].as_array() {
            let misses: Vec<String> = variants
                .iter()
                .filter_map(|v| mismatch(doc, v, value, at))
                .collect();
            return (misses.len() == variants.len()).then(|| misses.join(" / "));
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // One object made of several: their fields together.
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in parts {
            let part = resolve(doc, part);
            if let Some(properties) = part["properties"].as_object() {
                for (k, v) in properties {
                    merged["properties"][k] = v.clone();
                }
            }
            if let Some(required) = part["required"].as_array() {
                merged["required"]
                    .as_array_mut()
                    .expect("an array")
                    .extend(required.iter().cloned());
            }
            if part.get("additionalProperties").is_some_and(|a| a != false) {
                merged["additionalProperties"] = part["additionalProperties"].clone();
            }
        }
        return mismatch(doc, &merged, value, at);
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            let open = schema
                .get("additionalProperties")
                .is_some_and(|a| a != false);
            if properties.is_none() && !open && schema.get("type") != Some(&json!("object")) {
                return Some(format!("{at}: an object where the schema has {schema}"));
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !fields.contains_key(name) {
                    return Some(format!("{at}: documented field `{name}` missing"));
                }
            }
            for (name, field) in fields {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => {
                        if let Some(why) = mismatch(doc, property, field, &format!("{at}.{name}")) {
                            return Some(why);
                        }
                    }
                    None if open || properties.is_none() => {}
                    None => return Some(format!("{at}: field `{name}` is not documented")),
                }
            }
            None
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            schema
                .get("items")
                .and_then(|s| mismatch(doc, s, item, &format!("{at}[{i}]")))
        }),
        _ => None,
    }
}

/// The schema the document gives `method path` for `status`.
fn documented<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path}: no JSON schema documented for {status}"
    );
    schema
}

/// The whole document, as served.
async fn document(s: &App) -> Value {
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    r.body
}

/// Asserts that `r`, the answer of `method path`, has `status` and exactly
/// the fields documented for it.
fn assert_documented(doc: &Value, method: &str, path: &str, status: u16, r: &Reply) {
    assert_eq!(r.status, status, "{method} {path}: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{method} {path}: {:?}",
        r.header("content-type")
    );
    let schema = documented(doc, method, path, status);
    if let Some(why) = mismatch(doc, schema, &r.body, "body") {
        panic!(
            "{method} {path} {status} answers what its document does not say: {why}\n{}",
            r.text
        );
    }
}

#[tokio::test]
async fn the_check_finds_a_missing_and_an_extra_field() {
    let s = App::start("").await;
    let doc = document(&s).await;
    let (access, _) = s.user("alice").await;
    let r = s.me(&access).await;
    let schema = documented(&doc, "get", "/api/auth/me", 200);
    assert_eq!(mismatch(&doc, schema, &r.body, "body"), None);
    let mut missing = r.body.clone();
    missing.as_object_mut().unwrap().remove("email");
    assert_eq!(
        mismatch(&doc, schema, &missing, "body"),
        Some("body: documented field `email` missing".to_owned())
    );
    let mut extra = r.body.clone();
    extra["nickname"] = json!("al");
    assert_eq!(
        mismatch(&doc, schema, &extra, "body"),
        Some("body: field `nickname` is not documented".to_owned())
    );
    // At depth too: a user in a page.
    let page = json!({"count": 1, "next": null, "previous": null, "results": [extra]});
    let schema = documented(&doc, "get", "/api/admin/users", 200);
    assert_eq!(
        mismatch(&doc, schema, &page, "body"),
        Some("body.results[0]: field `nickname` is not documented".to_owned())
    );
}

#[tokio::test]
async fn the_token_endpoints_answer_what_they_document() {
    let s = App::start(EVERYTHING).await;
    let doc = document(&s).await;
    s.create_user("alice", false).await;
    let r = s
        .post(
            "/api/token",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_documented(&doc, "post", "/api/token", 200, &r);
    let refresh = r.body["refresh"].as_str().unwrap().to_owned();
    let access = r.body["access"].as_str().unwrap().to_owned();
    let r = s
        .post("/api/token/refresh", json!({"refresh": refresh}))
        .await;
    assert_documented(&doc, "post", "/api/token/refresh", 200, &r);
    let r = s.post("/api/token/verify", json!({"token": access})).await;
    assert_documented(&doc, "post", "/api/token/verify", 200, &r);
    let r = s
        .post("/api/token/blacklist", json!({"refresh": refresh}))
        .await;
    assert_documented(&doc, "post", "/api/token/blacklist", 200, &r);
}

#[tokio::test]
async fn rotation_and_cookie_transport_answer_what_they_document() {
    let s = App::start(
        "token_locations = [\"cookies\", \"headers\"]\n\
         rotate_refresh_tokens = true\nlogin_rate_limit = \"off\"",
    )
    .await;
    let doc = document(&s).await;
    s.create_user("alice", false).await;
    let (_, refresh) = s.login("alice").await;
    let r = s
        .post("/api/token/refresh", json!({"refresh": refresh}))
        .await;
    assert!(r.body["refresh"].is_string(), "{}", r.text);
    assert_documented(&doc, "post", "/api/token/refresh", 200, &r);
    let r = s
        .send(
            s.http
                .post(s.url("/api/token"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert!(r.body["claims"].is_object(), "{}", r.text);
    assert_documented(&doc, "post", "/api/token", 200, &r);
}

#[tokio::test]
async fn the_account_endpoints_answer_what_they_document() {
    let s = App::start(EVERYTHING).await;
    let doc = document(&s).await;
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/signup", 201, &r);
    let (access, _) = s
        .session("alice", tessera_server::authority::Transport::Header)
        .await;
    assert_documented(&doc, "get", "/api/auth/me", 200, &s.me(&access).await);
    let r = s.get_with_token("/api/auth/sessions", &access).await;
    assert_eq!(r.body["results"][0]["current"], true, "{}", r.text);
    assert_documented(&doc, "get", "/api/auth/sessions", 200, &r);
    let r = s
        .post(
            "/api/auth/password/reset",
            json!({"email": "alice@example.com"}),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/password/reset", 202, &r);
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/email/verify/request"))
                .bearer_auth(&access),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/email/verify/request", 202, &r);
}

#[tokio::test]
async fn the_admin_endpoints_answer_what_they_document() {
    let s = App::start("").await;
    let doc = document(&s).await;
    let (root, _) = s.superuser("root").await;
    s.user("alice").await;
    let r = s
        .get_with_token("/api/admin/users?page_size=1", &root)
        .await;
    assert!(r.body["next"].is_string(), "{}", r.text);
    assert!(r.body["results"][0]["last_login"].is_null(), "{}", r.text);
    assert_documented(&doc, "get", "/api/admin/users", 200, &r);
    let r = s
        .send(
            s.http
                .patch(s.url("/api/admin/users/2"))
                .bearer_auth(&root)
                .json(&json!({"email": "alice@example.com"})),
        )
        .await;
    assert_documented(&doc, "patch", "/api/admin/users/{id}", 200, &r);
    let r = s.get_with_token("/api/admin/users/2/sessions", &root).await;
    assert_eq!(
        r.body["results"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_documented(&doc, "get", "/api/admin/users/{id}/sessions", 200, &r);
    // The audit log: its writer is asked to write what is queued first.
    s.authority.audit_log().flush().await;
    let r = s
        .get_with_token("/api/admin/audit?page_size=1", &root)
        .await;
    assert!(r.body["results"][0]["detail"].is_object(), "{}", r.text);
    assert_documented(&doc, "get", "/api/admin/audit", 200, &r);
    let r = s
        .send(
            s.http
                .post(s.url("/api/admin/clients"))
                .bearer_auth(&root)
                .json(&json!({"name": "orders", "scope": "revocations"})),
        )
        .await;
    assert_documented(&doc, "post", "/api/admin/clients", 201, &r);
    let r = s.get_with_token("/api/admin/clients", &root).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_documented(&doc, "get", "/api/admin/clients", 200, &r);
}

#[tokio::test]
async fn the_oauth_endpoints_answer_what_they_document() {
    let s = App::start("").await;
    let doc = document(&s).await;
    s.create_user("alice", false).await;
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_documented(&doc, "post", "/oauth/token", 200, &r);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let r = s
        .post_form("/oauth/introspect", &[("token", &access)])
        .await;
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_documented(&doc, "post", "/oauth/introspect", 200, &r);
    let r = s.post_form("/oauth/introspect", &[("token", "nope")]).await;
    assert_eq!(r.body, json!({"active": false}));
    assert_documented(&doc, "post", "/oauth/introspect", 200, &r);
    // A service client's grant.
    let c = s.client("orders", "revocations").await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", c.client.client_id.as_str()),
        ("client_secret", c.secret.as_str()),
    ];
    let r = s.post_form("/oauth/token", &form).await;
    assert!(r.body["scope"].is_string(), "{}", r.text);
    assert_documented(&doc, "post", "/oauth/token", 200, &r);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let r = s.post_form("/oauth/introspect", &[("token", &token)]).await;
    assert_eq!(
        r.body["client_id"],
        c.client.client_id.as_str(),
        "{}",
        r.text
    );
    assert_documented(&doc, "post", "/oauth/introspect", 200, &r);
}

#[tokio::test]
async fn the_operational_endpoints_answer_what_they_document() {
    let s = App::start("algorithm = \"ES256\"").await;
    let doc = document(&s).await;
    assert_documented(&doc, "get", "/healthz", 200, &s.get("/healthz").await);
    let r = s.get("/.well-known/jwks.json").await;
    assert_eq!(
        r.body["keys"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_documented(&doc, "get", "/.well-known/jwks.json", 200, &r);
    let r = s.get("/.well-known/openid-configuration").await;
    assert_documented(&doc, "get", "/.well-known/openid-configuration", 200, &r);
    // Ready or not (no sync task runs here), the body is a Readiness.
    let r = s.get("/readyz").await;
    let status = r.status;
    assert_documented(&doc, "get", "/readyz", status, &r);
}

#[tokio::test]
async fn the_compat_routes_answer_what_they_document() {
    let s = App::start(EVERYTHING).await;
    let doc = document(&s).await;
    s.create_user("alice", false).await;
    let r = s
        .post("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_documented(&doc, "post", "/login", 200, &r);
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .send(s.http.post(s.url("/refresh")).bearer_auth(&refresh))
        .await;
    assert_documented(&doc, "post", "/refresh", 200, &r);
    let r = s
        .send(s.http.post(s.url("/logout")).bearer_auth(&refresh))
        .await;
    assert_documented(&doc, "post", "/logout", 200, &r);
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_documented(&doc, "post", "/token", 200, &r);
}

#[tokio::test]
async fn the_second_factor_endpoints_answer_what_they_document() {
    use tessera_core::clock::Clock;
    let s = App::start(EVERYTHING).await;
    let doc = document(&s).await;
    let (access, _) = s.user("alice").await;
    let post = |path: &'static str, token: &str, body: Value| {
        s.send(s.http.post(s.url(path)).bearer_auth(token).json(&body))
    };
    let r = post("/api/auth/mfa/totp", &access, json!({})).await;
    assert_documented(&doc, "post", "/api/auth/mfa/totp", 200, &r);
    let secret = totp_rs::Secret::try_from_base32(r.body["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let code = totp.generate(s.clock.now() as u64).to_string();
    let r = post("/api/auth/mfa/totp/confirm", &access, json!({"code": code})).await;
    assert_documented(&doc, "post", "/api/auth/mfa/totp/confirm", 200, &r);
    let recovery: Vec<String> = serde_json::from_value(r.body["recovery_codes"].clone()).unwrap();
    // Each login route's first step, then its second: what that route answers.
    let password = json!({"username": "alice", "password": PASSWORD});
    let firsts = [
        s.post("/api/token", password.clone()).await,
        s.post("/login", password).await,
        s.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await,
    ];
    let mut access = None;
    for (first, code) in firsts.iter().zip(&recovery) {
        assert_eq!(first.body["code"], "mfa_required", "{}", first.text);
        let token = &first.body["mfa_token"];
        let body = json!({"mfa_token": token, "recovery_code": code});
        let r = s.post("/api/auth/mfa/verify", body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_documented(&doc, "post", "/api/auth/mfa/verify", 200, &r);
        access = access.or(r.body["access"].as_str().map(str::to_owned));
    }
    let access = access.unwrap();
    let r = post("/api/auth/mfa/recovery-codes", &access, json!({})).await;
    assert_documented(&doc, "post", "/api/auth/mfa/recovery-codes", 200, &r);
}

#[tokio::test]
async fn the_passkey_endpoints_answer_what_they_document() {
    use super::authenticator::Authenticator;
    let config = format!("{EVERYTHING}passkey_login = true\n");
    let s = App::start(&config).await;
    let doc = document(&s).await;
    let (access, _) = s.user("alice").await;
    let post = |path: &'static str, token: &str, body: Value| {
        s.send(s.http.post(s.url(path)).bearer_auth(token).json(&body))
    };
    let mut key = Authenticator::new("https://auth.tessera.test", "auth.tessera.test");
    let r = post("/api/auth/passkeys/register/start", &access, json!({})).await;
    assert_documented(&doc, "post", "/api/auth/passkeys/register/start", 200, &r);
    let body = json!({"credential": key.register(&r.body), "name": "Laptop"});
    let r = post("/api/auth/passkeys/register/finish", &access, body).await;
    assert_documented(&doc, "post", "/api/auth/passkeys/register/finish", 201, &r);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = s.get_with_token("/api/auth/passkeys", &access).await;
    assert_documented(&doc, "get", "/api/auth/passkeys", 200, &r);

    let password = json!({"username": "alice", "password": PASSWORD});
    let first = s.post("/api/token", password).await;
    assert_eq!(first.body["methods"], json!(["passkey", "recovery_code"]));
    let mfa_token = first.body["mfa_token"].clone();
    let r = s
        .post(
            "/api/auth/mfa/passkey/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/mfa/passkey/start", 200, &r);
    let refused = json!({"mfa_token": mfa_token, "credential": key.assert_challenge("AAAA")});
    let r = s.post("/api/auth/mfa/passkey/finish", refused).await;
    assert_documented(&doc, "post", "/api/auth/mfa/passkey/finish", 401, &r);
    let r = s
        .post(
            "/api/auth/mfa/passkey/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    let answer = json!({"mfa_token": mfa_token, "credential": key.assert(&r.body)});
    let r = s.post("/api/auth/mfa/passkey/finish", answer).await;
    assert_documented(&doc, "post", "/api/auth/mfa/passkey/finish", 200, &r);
    let fresh = r.body["access"].as_str().unwrap().to_owned();

    let r = s.post("/api/auth/passkeys/login/start", json!({})).await;
    assert_documented(&doc, "post", "/api/auth/passkeys/login/start", 200, &r);
    let r = s
        .post(
            "/api/auth/passkeys/login/finish",
            json!({"credential": key.assert(&r.body)}),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/passkeys/login/finish", 200, &r);
    let path = format!("/api/auth/passkeys/{id}");
    let r = s
        .send(s.http.delete(s.url(&path)).bearer_auth(&fresh))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = s
        .send(s.http.delete(s.url(&path)).bearer_auth(&fresh))
        .await;
    assert_documented(&doc, "delete", "/api/auth/passkeys/{id}", 404, &r);

    let plain = App::start("").await;
    let (access, _) = plain.user("bob").await;
    let r = plain
        .send(
            plain
                .http
                .post(plain.url("/api/auth/passkeys/register/start"))
                .bearer_auth(&access),
        )
        .await;
    assert_documented(&doc, "post", "/api/auth/passkeys/register/start", 503, &r);
    let r = plain
        .post("/api/auth/passkeys/login/start", json!({}))
        .await;
    assert_documented(&doc, "post", "/api/auth/passkeys/login/start", 403, &r);
}
