//! The tests: each task made to panic (or fail, or end), and what it had
//! to do done once it is started again.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_that_panics_is_started_again_and_reported_down_meanwhile() {
    let redis = std::env::var("TESSERA_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let smtp = Smtp::start().await;
    let server = start(|settings| {
        settings.redis_url = Some(redis);
        settings.smtp_url = Some(smtp.url());
        settings.public_url = Some("https://auth.tessera.test".to_owned());
    })
    .await;
    for task in [
        "audit_writer",
        "batched_writer",
        "sync",
        "upkeep",
        "database_follower",
        "redis_follower",
        "redis_announcer",
        "mail_sender",
    ] {
        assert_eq!(
            server.task_metric("tessera_task_up", task).await,
            1,
            "{task}"
        );
        server.break_down(task).await;
        server.mend(task).await;
        assert!(
            server
                .task_metric("tessera_task_restarts_total", task)
                .await
                >= 1
        );
    }
    // A healthy server's readyz is as documented: no `task`.
    let (_, body) = server.readyz().await;
    assert!(body.get("task").is_none(), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_elsewhere_while_the_sync_is_down_arrives_once_it_is_started_again() {
    let server = start(|_| {}).await;
    let (id, access) = server.signup_and_login("ada", "").await;
    server.break_down("sync").await;
    // Another instance on the same database revokes the user's tokens.
    let store = crate::server::open_store(&server.settings).await.unwrap();
    let other = Authority::open_with(
        server.settings.clone(),
        store,
        Arc::new(SystemClock),
        KeyUse::Existing,
    )
    .await
    .unwrap();
    let id = tessera_core::ids::UserId::new(id);
    other.accounts().revoke_user(id, None).await.unwrap();
    // Not known here while the sync is down...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.me(&access).await.0, 200);
    // ...and applied once it runs again.
    server.mend("sync").await;
    poll(
        || async { server.me(&access).await.0 == 401 },
        "the revocation applied",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_event_queued_while_the_audit_writer_is_down_is_written_once_it_is_started_again()
{
    let server = start(|_| {}).await;
    server.signup_and_login("grace", "").await;
    server.authority.audit_log().flush().await;
    let count = || async {
        let pool = sqlx::SqlitePool::connect(&server.settings.database_url)
            .await
            .unwrap();
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'login_failed'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        n
    };
    server.break_down("audit_writer").await;
    let refused = server
        .post(
            "/api/token",
            json!({"username": "grace", "password": "not the password"}),
            None,
        )
        .await;
    assert_eq!(refused.0, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count().await, 0, "written while the writer was down?");
    server.mend("audit_writer").await;
    poll(|| async { count().await == 1 }, "the queued event written").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_while_the_batched_writer_is_down_is_acknowledged_once_it_is_started_again()
{
    let server = Arc::new(start(|_| {}).await);
    server.signup_and_login("linus", "").await;
    server.break_down("batched_writer").await;
    // A login's session is a batched write: it waits for the writer.
    let waiting = tokio::spawn({
        let server = server.clone();
        async move { server.login("linus").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "answered while the writer was down");
    server.mend("batched_writer").await;
    let (status, tokens) = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{tokens}");
    // Acknowledged means committed: the refresh token it recorded works.
    let (status, body) = server
        .post(
            "/api/token/refresh",
            json!({"refresh": tokens["refresh"]}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requested_while_the_mail_sender_is_down_is_delivered_once_it_is_started_again() {
    let mut smtp = Smtp::start().await;
    let url = smtp.url();
    let server = start(|settings| {
        settings.smtp_url = Some(url);
        settings.public_url = Some("https://auth.tessera.test".to_owned());
    })
    .await;
    server.signup_and_login("hedy", "hedy@example.com").await;
    server.break_down("mail_sender").await;
    let (status, body) = server
        .post(
            "/api/auth/password/reset",
            json!({"email": "hedy@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), smtp.mail.recv())
            .await
            .is_err(),
        "mail sent while the sender was down"
    );
    server.mend("mail_sender").await;
    let mail = tokio::time::timeout(WITHIN, smtp.mail.recv())
        .await
        .expect("no mail once the sender runs again")
        .unwrap();
    assert!(mail.contains("hedy@example.com"), "{mail}");
    server.stop().await;
}

#[tokio::test]
async fn a_task_that_fails_or_ends_is_started_again_with_a_growing_pause_and_stops_when_asked() {
    let runs = Arc::new(AtomicU64::new(0));
    let mut tasks = Supervisor::new();
    let counted = runs.clone();
    tasks.start(
        "flaky",
        Box::new(move |stop: Stop| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match run {
                    0 => Err("the database went away".to_owned()),
                    1 => Ok(()),
                    _ => {
                        stop.requested().await;
                        Ok(())
                    }
                }
            })
        }),
    );
    let health = tasks.health();
    let started = Instant::now();
    poll(|| async { runs.load(Ordering::SeqCst) == 3 }, "a third run").await;
    // Two pauses: 100 ms, then 200 ms.
    assert!(
        started.elapsed() >= BACKOFF_MIN * 3,
        "{:?}",
        started.elapsed()
    );
    poll(|| async { health.down().is_none() }, "up again").await;
    assert!(
        health
            .metrics()
            .contains("tessera_task_restarts_total{task=\"flaky\"} 2\n"),
        "{}",
        health.metrics()
    );
    // Asked to stop, it ends by itself well within the grace period.
    let stopping = Instant::now();
    tasks.stop("flaky", WITHIN).await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(!tasks.has("flaky"));
    assert_eq!(runs.load(Ordering::SeqCst), 3, "started again after a stop");
}
