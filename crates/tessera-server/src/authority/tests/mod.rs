//! The in-memory state against the database: races and gaps that must not
//! leave memory behind it. The keys' race at start is in `key_race.rs`,
//! service clients removed elsewhere in `clients.rs`.

mod clients;
mod feed;
mod key_race;
mod publish_ahead;

use super::*;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use tessera_core::clock::FixedClock;
use tessera_core::ids::UserId;
use tessera_store::UserUpdate;
use tessera_store::{KeyStore, Maintenance, SqliteStore, TokenStore, UserStore};

const PASSWORD: &str = "vivid-otter-canyon-1987!";
const NOW: i64 = 1_800_000_000;

struct World {
    _dir: tempfile::TempDir,
    authority: Arc<Authority>,
    /// The same database opened a second time: another process.
    other: SqliteStore,
    /// Its URL, for statements no store method makes.
    url: String,
}

impl World {
    /// Runs `statement` on the database, as another process could.
    async fn other_sql(&self, statement: &str) {
        let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// The origin of the logins of these tests.
fn test_origin() -> SessionOrigin {
    SessionOrigin::new(IpAddr::from([127, 0, 0, 1]), "test", LoginMethod::Password)
}

async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] with `change` made to its settings.
async fn world_with(change: impl FnOnce(&mut Settings)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let mut settings = Settings {
        database_url: url.clone(),
        login_rate_limit: None,
        signup_rate_limit: None,
        ..Settings::default()
    };
    change(&mut settings);
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(FixedClock::new(NOW));
    let authority = Authority::open(settings, Arc::new(store), clock)
        .await
        .unwrap();
    let other = SqliteStore::connect(&url).await.unwrap();
    World {
        _dir: dir,
        authority: Arc::new(authority),
        other,
        url,
    }
}

async fn sign_up(authority: &Authority, name: &str) -> Arc<User> {
    authority
        .accounts()
        .signup(NewAccount {
            username: name,
            password: PASSWORD,
            email: "",
            superuser: false,
            client: None,
        })
        .await
        .unwrap()
}

/// Deactivates `id` from the other process, as the CLI or an admin there would.
async fn deactivate_elsewhere(w: &World, id: UserId, now: i64) {
    let update = UserUpdate {
        is_active: Some(false),
        bump_token_version: true,
        ..Default::default()
    };
    w.other
        .update_user(id.get(), update, now)
        .await
        .unwrap()
        .unwrap();
}

async fn assert_memory_agrees_with_the_database(w: &World, id: UserId) {
    let stored = w.other.user_by_id(id.get()).await.unwrap().unwrap();
    let held = w.authority.live.held(id).unwrap();
    assert_eq!(*held, User::from(stored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_held_at_the_hash_while_the_user_is_deactivated_give_no_usable_token() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let permits = w.authority.hashing.permits().available_permits() as u32;
    for trial in 0..3 {
        // Every hashing permit held here: the logins read the user, then queue.
        let held = w
            .authority
            .hashing
            .permits()
            .acquire_many(permits)
            .await
            .unwrap();
        let logins: Vec<_> = (0..6)
            .map(|_| {
                let authority = w.authority.clone();
                tokio::spawn(async move {
                    let origin = test_origin();
                    authority
                        .sessions()
                        .login("alice", PASSWORD, &origin, Transport::Header)
                        .await
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while w.authority.hashing.queued() < 6 {
            assert!(
                std::time::Instant::now() < deadline,
                "the logins never queued"
            );
            tokio::task::yield_now().await;
        }
        deactivate_elsewhere(&w, alice.id, NOW).await;
        w.authority.sync().await.unwrap();
        assert!(!w.authority.live.held(alice.id).unwrap().is_active);
        drop(held);
        for login in logins {
            // A login may answer either way; a token it hands out must not work.
            if let Ok((pair, _)) = login.await.unwrap() {
                let refused = w.authority.tokens().check(&pair.access.token, None).await;
                assert!(
                    matches!(refused, Err(AuthError::Token(Refusal::Revoked))),
                    "trial {trial}: {refused:?}"
                );
                let refreshed = w
                    .authority
                    .tokens()
                    .refresh(&pair.refresh.token, Transport::Header, None, &test_origin())
                    .await;
                assert!(refreshed.is_err(), "trial {trial}");
            }
        }
        assert!(
            !w.authority.live.held(alice.id).unwrap().is_active,
            "trial {trial}"
        );
        assert_memory_agrees_with_the_database(&w, alice.id).await;
        // Active again for the next trial.
        let update = UserUpdate {
            is_active: Some(true),
            ..Default::default()
        };
        w.other
            .update_user(alice.id.get(), update, NOW)
            .await
            .unwrap();
        w.authority.sync().await.unwrap();
        assert!(w.authority.live.held(alice.id).unwrap().is_active);
    }
}

/// A refresh with rotation mints from the user held in memory, and its write
/// confirms the database agrees. This authority syncs only when told, so
/// what another process changed is in the database and not in its memory:
/// each such change makes the write find the database disagreeing, and the
/// refresh is decided on the database instead.
#[tokio::test]
async fn a_refresh_minted_from_memory_is_decided_on_the_database_when_the_user_changed_elsewhere() {
    let w = world_with(|s| {
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
        s.user_rate_limit = None;
    })
    .await;
    let alice = sign_up(&w.authority, "alice").await;
    let origin = test_origin();
    let login = w
        .authority
        .sessions()
        .login("alice", PASSWORD, &origin, Transport::Header);
    let (pair, _) = login.await.unwrap();
    let refresh = |token: String| {
        let authority = w.authority.clone();
        async move {
            let origin = test_origin();
            let tokens = authority.tokens();
            tokens
                .refresh(&token, Transport::Header, None, &origin)
                .await
        }
    };
    // Roles given elsewhere: memory has claims version 0, the database 1.
    let update = UserUpdate {
        roles: Some(r#"["ops"]"#.into()),
        ..Default::default()
    };
    w.other
        .update_user(alice.id.get(), update, NOW)
        .await
        .unwrap();
    assert_eq!(w.authority.live.held(alice.id).unwrap().claims_version, 0);
    let refreshed = refresh(pair.refresh.token.clone()).await.unwrap();
    let (claims, _) = w
        .authority
        .tokens()
        .check(&refreshed.access.token, None)
        .await
        .unwrap();
    assert_eq!(claims.claims_version, 1, "minted from the database's user");
    assert_memory_agrees_with_the_database(&w, alice.id).await;
    let next = refreshed.refresh.unwrap().token;
    // The session ended elsewhere: refused, and nothing written.
    let (pair, _) = w
        .authority
        .sessions()
        .login("alice", PASSWORD, &origin, Transport::Header)
        .await
        .unwrap();
    w.other
        .revoke_family(pair.refresh.fid.as_str(), alice.id.get(), NOW + 100, NOW)
        .await
        .unwrap();
    let refused = refresh(pair.refresh.token.clone()).await;
    assert!(
        matches!(refused, Err(AuthError::Token(Refusal::Revoked))),
        "{refused:?}"
    );
    let standing = w
        .other
        .refresh_standing(pair.refresh.jti.as_str(), pair.refresh.fid.as_str())
        .await
        .unwrap();
    assert!(!standing.blacklisted && standing.family_revoked);
    // Deactivated elsewhere: refused, nothing written.
    deactivate_elsewhere(&w, alice.id, NOW).await;
    assert!(w.authority.live.held(alice.id).unwrap().is_active);
    let refused = refresh(next.clone()).await;
    assert!(
        matches!(refused, Err(AuthError::Token(Refusal::Revoked))),
        "{refused:?}"
    );
    assert!(!w.authority.live.held(alice.id).unwrap().is_active);
}

#[tokio::test]
async fn a_user_read_before_an_update_does_not_replace_it_in_memory() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    // A copy read now, and applied after a deactivation has been synced (as
    // `user()` on a miss, a login or a token issue would).
    let stale = w.other.user_by_id(alice.id.get()).await.unwrap().unwrap();
    deactivate_elsewhere(&w, alice.id, NOW).await;
    w.authority.sync().await.unwrap();
    let kept = w.authority.live.remember(stale);
    assert!(!kept.is_active);
    assert_memory_agrees_with_the_database(&w, alice.id).await;
    // And a token issued from here on is refused.
    let issued = w.authority.tokens().issue_access_token("alice", None).await;
    assert!(
        matches!(issued, Err(AuthError::NoActiveAccount)),
        "{issued:?}"
    );
}

#[tokio::test]
async fn a_gap_in_the_change_log_reloads_everything() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let (pair, _) = w
        .authority
        .sessions()
        .login("alice", PASSWORD, &test_origin(), Transport::Header)
        .await
        .unwrap();
    // Up to date with the log (this process's own writes come back through it).
    w.authority.sync().await.unwrap();
    let before = w.authority.live.applied_change();
    // Another process deactivates alice, then writes something else, and
    // the log is pruned up to that last entry before this process reads it
    // (it was behind for longer than the log is kept).
    deactivate_elsewhere(&w, alice.id, NOW - 7200).await;
    w.other
        .revoke_family(
            "0123456789abcdef0123456789abcdef",
            alice.id.get(),
            NOW + 60,
            NOW,
        )
        .await
        .unwrap();
    assert!(w.other.prune(NOW, NOW + 3600).await.unwrap() > 0);
    w.authority.sync().await.unwrap();
    assert!(!w.authority.live.held(alice.id).unwrap().is_active);
    assert_memory_agrees_with_the_database(&w, alice.id).await;
    let refused = w.authority.tokens().check(&pair.access.token, None).await;
    assert!(
        matches!(refused, Err(AuthError::Token(Refusal::Revoked))),
        "{refused:?}"
    );
    assert!(w.authority.live.applied_change() > before + 1);
    // From the reloaded position on, the log is followed as usual.
    assert_eq!(w.authority.sync().await.unwrap(), 0);
}

#[tokio::test]
async fn ids_rolled_back_leave_a_gap_that_reloads_nothing() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    w.authority.sync().await.unwrap();
    let before = w.authority.live.applied_change();
    // An id drawn and never committed, as a request cut short leaves on
    // PostgreSQL: the entry is gone, the ids after it go on.
    deactivate_elsewhere(&w, alice.id, NOW).await;
    let skipped = before + 1;
    w.other_sql(&format!("DELETE FROM changes WHERE id = {skipped}"))
        .await;
    w.other
        .revoke_family(
            "0123456789abcdef0123456789abcdef",
            alice.id.get(),
            NOW + 60,
            NOW,
        )
        .await
        .unwrap();
    // One entry read and applied: no reload (which would have read alice
    // deactivated from her row).
    assert_eq!(w.authority.sync().await.unwrap(), 1);
    assert_eq!(w.authority.live.applied_change(), before + 2);
    assert!(w.authority.live.held(alice.id).unwrap().is_active);
}

#[tokio::test]
async fn without_a_gap_the_log_is_applied_entry_by_entry() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    // This process's own writes (its key, the signup) come back through the log too.
    w.authority.sync().await.unwrap();
    let before = w.authority.live.applied_change();
    deactivate_elsewhere(&w, alice.id, NOW).await;
    assert_eq!(w.authority.sync().await.unwrap(), 1);
    assert_eq!(w.authority.live.applied_change(), before + 1);
    assert!(!w.authority.live.held(alice.id).unwrap().is_active);
}
