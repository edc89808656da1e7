//! Service clients for staff (the admin API), their audit events,
//! introspection with and without `introspection_requires_client`, and
//! `authorize`, the check the endpoints for services make.

use super::app::*;
use super::clients::assert_invalid_client;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tessera_server::authority::clients::ClientActor;
use tessera_server::authority::{ClientAuthError, Refusal};
use tessera_store::AuditFilter;

async fn post_client(s: &App, token: &str, body: Value) -> Reply {
    s.send(
        s.http
            .post(s.url("/api/admin/clients"))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

async fn delete_client(s: &App, token: &str, id: &str) -> Reply {
    s.send(
        s.http
            .delete(s.url(&format!("/api/admin/clients/{id}")))
            .bearer_auth(token),
    )
    .await
}

#[tokio::test]
async fn staff_add_list_and_remove_clients() {
    let s = App::start("").await;
    let (root, _) = s.superuser("root").await;
    let r = post_client(&s, &root, json!({"name": "orders", "scope": "revocations"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let id = r.body["client_id"].as_str().unwrap().to_owned();
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);
    let created = "2026-01-01T00:00:00Z";
    assert_eq!(
        r.body,
        json!({"client_id": id, "client_secret": secret, "name": "orders", "scope": "revocations", "created": created})
    );
    // The secret works, and is never shown again.
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(s.client_basic(&id, &secret, &grant).await.status, 200);
    let r = s
        .send(
            s.http
                .post(s.url("/api/admin/clients"))
                .bearer_auth(&root)
                .form(&[("name", "search"), ("scope", "introspect revocations")]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.body["client_id"].as_str().unwrap().to_owned();
    let r = s.get_with_token("/api/admin/clients", &root).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!([
            {"client_id": id, "name": "orders", "scope": "revocations", "created": created},
            {"client_id": second, "name": "search", "scope": "introspect revocations", "created": created},
        ])
    );
    // Removed: gone from the list, its secret refused, its name free.
    let r = delete_client(&s, &root, &id).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let r = delete_client(&s, &root, &id).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    assert_eq!(delete_client(&s, &root, "nope").await.status, 404);
    let r = s.get_with_token("/api/admin/clients", &root).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_invalid_client(&s.client_basic(&id, &secret, &grant).await);
    let r = post_client(&s, &root, json!({"name": "orders"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["scope"], "");
}

#[tokio::test]
async fn the_admin_api_refuses_non_staff_and_bad_input() {
    let s = App::start("").await;
    let (root, _) = s.superuser("root").await;
    let (alice, _) = s.user("alice").await;
    let denied = json!({"detail": "You do not have permission to perform this action.", "code": "permission_denied"});
    let r = s.get_with_token("/api/admin/clients", &alice).await;
    assert_eq!((r.status, &r.body), (403, &denied));
    let r = post_client(&s, &alice, json!({"name": "x", "scope": "revocations"})).await;
    assert_eq!((r.status, &r.body), (403, &denied));
    let c = s.client("orders", "revocations").await;
    let r = delete_client(&s, &alice, &c.client.client_id).await;
    assert_eq!((r.status, &r.body), (403, &denied));
    assert_not_authenticated(&s.get("/api/admin/clients").await);
    let length = "Ensure this field has between 1 and 150 characters.";
    let printable = "Use printable characters only, without spaces at either end.";
    let cases = [
        (
            json!({"scope": "revocations"}),
            json!({"name": ["This field is required."]}),
        ),
        (
            json!({"name": ""}),
            json!({"name": ["This field may not be blank."]}),
        ),
        (json!({"name": "x".repeat(151)}), json!({"name": [length]})),
        (json!({"name": "a\u{202e}b"}), json!({"name": [printable]})),
        (json!({"name": " orders"}), json!({"name": [printable]})),
        (
            json!({"name": "orders"}),
            json!({"name": ["A client with this name already exists."]}),
        ),
        (
            json!({"name": "new", "scope": "revocations admin"}),
            json!({"scope": ["Unknown scope \"admin\"; known scopes: revocations, introspect."]}),
        ),
        (
            json!({"name": "new", "scope": "revocations  introspect"}),
            json!({"scope": ["Scopes are separated by single spaces, without others around them; known scopes: revocations, introspect."]}),
        ),
    ];
    for (body, expected) in cases {
        let r = post_client(&s, &root, body.clone()).await;
        assert_eq!((r.status, &r.body), (400, &expected), "{body}");
    }
    // 150 characters is fine.
    let r = post_client(&s, &root, json!({"name": "é".repeat(150)})).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn client_events_are_audited_with_who_did_them() {
    let s = App::start("").await;
    let (root, _) = s.superuser("root").await;
    let r = post_client(&s, &root, json!({"name": "orders", "scope": "revocations"})).await;
    let id = r.body["client_id"].as_str().unwrap().to_owned();
    let grant = [("grant_type", "client_credentials")];
    s.client_basic(&id, "wrong", &grant).await;
    let clients = s.authority.clients();
    clients
        .rotate_secret(&id, ClientActor::Cli)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delete_client(&s, &root, &id).await.status, 204);
    s.authority.audit_log().flush().await;
    let (_, events) = s
        .authority
        .store()
        .audit_page(&AuditFilter::default(), 0, 10)
        .await
        .unwrap();
    let seen: Vec<(String, Option<i64>, Value)> = events
        .iter()
        .rev()
        .filter(|e| e.event.starts_with("client_"))
        .map(|e| {
            (
                e.event.clone(),
                e.actor_id,
                serde_json::from_str(&e.detail).unwrap(),
            )
        })
        .collect();
    let detail =
        |by: &str| json!({"client_id": id, "name": "orders", "scope": "revocations", "by": by});
    assert_eq!(
        seen,
        [
            ("client_added".to_owned(), Some(1), detail("admin")),
            (
                "client_auth_failed".to_owned(),
                None,
                json!({"client_id": id})
            ),
            ("client_secret_rotated".to_owned(), None, detail("cli")),
            ("client_removed".to_owned(), Some(1), detail("admin")),
        ]
    );
    let failed = events
        .iter()
        .find(|e| e.event == "client_auth_failed")
        .unwrap();
    assert_eq!(failed.ip, "127.0.0.1");
}

#[tokio::test]
async fn introspection_is_open_unless_it_requires_a_client() {
    let s = App::start("").await;
    let c = s.client("orders", "revocations").await;
    let token = s.client_token(&c).await;
    // Open: a client's token introspects active, with its claims.
    let r = s.post_form("/oauth/introspect", &[("token", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = c.client.client_id.as_str();
    assert_eq!(
        r.body,
        json!({"active": true, "token_type": "access", "exp": NOW + 3600, "iat": NOW, "nbf": NOW,
               "jti": segment(&token, 1)["jti"], "sub": id, "client_id": id, "scope": "revocations"})
    );
    s.authority
        .clients()
        .remove(id, ClientActor::Cli)
        .await
        .unwrap();
    let r = s.post_form("/oauth/introspect", &[("token", &token)]).await;
    assert_eq!(r.body, json!({"active": false}));

    let s = App::start("introspection_requires_client = true\nlogin_rate_limit = \"off\"").await;
    let (alice, _) = s.user("alice").await;
    let reader = s.client("reader", "revocations").await;
    let inspector = s.client("inspector", "introspect").await;
    let form = [("token", alice.as_str())];
    let introspect = |auth: String| {
        s.http
            .post(s.url("/oauth/introspect"))
            .header("Authorization", auth)
            .form(&form)
    };
    assert_invalid_client(&s.post_form("/oauth/introspect", &form).await);
    assert_invalid_client(&s.send(introspect(format!("Bearer {alice}"))).await);
    assert_invalid_client(&s.send(introspect("Basic !!!".into())).await);
    let basic = |c: &tessera_server::authority::clients::ClientSecret, secret: &str| {
        use base64::Engine;
        let raw = format!("{}:{secret}", c.client.client_id);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    assert_invalid_client(&s.send(introspect(basic(&inspector, "wrong"))).await);
    // A client without the scope: 403.
    let insufficient = json!({"detail": "The client token does not grant the scope \"introspect\".", "code": "insufficient_scope"});
    let r = s.send(introspect(basic(&reader, &reader.secret))).await;
    assert_eq!((r.status, &r.body), (403, &insufficient));
    let reader_token = s.client_token(&reader).await;
    let r = s.send(introspect(format!("Bearer {reader_token}"))).await;
    assert_eq!((r.status, &r.body), (403, &insufficient));
    // The introspector, by Basic and by its token.
    let r = s
        .send(introspect(basic(&inspector, &inspector.secret)))
        .await;
    assert_eq!(
        (r.status, &r.body["active"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
    assert_eq!(r.body["username"], "alice");
    let inspector_token = s.client_token(&inspector).await;
    let r = s
        .send(introspect(format!("Bearer {inspector_token}")))
        .await;
    assert_eq!(
        (r.status, &r.body["active"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn authorize_refuses_a_removed_clients_token_at_once() {
    let s = App::start("").await;
    let c = s.client("orders", "revocations").await;
    let token = s.client_token(&c).await;
    let clients = s.authority.clients();
    let claims = clients.authorize(&token, "revocations").await.unwrap();
    assert_eq!(claims.client_id, c.client.client_id);
    assert_eq!(
        clients.authorize(&token, "introspect").await,
        Err(ClientAuthError::InsufficientScope("introspect".into()))
    );
    let (alice, _) = s.user("alice").await;
    assert_eq!(
        clients.authorize(&alice, "revocations").await,
        Err(ClientAuthError::NotValid(Refusal::Invalid))
    );
    assert!(
        clients
            .remove(&c.client.client_id, ClientActor::Cli)
            .await
            .unwrap()
    );
    assert_eq!(
        clients.authorize(&token, "revocations").await,
        Err(ClientAuthError::NotValid(Refusal::Revoked))
    );
    // Expired, past client_token_lifetime.
    let other = s.client("other", "revocations").await;
    let token = s.client_token(&other).await;
    s.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        clients.authorize(&token, "revocations").await,
        Err(ClientAuthError::NotValid(Refusal::Expired))
    );
}

#[tokio::test]
async fn a_refused_client_token_is_answered_401_or_403() {
    let reply = |e: ClientAuthError| async move {
        let response = e.into_response();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        (status, body, challenge)
    };
    assert_eq!(
        reply(ClientAuthError::NotValid(Refusal::Revoked)).await,
        (
            401,
            json!({"detail": "The client token is invalid, expired or revoked.", "code": "token_not_valid"}),
            Some("Bearer realm=\"tessera\"".to_owned())
        )
    );
    assert_eq!(
        reply(ClientAuthError::InsufficientScope("revocations".into())).await,
        (
            403,
            json!({"detail": "The client token does not grant the scope \"revocations\".", "code": "insufficient_scope"}),
            None
        )
    );
}
