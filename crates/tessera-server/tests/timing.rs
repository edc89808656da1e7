//! Timing does not tell users apart (docs/API.md: unknown user and wrong password
//! answer alike). A test binary of its own: cargo runs test binaries one after
//! another, so no other test's password hashing competes with the samples.

#[path = "server/harness.rs"]
#[allow(dead_code)]
mod harness;

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
