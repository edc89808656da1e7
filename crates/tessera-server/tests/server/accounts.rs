//! Signup and the current user (docs/API.md, "Accounts"), and the errors
//! of protected endpoints (docs/API.md).

use super::harness::*;
use serde_json::json;
use tessera_store::UserUpdate;

#[tokio::test]
async fn signup_creates_a_user() {
    let s = Server::start("").await;
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "alice", "password": PASSWORD, "email": "a@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body,
        json!({"id": 1, "username": "alice", "email": "a@example.com"})
    );
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.body, json!({"id": 2, "username": "bob", "email": ""}));
}

#[tokio::test]
async fn signup_refuses_duplicates_including_nfkc_lookalikes() {
    let s = Server::start("").await;
    s.signup("admin").await;
    for name in ["admin", "ａｄｍｉｎ"] {
        let r = s
            .post(
                "/api/auth/signup",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"username": ["A user with that username already exists."]})
        );
    }
    // Case-sensitive, as Django.
    s.signup("Admin").await;
}

#[tokio::test]
async fn signup_applies_the_password_policy() {
    let s = Server::start("").await;
    let cases = [
        (
            "short",
            "This password is too short. It must contain at least 8 characters.",
        ),
        ("12345678901", "This password is entirely numeric."),
        ("password", "This password is too common."),
        (
            "carolinesmith",
            "The password is too similar to the username.",
        ),
    ];
    for (password, message) in cases {
        let r = s
            .post(
                "/api/auth/signup",
                json!({"username": "carolinesmith", "password": password}),
            )
            .await;
        assert_eq!(r.status, 400, "{password}");
        let messages = r.body["password"].as_array().unwrap();
        assert!(messages.contains(&json!(message)), "{password}: {}", r.text);
        assert_eq!(r.body.as_object().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn signup_refuses_bad_usernames_and_emails() {
    let s = Server::start("").await;
    let long = "u".repeat(10_000);
    let cases = [
        (
            json!({"username": long, "password": PASSWORD}),
            "username",
            "Ensure this field has no more than 150 characters.",
        ),
        (
            json!({"username": "a\u{0}b", "password": PASSWORD}),
            "username",
            "Enter a valid username. This value may not contain control characters.",
        ),
        (
            json!({"username": "   ", "password": PASSWORD}),
            "username",
            "This field may not be blank.",
        ),
        (
            json!({"username": "", "password": PASSWORD}),
            "username",
            "This field may not be blank.",
        ),
        (
            json!({"username": "ok", "password": PASSWORD, "email": "not-an-email"}),
            "email",
            "Enter a valid email address.",
        ),
        (
            json!({"username": "ok", "password": PASSWORD, "email": 3}),
            "email",
            "Not a valid string.",
        ),
    ];
    for (body, field, message) in cases {
        let r = s.post("/api/auth/signup", body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body, json!({field: [message]}), "{}", r.text);
    }
    s.assert_healthy().await;
    s.signup("ok").await;
}

#[tokio::test]
async fn invisible_and_spoofing_usernames_are_refused_with_djangos_message() {
    let s = Server::start("").await;
    let message = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";
    for name in [
        "admin\u{200b}",
        "ad\u{200d}min",
        "ad\u{00ad}min",
        "\u{202e}nimda",
        "\u{feff}admin",
        " admin",
        "\u{3164}",
        "a\u{2028}b",
        "alice smith",
    ] {
        let r = s
            .post(
                "/api/auth/signup",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 400, "{name:?}: {}", r.text);
        assert_eq!(r.body, json!({"username": [message]}), "{name:?}");
    }
    s.assert_healthy().await;
    // Letters and digits of other scripts are letters and digits.
    for name in ["Ωμέγα", "пётр", "山田", "أحمد٣", "o.k@x+y-z_1"] {
        s.signup(name).await;
        s.login(name).await;
    }
    let users = s
        .get_with_token("/api/admin/users", &s.superuser("root").await.0)
        .await;
    assert_eq!(users.body["count"], 6, "{}", users.text);
}

#[tokio::test]
async fn signup_can_be_turned_off() {
    let s = Server::start("signup_enabled = false").await;
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "permission_denied");
}

#[tokio::test]
async fn me_returns_the_user() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    // A password login, which also sets last_login.
    let (access, _) = s.login("alice").await;
    let r = s.me(&access).await;
    assert_eq!(r.status, 200);
    let body = r.body.as_object().unwrap();
    let mut keys: Vec<_> = body.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "app_metadata",
            "date_joined",
            "email",
            "email_verified",
            "id",
            "is_active",
            "is_staff",
            "last_login",
            "roles",
            "username"
        ]
    );
    assert_eq!(r.body["id"], 1);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["is_staff"], false);
    assert_eq!(r.body["is_active"], true);
    let joined = r.body["date_joined"].as_str().unwrap();
    assert!(
        joined.len() == 20 && joined.ends_with('Z') && joined.contains('T'),
        "{joined}"
    );
    assert!(r.body["last_login"].is_string());
}

#[tokio::test]
async fn a_deactivation_by_another_process_revokes_tokens_within_a_second() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
    // Another process (as the admin CLI would) writes to the same database.
    let store = s.store().await;
    let update = UserUpdate {
        is_active: Some(false),
        bump_token_version: true,
        ..Default::default()
    };
    // Written now: a change dated 1970 is older than what the server's
    // upkeep keeps, and the upkeep's first run (at start) may delete it
    // before the sync reads it.
    use tessera_core::clock::Clock;
    let now = tessera_core::clock::SystemClock.now();
    store.update_user(1, update, now).await.unwrap();
    s.caught_up().await;
    assert_refused(&s.me(&access).await, "revoked");
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "no_active_account");
}

#[tokio::test]
async fn a_user_from_createsuperuser_is_accepted_at_once() {
    let s = Server::start("").await;
    let mut child = std::process::Command::new(binary())
        .envs(hashing_env())
        .args(["--config"])
        .arg(s.config_path())
        .args([
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--password-stdin",
        ])
        .current_dir(s.dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // No wait: the server falls back to the database for a user it does not know.
    let (access, _) = s.login("root").await;
    let r = s.me(&access).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["is_staff"], true);
    assert_eq!(r.body["email"], "root@example.com");
}
