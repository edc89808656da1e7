//! Session records: written with the family's first refresh token, followed
//! by its refreshes, listed while live.

use crate::{Engine, new_user, refresh};
use std::time::Duration;
use tessera_store::*;

fn session(fid: &str, user_id: i64, at: i64) -> SessionRecord {
    SessionRecord {
        family_id: fid.into(),
        user_id,
        created_at: at,
        last_used: at,
        expires_at: at + 100,
        token_version: 0,
        ip: "192.0.2.7".into(),
        user_agent: "Mozilla/5.0 (test)".into(),
        method: "password".into(),
    }
}

fn token(jti: &str, fid: &str, user_id: i64, at: i64) -> RefreshRecord {
    RefreshRecord {
        family_id: fid.into(),
        user_id,
        issued_at: at,
        expires_at: at + 100,
        ..refresh(jti)
    }
}

pub async fn a_session_is_written_with_its_first_token_and_follows_refreshes(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let first = token("j1", "fam1", u.id, 10);
    s.begin_session(&first, &session("fam1", u.id, 10))
        .await
        .unwrap();
    assert_eq!(
        s.live_sessions(u.id, 20).await.unwrap(),
        [session("fam1", u.id, 10)]
    );
    assert!(!s.refresh_standing("j1", "fam1").await.unwrap().blacklisted);
    // A rotation moves last_used and the expiry with the new token.
    let second = token("j2", "fam1", u.id, 50);
    let kept = SealedSuccessor {
        sealed: b"sealed j2".to_vec(),
        usable_until_ms: 60_000,
    };
    assert!(
        s.rotate_refresh_token(&first, &second, Some(&kept), 50)
            .await
            .unwrap()
    );
    assert_eq!(s.refresh_successor("j1").await.unwrap(), Some(kept.clone()));
    assert_eq!(s.refresh_successor("j2").await.unwrap(), None);
    // A second rotation of the same token loses, and keeps nothing of its own.
    let other = SealedSuccessor {
        sealed: b"sealed j9".to_vec(),
        usable_until_ms: 61_000,
    };
    assert!(
        !s.rotate_refresh_token(&first, &token("j9", "fam1", u.id, 51), Some(&other), 51)
            .await
            .unwrap()
    );
    assert_eq!(s.refresh_successor("j1").await.unwrap(), Some(kept.clone()));
    assert_eq!(s.refresh_successor("j9").await.unwrap(), None);
    // Kept through its grace period (whole seconds of `now` against
    // milliseconds: 60 s is not past 60,000 ms), pruned after it.
    s.prune(60, 0).await.unwrap();
    assert_eq!(s.refresh_successor("j1").await.unwrap(), Some(kept));
    s.prune(61, 0).await.unwrap();
    assert_eq!(s.refresh_successor("j1").await.unwrap(), None);
    let live = s.live_sessions(u.id, 60).await.unwrap();
    assert_eq!(
        (live[0].last_used, live[0].expires_at, live[0].created_at),
        (50, 150, 10)
    );
    // So does a refresh without blacklisting.
    s.record_refresh_token(&token("j3", "fam1", u.id, 70))
        .await
        .unwrap();
    assert_eq!(s.live_sessions(u.id, 80).await.unwrap()[0].last_used, 70);
    // A refresh that writes no token touches it, soon, without being waited on.
    s.touch_session("fam1", 90);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.live_sessions(u.id, 95).await.unwrap()[0].last_used != 90 {
        assert!(
            std::time::Instant::now() < deadline,
            "the touch never landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Never backwards: a late touch of an earlier moment changes nothing.
    s.touch_session("fam1", 5);
    s.record_refresh_token(&token("j4", "fam1", u.id, 60))
        .await
        .unwrap();
    let live = s.live_sessions(u.id, 95).await.unwrap();
    assert_eq!((live[0].last_used, live[0].expires_at), (90, 170));
}

pub async fn ended_expired_and_superseded_sessions_are_not_live(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let other = s.create_user(new_user("bob")).await.unwrap();
    for (fid, at) in [("old", 1), ("ended", 2), ("newest", 3)] {
        s.begin_session(
            &token(&format!("j-{fid}"), fid, u.id, at),
            &session(fid, u.id, at),
        )
        .await
        .unwrap();
    }
    s.begin_session(
        &token("j-bob", "bobs", other.id, 4),
        &session("bobs", other.id, 4),
    )
    .await
    .unwrap();
    s.revoke_family("ended", u.id, 1000, 5).await.unwrap();
    let ids = |list: Vec<SessionRecord>| list.into_iter().map(|s| s.family_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.live_sessions(u.id, 10).await.unwrap()),
        ["newest", "old"]
    );
    // Past its expiry a session is gone from the list, and pruned.
    assert_eq!(ids(s.live_sessions(u.id, 101).await.unwrap()), ["newest"]);
    s.prune(102, 0).await.unwrap();
    assert_eq!(ids(s.live_sessions(u.id, 50).await.unwrap()), ["newest"]);
    // A password change (a new token version) ends every earlier session.
    let bump = UserUpdate {
        bump_token_version: true,
        ..UserUpdate::default()
    };
    s.update_user(u.id, bump, 6).await.unwrap();
    assert!(s.live_sessions(u.id, 50).await.unwrap().is_empty());
    assert_eq!(ids(s.live_sessions(other.id, 50).await.unwrap()), ["bobs"]);
}

pub async fn a_guarded_rotation_is_done_only_while_the_user_and_session_are_as_assumed(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let first = token("g1", "famg", u.id, 10);
    s.begin_session(&first, &session("famg", u.id, 10))
        .await
        .unwrap();
    let as_held = ExpectedUser {
        user_id: u.id,
        token_version: 0,
        claims_version: 0,
    };
    // The read a refresh falls back on: the user and the token's standing.
    let (record, standing) = s.refresh_state("g1", "famg", u.id).await.unwrap().unwrap();
    assert_eq!((record, standing), (u.clone(), RefreshStanding::default()));
    assert_eq!(s.refresh_state("g1", "famg", u.id + 1).await.unwrap(), None);
    // Each assumption the database refutes: nothing written.
    for wrong in [
        ExpectedUser {
            token_version: 1,
            ..as_held
        },
        ExpectedUser {
            claims_version: 1,
            ..as_held
        },
        ExpectedUser {
            user_id: u.id + 1,
            ..as_held
        },
    ] {
        let r = s
            .rotate_if_current(&first, &token("gx", "famg", u.id, 11), None, 11, &wrong)
            .await
            .unwrap();
        assert_eq!(r, Rotation::Stale, "{wrong:?}");
    }
    assert!(!s.refresh_standing("g1", "famg").await.unwrap().blacklisted);
    // As held: rotated once; again: already blacklisted.
    let second = token("g2", "famg", u.id, 12);
    let r = s
        .rotate_if_current(&first, &second, None, 12, &as_held)
        .await;
    assert_eq!(r.unwrap(), Rotation::Rotated);
    let (_, standing) = s.refresh_state("g1", "famg", u.id).await.unwrap().unwrap();
    assert!(standing.blacklisted && !standing.family_revoked);
    let r = s
        .rotate_if_current(&first, &token("g3", "famg", u.id, 13), None, 13, &as_held)
        .await;
    assert_eq!(r.unwrap(), Rotation::AlreadyBlacklisted);
    // A deactivated user, an ended session: stale.
    let update = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    s.update_user(u.id, update, 14).await.unwrap();
    let third = token("g4", "famg", u.id, 14);
    let r = s
        .rotate_if_current(&second, &third, None, 14, &as_held)
        .await;
    assert_eq!(r.unwrap(), Rotation::Stale);
    let update = UserUpdate {
        is_active: Some(true),
        ..Default::default()
    };
    s.update_user(u.id, update, 15).await.unwrap();
    s.revoke_family("famg", u.id, 500, 15).await.unwrap();
    let r = s
        .rotate_if_current(&second, &third, None, 15, &as_held)
        .await;
    assert_eq!(r.unwrap(), Rotation::Stale);
    let (_, standing) = s.refresh_state("g2", "famg", u.id).await.unwrap().unwrap();
    assert!(!standing.blacklisted && standing.family_revoked);
}
