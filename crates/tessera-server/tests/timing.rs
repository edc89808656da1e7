//! Timing does not tell users apart (docs/API.md: unknown user and wrong password
//! answer alike). A test binary of its own: cargo runs test binaries one after
//! another, so no other test's password hashing competes with the samples.

#[path = "server/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "server/mailbox.rs"]
#[allow(dead_code)]
mod mailbox;

use harness::*;
use serde_json::json;
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[tokio::test]
async fn an_unknown_username_takes_as_long_as_a_wrong_password() {
    let s = Server::start("login_rate_limit = \"off\"").await;
    s.create_user("alice", false).await;
    // Warm up both paths (the dummy hash, connection setup).
    for name in ["alice", "nobody", "alice", "nobody"] {
        s.post(
            "/api/token/",
            json!({"username": name, "password": "wrong-password-x"}),
        )
        .await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so that whatever else the machine does falls on both alike.
    for i in 0..30 {
        let ghost = format!("ghost{i}");
        let mut pair = [("alice", &mut known), (ghost.as_str(), &mut unknown)];
        // Alternate which goes first, so that neither always follows the other.
        if i % 2 == 1 {
            pair.reverse();
        }
        for (name, samples) in pair {
            let start = Instant::now();
            let r = s
                .post(
                    "/api/token/",
                    json!({"username": name, "password": "wrong-password-x"}),
                )
                .await;
            samples.push(start.elapsed().as_secs_f64());
            assert_eq!(r.status, 401);
        }
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = u / k;
    eprintln!(
        "median login: known user with wrong password {:.1} ms, unknown user {:.1} ms, ratio {ratio:.3}",
        k * 1e3,
        u * 1e3
    );
    assert!(
        (0.75..=1.25).contains(&ratio),
        "unknown/known median ratio {ratio:.3}"
    );
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_address_takes_as_long_as_for_a_known_one() {
    let Some(mut sink) = mailbox::SmtpSink::start().await else {
        return;
    };
    // Each request from another client (through a trusted proxy) and each
    // known address asked for once: none is past a limit, so every known
    // one writes its link and mail.
    let config = format!("{}trusted_proxies = [\"127.0.0.1\"]\n", sink.config());
    let s = Server::start(&config).await;
    const ROUNDS: usize = 40;
    for i in 0..ROUNDS + 2 {
        s.create_user(&format!("known{i}"), false).await;
    }
    s.sql("UPDATE users SET email = username || '@example.com'")
        .await;
    let reset = |email: String, client: String| {
        let s = &s;
        async move {
            let start = Instant::now();
            let r = s
                .send(
                    reqwest::Client::new()
                        .post(s.url("/api/auth/password/reset"))
                        .header("X-Forwarded-For", client)
                        .json(&json!({"email": email})),
                )
                .await;
            let took = start.elapsed().as_secs_f64();
            assert_eq!((r.status, &r.body), (202, &json!({})), "{}", r.text);
            took
        }
    };
    // Warm up both paths.
    for i in [ROUNDS, ROUNDS + 1] {
        reset(format!("known{i}@example.com"), format!("198.51.100.{i}")).await;
        reset(format!("ghost{i}@example.com"), format!("203.0.113.{i}")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let k = (format!("known{i}@example.com"), format!("198.51.100.{i}"));
        let u = (format!("ghost{i}@example.com"), format!("203.0.113.{i}"));
        // Alternate which goes first, so that neither always follows the other.
        if i % 2 == 0 {
            known.push(reset(k.0, k.1).await);
            unknown.push(reset(u.0, u.1).await);
        } else {
            unknown.push(reset(u.0, u.1).await);
            known.push(reset(k.0, k.1).await);
        }
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = u / k;
    eprintln!(
        "median reset request: known address {:.2} ms, unknown address {:.2} ms, ratio {ratio:.3}",
        k * 1e3,
        u * 1e3
    );
    assert!(
        (0.75..=1.25).contains(&ratio),
        "unknown/known median ratio {ratio:.3}"
    );
    // The known ones were mailed for real.
    for _ in 0..ROUNDS + 2 {
        assert!(sink.next().await.to[0].starts_with("known"));
    }
}
