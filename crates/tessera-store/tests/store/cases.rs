//! What each `Store` method does, one caller at a time.

use super::{Engine, key, new_user, refresh};
use tessera_store::*;

pub async fn usernames_are_unique(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    assert_eq!(u.id, 1);
    assert!(u.is_active && u.last_login.is_none());
    assert!(matches!(
        s.create_user(new_user("alice")).await,
        Err(StoreError::UsernameTaken)
    ));
    assert!(s.create_user(new_user("Alice")).await.is_ok());
    // The refused insert logged nothing.
    let changes = s.changes_since(0, 100).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(s.count_users().await.unwrap(), 2);
}

pub async fn blacklisting_is_once_only_and_logged(e: Engine) {
    let (_db, s) = e.store().await;
    s.create_user(new_user("alice")).await.unwrap();
    s.record_refresh_token(&refresh("a")).await.unwrap();
    assert!(s.blacklist_refresh_token(&refresh("a"), 5).await.unwrap());
    assert!(!s.blacklist_refresh_token(&refresh("a"), 6).await.unwrap());
    assert!(
        !s.rotate_refresh_token(&refresh("a"), &refresh("b"), None, 7)
            .await
            .unwrap()
    );
    assert!(
        s.rotate_refresh_token(&refresh("c"), &refresh("d"), None, 7)
            .await
            .unwrap()
    );
    let r = s.revocations(0).await.unwrap();
    let mut jtis: Vec<_> = r.jtis.into_iter().map(|(j, _)| j).collect();
    jtis.sort();
    assert_eq!(jtis, ["a", "c"]);
    let changes = s.changes_since(0, 100).await.unwrap();
    let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            Some(ChangeKind::User),
            Some(ChangeKind::Jti),
            Some(ChangeKind::Jti)
        ]
    );
    assert_eq!(s.latest_change().await.unwrap(), changes[2].id);
    // The failed rotation recorded no new token: "b" can still be recorded.
    s.record_refresh_token(&refresh("b")).await.unwrap();
    // The successful one did: "d" cannot be recorded again.
    assert!(s.record_refresh_token(&refresh("d")).await.is_err());
}

pub async fn pruning_deletes_only_what_has_expired(e: Engine) {
    let (_db, s) = e.store().await;
    s.create_user(new_user("alice")).await.unwrap();
    s.record_refresh_token(&refresh("old")).await.unwrap();
    let mut live = refresh("live");
    live.expires_at = 1_000;
    s.record_refresh_token(&live).await.unwrap();
    s.blacklist_refresh_token(&live, 5).await.unwrap();
    s.revoke_family("f", 1, 150, 5).await.unwrap();
    // refresh("old") expires at 100; the family at 150; changes were written at 1 and 5.
    let deleted = s.prune(120, 3).await.unwrap();
    assert_eq!(deleted, 2, "the expired token and the change written at 1");
    let r = s.revocations(0).await.unwrap();
    assert_eq!(r.jtis.len(), 1);
    assert_eq!(r.families.len(), 1);
    assert!(
        s.changes_since(0, 100)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id > 1)
    );
    // Past the family's expiry it goes too, and then the blacklisted token.
    assert_eq!(s.prune(200, 3).await.unwrap(), 1);
    assert_eq!(
        s.prune(2_000, 10).await.unwrap(),
        2,
        "the token and one change: the newest is kept"
    );
    assert_eq!(s.prune(2_000, 10).await.unwrap(), 0);
}

pub async fn update_user_bumps_version(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let update = UserUpdate {
        is_active: Some(false),
        bump_token_version: true,
        ..Default::default()
    };
    let u2 = s.update_user(u.id, update, 2).await.unwrap().unwrap();
    assert!(!u2.is_active);
    assert_eq!(u2.token_version, 1);
    assert_eq!(u2.revision, u.revision + 1);
    assert_eq!((u.roles.as_str(), u.app_metadata.as_str()), ("[]", "{}"));
    assert_eq!(
        u2.claims_version, 0,
        "a flag change leaves the claims version"
    );
    assert!(
        s.update_user(99, UserUpdate::default(), 2)
            .await
            .unwrap()
            .is_none()
    );
    // An empty update still raises the revision, keeps the version, and is logged.
    let u3 = s
        .update_user(u.id, UserUpdate::default(), 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u3.token_version, u3.revision), (1, u2.revision + 1));
    let subjects: Vec<_> = s
        .changes_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.subject))
        .collect();
    let user = (Some(ChangeKind::User), u.id.to_string());
    assert_eq!(subjects, [user.clone(), user.clone(), user]);
}

pub async fn every_column_round_trips(e: Engine) {
    let (_db, s) = e.store().await;
    let big = 1_i64 << 40;
    let created = s
        .create_user(NewUser {
            username: "ünïcode_Ω".into(),
            email: "a@example.org".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            is_staff: true,
            is_superuser: true,
            date_joined: big,
            email_verified: false,
        })
        .await
        .unwrap();
    assert_eq!(created.username, "ünïcode_Ω");
    assert_eq!(created.email, "a@example.org");
    assert!(created.is_staff && created.is_superuser && created.is_active);
    assert_eq!(
        (created.token_version, created.date_joined, created.revision),
        (0, big, 0)
    );
    let logged_in = s
        .record_login(created.id, big + 1, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(logged_in.last_login, Some(big + 1));
    // Another active staff user, so that this one may lose both flags.
    let keeper = s
        .create_user(NewUser {
            is_staff: true,
            ..new_user("keeper")
        })
        .await
        .unwrap();
    let update = UserUpdate {
        is_active: Some(false),
        is_staff: Some(false),
        password_hash: Some("$argon2id$new".into()),
        bump_token_version: true,
        email: Some("ü@example.com".into()),
        email_verified: Some(true),
        roles: Some(r#"["ops","Ω"]"#.into()),
        app_metadata: Some(r#"{"plan":"pro"}"#.into()),
    };
    let updated = s
        .update_user(created.id, update, big + 2)
        .await
        .unwrap()
        .unwrap();
    assert!(!updated.is_active && !updated.is_staff && updated.is_superuser);
    assert_eq!(updated.password_hash, "$argon2id$new");
    assert_eq!(
        (updated.email.as_str(), updated.email_verified),
        ("ü@example.com", true)
    );
    assert_eq!((updated.token_version, updated.revision), (1, 2));
    assert_eq!(
        (updated.roles.as_str(), updated.app_metadata.as_str()),
        (r#"["ops","Ω"]"#, r#"{"plan":"pro"}"#)
    );
    assert_eq!(updated.claims_version, 1, "roles or metadata raise it");
    assert_eq!(
        s.user_by_id(created.id).await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        s.user_by_username("ünïcode_Ω").await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(s.user_by_username("ÜNÏCODE_Ω").await.unwrap(), None);
    assert_eq!(s.all_users().await.unwrap(), [updated, keeper.clone()]);

    let every_byte: Vec<u8> = (0..=255).collect();
    let mut retired = key("retired", big);
    retired.private_key = every_byte.clone();
    retired.retired_at = Some(big + 5);
    s.insert_signing_key(&retired).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].private_key, every_byte);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].algorithm.as_str()),
        ("retired", "HS256")
    );
    assert_eq!(
        (keys[0].created_at, keys[0].retired_at),
        (big, Some(big + 5))
    );

    let token = RefreshRecord {
        jti: "j".into(),
        user_id: created.id,
        family_id: "fam".into(),
        issued_at: big,
        expires_at: big + 100,
    };
    s.blacklist_refresh_token(&token, big).await.unwrap();
    s.revoke_family("fam", created.id, big + 200, big)
        .await
        .unwrap();
    let r = s.revocations(big).await.unwrap();
    assert_eq!(r.jtis, [("j".to_owned(), big + 100)]);
    assert_eq!(r.families, [("fam".to_owned(), big + 200)]);
    let changes = s.changes_since(0, 100).await.unwrap();
    let shown: Vec<_> = changes
        .iter()
        .map(|c| (c.kind, c.subject.as_str(), c.expires_at))
        .collect();
    let id = created.id.to_string();
    let keeper_id = keeper.id.to_string();
    assert_eq!(
        shown,
        [
            (Some(ChangeKind::User), id.as_str(), None),
            (Some(ChangeKind::User), keeper_id.as_str(), None),
            (Some(ChangeKind::User), id.as_str(), None),
            (Some(ChangeKind::Keys), "retired", None),
            (Some(ChangeKind::Jti), "j", Some(big + 100)),
            (Some(ChangeKind::Family), "fam", Some(big + 200)),
        ]
    );
}

pub async fn record_login_raises_the_revision_and_logs_nothing(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let first = s.record_login(u.id, 10, None).await.unwrap().unwrap();
    let second = s.record_login(u.id, 11, None).await.unwrap().unwrap();
    assert_eq!(
        (first.last_login, first.revision),
        (Some(10), u.revision + 1)
    );
    assert_eq!(
        (second.last_login, second.revision),
        (Some(11), u.revision + 2)
    );
    assert!(s.record_login(u.id + 1, 12, None).await.unwrap().is_none());
    assert_eq!(s.changes_since(0, 100).await.unwrap().len(), 1);
}

pub async fn listing_pages_by_id(e: Engine) {
    let (_db, s) = e.store().await;
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert!(s.all_users().await.unwrap().is_empty());
    for name in ["e", "d", "c", "b", "a"] {
        s.create_user(new_user(name)).await.unwrap();
    }
    let ids = |users: Vec<UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(s.count_users().await.unwrap(), 5);
    assert_eq!(ids(s.all_users().await.unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(ids(s.list_users(1, 2).await.unwrap()), [2, 3]);
    assert_eq!(ids(s.list_users(4, 10).await.unwrap()), [5]);
    assert!(s.list_users(5, 10).await.unwrap().is_empty());
    assert!(s.list_users(0, 0).await.unwrap().is_empty());
    assert_eq!(ids(s.list_users(0, i64::MAX).await.unwrap()).len(), 5);
    // SQLite's readings of negative bounds: no limit, offset 0.
    assert_eq!(ids(s.list_users(3, -1).await.unwrap()), [4, 5]);
    assert_eq!(ids(s.list_users(-3, 2).await.unwrap()), [1, 2]);
    assert_eq!(s.changes_since(0, -1).await.unwrap().len(), 5);
    assert_eq!(s.changes_since(2, 2).await.unwrap()[0].id, 3);
}

pub async fn sessions_beyond_the_newest_oldest_first(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let other = s.create_user(new_user("bob")).await.unwrap();
    let token =
        |jti: &str, user_id: i64, family: &str, issued_at: i64, expires_at: i64| RefreshRecord {
            jti: jti.into(),
            user_id,
            family_id: family.into(),
            issued_at,
            expires_at,
        };
    for t in [
        token("1", u.id, "fA", 1, 100),
        token("2", u.id, "fC", 2, 100),
        token("3", u.id, "fC", 5, 100),
        token("4", u.id, "fB", 3, 100),
        // Two families begun at once: ties go by family id, bytewise.
        token("5", u.id, "b", 4, 100),
        token("6", u.id, "B", 4, 100),
        // Not live: expired, revoked, or someone else's.
        token("7", u.id, "expired", 6, 50),
        token("8", u.id, "revoked", 6, 100),
        token("9", other.id, "bobs", 6, 100),
    ] {
        s.record_refresh_token(&t).await.unwrap();
    }
    s.revoke_family("revoked", u.id, 100, 7).await.unwrap();
    assert_eq!(
        s.sessions_beyond(u.id, 1, 50).await.unwrap(),
        ["fA", "fC", "fB", "b"]
    );
    assert_eq!(
        s.sessions_beyond(u.id, 0, 50).await.unwrap(),
        ["fA", "fC", "fB", "b", "B"]
    );
    assert_eq!(s.sessions_beyond(u.id, 3, 50).await.unwrap(), ["fA", "fC"]);
    assert!(s.sessions_beyond(u.id, 5, 50).await.unwrap().is_empty());
    // SQLite reads a negative offset as 0.
    assert_eq!(s.sessions_beyond(u.id, -1, 50).await.unwrap().len(), 5);
    // Expiry is exclusive: a token expiring at `now` is no longer live.
    assert!(s.sessions_beyond(u.id, 0, 100).await.unwrap().is_empty());
}

pub async fn a_family_stays_revoked_until_the_latest_expiry(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    s.revoke_family("f", u.id, 100, 1).await.unwrap();
    s.revoke_family("f", u.id, 50, 2).await.unwrap();
    assert_eq!(
        s.revocations(0).await.unwrap().families,
        [("f".to_owned(), 100)]
    );
    s.revoke_family("f", u.id, 200, 3).await.unwrap();
    assert_eq!(
        s.revocations(0).await.unwrap().families,
        [("f".to_owned(), 200)]
    );
    // In force up to and including its expiry.
    assert_eq!(s.revocations(200).await.unwrap().families.len(), 1);
    assert!(s.revocations(201).await.unwrap().families.is_empty());
    // Every call is logged with the expiry it was given.
    let logged: Vec<_> = s
        .changes_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == Some(ChangeKind::Family))
        .map(|c| c.expires_at)
        .collect();
    assert_eq!(logged, [Some(100), Some(50), Some(200)]);
}

pub async fn signing_keys_newest_first_and_rotation_retires(e: Engine) {
    let (_db, s) = e.store().await;
    assert!(s.signing_keys().await.unwrap().is_empty());
    for kid in ["B", "a", "Z"] {
        s.insert_signing_key(&key(kid, 10)).await.unwrap();
    }
    s.insert_signing_key(&key("old", 5)).await.unwrap();
    let kids = |keys: Vec<KeyRecord>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    // Same time: by kid, bytewise, descending.
    assert_eq!(
        kids(s.signing_keys().await.unwrap()),
        ["a", "Z", "B", "old"]
    );
    // A kid already stored is left as it is, but the call is still logged.
    let mut again = key("a", 99);
    again.private_key = b"other".to_vec();
    s.insert_signing_key(&again).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys[0].kid, "a");
    assert_eq!(keys[0].private_key, b"a");
    s.rotate_signing_key(&key("new", 20)).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys[0].kid, "new");
    assert_eq!(keys[0].retired_at, None);
    assert!(keys[1..].iter().all(|k| k.retired_at == Some(20)));
    // A retired key keeps its first retirement.
    s.rotate_signing_key(&key("newer", 30)).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    let retired: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.retired_at))
        .collect();
    assert_eq!(
        retired,
        [
            ("newer", None),
            ("new", Some(30)),
            ("a", Some(20)),
            ("Z", Some(20)),
            ("B", Some(20)),
            ("old", Some(20)),
        ]
    );
    let logged: Vec<_> = s
        .changes_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.subject))
        .collect();
    let keys_change = |kid: &str| (Some(ChangeKind::Keys), kid.to_owned());
    assert_eq!(
        logged,
        ["B", "a", "Z", "old", "a", "new", "newer"].map(keys_change)
    );
}

/// A rotation to a key published ahead (signing from 100): the others
/// retire at that moment, not at once; a rotation signing sooner (50, an
/// emergency) retires the published key before it ever signs, and brings
/// the others' retirement forward; a retirement already past stays.
pub async fn a_key_published_ahead_retires_the_others_when_it_starts_signing(e: Engine) {
    let (_db, s) = e.store().await;
    let mut retired = key("retired", 1);
    retired.retired_at = Some(5);
    s.insert_signing_key(&retired).await.unwrap();
    s.insert_signing_key(&key("first", 2)).await.unwrap();
    let mut ahead = key("ahead", 10);
    ahead.signs_from = Some(100);
    s.rotate_signing_key(&ahead).await.unwrap();
    let state = |keys: Vec<KeyRecord>| {
        keys.into_iter()
            .map(|k| (k.kid, k.signs_from, k.retired_at))
            .collect::<Vec<_>>()
    };
    let row = |kid: &str, from: Option<i64>, retired: Option<i64>| (kid.to_owned(), from, retired);
    assert_eq!(
        state(s.signing_keys().await.unwrap()),
        [
            row("ahead", Some(100), None),
            row("first", None, Some(100)),
            row("retired", None, Some(5)),
        ]
    );
    let mut now = key("now", 11);
    now.signs_from = Some(50);
    s.rotate_signing_key(&now).await.unwrap();
    assert_eq!(
        state(s.signing_keys().await.unwrap()),
        [
            row("now", Some(50), None),
            row("ahead", Some(100), Some(50)),
            row("first", None, Some(50)),
            row("retired", None, Some(5)),
        ]
    );
}

/// The database's clock reads the time now, in milliseconds, on both
/// engines (this machine runs the test and the database alike).
pub async fn the_database_clock_is_the_time_now(e: Engine) {
    let (_db, s) = e.store().await;
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = wall();
    let database = s.database_time_ms().await.unwrap();
    let after = wall();
    assert!(
        (before - 1_000..=after + 1_000).contains(&database),
        "{before} {database} {after}"
    );
    // Milliseconds, not seconds rounded: two readings differ by a little.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let later = s.database_time_ms().await.unwrap();
    assert!(
        (20..2_000).contains(&(later - database)),
        "{database} {later}"
    );
}

/// Pruning takes the log's oldest entries only, up to the first one young
/// enough to keep, even where instances' clocks disagree: a reader then
/// tells a pruned id from one rolled back (`oldest_change`).
pub async fn pruning_the_change_log_takes_only_its_oldest_entries(e: Engine) {
    let (_db, s) = e.store().await;
    assert_eq!(s.oldest_change().await.unwrap(), None);
    let u = s.create_user(new_user("alice")).await.unwrap();
    // Written at 1, 200, then 3 by an instance whose clock is behind.
    for (family, at) in [("a", 200), ("b", 3)] {
        s.revoke_family(family, u.id, 10_000, at).await.unwrap();
    }
    assert_eq!(s.prune(0, 100).await.unwrap(), 1);
    let kept: Vec<i64> = s
        .changes_since(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(kept, [2, 3]);
    assert_eq!(s.oldest_change().await.unwrap(), Some(2));
}

pub async fn latest_change_survives_pruning(e: Engine) {
    let (_db, s) = e.store().await;
    assert_eq!(s.latest_change().await.unwrap(), 0);
    assert!(s.changes_since(0, 10).await.unwrap().is_empty());
    let u = s.create_user(new_user("alice")).await.unwrap();
    s.revoke_family("f", u.id, 50, 2).await.unwrap();
    assert_eq!(s.latest_change().await.unwrap(), 2);
    assert_eq!(s.oldest_change().await.unwrap(), Some(1));
    // Every change old: all but the newest are pruned, the position stays,
    // and the next change follows it.
    assert_eq!(s.prune(0, 100).await.unwrap(), 1);
    let kept = s.changes_since(0, 10).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.id).collect::<Vec<_>>(), [2]);
    assert_eq!(s.oldest_change().await.unwrap(), Some(2));
    assert_eq!(s.latest_change().await.unwrap(), 2);
    s.revoke_family("g", u.id, 50, 3).await.unwrap();
    let next = s.changes_since(2, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].id, next[0].subject.as_str()), (3, "g"));
    assert_eq!(s.latest_change().await.unwrap(), 3);
    // A refused or empty write does not move it.
    assert!(s.create_user(new_user("alice")).await.is_err());
    s.record_login(u.id, 4, None).await.unwrap();
    assert!(s.blacklist_refresh_token(&refresh("x"), 5).await.unwrap());
    assert!(!s.blacklist_refresh_token(&refresh("x"), 6).await.unwrap());
    assert!(
        s.update_user(99, UserUpdate::default(), 5)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.latest_change().await.unwrap(), 4, "the blacklisting only");
}
