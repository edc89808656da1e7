//! The audit log (`GET /api/admin/audit`): the events of logins, signups,
//! logouts, sessions and passwords, with who and from where; its filters
//! and their bad values; a burst written whole; no secret in any event.

use super::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The events matching `query` once there are at least `count` (the audit
/// writer runs behind the requests), newest first.
async fn events(s: &Server, staff: &str, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s
            .get_with_token(&format!("/api/admin/audit?page_size=100&{query}"), staff)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let results = r.body["results"].as_array().unwrap().clone();
        if results.len() >= count {
            return results;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} events for {query}: {results:?}",
            results.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_security_event_is_logged_with_who_and_from_where() {
    let s = Server::start("login_rate_limit = \"off\"").await;
    let (root, _) = s.superuser("root").await;
    s.signup("alice").await;
    let alice_id = s.me(&s.login("alice").await.0).await.body["id"].clone();
    let wrong = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("User-Agent", "curl/8")
                .json(&json!({"username": "alice", "password": "not it"})),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let injected = "evil\n<script>x</script>".to_owned() + &"y".repeat(300);
    s.post(
        "/api/token/",
        json!({"username": injected, "password": "x"}),
    )
    .await;
    let (access, _) = s.login("alice").await;
    assert_eq!(s.logout(&access).await.status, 204);

    let failed = events(&s, &root, "event=login_failed", 2).await;
    // Newest first: the unknown name (as given, cut to 150 characters), then alice.
    assert_eq!(failed[0]["user_id"], Value::Null);
    let given = failed[0]["detail"]["username"].as_str().unwrap();
    assert_eq!(given, injected.chars().take(150).collect::<String>());
    assert_eq!(failed[1]["user_id"], alice_id);
    assert_eq!(failed[1]["ip"], "127.0.0.1");
    assert_eq!(failed[1]["user_agent"], "curl/8");
    assert_eq!(failed[1]["actor_id"], Value::Null);
    let ok = events(
        &s,
        &root,
        &format!("event=login_succeeded&user_id={alice_id}"),
        2,
    )
    .await;
    assert_eq!(ok[0]["detail"]["method"], "password");
    assert!(ok[0]["detail"]["session"].as_str().unwrap().len() == 32);
    let at = ok[0]["at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    assert_eq!(
        events(&s, &root, "event=signup", 1).await[0]["user_id"],
        alice_id
    );
    let logout = events(&s, &root, "event=logout", 1).await;
    assert_eq!(logout[0]["detail"]["session"], segment(&access, 1)["fid"]);
    assert_eq!(logout[0]["ip"], "127.0.0.1");
    let mut keys: Vec<String> = ok[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "actor_id",
            "at",
            "detail",
            "event",
            "id",
            "ip",
            "user_agent",
            "user_id"
        ]
    );

    // A session ended by staff names the staff user as the actor.
    let (bob, _) = s.user("bob").await;
    let bob_id = s.me(&bob).await.body["id"].clone();
    let fid = segment(&bob, 1)["fid"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/users/{bob_id}/sessions/{fid}");
    let r = s.send(s.http.delete(s.url(&path)).bearer_auth(&root)).await;
    assert_eq!(r.status, 204);
    let ended = events(&s, &root, "event=session_ended", 1).await;
    let root_id = s.me(&root).await.body["id"].clone();
    assert_eq!(
        (&ended[0]["user_id"], &ended[0]["actor_id"]),
        (&bob_id, &root_id)
    );
    assert_eq!(ended[0]["ip"], "127.0.0.1");

    // Nothing secret anywhere: no password, hash or token.
    let all = events(&s, &root, "", 7).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [PASSWORD, "not it", "$argon2", &access, &root, &bob, "eyJ"] {
        assert!(!text.contains(secret), "an event holds {secret:?}: {text}");
    }
}

#[tokio::test]
async fn the_filters_refuse_bad_values_naming_the_parameter() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    for (query, field) in [
        ("user_id=abc", "user_id"),
        ("event=nope", "event"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=1000", "page_size"),
        ("page_size=0", "page_size"),
    ] {
        let r = s
            .get_with_token(&format!("/api/admin/audit?{query}"), &root)
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, [field], "{query}: {}", r.text);
        assert!(r.body[field][0].is_string());
    }
    let r = s.get_with_token("/api/admin/audit?page=99", &root).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"detail": "Invalid page."}))
    );
    let r = s
        .get_with_token(
            "/api/admin/audit?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00%2B01:00",
            &root,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (alice, _) = s.user("alice").await;
    assert_eq!(
        s.get_with_token("/api/admin/audit", &alice).await.status,
        403
    );
    assert_eq!(s.get("/api/admin/audit").await.status, 401);
    s.assert_healthy().await;
}

#[tokio::test]
async fn pages_link_to_each_other_keeping_the_filters() {
    let s = Server::start("login_rate_limit = \"off\"").await;
    let (root, _) = s.superuser("root").await;
    s.create_user("alice", false).await;
    for _ in 0..3 {
        let r = s
            .post(
                "/api/token/",
                json!({"username": "alice", "password": "not-her-password"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    events(&s, &root, "event=login_failed", 3).await;
    let page = |n: u32| {
        let (s, root) = (&s, &root);
        async move {
            let path = format!("/api/admin/audit?page={n}&event=login_failed&page_size=1");
            let r = s.get_with_token(&path, root).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };
    // The filters as given, in order, then the page and its size; absolute
    // addresses, as Django REST framework's pagination gives them.
    let at = |n: u32| {
        json!(format!(
            "{}/api/admin/audit?event=login_failed&page={n}&page_size=1",
            s.base
        ))
    };
    let first = page(1).await;
    assert_eq!(first["count"], 3);
    assert_eq!((&first["previous"], &first["next"]), (&Value::Null, &at(2)));
    let second = page(2).await;
    assert_eq!((&second["previous"], &second["next"]), (&at(1), &at(3)));
    let last = page(3).await;
    assert_eq!((&last["previous"], &last["next"]), (&at(2), &Value::Null));
    assert_eq!(last["results"].as_array().unwrap().len(), 1);
}

/// A login with a wrong password, from the test's address.
async fn wrong_login(s: &Server, username: &str) -> u16 {
    s.post(
        "/api/token/",
        json!({"username": username, "password": "guess"}),
    )
    .await
    .status
}

#[tokio::test]
async fn a_burst_of_a_thousand_failed_logins_is_counted_whole_in_a_few_rows() {
    // One check a minute per name and address: the burst is refused before
    // hashing (login_throttled), as an attack would be. Every attempt is
    // counted, but a refused one costs its sender nothing, so one client
    // writes at most one login_throttled row a minute (it wrote one each).
    let s = Server::start("login_rate_limit = \"1/min\"").await;
    let (root, _) = s.superuser("root").await;
    let burst = 1000;
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(50));
    for i in 0..burst {
        let (http, url, gate) = (s.http.clone(), s.url("/api/token/"), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let body = json!({"username": format!("attacker{}", i % 7), "password": "guess"});
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = tasks.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.values().sum::<i32>(), burst);
    // A minute later: one attempt is checked, the next refused, and its row
    // stands for the ones counted since the first.
    s.advance(Duration::from_secs(61));
    assert_eq!(wrong_login(&s, "attacker0").await, 401);
    assert_eq!(wrong_login(&s, "attacker0").await, 429);
    let attempts = burst + 2;
    let events = |event: &'static str| {
        let (s, root) = (&s, &root);
        async move {
            let r = s
                .get_with_token(
                    &format!("/api/admin/audit?event={event}&page_size=100"),
                    root,
                )
                .await;
            r.body["results"].as_array().unwrap().clone()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let failed = events("login_failed").await.len() as i64;
        let throttled = events("login_throttled").await;
        let counted: i64 = throttled
            .iter()
            .map(|e| e["detail"]["attempts"].as_i64().unwrap())
            .sum();
        if failed + counted == i64::from(attempts) {
            // The first refused attempt of the burst, and of the next minute.
            assert_eq!(throttled.len(), 2, "{throttled:?}");
            assert_eq!(throttled[1]["detail"]["attempts"], 1);
            assert_eq!(throttled[0]["detail"]["username"], "attacker0");
            break;
        }
        assert!(
            failed + counted < i64::from(attempts),
            "{failed} + {counted} attempts logged for {attempts}"
        );
        assert!(
            Instant::now() < deadline,
            "{failed} + {counted} of {attempts} attempts logged: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The recorder is the test binary's (one for every in-process server):
    // no test may drop an event.
    let r = s.get("/metrics").await;
    let metric = |name: &str| {
        r.text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    assert_eq!(
        metric("tessera_audit_events_dropped_total").unwrap_or(0.0),
        0.0
    );
    assert!(metric("tessera_audit_write_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    s.assert_healthy().await;
}

#[tokio::test]
async fn staff_changes_key_rotations_and_imports_are_logged_with_their_actor() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let root_id = s.me(&root).await.body["id"].clone();
    let (alice, _) = s.user("alice").await;
    let alice_id = s.me(&alice).await.body["id"].clone();
    let patch = s
        .send(
            s.http
                .patch(s.url(&format!("/api/admin/users/{alice_id}")))
                .bearer_auth(&root)
                .json(&json!({"is_staff": true})),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    let revoke = s
        .send(
            s.http
                .post(s.url(&format!("/api/admin/users/{alice_id}/revoke")))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!(revoke.status, 204);
    let updated = events(&s, &root, "event=user_updated", 1).await;
    assert_eq!(
        (&updated[0]["user_id"], &updated[0]["actor_id"]),
        (&alice_id, &root_id)
    );
    assert_eq!(updated[0]["detail"], json!({"fields": {"is_staff": true}}));
    let revoked = events(&s, &root, "event=user_revoked", 1).await;
    assert_eq!(revoked[0]["actor_id"], root_id);

    let (code, _, err) = s.cli(&["keys", "rotate"], None).await;
    assert_eq!(code, 0, "{err}");
    let rotated = events(&s, &root, "event=keys_rotated", 1).await;
    assert_eq!(rotated[0]["detail"]["algorithm"], "HS256");
    let jsonl = s.dir().join("one.jsonl");
    std::fs::write(&jsonl, "{\"username\": \"carol\", \"password\": \"!\"}\n").unwrap();
    let (code, _, err) = s
        .cli(&["import-users", "--jsonl", jsonl.to_str().unwrap()], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let imported = events(&s, &root, "event=users_imported", 1).await;
    assert_eq!(
        imported[0]["detail"],
        json!({"source": "jsonl", "imported": 1, "already_present": 0, "skipped": 0, "without_password": 1})
    );
}

#[tokio::test]
async fn cli_password_sets_and_issued_tokens_are_logged_and_lifetimes_bounded() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let root_id = s.me(&root).await.body["id"].clone();
    let (alice, _) = s.user("alice").await;
    let alice_id = s.me(&alice).await.body["id"].clone();

    let (code, _, err) = s
        .cli(
            &["users", "set-password", "alice", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let set = events(&s, &root, "event=password_set", 1).await;
    assert_eq!(
        (&set[0]["user_id"], &set[0]["actor_id"], &set[0]["detail"]),
        (&alice_id, &Value::Null, &json!({}))
    );

    // A ten-year admin token is refused, and nothing is logged for it.
    for lifetime in ["3650d", "31d", "30d 1s"] {
        let (code, out, err) = s
            .cli(
                &[
                    "token",
                    "issue",
                    "--username",
                    "root",
                    "--lifetime",
                    lifetime,
                ],
                None,
            )
            .await;
        assert_eq!((code, out.as_str()), (1, ""), "{lifetime}: {err}");
        assert!(
            err.contains(&format!("--lifetime: at most 30d, got `{lifetime}`")),
            "{lifetime}: {err}"
        );
    }
    let (code, out, err) = s
        .cli(
            &["token", "issue", "--username", "root", "--lifetime", "30d"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let token = out.trim();
    let claims = segment(token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30 * 86_400
    );
    let issued = events(&s, &root, "event=token_issued", 1).await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(
        (&issued[0]["user_id"], &issued[0]["actor_id"]),
        (&root_id, &Value::Null)
    );
    assert_eq!(
        issued[0]["detail"],
        json!({"lifetime": 30 * 86_400, "session": claims["fid"]})
    );
    assert!(!serde_json::to_string(&issued).unwrap().contains(token));
    // The follower's filter knows the new names.
    let (code, out, err) = s.cli(&["audit", "--event", "token_issued"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" token_issued user="), "{out}");
}

#[tokio::test]
async fn tessera_audit_prints_the_events_escaped() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    s.create_user("alice", false).await;
    let agent = "agent\u{1b}[31m\nsecond line";
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("User-Agent", agent.replace(['\u{1b}', '\n'], "?"))
                .json(&json!({"username": "alice\u{7}", "password": "nope"})),
        )
        .await;
    assert_eq!(r.status, 401);
    events(&s, &root, "event=login_failed", 1).await;
    let (code, out, err) = s
        .cli(&["audit", "--event", "login_failed", "--since", "1h"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains(" login_failed user=- actor=- ip=127.0.0.1 "),
        "{out}"
    );
    // The name as given is printed escaped: no raw control character.
    assert!(lines[0].contains(r#"{"username":"alice\u0007"}"#), "{out}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    let (code, _, err) = s.cli(&["audit", "--event", "nonsense"], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("--event: expected one of"), "{err}");
    let (code, _, err) = s.cli(&["audit", "--user", "nobody"], None).await;
    assert_eq!((code, err.trim()), (1, "tessera: no user `nobody`"));
}

#[tokio::test]
async fn tessera_audit_escapes_every_unprintable_character_in_every_field() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    // C1 CSIs that move the cursor up and erase the line (they hid the
    // attacker's next line), DEL, NEL, a bidi override and isolate, the line
    // and paragraph separators, zero-width characters, a no-break space.
    let hostile =
        "x\u{9b}1A\u{9b}2K\u{7f}\u{85}\u{202e}\u{2066}\u{2028}\u{2029}\u{200b}\u{feff}\u{a0}y";
    let escaped = r"x\u009b1A\u009b2K\u007f\u0085\u202e\u2066\u2028\u2029\u200b\ufeff\u00a0y";
    // A User-Agent may carry any byte above 0x7f: here the UTF-8 of a
    // C1 CSI and of a bidi override.
    let agent =
        reqwest::header::HeaderValue::from_bytes("agent\u{9b}2K\u{202e}".as_bytes()).unwrap();
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("User-Agent", agent)
                .json(&json!({"username": hostile, "password": "nope"})),
        )
        .await;
    assert_eq!(r.status, 401);
    events(&s, &root, "event=login_failed", 1).await;
    let (code, out, err) = s.cli(&["audit", "--event", "login_failed"], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    // Everything here is ASCII once escaped: printable characters and the
    // line's end, nothing else.
    assert!(
        out.chars().all(|c| c == '\n' || (' '..='~').contains(&c)),
        "{out:?}"
    );
    assert!(
        out.contains(&format!(r#"{{"username":"{escaped}"}}"#)),
        "{out}"
    );
    assert!(out.contains(r#"ua="agent\u009b2K\u202e""#), "{out}");
}

#[tokio::test]
async fn tessera_audit_follow_prints_the_events_that_come_later() {
    use tokio::io::AsyncBufReadExt;
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    s.post("/api/token/", json!({"username": "first", "password": "x"}))
        .await;
    events(&s, &root, "event=login_failed", 1).await;
    let mut child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(s.config_path())
        .args(["audit", "--follow", "--event", "login_failed"])
        .current_dir(s.dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Awaited, never blocked on: this test's runtime also runs the server
    // and its audit writer, which must go on while the follower is read.
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line from the follower within 20 s")
            .unwrap()
            .expect("the follower still running")
    };
    let backlog = next_line().await;
    assert!(backlog.contains(r#"{"username":"first"}"#), "{backlog}");
    s.post("/api/token/", json!({"username": "later", "password": "x"}))
        .await;
    // Another kind of event, which the follower's filter leaves out.
    s.login("root").await;
    s.post("/api/token/", json!({"username": "last", "password": "x"}))
        .await;
    let later = next_line().await;
    assert!(later.contains(r#"{"username":"later"}"#), "{later}");
    let last = next_line().await;
    assert!(last.contains(r#"{"username":"last"}"#), "{last}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn tessera_audit_follow_prints_every_event_of_a_flood_once_in_order() {
    use tokio::io::AsyncBufReadExt;
    const FLOOD: usize = 2500;
    let s = Server::start("").await;
    let store = s.store().await;
    let event = |n: usize| tessera_store::AuditEvent {
        at: tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock),
        // One in five a successful login among the failures, as in a flood
        // that hides one.
        event: if n % 5 == 4 {
            "login_succeeded"
        } else {
            "login_failed"
        }
        .into(),
        user_id: None,
        actor_id: None,
        ip: "192.0.2.1".into(),
        user_agent: String::new(),
        detail: json!({ "n": n }).to_string(),
    };
    store.append_audit(&[event(0)]).await.unwrap();
    let mut child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(s.config_path())
        .args(["audit", "--follow"])
        .current_dir(s.dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let backlog = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the backlog within 20 s")
        .unwrap()
        .expect("the follower still running");
    assert!(backlog.contains(r#"{"n":0}"#), "{backlog}");
    // The flood, written after the follower started, in the writer's batches
    // and faster than it polls.
    for batch in (1..=FLOOD).collect::<Vec<_>>().chunks(100) {
        let events: Vec<_> = batch.iter().map(|&n| event(n)).collect();
        store.append_audit(&events).await.unwrap();
    }
    let mut printed = Vec::new();
    // Awaited, never blocked on (the runtime runs the server too); a pause
    // of 5 s with nothing printed ends the reading.
    while printed.len() < FLOOD {
        let Ok(line) = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await else {
            break;
        };
        let line = line.unwrap().expect("the follower still running");
        let n = line
            .split(r#"{"n":"#)
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('}').parse::<usize>().ok());
        printed.push(n.unwrap_or_else(|| panic!("not a flood event: {line}")));
        if n.is_some_and(|n| n % 5 == 4) {
            assert!(line.contains(" login_succeeded "), "{line}");
        }
    }
    child.kill().await.unwrap();
    let missing = FLOOD - printed.len().min(FLOOD);
    assert_eq!(
        printed,
        (1..=FLOOD).collect::<Vec<_>>(),
        "{} of {FLOOD} events printed ({missing} missing)",
        printed.len()
    );
}

#[tokio::test]
async fn the_upkeep_task_deletes_events_older_than_audit_retention() {
    let s = Server::start("audit_retention = \"7d\"").await;
    let (root, _) = s.superuser("root").await;
    s.post("/api/token/", json!({"username": "old", "password": "x"}))
        .await;
    events(&s, &root, "event=login_failed", 1).await;
    s.advance(Duration::from_secs(6 * 86_400));
    s.post(
        "/api/token/",
        json!({"username": "recent", "password": "x"}),
    )
    .await;
    let (root, _) = s.login("root").await;
    events(&s, &root, "event=login_failed", 2).await;
    // Two more days: "old" is 8 days old, "recent" 2. The upkeep task
    // prunes when it starts, and hourly after.
    s.advance(Duration::from_secs(2 * 86_400));
    let s = s.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (root, _) = s.login("root").await;
    let kept = loop {
        let r = s
            .get_with_token("/api/admin/audit?event=login_failed", &root)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["count"] == 1 {
            break r.body["results"][0]["detail"].clone();
        }
        assert!(Instant::now() < deadline, "never pruned: {}", r.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(kept, json!({"username": "recent"}));
    s.assert_healthy().await;
}

/// A blacklist or an RFC 7009 revocation that ends a session (issue 30 item
/// 2) is the logout it stands for in the audit log too, with its session
/// and where it came from.
#[tokio::test]
async fn a_blacklist_or_revocation_that_ends_a_session_is_audited_as_a_logout() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (_, blacklisted) = s.user("alice").await;
    let r = s
        .post("/api/token/blacklist/", json!({"refresh": blacklisted}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, revoked) = s.user("bob").await;
    let r = s.post_form("/oauth/revoke", &[("token", &revoked)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let logouts = events(&s, &root, "event=logout", 2).await;
    let mut sessions: Vec<&Value> = logouts.iter().map(|e| &e["detail"]["session"]).collect();
    sessions.sort_by_key(|v| v.to_string());
    let mut expected = [
        segment(&blacklisted, 1)["fid"].clone(),
        segment(&revoked, 1)["fid"].clone(),
    ];
    expected.sort_by_key(Value::to_string);
    assert_eq!(sessions, expected.iter().collect::<Vec<_>>());
    assert!(
        logouts.iter().all(|e| e["ip"] == "127.0.0.1"),
        "{logouts:?}"
    );
}
