//! Throttling and limits on everything a client controls (docs/API.md).

use super::harness::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BEHIND_PROXY: &str = "trusted_proxies = [\"127.0.0.1\"]";

async fn login_from(s: &Server, address: &str, username: &str, password: &str) -> Reply {
    s.send(
        s.http
            .post(s.url("/api/token/"))
            .header("X-Forwarded-For", address)
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

fn assert_throttled(r: &Reply) -> u64 {
    assert_eq!(r.status, 429, "{}", r.text);
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        r.body,
        json!({"detail": format!("Request was throttled. Expected available in {wait} seconds."), "code": "throttled"})
    );
    wait
}

#[tokio::test]
async fn eleven_failed_logins_for_one_username_are_throttled_while_others_log_in() {
    let s = Server::start(BEHIND_PROXY).await;
    s.create_user("alice", false).await;
    s.create_user("bob", false).await;
    for i in 0..10 {
        // A different address each time: only the username's count grows.
        let r = login_from(&s, &format!("198.51.100.{i}"), "alice", "wrong-password-x").await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = login_from(&s, "198.51.100.200", "alice", "wrong-password-x").await;
    assert_throttled(&r);
    // Refused before the password is looked at: the right one is refused too.
    assert_throttled(&login_from(&s, "198.51.100.201", "alice", PASSWORD).await);
    // Full-width letters normalise to the same name and the same count.
    assert_throttled(&login_from(&s, "198.51.100.202", "ａｌｉｃｅ", PASSWORD).await);
    assert_eq!(
        login_from(&s, "198.51.100.203", "bob", PASSWORD)
            .await
            .status,
        200
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn an_hourly_limit_is_counted_over_the_hour() {
    let s = Server::start(&format!("{BEHIND_PROXY}\nlogin_rate_limit = \"3/h\"")).await;
    s.create_user("alice", false).await;
    let s = &s;
    let guess = |i: u32| async move {
        login_from(s, &format!("198.51.100.{i}"), "alice", "wrong-password-x").await
    };
    // The server's clock is the wall clock moved ahead: the real time the
    // guesses take (password checks, on a loaded machine) is part of it.
    let first = std::time::Instant::now();
    for i in 0..3 {
        assert_eq!(guess(i).await.status, 401, "attempt {i}");
    }
    // Past a minute, and past 59 minutes, the hour still holds three failures.
    for (step, left) in [(61, 3600 - 61), (3540 - 61, 60)] {
        s.advance(Duration::from_secs(step));
        let r = guess(100).await;
        assert_eq!(r.status, 429, "{}", r.text);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        let real = first.elapsed().as_secs();
        assert!(
            wait <= left && wait + real >= left,
            "Retry-After {wait}, expected {left} less the {real} s that really passed"
        );
    }
    // Once the hour has passed, three more guesses, and no fourth.
    s.advance(Duration::from_secs(61));
    for i in 101..104 {
        assert_eq!(guess(i).await.status, 401, "attempt {i}");
    }
    assert_eq!(guess(104).await.status, 429);
    s.assert_healthy().await;
}

#[tokio::test]
async fn eleven_failed_logins_from_one_address_are_throttled_while_other_addresses_log_in() {
    let s = Server::start(BEHIND_PROXY).await;
    s.create_user("bob", false).await;
    for i in 0..10 {
        let r = login_from(&s, "203.0.113.9", &format!("guess{i}"), "wrong-password-x").await;
        assert_eq!(r.status, 401);
    }
    assert_throttled(&login_from(&s, "203.0.113.9", "bob", PASSWORD).await);
    assert_eq!(
        login_from(&s, "203.0.113.10", "bob", PASSWORD).await.status,
        200
    );
    // The OAuth2 password grant shares the same counts.
    let r = s
        .send(
            s.http
                .post(s.url("/oauth/token"))
                .header("X-Forwarded-For", "203.0.113.9")
                .form(&[
                    ("grant_type", "password"),
                    ("username", "bob"),
                    ("password", PASSWORD),
                ]),
        )
        .await;
    assert_throttled(&r);
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    let s = Server::start("").await;
    s.create_user("bob", false).await;
    for i in 0..10 {
        // Claiming a new address each time changes nothing: the socket's address counts.
        let r = login_from(
            &s,
            &format!("192.0.2.{i}"),
            &format!("guess{i}"),
            "wrong-password-x",
        )
        .await;
        assert_eq!(r.status, 401);
    }
    assert_throttled(&login_from(&s, "192.0.2.77", "bob", PASSWORD).await);
}

#[tokio::test]
async fn a_successful_login_resets_the_username_count_not_the_address_count() {
    let s = Server::start(&format!("{BEHIND_PROXY}\nlogin_rate_limit = \"3/min\"")).await;
    s.create_user("alice", false).await;
    for _ in 0..2 {
        login_from(&s, "198.51.100.1", "alice", "wrong-password-x").await;
    }
    assert_eq!(
        login_from(&s, "198.51.100.2", "alice", PASSWORD)
            .await
            .status,
        200
    );
    for _ in 0..2 {
        assert_eq!(
            login_from(&s, "198.51.100.3", "alice", "wrong-password-x")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        login_from(&s, "198.51.100.4", "alice", PASSWORD)
            .await
            .status,
        200
    );
    // The address 198.51.100.1 kept its two failures; one more reaches the limit.
    login_from(&s, "198.51.100.1", "nobody", "wrong-password-x").await;
    assert_throttled(&login_from(&s, "198.51.100.1", "alice", PASSWORD).await);
}

#[tokio::test]
async fn login_throttling_can_be_turned_off() {
    let s = Server::start("login_rate_limit = \"off\"").await;
    s.create_user("alice", false).await;
    for _ in 0..15 {
        let r = s
            .post(
                "/api/token/",
                json!({"username": "alice", "password": "wrong-password-x"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    s.login("alice").await;
}

#[tokio::test]
async fn signups_are_limited_per_address() {
    let s = Server::start(&format!("{BEHIND_PROXY}\nsignup_rate_limit = \"3/min\"")).await;
    let signup = |name: &str, address: &str| {
        s.http
            .post(s.url("/api/auth/signup"))
            .header("X-Forwarded-For", address.to_owned())
            .json(&json!({"username": name, "password": PASSWORD}))
    };
    for i in 0..3 {
        let r = s.send(signup(&format!("u{i}"), "198.51.100.7")).await;
        assert_eq!(r.status, 201);
    }
    let r = s.send(signup("u3", "198.51.100.7")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["code"], "throttled");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(s.send(signup("u3", "198.51.100.8")).await.status, 201);
    // Nothing was lost: everyone who got a 201 logs in.
    for name in ["u0", "u1", "u2", "u3"] {
        s.login(name).await;
    }
}

#[tokio::test]
async fn a_slow_request_gets_408() {
    let s = Server::start("request_timeout = \"300ms\"").await;
    // Headers promise a body that never comes.
    let request = b"POST /api/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let answer = tokio::time::timeout(Duration::from_secs(10), s.raw_open(request))
        .await
        .expect("no answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:.60}");
    s.assert_healthy().await;
}

/// How a test client holds a connection slot.
#[derive(Clone, Copy, Debug)]
enum Hold {
    /// Opens and sends nothing.
    Silent,
    /// One answered request, then kept alive and idle.
    Idle,
    /// A request head promising a body that never comes: busy being answered.
    SlowBody,
}

/// A connection from `from` (any address of the loopback range) to the
/// server, holding its slot as `hold` says. `None` when the server closed
/// it on arrival.
async fn hold_from(s: &Server, from: &str, hold: Hold) -> Option<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    match hold {
        Hold::Silent => {}
        Hold::Idle => {
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut answer = [0u8; 512];
            let n = stream.read(&mut answer).await.unwrap_or(0);
            if !answer[..n].starts_with(b"HTTP/1.1 200") {
                return None;
            }
        }
        Hold::SlowBody => {
            let _ = stream
                .write_all(b"POST /api/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                .await;
        }
    }
    // A connection closed on arrival reads end-of-file at once.
    let mut probe = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(200), stream.peek(&mut probe)).await {
        Ok(Ok(0) | Err(_)) => None,
        _ => Some(stream),
    }
}

/// `GET path` on a new connection from `from`, answered within `within`;
/// with `keep`, the connection then starts another request head and is
/// returned open (busy reading it, so never closed to make room).
async fn get_from(
    s: &Server,
    from: &str,
    path: &str,
    within: Duration,
    keep: bool,
) -> Result<(String, Option<tokio::net::TcpStream>), String> {
    let attempt = async {
        let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
        let close = if keep { "" } else { "Connection: close\r\n" };
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{close}\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if !keep {
            let mut answer = Vec::new();
            stream
                .read_to_end(&mut answer)
                .await
                .map_err(|e| e.to_string())?;
            return Ok((String::from_utf8_lossy(&answer).into_owned(), None));
        }
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer).await.map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            String::from_utf8_lossy(&answer[..n]).into_owned(),
            Some(stream),
        ))
    };
    tokio::time::timeout(within, attempt)
        .await
        .map_err(|_| format!("no answer within {within:?}"))?
}

#[tokio::test]
async fn one_client_cannot_hold_every_slot_and_another_is_answered_at_once() {
    // The red team's three ways of holding slots, each from one address.
    for hold in [Hold::Silent, Hold::Idle, Hold::SlowBody] {
        let s = Server::start("max_connections = 32\nmax_connections_per_client = 8").await;
        let mut held = Vec::new();
        let mut closed = 0;
        for _ in 0..40 {
            match hold_from(&s, "127.0.0.1", hold).await {
                Some(stream) => held.push(stream),
                None => closed += 1,
            }
        }
        assert_eq!((held.len(), closed), (8, 32), "{hold:?}");
        let (answer, _) = get_from(&s, "127.0.0.2", "/healthz", Duration::from_secs(1), false)
            .await
            .unwrap_or_else(|e| panic!("{hold:?}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{hold:?}: {answer:.60}");
        let (metrics, _) = get_from(&s, "127.0.0.3", "/metrics", Duration::from_secs(5), false)
            .await
            .unwrap();
        // Counted (the recorder is the test process's, shared by its servers).
        let refused: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tessera_connections_refused_total "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(refused >= 32, "{hold:?}: {refused}");
    }
}

#[tokio::test]
async fn a_full_house_of_idle_connections_makes_room_for_a_new_client_at_once() {
    let s = Server::start("max_connections = 12\nmax_connections_per_client = 4").await;
    let mut held = Vec::new();
    // Twelve slots: four idle, four silent, four busy, from three addresses.
    for (from, hold) in [
        ("127.0.0.11", Hold::SlowBody),
        ("127.0.0.12", Hold::Idle),
        ("127.0.0.13", Hold::Silent),
    ] {
        for _ in 0..4 {
            held.push((hold, hold_from(&s, from, hold).await.expect("admitted")));
        }
    }
    // Each new client gets in within a second: the idle ones go first, then
    // the silent ones; the busy ones are never cut short.
    // Each stays busy afterwards, so that the next one finds the house full.
    let mut probes = Vec::new();
    for i in 0..8 {
        let (answer, kept) = get_from(
            &s,
            &format!("127.0.0.{}", 30 + i),
            "/healthz",
            Duration::from_secs(1),
            true,
        )
        .await
        .unwrap_or_else(|e| panic!("probe {i}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.60}");
        probes.push(kept);
    }
    let mut open = Vec::new();
    for (hold, stream) in &held {
        let mut byte = [0u8; 1];
        // Still open: nothing to read, not even the end of the stream.
        let alive = tokio::time::timeout(Duration::from_millis(50), stream.peek(&mut byte))
            .await
            .is_err();
        open.push((format!("{hold:?}"), alive));
    }
    let alive = |kind: &str| open.iter().filter(|(h, a)| h == kind && *a).count();
    assert_eq!(
        (alive("SlowBody"), alive("Idle"), alive("Silent")),
        (4, 0, 0),
        "{open:?}"
    );
    // With every slot busy answering, a new connection waits for one.
    let s2 = Server::start("max_connections = 2").await;
    let _busy = [
        hold_from(&s2, "127.0.0.21", Hold::SlowBody).await.unwrap(),
        hold_from(&s2, "127.0.0.22", Hold::SlowBody).await.unwrap(),
    ];
    assert!(
        get_from(
            &s2,
            "127.0.0.2",
            "/healthz",
            Duration::from_millis(500),
            false
        )
        .await
        .is_err(),
        "a third connection was served while two requests were under way"
    );
    drop(_busy);
    let (answer, _) = get_from(&s2, "127.0.0.2", "/healthz", Duration::from_secs(5), false)
        .await
        .expect("served once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_lives() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    // 16 KiB of headers are processed: a token that size is a 401, not a 431.
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .bearer_auth("a".repeat(16 * 1024 - 100)),
        )
        .await;
    assert_refused(&r, "invalid");
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .bearer_auth(&access)
                .header("X-Padding", "p".repeat(15 * 1024)),
        )
        .await;
    assert_eq!(r.status, 200);
    // Far past any sane size, the connection is refused with a 431.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(1024 * 1024)
    );
    let answer = s.raw(huge.as_bytes()).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.60}"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_burst_of_failed_logins_leaves_resident_memory_bounded() {
    // At the real cost: its working memory is what is measured.
    let s = Server::start_process_with_env("login_rate_limit = \"off\"", &[(TEST_HASHING, "")]);
    let s = std::sync::Arc::new(s.await);
    // Signed up through it, so that the hash is made at its cost.
    s.signup("alice").await;
    let before = s.resident_bytes();
    // Many at once, so that the hashes run on many threads.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(60));
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (s, gate) = (s.clone(), gate.clone());
        burst.spawn(async move {
            gate.wait().await;
            s.post(
                "/api/token/",
                json!({"username": "alice", "password": format!("wrong-{i}")}),
            )
            .await
            .status
        });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    let after = s.resident_bytes();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "resident memory: {:.1} MiB before, {:.1} MiB after 60 failed logins at once",
        mib(before),
        mib(after)
    );
    assert!(after < 250 * 1024 * 1024, "{:.1} MiB", mib(after));
    s.assert_healthy().await;
}

#[tokio::test]
async fn two_hundred_small_headers_are_processed() {
    let s = Server::start("").await;
    // With Host and Connection: 150 and 200 in all.
    for count in [148, 198] {
        let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for i in 0..count {
            request.push_str(&format!("X-Small-{i}: {i}\r\n"));
        }
        request.push_str("\r\n");
        let answer = s.raw(request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{count}: {answer:.60}");
    }
    s.assert_healthy().await;
}

/// `GET /healthz` kept alive, with `count` small headers besides `Host`.
fn head_of(count: usize) -> String {
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..count {
        request.push_str(&format!("X-Small-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Reads from `stream` until `count` answers of `/healthz` have come.
async fn healthz_answers(stream: &mut tokio::net::TcpStream, count: usize) -> String {
    let mut got = String::new();
    while got.matches(r#"{"status":"ok"}"#).count() < count {
        got.push_str(&read_until(stream, r#"{"status":"ok"}"#, Duration::from_secs(5)).await);
    }
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), count, "{got}");
    got
}

#[tokio::test]
async fn a_kept_alive_connection_takes_heads_of_many_headers_between_small_ones() {
    // A connection starts on hyper's parser with room for 100 headers and is
    // moved to one with room for 200 when a head may need it: a large head
    // in one write, in pieces with pauses past the watch's looks, pipelined
    // behind a small one, and after a body of many lines.
    let s = Server::start("").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for count in [1, 150, 1, 198, 99, 2] {
        stream.write_all(head_of(count).as_bytes()).await.unwrap();
        healthz_answers(&mut stream, 1).await;
    }
    let large = head_of(180);
    for piece in large.as_bytes().chunks(100) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    healthz_answers(&mut stream, 1).await;
    // Parked between requests, then a small head and a large one in one write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let both = head_of(1) + &head_of(150) + &head_of(3);
    stream.write_all(both.as_bytes()).await.unwrap();
    healthz_answers(&mut stream, 3).await;
    // A JSON body of many lines (no empty one), then a small head.
    let mut body = String::from("{\n");
    for i in 0..150 {
        body.push_str(&format!("  \"f{i}\": {i},\n"));
    }
    body.push_str("  \"username\": \"nobody\",\n  \"password\": \"wrong-password-1987\"\n}");
    let post = format!(
        "POST /api/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(post.as_bytes()).await.unwrap();
    let answer = read_until(&mut stream, "}", Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:.80}");
    stream.write_all(head_of(2).as_bytes()).await.unwrap();
    healthz_answers(&mut stream, 1).await;
    // Past 200 headers, still a 431.
    stream.write_all(head_of(230).as_bytes()).await.unwrap();
    let mut refused = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut refused)).await;
    let refused = String::from_utf8_lossy(&refused);
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused:.60}");
    s.assert_healthy().await;
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(stream: &mut tokio::net::TcpStream, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after {within:?}"),
        }
    }
}

#[tokio::test]
async fn a_house_of_silent_connections_and_half_sent_heads_is_closed_and_new_ones_are_served() {
    let s = Server::start("max_connections = 8\nheader_read_timeout = \"1s\"").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // Every slot taken: four that say nothing, four that stop halfway
    // through a request head.
    let mut house = Vec::new();
    for i in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 1 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        house.push(stream);
    }
    // A new client is served once the timeout has emptied the house.
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), s.get("/healthz"))
        .await
        .expect("/healthz was never answered");
    assert_eq!(r.status, 200);
    eprintln!("/healthz answered after {:?}", started.elapsed());
    for stream in &mut house {
        closed_after(stream, Duration::from_secs(5)).await;
    }
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_idle_timeout_but_not_while_in_use() {
    let s = Server::start("idle_timeout = \"600ms\"\nheader_read_timeout = \"5s\"").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // In use: a request every 300 ms for longer than the idle timeout.
    for _ in 0..4 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer).await.unwrap();
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "closed while in use"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Then idle: closed after about the timeout, well before the head's.
    let waited = closed_after(&mut stream, Duration::from_secs(4)).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

/// Reads from `stream` until what arrived ends with `end`; all of it.
async fn read_until(stream: &mut tokio::net::TcpStream, end: &str, within: Duration) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.ends_with(end.as_bytes()) {
        let n = tokio::time::timeout(within, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {end:?} within {within:?}: {:?}",
                    String::from_utf8_lossy(&got)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {end:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn a_connection_parked_while_idle_or_silent_is_served_exactly_after() {
    // The watch parks a connection found waiting (every 100 ms): silent,
    // between requests, and with half a head it must not.
    let s = Server::start("").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(b"st: x\r\n\r\n").await.unwrap();
        let answer = read_until(&mut stream, "{\"status\":\"ok\"}", Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Two requests in one write after a park: both answered, in order.
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: y\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answers = read_until(&mut stream, "{\"status\":\"ok\"}", Duration::from_secs(5)).await;
    if answers.matches("HTTP/1.1 200 OK").count() < 2 {
        answers += &read_until(&mut stream, "{\"status\":\"ok\"}", Duration::from_secs(5)).await;
    }
    assert_eq!(
        answers.matches("HTTP/1.1 200 OK\r\n").count(),
        2,
        "{answers}"
    );
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_body_arriving_in_parts_across_the_watch_s_looks_is_read_as_a_body() {
    // The body's second half comes after the watch has looked (every
    // 100 ms): the connection is not parked while its body is arriving, so
    // the rest is read as the body, not as the next request's head.
    let s = Server::start("").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    stream
        .write_all(b"67890GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answers = read_until(&mut stream, "{\"status\":\"ok\"}", Duration::from_secs(5)).await;
    assert!(
        answers.starts_with("HTTP/1.1 415 Unsupported Media Type\r\n"),
        "{answers}"
    );
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 2, "{answers}");
    assert!(answers.contains("HTTP/1.1 200 OK\r\n"), "{answers}");
}

#[tokio::test]
async fn emails_over_254_characters_are_refused() {
    let s = Server::start("").await;
    let email = format!("{}@example.com", "e".repeat(250));
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "alice", "password": PASSWORD, "email": email}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}));
    s.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_simultaneous_guesses_gets_no_more_password_checks_than_the_limit() {
    let s = std::sync::Arc::new(Server::start("").await);
    s.create_user("alice", false).await;
    for trial in 0..2 {
        // 120 guesses released together (twelve times the limit); the right
        // password among the last.
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(120));
        let mut guesses = tokio::task::JoinSet::new();
        for i in 0..120 {
            let (s, gate) = (s.clone(), gate.clone());
            let password = if i == 115 {
                PASSWORD.to_owned()
            } else {
                format!("guess-{i}")
            };
            guesses.spawn(async move {
                gate.wait().await;
                s.post(
                    "/api/token/",
                    json!({"username": "alice", "password": password}),
                )
                .await
            });
        }
        let (mut failed, mut succeeded, mut throttled) = (0, 0, 0);
        while let Some(reply) = guesses.join_next().await {
            let r = reply.unwrap();
            match r.status {
                429 => {
                    throttled += 1;
                    assert!(r.header("retry-after").is_some(), "{}", r.text);
                    assert_eq!(r.body["code"], "throttled");
                }
                401 => failed += 1,
                200 => succeeded += 1,
                other => panic!("trial {trial}: {other} {}", r.text),
            }
        }
        // 10 failures a minute per username (and per address): at most 10
        // wrong passwords checked. A success does not count as a failure, so
        // the right password, if it got in, frees its place for one more.
        assert!(
            failed <= 10,
            "trial {trial}: {failed} wrong passwords checked"
        );
        assert!(succeeded <= 1, "trial {trial}");
        assert_eq!(failed + succeeded + throttled, 120);
        s.assert_healthy().await;
        // A minute later alice logs in as usual.
        s.advance(Duration::from_secs(61));
        s.login("alice").await;
    }
}

#[tokio::test]
async fn a_users_sessions_are_capped_and_the_oldest_end_first() {
    let s = Server::start("max_sessions_per_user = 3").await;
    s.create_user("alice", false).await;
    let (bob, _) = s.user("bob").await;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(s.login("alice").await);
        s.advance(Duration::from_secs(1));
    }
    // The fourth login ended the first session, as a logout would.
    let (first_access, first_refresh) = &sessions[0];
    assert_refused(&s.me(first_access).await, "revoked");
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": first_refresh}))
            .await,
    );
    for (access, refresh) in &sessions[1..] {
        assert_eq!(s.me(access).await.status, 200);
        assert_eq!(
            s.post("/api/token/refresh/", json!({"refresh": refresh}))
                .await
                .status,
            200
        );
    }
    // Other users are not touched.
    assert_eq!(s.me(&bob).await.status, 200);
}

#[tokio::test]
async fn one_user_cannot_mint_refresh_tokens_without_bound() {
    // Rotation without blacklisting: the same refresh token stays usable.
    let s = Server::start("rotate_refresh_tokens = true\nuser_rate_limit = \"5/min\"").await;
    s.create_user("alice", false).await;
    let (_, bob_refresh) = s.user("bob").await;
    let (_, refresh) = s.login("alice").await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        if r.status == 429 {
            let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            assert_eq!(r.body["code"], "throttled");
        }
        statuses.push(r.status);
    }
    // The login and four refreshes fill the five a minute.
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    let rows = s
        .sql_number("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = 1")
        .await;
    assert_eq!(rows, 5, "the login's token and four rotations");
    // Another user is not limited by alice's use; alice is again a minute on.
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": bob_refresh}))
            .await
            .status,
        200
    );
    s.advance(Duration::from_secs(61));
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
}
