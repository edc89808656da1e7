//! Each kind of event, resumption, `reset`, `keys_changed` and the client
//! token's renewal.

use crate::fake::{CLIENT_ID, Fake, SECRET};
use crate::*;
#[tokio::test]
async fn each_kind_of_revocation_is_refused_within_a_second() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let early = mint(&ring, 1, 0);
    fake.push(FeedEvent::FamilyRevoked(FamilyEntry {
        fid: early.fid.to_string(),
        user_id: 1,
        at: now(),
    }));
    let verifier = following(&origin).build().unwrap();
    // In the snapshot.
    until(&verifier, &early.token, REVOKED, SECOND).await;
    let bystander = mint(&ring, 99, 0);
    assert_eq!(outcome(&verifier, &bystander.token).await, OK);

    let family = mint(&ring, 2, 0);
    let version = mint(&ring, 3, 0);
    let inactive = mint(&ring, 4, 0);
    let by_jti = mint(&ring, 5, 0);
    for t in [&family, &version, &inactive, &by_jti] {
        assert_eq!(outcome(&verifier, &t.token).await, OK);
    }
    fake.push(FeedEvent::FamilyRevoked(FamilyEntry {
        fid: family.fid.to_string(),
        user_id: 2,
        at: now(),
    }));
    until(&verifier, &family.token, REVOKED, SECOND).await;
    fake.push(FeedEvent::UserChanged(UserEntry {
        user_id: 3,
        ver: 1,
        active: true,
        cver: 0,
        at: now(),
    }));
    until(&verifier, &version.token, REVOKED, SECOND).await;
    // A token of the new version is fine.
    assert_eq!(outcome(&verifier, &mint(&ring, 3, 1).token).await, OK);
    fake.push(FeedEvent::UserChanged(UserEntry {
        user_id: 4,
        ver: 0,
        active: false,
        cver: 0,
        at: now(),
    }));
    until(&verifier, &inactive.token, REVOKED, SECOND).await;
    fake.push(FeedEvent::TokenRevoked(TokenEntry {
        jti: by_jti.jti.to_string(),
        exp: by_jti.exp,
    }));
    until(&verifier, &by_jti.token, REVOKED, SECOND).await;

    // A service client's token, refused once its client is removed.
    let client_id = "tc_00000000000000000000beef";
    let scopes = vec![SCOPE_REVOCATIONS.to_owned()];
    let client = issue_client(&TokenPolicy::new(), &ring, client_id, &scopes, 600, now()).unwrap();
    let claims = verifier.verify_client(&client.token).await.unwrap();
    assert_eq!(claims.client_id, client_id);
    assert!(claims.has_scope(SCOPE_REVOCATIONS));
    // A user's token is not a client's, nor the reverse.
    assert_eq!(
        verifier.verify_client(&bystander.token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Invalid)
    );
    assert_eq!(
        outcome(&verifier, &client.token).await,
        Err(VerifyError::Refused(Refusal::Invalid))
    );
    fake.push(FeedEvent::ClientRemoved(ClientEntry {
        client_id: client_id.into(),
        at: now(),
    }));
    let start = Instant::now();
    while verifier.verify_client(&client.token).await.is_ok() {
        assert!(start.elapsed() < SECOND, "client token still accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        verifier.verify_client(&client.token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Revoked)
    );
    assert_eq!(outcome(&verifier, &bystander.token).await, OK);

    let status = verifier.feed_status().unwrap();
    assert!(status.connected && status.current);
    assert_eq!(status.cursor.map(|c| c.position()), Some(6));
    assert_eq!(status.markers, 6);
    assert_eq!(fake.snapshots.load(Ordering::SeqCst), 1);
    assert_eq!(fake.token_requests.load(Ordering::SeqCst), 1);
    assert!(
        Verifier::builder()
            .hmac_secret(Algorithm::HS256, KEY)
            .build()
            .unwrap()
            .feed_status()
            .is_none()
    );
}

#[tokio::test]
async fn heartbeats_keep_a_quiet_stream_open_and_silence_reopens_it() {
    let (fake, origin) = Fake::start().await;
    fake.set_heartbeat(Duration::from_millis(100));
    let verifier = following(&origin)
        .feed_idle_timeout(Duration::from_millis(500))
        .max_staleness(Duration::from_millis(300))
        .build()
        .unwrap();
    let token = mint(&ring(), 1, 0);
    until(&verifier, &token.token, OK, SECOND).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.streams.load(Ordering::SeqCst),
        1,
        "one stream, kept open"
    );
    let status = verifier.feed_status().unwrap();
    assert!(status.connected && status.current && status.last_error.is_none());
    assert!(
        status.lag.unwrap() < Duration::from_millis(300),
        "{status:?}"
    );

    // No more heartbeats on the next stream: it is taken for dead.
    fake.set_heartbeat(Duration::from_secs(60));
    fake.drop_streams();
    eventually("a silent stream reopened", || {
        fake.streams.load(Ordering::SeqCst) >= 3
    })
    .await;
    let status = verifier.feed_status().unwrap();
    assert!(status.last_error.is_some());
}

#[tokio::test]
async fn a_dropped_stream_resumes_after_its_last_event_and_misses_nothing() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let verifier = following(&origin).build().unwrap();
    let first = mint(&ring, 1, 0);
    let second = mint(&ring, 2, 0);
    until(&verifier, &first.token, OK, SECOND).await;
    let revoke = |t: &IssuedToken| {
        FeedEvent::TokenRevoked(TokenEntry {
            jti: t.jti.to_string(),
            exp: t.exp,
        })
    };
    let cursor = fake.push(revoke(&first));
    until(&verifier, &first.token, REVOKED, SECOND).await;
    // Dropped, and an event comes while the follower is away.
    fake.drop_streams();
    fake.push(revoke(&second));
    until(&verifier, &second.token, REVOKED, Duration::from_secs(2)).await;
    eventually("resumed", || fake.streams.load(Ordering::SeqCst) == 2).await;
    assert_eq!(
        *fake.resumed_after.lock().unwrap(),
        vec!["0".to_owned(), cursor.to_string()]
    );
    assert_eq!(
        fake.snapshots.load(Ordering::SeqCst),
        1,
        "no snapshot again"
    );
}

#[tokio::test]
async fn reset_loads_the_snapshot_again() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let verifier = following(&origin).build().unwrap();
    let token = mint(&ring, 1, 0);
    until(&verifier, &token.token, OK, SECOND).await;
    fake.set_down(true);
    fake.push(FeedEvent::TokenRevoked(TokenEntry {
        jti: token.jti.to_string(),
        exp: token.exp,
    }));
    fake.forget_history();
    fake.set_down(false);
    until(&verifier, &token.token, REVOKED, Duration::from_secs(3)).await;
    eventually("snapshot loaded again", || {
        fake.snapshots.load(Ordering::SeqCst) == 2
    })
    .await;
    let resumed = fake.resumed_after.lock().unwrap().clone();
    assert_eq!(resumed.first().map(String::as_str), Some("0"));
    assert_eq!(
        resumed.last().map(String::as_str),
        Some("1"),
        "after the new snapshot's cursor"
    );
}

#[tokio::test]
async fn keys_changed_refetches_the_jwks() {
    let ring = Arc::new(KeyRing::single(
        KeyMaterial::generate(Algorithm::ES256)
            .unwrap()
            .into_key()
            .unwrap(),
    ));
    let (fake, origin) = Fake::start().await;
    fake.serve_keys(ring.clone());
    let verifier = Verifier::builder()
        .jwks_url(format!("{origin}/.well-known/jwks.json"))
        .revocations(&origin, CLIENT_ID, SECRET)
        .build()
        .unwrap();
    let token = mint(&ring, 1, 0);
    until(&verifier, &token.token, OK, SECOND).await;
    assert_eq!(fake.jwks_fetches.load(Ordering::SeqCst), 1);
    fake.push(FeedEvent::KeysChanged);
    eventually("JWKS fetched again", || {
        fake.jwks_fetches.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(outcome(&verifier, &token.token).await, OK);
}

#[tokio::test]
async fn a_refused_client_token_is_renewed_at_once() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let verifier = following(&origin).build().unwrap();
    let token = mint(&ring, 1, 0);
    until(&verifier, &token.token, OK, SECOND).await;
    assert_eq!(fake.token_requests.load(Ordering::SeqCst), 1);
    fake.refuse_tokens();
    fake.drop_streams();
    eventually("a new token", || {
        fake.token_requests.load(Ordering::SeqCst) == 2
    })
    .await;
    eventually("following again", || {
        fake.streams.load(Ordering::SeqCst) == 2
    })
    .await;
    fake.push(FeedEvent::TokenRevoked(TokenEntry {
        jti: token.jti.to_string(),
        exp: token.exp,
    }));
    until(&verifier, &token.token, REVOKED, SECOND).await;
    assert_eq!(fake.token_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_token_is_renewed_before_it_expires() {
    let (fake, origin) = Fake::start().await;
    fake.token_lifetime.store(1, Ordering::SeqCst);
    let verifier = following(&origin).build().unwrap();
    until(&verifier, &mint(&ring(), 1, 0).token, OK, SECOND).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    fake.drop_streams();
    eventually("following again", || {
        fake.streams.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(
        fake.token_requests.load(Ordering::SeqCst),
        2,
        "renewed past 80%"
    );
}
