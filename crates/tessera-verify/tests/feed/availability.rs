//! Staleness, `fail_open`, the extractor's 503, the follower's lifetime and
//! wrong credentials.

use crate::fake::{CLIENT_ID, Fake, SECRET};
use crate::*;
/// A service guarded by the extractor.
fn service(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Authenticated(claims): Authenticated| async move {
                Json(json!({"user": claims.user_id}))
            }),
        )
        .with_state(verifier)
}

async fn call(app: &Router, token: &str) -> (StatusCode, Option<String>, Value) {
    let request = Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, retry, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_stale_feed_answers_503_until_it_is_followed_again() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let verifier = following(&origin).max_staleness(SECOND).build().unwrap();
    let app = service(verifier.clone());
    let token = mint(&ring, 7, 0);
    until(&verifier, &token.token, OK, SECOND).await;
    assert_eq!(
        call(&app, &token.token).await,
        (StatusCode::OK, None, json!({"user": 7}))
    );

    fake.set_down(true);
    let unavailable = Err(VerifyError::Unavailable {
        retry_after: Duration::from_secs(5),
    });
    // Still current just after the drop, stale once max_staleness has passed.
    until(
        &verifier,
        &token.token,
        unavailable,
        Duration::from_millis(2500),
    )
    .await;
    assert_eq!(
        call(&app, &token.token).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("5".into()),
            json!({"detail": "Service temporarily unavailable, try again later."})
        )
    );
    // A forged token is still a 401: the local checks come first.
    let (status, _, body) = call(&app, "not.a.token").await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid"))
    );
    let status = verifier.feed_status().unwrap();
    assert!(!status.connected && !status.current && status.last_error.is_some());

    fake.set_down(false);
    until(&verifier, &token.token, OK, Duration::from_secs(7)).await;
    assert_eq!(
        call(&app, &token.token).await,
        (StatusCode::OK, None, json!({"user": 7}))
    );
}

#[tokio::test]
async fn before_the_snapshot_tokens_are_unavailable_unless_failing_open() {
    let ring = ring();
    let (fake, origin) = Fake::start().await;
    let revoked = mint(&ring, 1, 0);
    fake.push(FeedEvent::TokenRevoked(TokenEntry {
        jti: revoked.jti.to_string(),
        exp: revoked.exp,
    }));
    fake.set_down(true);
    let token = mint(&ring, 2, 0);
    let closed = following(&origin).build().unwrap();
    let open = following(&origin).fail_open(true).build().unwrap();
    assert!(matches!(
        outcome(&closed, &token.token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert_eq!(outcome(&open, &token.token).await, OK);
    assert_eq!(
        outcome(&open, &revoked.token).await,
        OK,
        "nothing known yet"
    );
    fake.set_down(false);
    until(&closed, &token.token, OK, Duration::from_secs(7)).await;
    until(&open, &revoked.token, REVOKED, Duration::from_secs(7)).await;
    // Stale again: failing open still refuses what it knows.
    fake.set_down(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(outcome(&open, &revoked.token).await, REVOKED);
    assert_eq!(outcome(&open, &token.token).await, OK);
}

#[tokio::test]
async fn dropping_the_last_verifier_stops_its_follower() {
    let (fake, origin) = Fake::start().await;
    let verifier = following(&origin).build().unwrap();
    let clone = verifier.clone();
    until(&verifier, &mint(&ring(), 1, 0).token, OK, SECOND).await;
    assert_eq!(fake.open_streams.load(Ordering::SeqCst), 1);
    drop(verifier);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fake.open_streams.load(Ordering::SeqCst),
        1,
        "a clone still follows"
    );
    drop(clone);
    eventually("stream closed", || {
        fake.open_streams.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn wrong_credentials_are_reported_and_nothing_is_accepted() {
    let (fake, origin) = Fake::start().await;
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, KEY)
        .revocations(&origin, CLIENT_ID, "wrong")
        .build()
        .unwrap();
    eventually("an error reported", || {
        verifier.feed_status().unwrap().last_error.is_some()
    })
    .await;
    let error = verifier.feed_status().unwrap().last_error.unwrap();
    assert!(
        error.contains("401") && error.contains("invalid_client"),
        "{error}"
    );
    assert!(!error.contains("wrong"), "the secret is never reported");
    assert!(matches!(
        outcome(&verifier, &mint(&ring(), 1, 0).token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert_eq!(fake.snapshots.load(Ordering::SeqCst), 0);
    // Outside a runtime and with a bad URL, building fails.
    assert!(
        Verifier::builder()
            .hmac_secret(Algorithm::HS256, KEY)
            .revocations("ftp://x", CLIENT_ID, SECRET)
            .build()
            .is_err()
    );
}
