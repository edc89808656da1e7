//! Service clients on the token endpoint: the client_credentials grant by
//! HTTP Basic and by the body's fields, one refusal for every failed
//! authentication, scopes, throttling, and their tokens refused where a
//! user's token is expected.

use super::app::*;
use base64::Engine;
use serde_json::{Value, json};
use tessera_server::authority::clients::{ClientActor, ClientSecret};

/// The one answer to a failed client authentication.
pub fn assert_invalid_client(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"error": "invalid_client", "error_description": "Client authentication failed."})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tessera\"")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// An RFC 6749 5.2 400 with this error code.
pub fn assert_oauth_error(r: &Reply, error: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(r.body["error_description"].is_string(), "{}", r.text);
    assert_eq!(r.body.as_object().map(|o| o.len()), Some(2), "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

impl App {
    /// A client registered from the CLI holding `scope`.
    pub async fn client(&self, name: &str, scope: &str) -> ClientSecret {
        self.authority
            .clients()
            .add(name, scope, ClientActor::Cli)
            .await
            .expect("add the client")
    }

    /// `POST /oauth/token` with HTTP Basic `id:secret` (form-url-encoded
    /// inside, as RFC 6749 2.3.1 says) and these form fields.
    pub async fn client_basic(&self, id: &str, secret: &str, form: &[(&str, &str)]) -> Reply {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(id),
            encode(secret)
        ));
        self.send(
            self.http
                .post(self.url("/oauth/token"))
                .header("Authorization", format!("Basic {basic}"))
                .form(form),
        )
        .await
    }

    /// A token of `client` for every scope it holds.
    pub async fn client_token(&self, client: &ClientSecret) -> String {
        let r = self
            .client_basic(
                &client.client.client_id,
                &client.secret,
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().expect("a token").to_owned()
    }
}

/// The grant's answer: exactly these fields, no refresh token, not cached.
fn assert_granted(r: &Reply, scope: &str) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(
        r.body,
        json!({"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": scope})
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    token
}

#[tokio::test]
async fn the_grant_answers_a_client_authenticated_by_basic_or_by_its_fields() {
    let s = App::start("").await;
    let c = s.client("orders", "revocations introspect").await;
    let id = c.client.client_id.clone();
    let r = s
        .client_basic(&id, &c.secret, &[("grant_type", "client_credentials")])
        .await;
    let token = assert_granted(&r, "revocations introspect");
    let claims = segment(&token, 1);
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["exp"], NOW + 3600);
    // client_secret_post, as a form and as JSON, for one scope of two.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", c.secret.as_str()),
        ("scope", "revocations"),
    ];
    assert_granted(&s.post_form("/oauth/token", &form).await, "revocations");
    let body = json!({"grant_type": "client_credentials", "client_id": id, "client_secret": c.secret, "scope": "introspect revocations"});
    assert_granted(
        &s.post("/oauth/token", body).await,
        "introspect revocations",
    );
    // The lifetime is client_token_lifetime's.
    let s = App::start("client_token_lifetime = \"10m\"").await;
    let c = s.client("orders", "revocations").await;
    let r = s
        .client_basic(
            &c.client.client_id,
            &c.secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.body["expires_in"], 600, "{}", r.text);
}

#[tokio::test]
async fn every_failed_client_authentication_is_one_answer() {
    let s = App::start("login_rate_limit = \"off\"").await;
    let c = s.client("orders", "revocations").await;
    let gone = s.client("gone", "revocations").await;
    let grant = [("grant_type", "client_credentials")];
    let id = c.client.client_id.as_str();
    // A wrong secret, an unknown client, a removed one.
    assert_invalid_client(&s.client_basic(id, "wrong", &grant).await);
    let unknown = "tc_000000000000000000000000";
    assert_invalid_client(&s.client_basic(unknown, &c.secret, &grant).await);
    assert!(
        s.authority
            .clients()
            .remove(&gone.client.client_id, ClientActor::Cli)
            .await
            .unwrap()
    );
    let r = s
        .client_basic(&gone.client.client_id, &gone.secret, &grant)
        .await;
    assert_invalid_client(&r);
    // The secret of another client.
    assert_invalid_client(&s.client_basic(id, &gone.secret, &grant).await);
    // Malformed Basic: not base64, no colon, not UTF-8.
    for header in ["Basic !!!", "Basic dGNfYQ==", "Basic /w==", "Basic"] {
        let r = s
            .send(
                s.http
                    .post(s.url("/oauth/token"))
                    .header("Authorization", header)
                    .form(&grant),
            )
            .await;
        assert_invalid_client(&r);
    }
    // No client at all, or half of one.
    assert_invalid_client(&s.post_form("/oauth/token", &grant).await);
    let half = [("grant_type", "client_credentials"), ("client_id", id)];
    assert_invalid_client(&s.post_form("/oauth/token", &half).await);
    // A user's credentials are not a client's.
    s.create_user("alice", false).await;
    assert_invalid_client(&s.client_basic("alice", PASSWORD, &grant).await);
    let user = [
        ("grant_type", "client_credentials"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    assert_invalid_client(&s.post_form("/oauth/token", &user).await);
}

#[tokio::test]
async fn both_ways_at_once_bad_scopes_and_bad_fields_are_400s() {
    let s = App::start("").await;
    let c = s.client("orders", "revocations").await;
    let id = c.client.client_id.as_str();
    let both = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", c.secret.as_str()),
    ];
    assert_oauth_error(
        &s.client_basic(id, &c.secret, &both).await,
        "invalid_request",
    );
    // A scope the client lacks, an unknown one, a malformed one.
    for scope in [
        "introspect",
        "revocations admin",
        "revocations  introspect",
        " revocations",
    ] {
        let form = [("grant_type", "client_credentials"), ("scope", scope)];
        let r = s.client_basic(id, &c.secret, &form).await;
        assert_oauth_error(&r, "invalid_scope");
    }
    let r = s
        .client_basic(
            id,
            &c.secret,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "introspect"),
            ],
        )
        .await;
    assert_eq!(
        r.body["error_description"],
        "The client does not hold the scope \"introspect\"."
    );
    let body = json!({"grant_type": "client_credentials", "client_id": id, "client_secret": 7});
    assert_oauth_error(&s.post("/oauth/token", body).await, "invalid_request");
}

#[tokio::test]
async fn failed_client_authentications_are_throttled_like_logins() {
    let s = App::start("login_rate_limit = \"2/min\"").await;
    let c = s.client("orders", "revocations").await;
    let id = c.client.client_id.as_str();
    let grant = [("grant_type", "client_credentials")];
    assert_invalid_client(&s.client_basic(id, "wrong", &grant).await);
    assert_invalid_client(&s.client_basic(id, "wrong", &grant).await);
    // Past the limit, even the right secret waits.
    let r = s.client_basic(id, &c.secret, &grant).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["code"], "throttled");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    s.advance(std::time::Duration::from_secs(61));
    assert_granted(&s.client_basic(id, &c.secret, &grant).await, "revocations");
}

#[tokio::test]
async fn a_client_token_is_no_users_token() {
    let s = App::start("").await;
    let c = s.client("orders", "revocations introspect").await;
    let token = s.client_token(&c).await;
    assert_refused(&s.me(&token).await, "invalid");
    assert_refused(
        &s.get_with_token("/api/admin/clients", &token).await,
        "invalid",
    );
    let r = s.post("/api/token/verify", json!({"token": token})).await;
    assert_token_not_valid(&r);
}

#[tokio::test]
async fn discovery_names_the_grant_the_client_methods_and_the_feed() {
    let s = App::start("public_url = \"https://auth.tessera.test\"").await;
    let r = s.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["grant_types_supported"],
        json!(["password", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        r.body["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        r.body["revocation_feed_endpoint"],
        "https://auth.tessera.test/api/revocations"
    );
    assert_eq!(
        r.body["introspection_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    let s = App::start("introspection_requires_client = true").await;
    let r = s.get("/.well-known/openid-configuration").await;
    assert_eq!(
        r.body["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic"])
    );
    assert_eq!(
        r.body["revocation_feed_endpoint"],
        Value::from(format!("http://{ORIGIN}/api/revocations"))
    );
}
