//! A verifier following the revocation feed of a stand-in Tessera
//! (`fake.rs`): every kind of revocation refused within a second, resumption
//! after drops, `reset`, `keys_changed`, token renewal, staleness and
//! `fail_open`. Every wait is bounded.

mod availability;
mod events;
mod fake;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use fake::{CLIENT_ID, SECRET};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_core::claims::{Subject, TokenType};
use tessera_core::client::{SCOPE_REVOCATIONS, issue_client};
use tessera_core::feed::{ClientEntry, FamilyEntry, FeedEvent, TokenEntry, UserEntry};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::token::{Grant, IssuedToken, TokenPolicy, issue};
use tessera_verify::{Algorithm, Authenticated, Refusal, Verifier, VerifyError};
use tower::ServiceExt;

pub(crate) const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-feed-tests";

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn ring() -> KeyRing {
    KeyRing::single(
        KeyMaterial::from_bytes(Algorithm::HS256, KEY.to_vec())
            .unwrap()
            .into_key()
            .unwrap(),
    )
}

/// A user's access token of version `ver`, issued a few seconds ago.
pub(crate) fn mint(ring: &KeyRing, user_id: i64, ver: i64) -> IssuedToken {
    let subject = Subject {
        user_id: UserId::new(user_id),
        username: format!("user{user_id}"),
        email: String::new(),
        is_staff: false,
        is_superuser: false,
        token_version: ver,
        roles: Vec::new(),
        app_metadata: Default::default(),
        claims_version: 0,
    };
    let fid = FamilyId::random();
    let grant = Grant {
        token_type: TokenType::Access,
        fid: &fid,
        fresh: false,
        extra: None,
        csrf: None,
        amr: &[],
    };
    issue(&TokenPolicy::new(), ring, &subject, &grant, now() - 5).unwrap()
}

pub(crate) fn following(origin: &str) -> tessera_verify::VerifierBuilder {
    Verifier::builder()
        .hmac_secret(Algorithm::HS256, KEY)
        .revocations(origin, CLIENT_ID, SECRET)
}

pub(crate) async fn outcome(verifier: &Verifier, token: &str) -> Result<(), VerifyError> {
    verifier.verify::<Value>(token).await.map(|_| ())
}

/// Waits (at most `limit`) until `verify(token)` answers `expected`.
pub(crate) async fn until(
    verifier: &Verifier,
    token: &str,
    expected: Result<(), VerifyError>,
    limit: Duration,
) {
    let start = Instant::now();
    loop {
        let got = outcome(verifier, token).await;
        if got == expected {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "still {got:?} after {limit:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 5 s) until `condition` holds.
pub(crate) async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) const SECOND: Duration = Duration::from_secs(1);
pub(crate) const OK: Result<(), VerifyError> = Ok(());
pub(crate) const REVOKED: Result<(), VerifyError> = Err(VerifyError::Refused(Refusal::Revoked));
