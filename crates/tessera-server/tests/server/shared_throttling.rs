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
