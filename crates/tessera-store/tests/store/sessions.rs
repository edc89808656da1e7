//! Session records: written with the family's first refresh token, followed
//! by its refreshes, listed while live.

use crate::{Engine, all_at_once, new_user, refresh};
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

/// Writes of every kind at once, so that the writer takes many of them in
/// one batch (its multi-row statements): each is answered as if applied
/// alone, and one that fails (a session of a user that does not exist)
/// fails alone. Repeated, since which writes share a batch is up to timing.
pub async fn a_batch_of_mixed_writes_answers_each_as_applied_in_order(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let as_held = ExpectedUser {
        user_id: u.id,
        token_version: 0,
        claims_version: 0,
    };
    let stale = ExpectedUser {
        token_version: 7,
        ..as_held
    };
    for round in 0..6 {
        let fid = |i: usize| format!("r{round}f{i}");
        let old = |i: usize| token(&format!("r{round}o{i}"), &fid(i), u.id, 10);
        let new = |i: usize, n: usize| token(&format!("r{round}n{i}_{n}"), &fid(i), u.id, 20);
        // Sessions 0..8, each with its first token.
        for i in 0..8 {
            s.begin_session(&old(i), &session(&fid(i), u.id, 10))
                .await
                .unwrap();
        }
        let outcomes = all_at_once(16, |n| {
            let s = s.clone();
            let (old, new) = (old(n % 8), new(n % 8, n));
            let begun = (
                token(&format!("r{round}b{n}"), &fid(100 + n), u.id, 20),
                fid(100 + n),
            );
            async move {
                match n {
                    // Rotations as held, two with a successor, and tokens 0
                    // and 1 rotated twice (by n = 8 and n = 9 too).
                    0..=3 | 8 | 9 => {
                        let kept = SealedSuccessor {
                            sealed: vec![n as u8],
                            usable_until_ms: 30_000,
                        };
                        let kept = (n < 2).then_some(&kept);
                        format!(
                            "{:?}",
                            s.rotate_if_current(&old, &new, kept, 20, &as_held).await
                        )
                    }
                    // Unguarded rotations.
                    4 | 5 => format!("{:?}", s.rotate_refresh_token(&old, &new, None, 20).await),
                    // A guard the database refutes.
                    6 => format!(
                        "{:?}",
                        s.rotate_if_current(&old, &new, None, 20, &stale).await
                    ),
                    // A refresh without rotation, a touch.
                    7 => format!("{:?}", s.record_refresh_token(&new).await),
                    // A touch older than the rotation of its session:
                    // the last use never moves back.
                    10 => {
                        s.touch_session(&old.family_id, 15);
                        "touched".into()
                    }
                    // Odd rounds: a new session of a user that does not
                    // exist, which fails alone (the batch it was in is
                    // applied again one write at a time; even rounds test
                    // the batches applied whole).
                    11 if round % 2 == 1 => {
                        let (token, family) = (
                            RefreshRecord {
                                user_id: u.id + 100,
                                ..begun.0
                            },
                            begun.1,
                        );
                        let r = s
                            .begin_session(&token, &session(&family, u.id + 100, 20))
                            .await;
                        if r.is_err() {
                            "failed".into()
                        } else {
                            "written".into()
                        }
                    }
                    // New sessions.
                    _ => format!(
                        "{:?}",
                        s.begin_session(&begun.0, &session(&begun.1, u.id, 20))
                            .await
                    ),
                }
            }
        })
        .await;
        let rotated: Vec<usize> = [0, 1, 8, 9]
            .into_iter()
            .filter(|&n| outcomes[n] == "Ok(Rotated)")
            .collect();
        // Tokens 0 and 1 rotated once each, by one of their two rotations.
        assert_eq!(rotated.len(), 2, "round {round}: {outcomes:?}");
        for n in [0, 1, 8, 9] {
            assert!(
                ["Ok(Rotated)", "Ok(AlreadyBlacklisted)"].contains(&outcomes[n].as_str()),
                "round {round}: {outcomes:?}"
            );
        }
        assert_eq!(outcomes[2], "Ok(Rotated)", "round {round}");
        assert_eq!(outcomes[3], "Ok(Rotated)", "round {round}");
        assert_eq!(outcomes[4], "Ok(true)", "round {round}");
        assert_eq!(outcomes[5], "Ok(true)", "round {round}");
        assert_eq!(outcomes[6], "Ok(Stale)", "round {round}");
        assert_eq!(outcomes[7], "Ok(())", "round {round}");
        let failing = round % 2 == 1;
        let expected = if failing { "failed" } else { "Ok(())" };
        assert_eq!(outcomes[11], expected, "round {round}");
        assert_eq!(outcomes[12..], ["Ok(())"; 4], "round {round}");
        // What the database says: each rotated token blacklisted (one
        // change each), the stale one not; the winners' successors kept.
        for i in 0..6 {
            let standing = s.refresh_standing(&old(i).jti, &fid(i)).await.unwrap();
            assert!(standing.blacklisted, "round {round}, token {i}");
        }
        for i in [6, 7] {
            let standing = s.refresh_standing(&old(i).jti, &fid(i)).await.unwrap();
            assert!(!standing.blacklisted, "round {round}, token {i}");
        }
        let changes = s.changes_since(0, 10_000).await.unwrap();
        for i in 0..8 {
            let logged = changes.iter().filter(|c| c.subject == old(i).jti).count();
            assert_eq!(logged, usize::from(i < 6), "round {round}, token {i}");
        }
        for i in [0, 1] {
            let winner = [i, i + 8]
                .into_iter()
                .find(|&n| outcomes[n] == "Ok(Rotated)")
                .unwrap();
            let kept = s.refresh_successor(&old(i).jti).await.unwrap();
            let expected = (winner < 2).then(|| SealedSuccessor {
                sealed: vec![winner as u8],
                usable_until_ms: 30_000,
            });
            assert_eq!(kept, expected, "round {round}, token {i}");
        }
        // The sessions: the refreshed ones used at 20, the new ones live,
        // the failed one absent.
        let live = s.live_sessions(u.id, 0).await.unwrap();
        let used = |f: &str| live.iter().find(|x| x.family_id == f).map(|x| x.last_used);
        for i in [2, 3, 4, 5, 7] {
            assert_eq!(used(&fid(i)), Some(20), "round {round}, session {i}");
        }
        assert_eq!(
            used(&fid(6)),
            Some(10),
            "round {round}: the stale rotation wrote nothing"
        );
        for n in 12..16 {
            assert_eq!(
                used(&fid(100 + n)),
                Some(20),
                "round {round}, new session {n}"
            );
        }
        let expected = (!failing).then_some(20);
        assert_eq!(used(&fid(111)), expected, "round {round}");
    }
}
