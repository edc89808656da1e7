//! Service clients: added under a unique live name, listed, given a new
//! secret, removed with a change-log entry, loaded back as markers, pruned.

use crate::Engine;
use tessera_store::*;

fn client(id: &str, name: &str, at: i64) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        name: name.into(),
        secret_digest: format!("digest of {id}"),
        scope: "revocations introspect".into(),
        created_at: at,
    }
}

pub async fn clients_have_unique_live_names_and_every_column_round_trips(e: Engine) {
    let (_db, s) = e.store().await;
    let feed = client("tc_000000000000000000000001", "feed reader", 10);
    assert!(s.insert_client(&feed).await.unwrap());
    // Same name: refused, nothing written.
    let twin = client("tc_000000000000000000000002", "feed reader", 11);
    assert!(!s.insert_client(&twin).await.unwrap());
    let other = client("tc_000000000000000000000003", "introspector", 10);
    assert!(s.insert_client(&other).await.unwrap());
    // Oldest first, then by name.
    assert_eq!(s.clients().await.unwrap(), [feed.clone(), other.clone()]);
    assert_eq!(
        s.client_by_id(&feed.client_id).await.unwrap(),
        Some(feed.clone())
    );
    assert_eq!(
        s.client_by_name("introspector").await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(s.client_by_name("nobody").await.unwrap(), None);
    // A new secret replaces the digest only.
    assert!(s.set_client_secret(&feed.client_id, "new").await.unwrap());
    let rotated = ClientRecord {
        secret_digest: "new".into(),
        ..feed.clone()
    };
    assert_eq!(
        s.client_by_id(&feed.client_id).await.unwrap(),
        Some(rotated)
    );
    assert!(
        !s.set_client_secret("tc_00000000000000000000dead", "x")
            .await
            .unwrap()
    );
}

pub async fn a_removed_client_is_logged_loaded_as_a_marker_and_pruned(e: Engine) {
    let (_db, s) = e.store().await;
    let feed = client("tc_000000000000000000000001", "feed reader", 10);
    assert!(s.insert_client(&feed).await.unwrap());
    let before = s.latest_change().await.unwrap();
    assert!(s.remove_client(&feed.client_id, 100, 3700).await.unwrap());
    // Once only, and logged once.
    assert!(!s.remove_client(&feed.client_id, 101, 3701).await.unwrap());
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, Some(ChangeKind::Client));
    assert_eq!(changes[0].subject, feed.client_id);
    assert_eq!(changes[0].expires_at, Some(3700));
    assert_eq!(changes[0].created_at, 100);
    // Gone from every read of live clients, its secret and name included.
    assert_eq!(s.clients().await.unwrap(), []);
    assert_eq!(s.client_by_id(&feed.client_id).await.unwrap(), None);
    assert_eq!(s.client_by_name("feed reader").await.unwrap(), None);
    assert!(!s.set_client_secret(&feed.client_id, "x").await.unwrap());
    // Its name is free again.
    let again = client("tc_000000000000000000000002", "feed reader", 200);
    assert!(s.insert_client(&again).await.unwrap());
    // A marker while its tokens may live, not after.
    assert_eq!(
        s.removed_clients(3700).await.unwrap(),
        [(feed.client_id.clone(), 3700)]
    );
    assert_eq!(s.removed_clients(3701).await.unwrap(), []);
    // Pruning keeps it until then, and never a live client.
    s.prune(3700, 0).await.unwrap();
    assert_eq!(s.removed_clients(0).await.unwrap().len(), 1);
    s.prune(3701, 0).await.unwrap();
    assert_eq!(s.removed_clients(0).await.unwrap(), []);
    assert_eq!(s.clients().await.unwrap(), [again]);
}
