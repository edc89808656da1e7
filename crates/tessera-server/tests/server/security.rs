//! Secrets stay secret.

use super::harness::*;
use serde_json::json;

#[tokio::test]
async fn no_password_hash_token_or_key_reaches_the_log_even_at_debug_level() {
    let s = Server::start_process_with_env(
        "algorithm = \"ES256\"\nrotate_refresh_tokens = true",
        &[("TESSERA_LOG", "debug")],
    )
    .await;
    let new_password = "quiet-harbor-lantern-2024?";
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        new_password.into(),
        "wrong-password-x".into(),
    ];
    let (root, _) = s.superuser("root").await;
    let (access, refresh) = s.user("alice").await;
    secrets.extend([root.clone(), access.clone(), refresh.clone()]);
    s.me(&access).await;
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    secrets.push(r.body["refresh"].as_str().unwrap().to_owned());
    secrets.push(r.body["access"].as_str().unwrap().to_owned());
    s.post(
        "/api/token/",
        json!({"username": "alice", "password": "wrong-password-x"}),
    )
    .await;
    s.post("/api/token/verify/", json!({"token": access})).await;
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
    secrets.push(r.body["access_token"].as_str().unwrap().to_owned());
    s.post_form("/oauth/introspect", &[("token", &access)])
        .await;
    s.get(&format!("/api/auth/me?access_token={access}")).await;
    s.send(
        s.http
            .post(s.url("/api/auth/password"))
            .bearer_auth(&access)
            .json(&json!({"old_password": PASSWORD, "new_password": new_password})),
    )
    .await;
    s.post_raw(
        "/api/token/",
        "application/json",
        format!("{{\"password\": \"{PASSWORD}\", oops"),
    )
    .await;
    s.get_with_token("/api/admin/users", &root).await;
    s.post_form("/oauth/revoke", &[("token", &refresh)]).await;

    // What the database holds: every password hash and the private key.
    let store = s.store().await;
    for user in store.all_users().await.unwrap() {
        secrets.push(user.password_hash);
    }
    for key in store.signing_keys().await.unwrap() {
        let pem = String::from_utf8(key.private_key).unwrap();
        // The body of the PEM, line by line: any one line would leak part of it.
        secrets.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    // The revocation is the last request: once it is logged, all are.
    let log = s.log_until(|log| log.contains("path=/oauth/revoke")).await;
    assert!(
        log.lines().count() > 20,
        "the log should hold the run:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log contains a secret: {secret:.16}..."
        );
    }
    assert!(!log.contains("$argon2"), "the log contains a password hash");
}
