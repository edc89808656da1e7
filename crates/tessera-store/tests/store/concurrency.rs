//! What the store promises to concurrent callers: an exact change log,
//! conditional writes that succeed once, and migrations that queue.

use super::{Engine, all_at_once, key, new_user, refresh};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_store::*;

/// Many tasks write changes through different pool connections at once
/// while a reader follows the log the way a server does: its cursor is the
/// highest id it has seen. Afterwards it must have seen every id exactly
/// once, in order, with no gap. (On PostgreSQL a change committing after a
/// higher one, which the change-log lock prevents, would be skipped.)
pub async fn change_log_is_exact_under_concurrent_writers(e: Engine) {
    const WRITERS: usize = 16;
    const EACH: usize = 40;
    let (_db, s) = e.store().await;
    let owner = s.create_user(new_user("owner")).await.unwrap();
    let start = s.latest_change().await.unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (s, done) = (s.clone(), done.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen, mut polls) = (start, Vec::new(), 0_u64);
            loop {
                // Read the flag first: when it was already set, an empty
                // batch means every change has been read.
                let finished = done.load(Ordering::Acquire);
                let batch = s.changes_since(cursor, 7).await.unwrap();
                polls += 1;
                for change in &batch {
                    seen.push(change.id);
                    cursor = change.id;
                }
                if batch.is_empty() {
                    if finished {
                        return (seen, polls);
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            let owner = owner.id;
            tokio::spawn(async move {
                for i in 0..EACH {
                    let name = format!("w{w}_{i}");
                    match i % 4 {
                        0 => {
                            s.create_user(new_user(&name)).await.unwrap();
                        }
                        1 => s.revoke_family(&name, owner, 100, 2).await.unwrap(),
                        2 => {
                            let mut token = refresh(&name);
                            token.user_id = owner;
                            assert!(s.blacklist_refresh_token(&token, 2).await.unwrap());
                        }
                        _ => {
                            let update = UserUpdate::default();
                            s.update_user(owner, update, 2).await.unwrap().unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let (seen, polls) = reader.await.unwrap();

    let all: Vec<i64> = s
        .changes_since(start, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(all.len(), WRITERS * EACH, "one change per write");
    assert_eq!(seen, all, "the reader saw every change, once, in order");
    let expected: Vec<i64> = (start + 1..=start + (WRITERS * EACH) as i64).collect();
    assert_eq!(seen, expected, "ids follow each other without a gap");
    assert_eq!(s.latest_change().await.unwrap(), *seen.last().unwrap());
    assert!(
        polls > 10,
        "the reader polled while the writers wrote ({polls} polls)"
    );
}

/// Many tasks append audit events through different pool connections at
/// once while a reader follows the log as `tessera audit --follow` does:
/// its cursor is the highest id it has read. It must read every event
/// exactly once, in order. (On PostgreSQL an append committing after a
/// higher id was read, which the audit lock prevents, would be skipped.)
pub async fn audit_followers_miss_no_event_of_concurrent_appends(e: Engine) {
    const WRITERS: usize = 12;
    const EACH: usize = 30;
    const BATCH: usize = 5;
    let (_db, s) = e.store().await;
    let done = Arc::new(AtomicBool::new(false));
    let all = AuditFilter::default();
    let reader = {
        let (s, done, all) = (s.clone(), done.clone(), all.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen, mut polls) = (0, Vec::new(), 0_u64);
            loop {
                let finished = done.load(Ordering::Acquire);
                let page = s.audit_after(&all, cursor, 7).await.unwrap();
                polls += 1;
                for event in &page {
                    seen.push(event.id);
                    cursor = event.id;
                }
                if page.is_empty() {
                    if finished {
                        return (seen, polls);
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let events: Vec<AuditEvent> = (0..BATCH)
                        .map(|b| AuditEvent {
                            at: 1,
                            event: "login_failed".into(),
                            user_id: None,
                            actor_id: None,
                            ip: String::new(),
                            user_agent: String::new(),
                            detail: format!("{{\"n\":\"{w}-{i}-{b}\"}}"),
                        })
                        .collect();
                    s.append_audit(&events).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let (seen, polls) = reader.await.unwrap();
    let stored: Vec<i64> = s
        .audit_after(&all, 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(stored.len(), WRITERS * EACH * BATCH);
    assert_eq!(seen, stored, "the reader read every event, once, in order");
    assert!(
        polls > 10,
        "the reader polled while the writers wrote ({polls} polls)"
    );
}

/// The last active staff user can be neither demoted nor deactivated, and
/// of two staff users demoting each other at once exactly one succeeds (on
/// PostgreSQL through the change-log lock, on SQLite its one writer).
pub async fn the_last_active_staff_user_stays_under_concurrent_demotions(e: Engine) {
    let staff = |name: &str| NewUser {
        is_staff: true,
        ..new_user(name)
    };
    let demote = UserUpdate {
        is_staff: Some(false),
        ..UserUpdate::default()
    };
    let deactivate = UserUpdate {
        is_active: Some(false),
        ..UserUpdate::default()
    };
    {
        let (_db, s) = e.store().await;
        // With no staff user at all, anyone may be deactivated; no one: None.
        let plain = s.create_user(new_user("plain")).await.unwrap();
        assert!(
            s.update_user(plain.id, deactivate.clone(), 2)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.update_user(999, deactivate.clone(), 2)
                .await
                .unwrap()
                .is_none()
        );
        let only = s.create_user(staff("only")).await.unwrap();
        for update in [&demote, &deactivate] {
            let refused = s.update_user(only.id, update.clone(), 2).await;
            assert!(
                matches!(refused, Err(StoreError::LastActiveStaff)),
                "{refused:?}"
            );
        }
        // Other changes of the last one go through.
        let bump = UserUpdate {
            bump_token_version: true,
            ..UserUpdate::default()
        };
        let kept = s.update_user(only.id, bump, 2).await.unwrap().unwrap();
        assert!(kept.is_staff && kept.is_active && kept.token_version == 1);
    }
    for round in 0..5 {
        let (_db, s) = e.store().await;
        let a = s.create_user(staff("a")).await.unwrap().id;
        let b = s.create_user(staff("b")).await.unwrap().id;
        let outcomes = all_at_once(2, |i| {
            let (s, update) = (
                s.clone(),
                if i == 0 {
                    demote.clone()
                } else {
                    deactivate.clone()
                },
            );
            async move { s.update_user([a, b][i], update, 2).await }
        })
        .await;
        let done = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::LastActiveStaff)))
            .count();
        assert_eq!((done, refused), (1, 1), "round {round}: {outcomes:?}");
    }
}

/// 20 concurrent blacklistings of one token, repeated: exactly one is true,
/// whether the token was recorded first or not.
pub async fn one_of_many_blacklistings_wins(e: Engine) {
    let (_db, s) = e.store().await;
    s.create_user(new_user("alice")).await.unwrap();
    for round in 0..6 {
        let token = refresh(&format!("r{round}"));
        if round % 2 == 0 {
            s.record_refresh_token(&token).await.unwrap();
        }
        let wins = all_at_once(20, |_| {
            let (s, token) = (s.clone(), token.clone());
            async move { s.blacklist_refresh_token(&token, 5).await.unwrap() }
        })
        .await;
        assert_eq!(
            wins.iter().filter(|&&w| w).count(),
            1,
            "round {round}: {wins:?}"
        );
        let logged = s
            .changes_since(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.subject == token.jti)
            .count();
        assert_eq!(logged, 1, "round {round}: one change for the token");
    }
    assert_eq!(s.revocations(0).await.unwrap().jtis.len(), 6);
}

/// 20 concurrent rotations of one token, each to a new token of its own:
/// exactly one is true, and only its new token is recorded.
pub async fn one_of_many_rotations_wins(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    for round in 0..5 {
        let old = refresh(&format!("old{round}"));
        s.record_refresh_token(&old).await.unwrap();
        let successor = |i: usize| RefreshRecord {
            jti: format!("new{round}_{i}"),
            user_id: u.id,
            family_id: format!("n{round}_{i}"),
            issued_at: 2,
            expires_at: 100,
        };
        // Each contender keeps its own sealed successor: only the winner's stays.
        let sealed = |i: usize| SealedSuccessor {
            sealed: format!("sealed{i}").into_bytes(),
            usable_until_ms: 5_000 + i as i64,
        };
        let wins = all_at_once(20, |i| {
            let (s, old, new, kept) = (s.clone(), old.clone(), successor(i), sealed(i));
            async move {
                s.rotate_refresh_token(&old, &new, Some(&kept), 5)
                    .await
                    .unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..20).filter(|&i| wins[i]).collect();
        assert_eq!(winners.len(), 1, "round {round}: {wins:?}");
        // Live families of this round's new tokens: the winner's only.
        let prefix = format!("n{round}_");
        let recorded: BTreeSet<String> = s
            .sessions_beyond(u.id, 0, 50)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.starts_with(&prefix))
            .collect();
        assert_eq!(
            recorded,
            BTreeSet::from([successor(winners[0]).family_id]),
            "round {round}"
        );
        assert_eq!(
            s.refresh_successor(&old.jti).await.unwrap(),
            Some(sealed(winners[0])),
            "round {round}"
        );
    }
}

/// Concurrent key rotations run one after the other: each retires the key
/// the previous one put in service, so one key is left in service.
pub async fn concurrent_key_rotations_leave_one_key_in_service(e: Engine) {
    let (_db, s) = e.store().await;
    s.insert_signing_key(&key("first", 1)).await.unwrap();
    for round in 0..3 {
        all_at_once(10, |i| {
            let s = s.clone();
            let key = key(&format!("k{round}_{i}"), 10 + round);
            async move { s.rotate_signing_key(&key).await.unwrap() }
        })
        .await;
        let keys = s.signing_keys().await.unwrap();
        let in_service: Vec<_> = keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(
            in_service.len(),
            1,
            "round {round}: in service: {in_service:?}"
        );
        assert_eq!(keys.len(), 1 + 10 * (round as usize + 1));
    }
}

/// Several stores (processes, as far as the database can tell: separate
/// sessions) migrating one fresh database at once all succeed, and every
/// migration is applied once: on PostgreSQL sqlx's migration lock makes them
/// queue; on SQLite, where sqlx takes no lock, a migration that lost the race
/// ("table users already exists") rolled back and is run again.
pub async fn concurrent_migrations_of_a_fresh_database(e: Engine) {
    for _ in 0..3 {
        let db = e.blank().await;
        let mut stores = Vec::new();
        for _ in 0..8 {
            stores.push(db.open(1).await);
        }
        let results = all_at_once(stores.len(), |i| {
            let store = stores[i].clone();
            async move { store.migrate().await }
        })
        .await;
        for result in &results {
            assert!(result.is_ok(), "{result:?}");
        }
        // The package's directory as cargo runs this test (see schema_parity.rs).
        let package = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        );
        let migrations = std::fs::read_dir(package.join("migrations/sqlite"))
            .unwrap()
            .count();
        assert_eq!(db.count("_sqlx_migrations").await, migrations as i64);
        let s = &stores[0];
        s.create_user(new_user("alice")).await.unwrap();
        s.migrate().await.unwrap();
        assert_eq!(s.count_users().await.unwrap(), 1);
    }
}

/// Of many first keys put in service at once on an empty table, exactly one
/// is: the processes starting on a fresh database end with one key.
pub async fn one_of_many_first_keys_wins(e: Engine) {
    for round in 0..3 {
        let (_db, s) = e.store().await;
        let wins = all_at_once(10, |i| {
            let s = s.clone();
            let key = key(&format!("first{round}_{i}"), 1);
            async move { s.put_first_signing_key(&key).await.unwrap() }
        })
        .await;
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "round {round}: {wins:?}"
        );
        let keys = s.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "round {round}");
        assert!(keys[0].retired_at.is_none());
        // With a key in service, no other first key is put in.
        assert!(!s.put_first_signing_key(&key("late", 2)).await.unwrap());
    }
}
