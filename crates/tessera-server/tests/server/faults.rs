//! Several instances when connections fail: the database's cut under them,
//! Redis's subscriptions killed. Each instance recovers by itself, nothing is
//! lost, and nothing answers 500 or panics meanwhile. (Redis unreachable for
//! the throttle is in `shared_throttling`.) With real processes, on
//! databases these tests choose, so in the `server` binary only.

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long recovering from a cut connection may take: the listeners' and
/// the sync's longest backoff is 5 s.
const RECOVERY: Duration = Duration::from_secs(15);

/// Logs out with `access` on `s`, accepting 503s (a request that met the
/// cut) until it is done; never a 500.
async fn logout_through_faults(s: &Server, access: &str) {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let r = s.logout(access).await;
        match r.status {
            204 => return,
            503 => assert!(Instant::now() < deadline, "still 503: {}", r.text),
            _ => panic!("logout during a fault: {} {}", r.status, r.text),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `token` is refused on `s`; every answer before is a 200.
async fn refused_within(s: &Server, token: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = s.me(token).await;
        if r.status == 401 {
            assert_refused(&r, "revoked");
            return;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(Instant::now() < deadline, "the revocation never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `count` until it answers `want`.
async fn until_count(what: &str, want: i64, count: impl AsyncFn() -> i64) {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let n = count().await;
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {n}, never {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_no_panic(s: &Server) {
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// The connections listening for change-log notifications on this
/// database: one per instance once all is well.
async fn listeners(s: &Server) -> i64 {
    s.sql_number(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await
}

#[tokio::test]
async fn after_every_database_connection_is_cut_a_revocation_still_reaches_the_other_instance() {
    if on_postgres() {
        return;
    }
    let Some(mut servers) = Server::start_together(Database::Postgres, "", 2).await else {
        return;
    };
    let (b, a) = (servers.pop().unwrap(), servers.pop().unwrap());
    a.create_user("alice", false).await;
    let (access, _) = a.login("alice").await;
    assert_eq!(b.me(&access).await.status, 200);
    until_count("listening connections", 2, || listeners(&a)).await;

    // Every session of both instances ends, as at a failover or when an
    // operator terminates them.
    let cut = a
        .sql_number(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS cut",
        )
        .await;
    assert!(cut >= 2, "{cut} sessions cut");

    // Verification goes on from memory; the logout on A meets the cut (a
    // 503 at worst) and then succeeds; B, reconnected, learns of it.
    assert_eq!(b.me(&access).await.status, 200);
    logout_through_faults(&a, &access).await;
    refused_within(&b, &access, RECOVERY).await;
    // Both listen again, and B hears of the next revocation too.
    until_count("listening connections", 2, || listeners(&a)).await;
    let (access, _) = a.login("alice").await;
    logout_through_faults(&a, &access).await;
    refused_within(&b, &access, Duration::from_secs(2)).await;
    for s in [&a, &b] {
        s.assert_healthy().await;
        assert_eq!(s.get("/readyz").await.status, 200);
        assert_no_panic(s);
    }
}

/// A connection to the test Redis.
async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(REDIS).expect("client");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis")
}

/// Two processes started together on one SQLite file, sharing Redis under
/// `prefix`: (a, b).
async fn two_on_sqlite(prefix: &RedisPrefix) -> (Server, Server) {
    let servers = Server::start_together(Database::Sqlite, &prefix.config(""), 2).await;
    let mut servers = servers.expect("SQLite is always there");
    let b = servers.pop().expect("b");
    (servers.pop().expect("a"), b)
}

/// How many connections are subscribed to the channel instances announce
/// writes on.
async fn subscribers(prefix: &RedisPrefix) -> i64 {
    let mut connection = redis_connection().await;
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{}changes", prefix.name()))
        .query_async(&mut connection)
        .await
        .expect("PUBSUB NUMSUB");
    counts.first().map_or(0, |(_, n)| *n)
}

#[tokio::test]
async fn after_the_redis_subscriptions_are_killed_they_come_back_and_revocations_still_arrive() {
    if on_postgres() {
        return;
    }
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    // On SQLite, so that Redis is the only announcer (PostgreSQL's
    // notifications would hide a subscription that never came back).
    let (a, b) = two_on_sqlite(&prefix).await;
    a.create_user("alice", false).await;
    until_count("subscribers", 2, || subscribers(&prefix)).await;

    let mut connection = redis_connection().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut connection)
        .await
        .expect("CLIENT KILL");
    assert!(killed >= 2, "{killed} subscriptions killed");

    until_count("subscribers after the kill", 2, || subscribers(&prefix)).await;
    let (access, _) = a.login("alice").await;
    assert_eq!(b.me(&access).await.status, 200);
    logout_through_faults(&a, &access).await;
    refused_within(&b, &access, Duration::from_secs(2)).await;
    for s in [&a, &b] {
        s.assert_healthy().await;
        assert_no_panic(s);
    }
}

#[tokio::test]
async fn with_redis_ten_failed_logins_spread_over_two_processes_make_the_next_429_on_both() {
    if on_postgres() {
        return;
    }
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    // The default limit: 10 failures a minute per username.
    let (a, b) = two_on_sqlite(&prefix).await;
    a.create_user("alice", false).await;
    let wrong = json!({"username": "alice", "password": "wrong-password-x"});
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = s.post("/api/token/", wrong.clone()).await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text);
    }
    let right = json!({"username": "alice", "password": PASSWORD});
    for s in [&a, &b] {
        let r = s.post("/api/token/", right.clone()).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
        assert_eq!(s.get("/readyz").await.body["throttling"], "shared");
    }
}

#[tokio::test]
async fn while_the_database_refuses_connections_readyz_says_so_and_verification_goes_on() {
    if on_postgres() {
        return;
    }
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let Some(mut servers) = Server::start_together(Database::Postgres, "", 1).await else {
        return;
    };
    let s = servers.pop().unwrap();
    s.create_user("alice", false).await;
    let (access, _) = s.login("alice").await;
    assert_eq!(s.get("/readyz").await.status, 200);

    // The database stops taking connections, and the open ones are ended.
    let name = s.postgres_database();
    let admin_pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let run = |sql: String| {
        let pool = admin_pool.clone();
        async move { sqlx::query(&sql).execute(&pool).await.expect(&sql) }
    };
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    run(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;

    let deadline = Instant::now() + RECOVERY;
    let r = loop {
        let r = s.get("/readyz").await;
        if r.status == 503 {
            break r;
        }
        assert!(Instant::now() < deadline, "still ready: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        r.body,
        json!({"status": "unavailable", "reason": "database"}),
        "{}",
        r.text
    );
    // Tokens are verified from memory meanwhile; what needs the database
    // answers 503, never 500.
    assert_eq!(s.me(&access).await.status, 200);
    let login = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 503, "{}\n{}", login.text, s.log());
    assert_eq!(
        login.body,
        json!({"detail": "Service temporarily unavailable, try again later."})
    );
    assert_eq!(login.header("retry-after"), Some("1"));
    s.assert_healthy().await;

    // Back: ready again by itself, and logins work.
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    let deadline = Instant::now() + RECOVERY;
    loop {
        let r = s.get("/readyz").await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.login("alice").await;
    assert_no_panic(&s);
    admin_pool.close().await;
}
