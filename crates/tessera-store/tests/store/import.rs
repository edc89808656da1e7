//! Imported users (`Store::import_users`) and the rehash at their first login.

use crate::{Engine, new_user};
use tessera_store::*;

fn imported(id: Option<i64>, name: &str) -> ImportedUser {
    ImportedUser {
        id,
        username: name.into(),
        email: format!("{name}@example.com"),
        password_hash: format!("pbkdf2_sha256$1000$salt${name}"),
        is_staff: name.starts_with("staff"),
        is_superuser: false,
        is_active: !name.starts_with("gone"),
        date_joined: 1_700_000_000,
        last_login: Some(1_700_000_100),
        roles: "[]".into(),
    }
}

pub async fn imported_users_keep_their_ids_and_signups_follow(e: Engine) {
    let (_db, s) = e.store().await;
    let batch = [
        imported(Some(7), "ann"),
        imported(Some(42), "staff_bob"),
        imported(Some(3), "gone_cy"),
        imported(None, "dee"),
    ];
    let outcomes = s.import_users(&batch, true).await.unwrap();
    let Some(ImportOutcome::Imported { id: dee }) = outcomes.get(3).cloned() else {
        panic!("{outcomes:?}");
    };
    assert_eq!(
        outcomes[..3],
        [
            ImportOutcome::Imported { id: 7 },
            ImportOutcome::Imported { id: 42 },
            ImportOutcome::Imported { id: 3 },
        ]
    );
    assert!(
        dee > 42,
        "a user without an id follows the imported ones: {dee}"
    );
    let bob = s.user_by_id(42).await.unwrap().unwrap();
    assert_eq!(
        (
            bob.username.as_str(),
            bob.email.as_str(),
            bob.password_hash.as_str(),
            bob.is_staff,
            bob.is_active,
            bob.date_joined,
            bob.last_login,
            bob.token_version,
        ),
        (
            "staff_bob",
            "staff_bob@example.com",
            "pbkdf2_sha256$1000$salt$staff_bob",
            true,
            true,
            1_700_000_000,
            Some(1_700_000_100),
            0,
        )
    );
    assert!(!s.user_by_id(3).await.unwrap().unwrap().is_active);
    let next = s.create_user(new_user("eve")).await.unwrap();
    assert!(next.id > dee, "a signup after the import: {}", next.id);
    // Nothing for running processes to reload: these users were never in memory.
    assert!(s.changes_since(0, 100).await.unwrap().len() == 1);
}

pub async fn a_second_import_changes_nothing_and_collisions_are_told(e: Engine) {
    let (_db, s) = e.store().await;
    let batch = [imported(Some(7), "ann"), imported(None, "dee")];
    s.import_users(&batch, true).await.unwrap();
    let before = s.all_users().await.unwrap();
    let again = s.import_users(&batch, true).await.unwrap();
    let dee = before[1].id;
    assert_eq!(
        again,
        [
            ImportOutcome::AlreadyPresent { id: 7 },
            ImportOutcome::AlreadyPresent { id: dee },
        ]
    );
    let clashes = [imported(Some(7), "other"), imported(Some(99), "ann")];
    assert_eq!(
        s.import_users(&clashes, true).await.unwrap(),
        [
            ImportOutcome::IdTaken {
                username: "ann".into()
            },
            ImportOutcome::UsernameTaken { id: 7 },
        ]
    );
    assert_eq!(s.all_users().await.unwrap(), before);
    // Two rows of one batch that collide with each other (as with a
    // concurrent signup): the first is created, the second told whose.
    let within = [
        imported(Some(50), "fay"),
        imported(Some(50), "gus"),
        imported(Some(51), "fay"),
    ];
    assert_eq!(
        s.import_users(&within, true).await.unwrap(),
        [
            ImportOutcome::Imported { id: 50 },
            ImportOutcome::IdTaken {
                username: "fay".into()
            },
            ImportOutcome::UsernameTaken { id: 50 },
        ]
    );
}

pub async fn a_dry_run_writes_nothing(e: Engine) {
    let (_db, s) = e.store().await;
    let outcomes = s
        .import_users(&[imported(Some(500), "ann")], false)
        .await
        .unwrap();
    assert_eq!(outcomes, [ImportOutcome::Imported { id: 500 }]);
    assert_eq!(s.count_users().await.unwrap(), 0);
    // Not even the id sequence moved.
    assert!(s.create_user(new_user("eve")).await.unwrap().id < 500);
}

pub async fn a_login_replaces_only_the_hash_it_checked(e: Engine) {
    let (_db, s) = e.store().await;
    s.import_users(&[imported(Some(7), "ann")], true)
        .await
        .unwrap();
    let old = "pbkdf2_sha256$1000$salt$ann";
    // A password change landed after the login read the row: it stays.
    s.update_user(
        7,
        UserUpdate {
            password_hash: Some("$argon2id$changed".into()),
            ..UserUpdate::default()
        },
        5,
    )
    .await
    .unwrap();
    let rehash = Rehash {
        old,
        new: "$argon2id$rehashed",
    };
    let kept = s.record_login(7, 10, Some(rehash)).await.unwrap().unwrap();
    assert_eq!(
        (kept.password_hash.as_str(), kept.last_login),
        ("$argon2id$changed", Some(10))
    );
    // The hash the login checked is replaced, in the same write as last_login.
    let rehash = Rehash {
        old: "$argon2id$changed",
        new: "$argon2id$rehashed",
    };
    let replaced = s.record_login(7, 11, Some(rehash)).await.unwrap().unwrap();
    assert_eq!(
        (replaced.password_hash.as_str(), replaced.last_login),
        ("$argon2id$rehashed", Some(11))
    );
    assert_eq!(replaced.revision, kept.revision + 1);
}
