//! A service client removed by another process: refused here once the
//! change log is applied, and after a reload of everything (a gap) too.

use super::*;
use crate::authority::clients::{ClientActor, ClientCredentials};
use tessera_store::ClientStore;

/// A client of `w` and a token of it.
async fn client_with_token(w: &World) -> (String, String) {
    let added = w
        .authority
        .clients()
        .add("orders", "revocations", ClientActor::Cli)
        .await
        .unwrap();
    let credentials = ClientCredentials {
        client_id: added.client.client_id.clone(),
        secret: added.secret,
    };
    let grant = w
        .authority
        .clients()
        .grant(&credentials, None, &test_origin())
        .await
        .unwrap();
    (added.client.client_id, grant.token.token)
}

fn refused(result: Result<tessera_core::client::ClientClaims, ClientAuthError>) -> bool {
    result == Err(ClientAuthError::NotValid(Refusal::Revoked))
}

#[tokio::test]
async fn a_client_removed_elsewhere_is_refused_once_the_log_is_applied() {
    let w = world().await;
    let (id, token) = client_with_token(&w).await;
    let clients = w.authority.clients();
    w.authority.sync().await.unwrap();
    assert!(clients.authorize(&token, "revocations").await.is_ok());
    assert!(w.other.remove_client(&id, NOW, NOW + 3600).await.unwrap());
    // Memory decides until the log reaches it.
    assert!(clients.authorize(&token, "revocations").await.is_ok());
    assert_eq!(w.authority.sync().await.unwrap(), 1);
    assert!(refused(clients.authorize(&token, "revocations").await));
}

#[tokio::test]
async fn a_reload_of_everything_loads_removed_clients() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let (id, token) = client_with_token(&w).await;
    w.authority.sync().await.unwrap();
    // Removed elsewhere, then the log pruned past it before this process
    // read it: only the reload's markers can refuse the token.
    assert!(
        w.other
            .remove_client(&id, NOW - 7200, NOW + 3600)
            .await
            .unwrap()
    );
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
    let clients = w.authority.clients();
    assert!(refused(clients.authorize(&token, "revocations").await));
}
