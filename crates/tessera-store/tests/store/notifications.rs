//! Change-log notifications (PostgreSQL): a commit wakes every follower,
//! and a follower whose connection is cut listens again by itself.

use super::{Db, Engine, new_user};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Long enough for a notification on a loaded machine; far shorter than a
/// test that hangs.
const WAIT: Duration = Duration::from_secs(10);

async fn woken(hint: &Notify, what: &str) {
    if tokio::time::timeout(WAIT, hint.notified()).await.is_err() {
        panic!("no hint within {WAIT:?} {what}");
    }
}

/// Whether `hint` stays asleep for a moment (no stale permit is pending).
async fn quiet(hint: &Notify) -> bool {
    tokio::time::timeout(Duration::from_millis(200), hint.notified())
        .await
        .is_err()
}

/// Ends every connection listening for changes in this database, as an
/// operator's `pg_terminate_backend` (or a failover) would; returns how many.
async fn cut_listeners(db: &Db) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    cut.len() as i64
}

/// A commit by another store (another process, as far as the database can
/// tell) wakes the follower; after its connection is cut, the follower is
/// woken (to catch up on what went unannounced) and later commits wake it
/// again.
pub async fn commits_wake_followers_and_a_cut_listener_resumes(e: Engine) {
    let (db, writer) = e.store().await;
    let follower = db.open(2).await;
    let hint = Arc::new(Notify::new());
    let task = tokio::spawn({
        let hint = hint.clone();
        async move { follower.follow_changes(hint).await }
    });
    woken(&hint, "once listening").await;
    // Nothing committed: nothing announced.
    assert!(quiet(&hint).await, "woken with nothing committed");

    writer.create_user(new_user("alice")).await.unwrap();
    woken(&hint, "after a commit to the change log").await;

    // A write that logs nothing announces nothing.
    writer.record_login(1, 5, None).await.unwrap();
    assert!(quiet(&hint).await, "woken by a write that logs no change");

    for round in 0..2 {
        // Until the follower listens again, a cut may find nothing to cut.
        let mut cut = 0;
        for _ in 0..50 {
            cut = cut_listeners(&db).await;
            if cut > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(cut, 1, "round {round}: one listening connection");
        woken(&hint, "after the listening connection was cut").await;
        // Once it listens again, a new commit is announced.
        let mut heard = false;
        for attempt in 0..20 {
            writer
                .revoke_family(&format!("f{round}_{attempt}"), 1, 100, 6)
                .await
                .unwrap();
            if tokio::time::timeout(Duration::from_millis(500), hint.notified())
                .await
                .is_ok()
            {
                heard = true;
                break;
            }
        }
        assert!(heard, "round {round}: no commit announced after the cut");
    }
    task.abort();
}
