//! The revocation feed against the change log: what a snapshot holds, and
//! that a stream sends every change after its cursor exactly once, whether
//! it reads it back or the sync publishes it.

use super::*;
use futures_util::StreamExt;
use std::time::Duration;
use tessera_core::feed::{Cursor, FeedEvent, FeedState};
use tessera_store::ChangeLog;

const CLIENT: &str = "tc_0123456789abcdef01234567";

/// The next event of `stream`, failing after a second.
async fn next(stream: &mut crate::authority::feed::Following) -> Option<(Cursor, FeedEvent)> {
    tokio::time::timeout(Duration::from_secs(1), stream.next())
        .await
        .expect("no event within a second")
}

/// Whether `stream` stays silent for a moment.
async fn silent(stream: &mut crate::authority::feed::Following) -> bool {
    tokio::time::timeout(Duration::from_millis(100), stream.next())
        .await
        .is_err()
}

#[tokio::test]
async fn the_snapshot_holds_what_can_still_refuse_a_token_and_no_refresh_token() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let _bob = sign_up(&w.authority, "bob").await;
    let origin = test_origin();
    let sessions = w.authority.sessions();
    let (pair, _) = sessions
        .login("alice", PASSWORD, &origin, Transport::Header)
        .await
        .unwrap();
    // A refresh token blacklisted: its jti is nothing a service needs.
    sessions
        .blacklist(&pair.refresh.token, &origin)
        .await
        .unwrap();
    let (second, _) = sessions
        .login("alice", PASSWORD, &origin, Transport::Header)
        .await
        .unwrap();
    // An access token revoked by RFC 7009, and a password-change-like bump.
    sessions
        .revoke_token(&second.access.token, &origin)
        .await
        .unwrap();
    w.authority
        .accounts()
        .revoke_user(alice.id, None)
        .await
        .unwrap();
    let access = w
        .authority
        .tokens()
        .check(&second.access.token, None)
        .await
        .map(|(claims, _)| claims);
    assert!(matches!(access, Err(AuthError::Token(Refusal::Revoked))));

    let snapshot = w.authority.feed().snapshot().await.unwrap();
    let latest = w.other.latest_change().await.unwrap();
    assert_eq!(snapshot.cursor, Cursor::at(latest));
    // The longer of the access (5 min) and client (1 h) token lifetimes.
    assert_eq!(snapshot.window, 3600);
    assert_eq!(snapshot.tokens.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot.tokens[0].jti, second.access.jti);
    assert_eq!(snapshot.tokens[0].exp, second.access.exp);
    // Blacklisting the refresh token ended its session (the default
    // `blacklist_ends_session`): the family, not the refresh token's jti.
    assert_eq!(snapshot.families.len(), 1, "{snapshot:?}");
    let family = &snapshot.families[0];
    assert_eq!(
        (family.fid.as_str(), family.user_id, family.at),
        (pair.access.fid.as_str(), alice.id.get(), NOW)
    );
    // Bob signed up and changed nothing that refuses a token: not listed.
    assert_eq!(snapshot.users.len(), 1, "{snapshot:?}");
    let user = snapshot.users[0];
    assert_eq!(
        (user.user_id, user.ver, user.active, user.at),
        (alice.id.get(), 1, true, NOW)
    );

    // A follower that loads it refuses what Tessera refuses.
    let state = FeedState::from_snapshot(&snapshot);
    let claims = w
        .authority
        .keys
        .validate(&pair.access.token, None, NOW)
        .await
        .unwrap();
    assert_eq!(state.check(&claims), Err(Refusal::Revoked));
}

#[tokio::test]
async fn a_stream_sends_each_change_once_read_back_then_published() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let feed = w.authority.feed().clone();
    let start = Cursor::at(w.other.latest_change().await.unwrap());
    // Made by another process and not yet applied here: read back.
    deactivate_elsewhere(&w, alice.id, NOW).await;
    let mut stream = feed.follow(CLIENT, Some(start), NOW + 3600).await.unwrap();
    let (cursor, event) = next(&mut stream).await.unwrap();
    assert_eq!(cursor.position(), start.position() + 1);
    let FeedEvent::UserChanged(user) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        (user.user_id, user.ver, user.active),
        (alice.id.get(), 1, false)
    );
    // The sync applies it now, publishing it: not sent twice.
    w.authority.sync().await.unwrap();
    assert!(silent(&mut stream).await);
    // A later change, published by the sync.
    let origin = test_origin();
    let bob = sign_up(&w.authority, "bob").await;
    let (pair, _) = w
        .authority
        .sessions()
        .login("bob", PASSWORD, &origin, Transport::Header)
        .await
        .unwrap();
    let claims = w
        .authority
        .tokens()
        .check(&pair.access.token, None)
        .await
        .unwrap()
        .0;
    w.authority
        .sessions()
        .logout(&claims, None, &origin)
        .await
        .unwrap();
    w.authority.sync().await.unwrap();
    let mut families = 0;
    while let Some((_, event)) = tokio::time::timeout(Duration::from_millis(200), stream.next())
        .await
        .ok()
        .flatten()
    {
        match event {
            FeedEvent::FamilyRevoked(f) => {
                assert_eq!(
                    (f.fid.as_str(), f.user_id),
                    (pair.access.fid.as_str(), bob.id.get())
                );
                families += 1;
            }
            FeedEvent::UserChanged(u) => assert_eq!(u.user_id, bob.id.get()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(families, 1);
    assert_eq!(feed.followers(), 1);
    drop(stream);
    assert_eq!(feed.followers(), 0);
}

#[tokio::test]
async fn bad_cursors_limits_and_slow_followers() {
    let w = world().await;
    let feed = w.authority.feed().clone();
    let latest = w.other.latest_change().await.unwrap();
    let future = feed
        .follow(CLIENT, Some(Cursor::at(latest + 1)), NOW + 60)
        .await;
    assert!(matches!(
        future,
        Err(crate::authority::feed::FeedRefusal::FutureCursor)
    ));

    // A cursor pruned away: a reset, then the end.
    sign_up(&w.authority, "alice").await;
    sign_up(&w.authority, "bob").await;
    w.other_sql("DELETE FROM changes WHERE id < (SELECT MAX(id) FROM changes)")
        .await;
    let mut stream = feed
        .follow(CLIENT, Some(Cursor::at(0)), NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        next(&mut stream).await,
        Some((Cursor::at(0), FeedEvent::Reset))
    );
    assert_eq!(next(&mut stream).await, None);

    // A follower that reads nothing falls behind and is dropped.
    let mut slow = feed.follow(CLIENT, None, NOW + 60).await.unwrap();
    let base = w.other.latest_change().await.unwrap();
    for i in 1..=5000 {
        feed.publish(base + i, FeedEvent::KeysChanged);
    }
    let mut received = 0;
    while let Some(_event) = next(&mut slow).await {
        received += 1;
    }
    assert!(received < 5000, "dropped, not buffered: {received}");

    // Its own client's removal ends a stream; another client's does not.
    let mut mine = feed.follow(CLIENT, None, NOW + 60).await.unwrap();
    let other = "tc_1123456789abcdef01234567";
    let mut theirs = feed.follow(other, None, NOW + 60).await.unwrap();
    let removed = FeedEvent::ClientRemoved(tessera_core::feed::ClientEntry {
        client_id: CLIENT.into(),
        at: NOW,
    });
    feed.publish(base + 6000, removed.clone());
    assert_eq!(
        next(&mut mine).await,
        Some((Cursor::at(base + 6000), removed.clone()))
    );
    assert_eq!(next(&mut mine).await, None);
    assert_eq!(
        next(&mut theirs).await,
        Some((Cursor::at(base + 6000), removed))
    );
    assert!(silent(&mut theirs).await);
}

#[tokio::test]
async fn a_client_holds_at_most_its_share_of_streams() {
    let mut w = world().await;
    let mut settings = w.authority.settings().clone();
    settings.feed_streams_per_client = 2;
    let store = SqliteStore::connect(&w.url).await.unwrap();
    let clock = Arc::new(FixedClock::new(NOW));
    w.authority = Arc::new(
        Authority::open(settings, Arc::new(store), clock)
            .await
            .unwrap(),
    );
    let feed = w.authority.feed().clone();
    let a = feed.follow(CLIENT, None, NOW + 60).await.unwrap();
    let _b = feed.follow(CLIENT, None, NOW + 60).await.unwrap();
    let third = feed.follow(CLIENT, None, NOW + 60).await;
    assert!(matches!(
        third,
        Err(crate::authority::feed::FeedRefusal::TooManyStreams)
    ));
    let _other = feed
        .follow("tc_1123456789abcdef01234567", None, NOW + 60)
        .await
        .unwrap();
    drop(a);
    assert!(feed.follow(CLIENT, None, NOW + 60).await.is_ok());
}
