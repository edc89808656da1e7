//! Throttling counted in Redis across instances (`redis_url`), and serving on
//! when Redis is gone. Needs the machine's Redis at 127.0.0.1:6379 (skipped,
//! saying so, when it does not answer; required when .ci/run runs the tests).

use super::harness::*;
use serde_json::json;

async fn fail_login(s: &Server, name: &str) -> u16 {
    s.post(
        "/api/token/",
        json!({"username": name, "password": "wrong-password-x"}),
    )
    .await
    .status
}

#[tokio::test]
async fn failed_logins_spread_over_two_instances_are_counted_together() {
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let a = Server::start(&prefix.config("")).await;
    let b = Server::start(&prefix.config("")).await;
    // The instances keep separate databases here: only Redis is shared.
    a.create_user("alice", false).await;
    b.create_user("alice", false).await;
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(fail_login(s, "alice").await, 401, "attempt {i}");
    }
    for s in [&a, &b] {
        let r = s
            .post(
                "/api/token/",
                json!({"username": "alice", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("retry-after").is_some());
        assert_eq!(s.get("/readyz").await.body["throttling"], "shared");
    }
    // Each instance alone saw only five: without Redis neither would refuse.
}

#[tokio::test]
async fn the_signup_limit_counts_across_instances() {
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let config = prefix.config("signup_rate_limit = \"2/min\"");
    let a = Server::start(&config).await;
    let b = Server::start(&config).await;
    async fn signup(s: &Server, name: &str) -> u16 {
        let body = json!({"username": name, "password": PASSWORD});
        s.send(s.http.post(s.url("/api/auth/signup")).json(&body))
            .await
            .status
    }
    assert_eq!(signup(&a, "one").await, 201);
    assert_eq!(signup(&b, "two").await, 201);
    assert_eq!(signup(&a, "three").await, 429);
    assert_eq!(signup(&b, "four").await, 429);
}

#[tokio::test]
async fn with_redis_unreachable_logins_still_work_counted_locally() {
    // A closed port: every call to Redis fails.
    let s = Server::start("redis_url = \"redis://127.0.0.1:1/0\"").await;
    s.create_user("alice", false).await;
    s.login("alice").await;
    for _ in 0..10 {
        assert_eq!(fail_login(&s, "alice").await, 401);
    }
    // The local count still throttles, and the instance says it counts alone.
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    let ready = s.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["throttling"], "local", "{}", ready.text);
    s.assert_healthy().await;
}

/// Wrong second-factor codes on two instances of one deployment count
/// together, and a right password on either forgives none of them.
#[tokio::test]
async fn wrong_codes_on_two_instances_are_counted_together() {
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let a = Server::start(
        &prefix.config("login_rate_limit = \"5/min\"\ntrusted_proxies = [\"127.0.0.1\"]"),
    )
    .await;
    let b = a.start_beside().await;
    let (access, _) = a.user("alice").await;
    let r = a
        .send(
            a.http
                .post(a.url("/api/auth/mfa/totp"))
                .bearer_auth(&access),
        )
        .await;
    let secret = totp_rs::Secret::try_from_base32(r.body["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let code_at = |at: i64| totp.generate(at as u64).to_string();
    let r = a
        .send(
            a.http
                .post(a.url("/api/auth/mfa/totp/confirm"))
                .bearer_auth(&access)
                .json(&json!({"code": code_at(a.now())})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut n = 0;
    let mut send = |s: &Server, path: &str, body: serde_json::Value| {
        n += 1;
        s.http
            .post(s.url(path))
            .header("X-Forwarded-For", format!("192.0.2.{n}"))
            .json(&body)
    };
    let password = json!({"username": "alice", "password": PASSWORD});
    let mut statuses = Vec::new();
    for (first, second) in [(&a, &b), (&b, &a), (&a, &b)] {
        let r = first
            .send(send(first, "/api/token/", password.clone()))
            .await;
        assert_eq!(r.body["code"], "mfa_required", "{}", r.text);
        let token = r.body["mfa_token"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            let old = code_at(second.now() - 300);
            let body = json!({"mfa_token": token, "code": old});
            let r = second
                .send(send(second, "/api/auth/mfa/verify", body))
                .await;
            statuses.push(r.status);
        }
    }
    // Five failures across both (each instance saw fewer), then 429.
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{statuses:?}");
    for s in [&a, &b] {
        assert_eq!(s.get("/readyz").await.body["throttling"], "shared");
    }
}
