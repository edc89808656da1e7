//! The revocation feed under faults: Tessera restarted while a service
//! follows it, the follower's cursor pruned away, a follower cut off past
//! its `max_staleness`, and a thousand followers on one instance. Tessera
//! runs as a process (killed and started again on the same port); the
//! service is tessera-verify inside the test.

use super::feed::{SETTINGS, register};
use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tessera_verify::{Refusal, Verifier, VerifyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A port free now, for a server that must come back on the same one.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Tessera as a process on a fixed port, so that its followers find it
/// again after a restart.
async fn tessera(extra: &str) -> Server {
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");
    Server::start_process_with_env(&format!("{SETTINGS}{extra}"), &[("TESSERA_BIND", &bind)]).await
}

/// A verifier following `s`'s feed as a new client.
async fn follower(s: &Server, max_staleness: Duration) -> Verifier {
    let (id, secret) = register(s, "orders", "revocations").await;
    Verifier::builder()
        .jwks_url(s.url("/.well-known/jwks.json"))
        .revocations(s.url(""), id, secret)
        .max_staleness(max_staleness)
        .build()
        .expect("a verifier")
}

/// Waits until `verifier` answers `token` as `wanted` says; fails after
/// `within`.
async fn until(
    verifier: &Verifier,
    token: &str,
    within: Duration,
    wanted: impl Fn(&Result<(), VerifyError>) -> bool,
) -> Duration {
    let since = Instant::now();
    loop {
        let got = verifier
            .verify::<serde_json::Value>(token)
            .await
            .map(|_| ());
        if wanted(&got) {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "still {got:?} after {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn accepted(r: &Result<(), VerifyError>) -> bool {
    r.is_ok()
}

fn revoked(r: &Result<(), VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Refused(Refusal::Revoked)))
}

#[tokio::test]
async fn changes_made_while_tessera_was_down_are_refused_once_it_is_back() {
    if on_postgres() {
        return;
    }
    let mut s = tessera("").await;
    let verifier = follower(&s, Duration::from_secs(60)).await;
    let (alice, _) = s.user("alice").await;
    let (bob, _) = s.user("bob").await;
    until(&verifier, &alice, Duration::from_secs(10), accepted).await;
    until(&verifier, &bob, Duration::from_secs(10), accepted).await;

    s.kill().await;
    // Written by the CLI while no server runs: only the change log knows.
    let (code, _, err) = s.cli(&["users", "deactivate", "alice"], None).await;
    assert_eq!(code, 0, "{err}");
    let s = s.restart().await;
    let took = until(&verifier, &alice, Duration::from_secs(15), revoked).await;
    eprintln!("refused {took:?} after the restart");
    // Nothing else was lost or invented.
    until(&verifier, &bob, Duration::from_secs(1), accepted).await;
    // And the stream goes on: a logout after the restart arrives as usual.
    let since = Instant::now();
    assert_eq!(s.logout(&bob).await.status, 204);
    until(&verifier, &bob, Duration::from_secs(1), revoked).await;
    assert!(since.elapsed() <= Duration::from_secs(1));
}

#[tokio::test]
async fn a_sigterm_ends_the_open_revocation_streams_so_tessera_exits_at_once() {
    if on_postgres() {
        return;
    }
    let mut s = tessera("").await;
    let verifier = follower(&s, Duration::from_secs(60)).await;
    let (alice, _) = s.user("alice").await;
    until(&verifier, &alice, Duration::from_secs(10), accepted).await;
    let since = Instant::now();
    while !verifier.feed_status().is_some_and(|f| f.connected) {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the follower never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The graceful shutdown waits for open answers; a stream never ends by
    // itself, so it must be ended, not waited for.
    let (took, status) = s.terminate(Duration::from_secs(10)).await;
    let status = status.expect("tessera still running 10 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM"
    );
}

#[tokio::test]
async fn a_cursor_pruned_away_brings_a_reset_and_a_new_snapshot() {
    if on_postgres() {
        return;
    }
    let mut s = tessera("").await;
    let verifier = follower(&s, Duration::from_secs(60)).await;
    let (alice, _) = s.user("alice").await;
    until(&verifier, &alice, Duration::from_secs(10), accepted).await;
    let cursor_before = verifier.feed_status().expect("following").cursor;

    s.kill().await;
    for name in ["bob", "carol"] {
        s.create_user(name, false).await;
    }
    let (code, _, err) = s.cli(&["users", "deactivate", "alice"], None).await;
    assert_eq!(code, 0, "{err}");
    // Everything but the newest entry pruned: the follower's cursor is
    // no longer held, so its stream starts with `reset`, and only the
    // snapshot tells it of alice.
    s.sql("DELETE FROM changes WHERE id < (SELECT MAX(id) FROM changes)")
        .await;
    let s = s.restart().await;
    until(&verifier, &alice, Duration::from_secs(15), revoked).await;
    let status = verifier.feed_status().expect("following");
    assert!(status.cursor > cursor_before, "{status:?}");
    let log = s
        .log_until(|log| log.matches("path=/api/revocations}").count() >= 1)
        .await;
    assert!(log.contains("path=/api/revocations}"), "{log}");
}

#[tokio::test]
async fn a_follower_cut_off_past_max_staleness_answers_503_then_200_once_back() {
    if on_postgres() {
        return;
    }
    let mut s = tessera("").await;
    let verifier = follower(&s, Duration::from_secs(1)).await;
    let (alice, _) = s.user("alice").await;
    until(&verifier, &alice, Duration::from_secs(10), accepted).await;
    // The service in front of the verifier: its answers, not the library's.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!("http://{}", listener.local_addr().unwrap());
    let app = resource_server::app(verifier.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let orders = || {
        http.get(format!("{service}/orders"))
            .bearer_auth(&alice)
            .send()
    };
    assert_eq!(orders().await.unwrap().status(), 200);

    s.kill().await;
    until(&verifier, &alice, Duration::from_secs(10), |r| {
        matches!(r, Err(VerifyError::Unavailable { .. }))
    })
    .await;
    let r = orders().await.unwrap();
    assert_eq!(r.status(), 503);
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s >= 1), "{:?}", r.headers());
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "Service temporarily unavailable, try again later."})
    );

    let _s = s.restart().await;
    until(&verifier, &alice, Duration::from_secs(15), accepted).await;
    assert_eq!(orders().await.unwrap().status(), 200);
}

/// Opens a stream of the feed with `token` on a raw connection and reads
/// its answer's head; the connection stays open.
async fn open_stream(base: &str, token: &str) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/revocations/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream
            .read_exact(&mut byte)
            .await
            .expect("the answer's head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// Reads `stream` until it holds `needle`; fails after `within`.
async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str, within: Duration) {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        while !seen.contains(needle) {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{needle}` never came: {seen}"));
}

#[tokio::test]
async fn a_thousand_followers_on_one_instance_hold_bounded_memory_and_each_gets_the_event() {
    if on_postgres() {
        return;
    }
    const FOLLOWERS: usize = 1000;
    let s = tessera("max_connections = 1100\nmax_connections_per_client = 1100\n").await;
    let (id, secret) = register(&s, "fleet", "revocations").await;
    let token = super::feed::client_token(&s, &id, &secret).await;
    let (alice, _) = s.user("alice").await;
    let before = s.resident_bytes();
    let mut streams = Vec::with_capacity(FOLLOWERS);
    for _ in 0..FOLLOWERS {
        streams.push(open_stream(&s.base, &token).await);
    }
    let metrics = s.get("/metrics").await.text;
    assert!(
        metrics.contains(&format!("tessera_feed_followers {FOLLOWERS}")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("feed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let after = s.resident_bytes();
    eprintln!(
        "RSS with no follower {} KiB, with {FOLLOWERS} followers {} KiB ({} KiB each)",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024 / FOLLOWERS as u64
    );
    // Each stream holds its connection, a receiver and a small state.
    assert!(
        after.saturating_sub(before) < 64 * 1024 * 1024,
        "{before} -> {after} bytes"
    );
    // One logout reaches every one of them.
    assert_eq!(s.logout(&alice).await.status, 204);
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                read_until(
                    &mut stream,
                    "event: family_revoked",
                    Duration::from_secs(10),
                )
                .await;
                stream
            })
        })
        .collect();
    let mut streams = Vec::new();
    for reader in readers {
        streams.push(reader.await.expect("a follower got the event"));
    }
    drop(streams);
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_database_failover_loses_no_event_of_a_following_service() {
    if on_postgres() {
        return;
    }
    let Some(mut servers) = Server::start_together(Database::Postgres, SETTINGS, 2).await else {
        return;
    };
    let (b, a) = (servers.pop().expect("b"), servers.pop().expect("a"));
    let verifier = follower(&b, Duration::from_secs(60)).await;
    let (alice, _) = a.user("alice").await;
    until(&verifier, &alice, Duration::from_secs(10), accepted).await;

    // Every database session of both instances ends, as at a failover.
    let cut = a
        .sql_number(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS cut",
        )
        .await;
    assert!(cut >= 2, "{cut} sessions cut");
    // The logout meets the cut (a 503 at worst), then succeeds; the
    // instance the service follows reconnects and tells it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = a.logout(&alice).await;
        if r.status == 204 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(Instant::now() < deadline, "the logout never went through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until(&verifier, &alice, Duration::from_secs(10), revoked).await;
    // And the next one arrives as usual.
    let (bob, _) = a.user("bob").await;
    until(&verifier, &bob, Duration::from_secs(5), accepted).await;
    let since = Instant::now();
    assert_eq!(a.logout(&bob).await.status, 204);
    until(&verifier, &bob, Duration::from_secs(2), revoked).await;
    eprintln!(
        "after the failover, a logout reached the service in {:?}",
        since.elapsed()
    );
}
