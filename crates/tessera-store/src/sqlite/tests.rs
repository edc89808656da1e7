use super::*;

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: String::new(),
        password_hash: "$argon2id$x".into(),
        is_staff: false,
        is_superuser: false,
        date_joined: 1,
    }
}

fn refresh(jti: &str) -> RefreshRecord {
    RefreshRecord {
        jti: jti.into(),
        user_id: 1,
        family_id: "f".into(),
        issued_at: 1,
        expires_at: 100,
    }
}

#[tokio::test]
async fn usernames_are_unique() {
    let (_dir, s) = store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    assert_eq!(u.id, 1);
    assert!(u.is_active && u.last_login.is_none());
    assert!(matches!(
        s.create_user(new_user("alice")).await,
        Err(StoreError::UsernameTaken)
    ));
    assert!(s.create_user(new_user("Alice")).await.is_ok());
}

#[tokio::test]
async fn blacklisting_is_once_only_and_logged() {
    let (_dir, s) = store().await;
    s.create_user(new_user("alice")).await.unwrap();
    s.record_refresh_token(&refresh("a")).await.unwrap();
    assert!(s.blacklist_refresh_token(&refresh("a"), 5).await.unwrap());
    assert!(!s.blacklist_refresh_token(&refresh("a"), 6).await.unwrap());
    assert!(
        !s.rotate_refresh_token(&refresh("a"), &refresh("b"), 7)
            .await
            .unwrap()
    );
    assert!(
        s.rotate_refresh_token(&refresh("c"), &refresh("d"), 7)
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
}

#[tokio::test]
async fn pruning_deletes_only_what_has_expired() {
    let (_dir, s) = store().await;
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
}

#[tokio::test]
async fn update_user_bumps_version() {
    let (_dir, s) = store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    let update = UserUpdate {
        is_active: Some(false),
        bump_token_version: true,
        ..Default::default()
    };
    let u2 = s.update_user(u.id, update, 2).await.unwrap().unwrap();
    assert!(!u2.is_active);
    assert_eq!(u2.token_version, 1);
    assert!(
        s.update_user(99, UserUpdate::default(), 2)
            .await
            .unwrap()
            .is_none()
    );
}
