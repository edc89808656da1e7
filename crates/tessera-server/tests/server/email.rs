//! Password reset and email verification through a real SMTP server
//! (aiosmtpd on 127.0.0.1): the whole flows through the mails received,
//! single use, expiry, voiding, the limits, the `required` login check on
//! every login route, bad input, and mail servers that fail.

use super::harness::*;
use super::mailbox::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const INVALID_TOKEN: &str = "Invalid or expired token.";

/// A user with an address, signed up over HTTP.
async fn sign_up(s: &Server, username: &str, email: &str) {
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": username, "password": PASSWORD, "email": email}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn login_with(s: &Server, username: &str, password: &str) -> Reply {
    s.post(
        "/api/token/",
        json!({"username": username, "password": password}),
    )
    .await
}

async fn request_reset(s: &Server, email: &str) {
    let r = s
        .post("/api/auth/password/reset", json!({"email": email}))
        .await;
    assert_eq!((r.status, &r.body), (202, &json!({})), "{}", r.text);
}

async fn confirm(s: &Server, token: &str, password: &str) -> Reply {
    s.post(
        "/api/auth/password/reset/confirm",
        json!({"token": token, "new_password": password}),
    )
    .await
}

fn assert_invalid_token(r: &Reply) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body, json!({"token": [INVALID_TOKEN]}));
}

/// Mails in the outbox: (waiting, sent, given up on).
async fn outbox(s: &Server) -> (i64, i64, i64) {
    let counts = s.store().await.outbox_counts().await.expect("outbox");
    (counts.pending, counts.sent, counts.failed)
}

/// Waits (at most 10 s) until the outbox counts are `expected`: a mail the
/// sink received is marked sent a moment later.
async fn until_outbox(s: &Server, expected: (i64, i64, i64)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = outbox(s).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outbox {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_password_reset_through_the_mailed_link() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    sign_up(&s, "alice", "Alice@Example.com").await;
    let (access, refresh) = s.login("alice").await;
    assert_eq!(s.me(&access).await.body["email_verified"], false);

    // The address in another case, and a Host header that is not ours: the
    // link is built from public_url all the same.
    let r = s
        .send(
            reqwest::Client::new()
                .post(s.url("/api/auth/password/reset"))
                .header("Host", "evil.example")
                .json(&json!({"email": "alice@EXAMPLE.com"})),
        )
        .await;
    assert_eq!((r.status, &r.body), (202, &json!({})));
    let mail = sink.next().await;
    assert_eq!(mail.to, ["Alice@Example.com"]);
    assert_eq!(mail.from, "noreply@localhost");
    assert!(
        mail.headers
            .iter()
            .any(|(k, v)| k == "From" && v == "Tessera <noreply@localhost>"),
        "{:?}",
        mail.headers
    );
    assert_eq!(
        (mail.content_type.as_str(), mail.charset.as_str()),
        ("text/plain", "utf-8")
    );
    assert!(mail.subject.contains("Tessera"), "{}", mail.subject);
    assert!(mail.body.contains("expires in 1h (at "), "{}", mail.body);
    assert!(mail.body.contains("Hello alice,"), "{}", mail.body);
    let link = mail.link("https://");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/?reset=")), "{link}");
    let token = mail.token("reset");
    assert!(token.len() >= 43, "{token}");

    // The database keeps only the token's SHA-256.
    let stored = s
        .sql_number(&format!(
            "SELECT COUNT(*) FROM email_tokens WHERE token_hash = '{}'",
            tessera_core::link::digest(&token)
        ))
        .await;
    assert_eq!(stored, 1);
    assert_eq!(
        s.sql_number(&format!(
            "SELECT COUNT(*) FROM email_tokens WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );

    // A weak password is refused by the policy, and leaves the link usable.
    let r = confirm(&s, &token, "alice").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["new_password"].is_array(), "{}", r.text);
    let new_password = "quiet-harbor-lantern-2024?";
    let r = confirm(&s, &token, new_password).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());

    // Every token issued before is refused, as after a password change.
    assert_refused(&s.me(&access).await, "revoked");
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_token_not_valid(&r);
    assert_eq!(login_with(&s, "alice", PASSWORD).await.status, 401);
    let r = login_with(&s, "alice", new_password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    // The link was read at the address: it counts as verified.
    assert_eq!(s.me(&access).await.body["email_verified"], true);

    // One use.
    assert_invalid_token(&confirm(&s, &token, "another-fine-password-77").await);
    assert_eq!(login_with(&s, "alice", new_password).await.status, 200);
}

#[tokio::test]
async fn a_newer_link_voids_the_older_and_links_expire() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&format!(
        "{}reset_token_lifetime = \"10m\"\n",
        sink.config()
    ))
    .await;
    sign_up(&s, "bob", "bob@example.com").await;
    request_reset(&s, "bob@example.com").await;
    let first = sink.next().await.token("reset");
    request_reset(&s, "bob@example.com").await;
    let mail = sink.next().await;
    assert!(mail.body.contains("expires in 10m"), "{}", mail.body);
    let second = mail.token("reset");
    assert_ne!(first, second);
    assert_invalid_token(&confirm(&s, &first, "brand-new-password-one1").await);

    // The second expires after 10 minutes.
    s.advance(Duration::from_secs(601));
    assert_invalid_token(&confirm(&s, &second, "brand-new-password-one1").await);
    // The password is still the old one.
    s.login("bob").await;
    // A fresh request works again.
    request_reset(&s, "bob@example.com").await;
    let third = sink.next().await.token("reset");
    assert_eq!(
        confirm(&s, &third, "brand-new-password-one1").await.status,
        204
    );
}

#[tokio::test]
async fn unknown_and_inactive_addresses_get_the_same_answer_and_no_mail() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    sign_up(&s, "carol", "carol@example.com").await;
    sign_up(&s, "dave", "dave@example.com").await;
    let (staff, _) = s.superuser("root").await;
    let id = s
        .sql_number("SELECT id FROM users WHERE username = 'dave'")
        .await;
    let r = s
        .send(
            reqwest::Client::new()
                .patch(s.url(&format!("/api/admin/users/{id}")))
                .bearer_auth(&staff)
                .json(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200);
    // Nobody has the first address; the second user is inactive. Both are
    // answered as a known one is, and mailed nothing: the next mail to
    // arrive is the one for carol, asked for after them.
    request_reset(&s, "nobody@example.com").await;
    request_reset(&s, "dave@example.com").await;
    request_reset(&s, "carol@example.com").await;
    let mail = sink.next().await;
    assert_eq!(mail.to, ["carol@example.com"]);
    until_outbox(&s, (0, 1, 0)).await;
}

#[tokio::test]
async fn past_the_limits_requests_are_answered_alike_and_mail_nothing() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    sign_up(&s, "erin", "erin@example.com").await;
    // Five an hour per address: the sixth and seventh answer 202 too.
    for _ in 0..7 {
        request_reset(&s, "erin@example.com").await;
    }
    for _ in 0..5 {
        assert_eq!(sink.next().await.to, ["erin@example.com"]);
    }
    let (waiting, sent, _) = outbox(&s).await;
    assert_eq!(
        waiting + sent,
        5,
        "two requests past the limit mailed nothing"
    );
    // An hour later the address may ask again.
    s.advance(Duration::from_secs(3601));
    request_reset(&s, "erin@example.com").await;
    assert_eq!(sink.next().await.to, ["erin@example.com"]);

    // Twenty an hour per client, whatever the addresses (in a new hour:
    // every request so far came from this client too).
    s.advance(Duration::from_secs(3601));
    for i in 0..22 {
        s.create_user(&format!("user{i}"), false).await;
    }
    s.sql("UPDATE users SET email = username || '@example.org' WHERE username LIKE 'user%'")
        .await;
    for i in 0..22 {
        request_reset(&s, &format!("user{i}@example.org")).await;
    }
    for _ in 0..20 {
        sink.next().await;
    }
    let (waiting, sent, _) = outbox(&s).await;
    assert_eq!(waiting + sent, 6 + 20);
    s.assert_healthy().await;
}

/// Every login route, with what it answers a user whose address is not verified.
async fn every_login_route(s: &Server, username: &str, password: &str) -> Vec<(u16, Value)> {
    let simplejwt = login_with(s, username, password).await;
    let oauth = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    let flask = s
        .post(
            "/login",
            json!({"username": username, "password": password}),
        )
        .await;
    let fastapi = s
        .post_form("/token", &[("username", username), ("password", password)])
        .await;
    [simplejwt, oauth, flask, fastapi]
        .into_iter()
        .map(|r| (r.status, r.body))
        .collect()
}

#[tokio::test]
async fn verification_is_required_on_every_login_route_until_the_link_is_followed() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let config = format!(
        "{}email_verification = \"required\"\ncompat = [\"flask_jwt_extended\", \"fastapi\"]\n\
         login_rate_limit = \"off\"\n",
        sink.config()
    );
    let s = Server::start(&config).await;
    sign_up(&s, "frank", "frank@example.com").await;
    let signup_mail = sink.next().await;
    assert_eq!(signup_mail.to, ["frank@example.com"]);
    assert!(signup_mail.subject.contains("Tessera"));
    let first = signup_mail.token("verify");
    assert!(
        signup_mail
            .link("https://")
            .starts_with(&format!("{PUBLIC_URL}/?verify="))
    );

    // A wrong password learns nothing about the address.
    for (status, body) in every_login_route(&s, "frank", "wrong-password-123").await {
        assert!(matches!(status, 400 | 401), "{status} {body}");
        assert!(!body.to_string().contains("verified"), "{body}");
    }
    // The right one is refused on every route, in that route's shape, and
    // each refusal mails a new link.
    let refused = every_login_route(&s, "frank", PASSWORD).await;
    let detail = "Email address not verified.";
    assert_eq!(
        refused[0],
        (401, json!({"detail": detail, "code": "email_not_verified"}))
    );
    assert_eq!(refused[1].0, 401);
    assert_eq!(refused[1].1["code"], "email_not_verified");
    assert_eq!(refused[1].1["error"], "invalid_grant");
    assert_eq!(refused[2], (401, json!({"msg": detail})));
    assert_eq!(
        refused[3],
        (401, json!({"detail": detail, "code": "email_not_verified"}))
    );
    let mut last = String::new();
    for _ in 0..4 {
        last = sink.next().await.token("verify");
    }
    // Any of the links verifies (a newer one does not void the older);
    // using one voids the others.
    let verify = |token: String| {
        let s = &s;
        async move {
            s.post("/api/auth/email/verify", json!({"token": token}))
                .await
        }
    };
    let r = verify(last.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_invalid_token(&verify(last).await);
    assert_invalid_token(&verify(first).await);
    for (status, body) in every_login_route(&s, "frank", PASSWORD).await {
        assert_eq!(status, 200, "{body}");
    }
    let (access, _) = s.login("frank").await;
    assert_eq!(s.me(&access).await.body["email_verified"], true);

    // An administrator's change of address makes it unverified again.
    let (staff, _) = s.superuser("root").await;
    let id = s.me(&access).await.body["id"].as_i64().unwrap();
    let patch = |body: Value| {
        s.send(
            reqwest::Client::new()
                .patch(s.url(&format!("/api/admin/users/{id}")))
                .bearer_auth(&staff)
                .json(&body),
        )
    };
    let r = patch(json!({"email": "frank@example.net"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["email"].as_str(), r.body["email_verified"].as_bool()),
        (Some("frank@example.net"), Some(false))
    );
    assert_eq!(
        login_with(&s, "frank", PASSWORD).await.body["code"],
        "email_not_verified"
    );
    assert_eq!(sink.next().await.to, ["frank@example.net"]);
    // ... and may vouch for one.
    let r = patch(json!({"email_verified": true})).await;
    assert_eq!(r.body["email_verified"], true);
    assert_eq!(login_with(&s, "frank", PASSWORD).await.status, 200);
    let r = patch(json!({"email": "not an address\r\nBcc: x@example.com"})).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"email": ["Enter a valid email address."]}))
    );
}

#[tokio::test]
async fn a_user_asks_for_a_verification_link() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    // `optional`: signup mails a link, nothing depends on it.
    let s = Server::start(&format!(
        "{}email_verification = \"optional\"\n",
        sink.config()
    ))
    .await;
    sign_up(&s, "gina", "gina@example.com").await;
    sink.next().await;
    let (access, _) = s.login("gina").await;
    let ask = |token: &str| {
        s.send(
            reqwest::Client::new()
                .post(s.url("/api/auth/email/verify/request"))
                .bearer_auth(token),
        )
    };
    let r = ask(&access).await;
    assert_eq!((r.status, &r.body), (202, &json!({})), "{}", r.text);
    let token = sink.next().await.token("verify");
    assert_eq!(
        s.post("/api/auth/email/verify", json!({"token": token}))
            .await
            .status,
        204
    );
    assert_eq!(s.me(&access).await.body["email_verified"], true);
    // Not without a token; not for an account without an address.
    assert_not_authenticated(
        &s.send(reqwest::Client::new().post(s.url("/api/auth/email/verify/request")))
            .await,
    );
    s.create_user("noaddress", false).await;
    let (access, _) = s.login("noaddress").await;
    let r = ask(&access).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["email"].is_array());
}

#[tokio::test]
async fn without_mail_settings_the_routes_answer_503() {
    let s = Server::start("").await;
    s.create_user("hank", false).await;
    let (access, _) = s.login("hank").await;
    let unavailable = json!({"detail": "Email is not configured.", "code": "email_unavailable"});
    let token = "A".repeat(43);
    for r in [
        s.post(
            "/api/auth/password/reset",
            json!({"email": "hank@example.com"}),
        )
        .await,
        confirm(&s, &token, "some-strong-password-91").await,
        s.post("/api/auth/email/verify", json!({"token": token}))
            .await,
        s.send(
            reqwest::Client::new()
                .post(s.url("/api/auth/email/verify/request"))
                .bearer_auth(&access),
        )
        .await,
    ] {
        assert_eq!((r.status, &r.body), (503, &unavailable), "{}", r.text);
    }
    assert_eq!(s.me(&access).await.body["email_verified"], false);
}

#[tokio::test]
async fn bad_addresses_and_tokens_are_400_and_mail_no_one() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    sign_up(&s, "ivy", "ivy@example.com").await;
    let invalid = json!({"email": ["Enter a valid email address."]});
    let long = format!("{}@example.com", "a".repeat(10_000));
    for bad in [
        json!("not-an-address"),
        json!(long),
        json!("ivy@example.com\r\nBcc: eve@example.com"),
        json!("ivy@example.com\nBcc: eve@example.com"),
        json!("ivy@example.com, eve@example.com"),
        json!("Ivy <ivy@example.com>"),
        json!(" ivy@example.com"),
    ] {
        let r = s
            .post("/api/auth/password/reset", json!({"email": bad}))
            .await;
        assert_eq!((r.status, &r.body), (400, &invalid), "{bad}");
    }
    for (bad, message) in [
        (json!(null), "This field may not be null."),
        (json!(""), "This field may not be blank."),
        (json!(42), "Not a valid string."),
    ] {
        let r = s
            .post("/api/auth/password/reset", json!({"email": bad}))
            .await;
        assert_eq!(
            (r.status, &r.body),
            (400, &json!({"email": [message]})),
            "{bad}"
        );
    }
    let r = s.post("/api/auth/password/reset", json!({})).await;
    assert_eq!(r.body, json!({"email": ["This field is required."]}));

    // Tokens of the wrong length or alphabet, and well-formed ones nobody issued.
    let good_shape = "B".repeat(43);
    for bad in [
        "short".to_owned(),
        "A".repeat(44),
        "A".repeat(10_000),
        format!("{}+", "A".repeat(42)),
        format!("{}=", "A".repeat(42)),
        format!("{}\u{e9}", "A".repeat(41)),
        format!("{}\r\n", "A".repeat(41)),
        "../../etc/passwd".to_owned(),
        good_shape.clone(),
    ] {
        assert_invalid_token(&confirm(&s, &bad, "a-strong-new-password-5").await);
        let r = s
            .post("/api/auth/email/verify", json!({"token": bad}))
            .await;
        assert_invalid_token(&r);
    }
    let r = confirm(&s, "", "").await;
    assert_eq!(
        r.body,
        json!({"token": ["This field may not be blank."], "new_password": ["This field may not be blank."]})
    );

    // A reset confirmed for a user deactivated since the mail: refused,
    // and the password stays.
    request_reset(&s, "ivy@example.com").await;
    let token = sink.next().await.token("reset");
    s.sql("UPDATE users SET is_active = FALSE WHERE username = 'ivy'")
        .await;
    assert_invalid_token(&confirm(&s, &token, "a-strong-new-password-5").await);

    // Nothing but that one mail went out, to one recipient; the server is fine.
    until_outbox(&s, (0, 1, 0)).await;
    s.assert_healthy().await;
}

/// Waits until the outbox's one mail was tried and failed at least once.
async fn until_a_try_failed(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tried = s
            .sql_number("SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND last_error <> '' AND sent_at IS NULL")
            .await;
        if tried > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no failed try within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A mail server that misbehaves as `kind` says: the request is answered
/// at once, the mail waits in the outbox (tried, not given up on), the
/// server stays healthy; once a working mail server takes the port, the mail
/// arrives and its link works.
async fn a_bad_mail_server_delays_only_the_mail(kind: &str) {
    enum Bad {
        Refusing(SmtpSink),
        Other(BadServer),
    }
    if python().is_none() {
        return;
    }
    let bad = match kind {
        "refuses the recipient" => Bad::Refusing(SmtpSink::start_on(0, true).await.unwrap()),
        "drops the connection" => Bad::Other(BadServer::dropping().await),
        _ => Bad::Other(BadServer::silent().await),
    };
    let port = match &bad {
        Bad::Refusing(sink) => sink.port,
        Bad::Other(server) => server.port,
    };
    // A silent server is given up on after smtp_timeout.
    let s = Server::start(&format!("{}smtp_timeout = \"1s\"\n", config_for(port))).await;
    sign_up(&s, "jack", "jack@example.com").await;
    let started = Instant::now();
    request_reset(&s, "jack@example.com").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{kind}: the request waited for the mail server"
    );
    until_a_try_failed(&s).await;
    assert_eq!(
        outbox(&s).await,
        (1, 0, 0),
        "{kind}: still waiting, not given up"
    );
    s.assert_healthy().await;
    match bad {
        Bad::Refusing(sink) => sink.stop().await,
        Bad::Other(server) => drop(server),
    }
    let mut sink = SmtpSink::start_on(port, false).await.unwrap();
    let mail = sink.next().await;
    assert_eq!(mail.to, ["jack@example.com"], "{kind}");
    let r = confirm(&s, &mail.token("reset"), "mended-mail-server-pass9").await;
    assert_eq!(r.status, 204, "{kind}: {}", r.text);
}

#[tokio::test]
async fn a_mail_server_that_refuses_the_recipient_delays_only_the_mail() {
    a_bad_mail_server_delays_only_the_mail("refuses the recipient").await;
}

#[tokio::test]
async fn a_mail_server_that_drops_the_connection_delays_only_the_mail() {
    a_bad_mail_server_delays_only_the_mail("drops the connection").await;
}

#[tokio::test]
async fn a_mail_server_that_never_answers_delays_only_the_mail() {
    a_bad_mail_server_delays_only_the_mail("never answers").await;
}

#[tokio::test]
async fn mail_asked_for_while_the_mail_server_is_down_arrives_after_a_restart() {
    if python().is_none() {
        return;
    }
    let closed = ClosedPort::new();
    let port = closed.port;
    let s = Server::start(&config_for(port)).await;
    sign_up(&s, "kate", "kate@example.com").await;
    request_reset(&s, "kate@example.com").await;
    until_a_try_failed(&s).await;
    // Tessera restarts while the mail server is still down ...
    let s = s.restart().await;
    assert_eq!(outbox(&s).await, (1, 0, 0));
    // ... and the mail server comes up afterwards.
    drop(closed);
    let mut sink = SmtpSink::start_on(port, false).await.unwrap();
    let mail = sink.next().await;
    assert_eq!(mail.to, ["kate@example.com"]);
    let r = confirm(&s, &mail.token("reset"), "after-the-restart-pass4").await;
    assert_eq!(r.status, 204, "{}", r.text);
    until_outbox(&s, (0, 1, 0)).await;
    // Sent mail keeps no text: the link it held is gone from the database.
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM outbox WHERE body <> ''")
            .await,
        0
    );
}

#[tokio::test]
async fn mail_cut_short_by_a_restart_is_sent_at_once_after_it() {
    if python().is_none() {
        return;
    }
    // A mail server that never answers: the try is still under way (taken,
    // no error yet) when Tessera restarts, well within smtp_timeout.
    let silent = BadServer::silent().await;
    let port = silent.port;
    let s = Server::start(&config_for(port)).await;
    sign_up(&s, "mia", "mia@example.com").await;
    request_reset(&s, "mia@example.com").await;
    let in_flight =
        "SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND last_error = '' AND sent_at IS NULL";
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.sql_number(in_flight).await == 0 {
        assert!(Instant::now() < deadline, "the mail was never taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The stopping server cuts the try short and gives the mail back:
    // without that, its two-minute lease would hold it past this test.
    let s = s.restart().await;
    drop(silent);
    let mut sink = SmtpSink::start_on(port, false).await.unwrap();
    let mail = sink.next_within(Duration::from_secs(15)).await;
    let mail = mail.expect("the mail did not come after the restart");
    assert_eq!(mail.to, ["mia@example.com"]);
    let r = confirm(&s, &mail.token("reset"), "cut-short-then-sent-pass3").await;
    assert_eq!(r.status, 204, "{}", r.text);
    until_outbox(&s, (0, 1, 0)).await;
}

#[tokio::test]
async fn of_two_instances_exactly_one_mails_each_request() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let first = Server::start(&sink.config()).await;
    let second = first.start_beside().await;
    sign_up(&first, "lena", "lena@example.com").await;
    // Both senders look at the shared tables; each request is claimed once.
    for (i, s) in [&second, &first, &second].into_iter().enumerate() {
        request_reset(s, "lena@example.com").await;
        let mail = sink.next().await;
        assert_eq!(mail.to, ["lena@example.com"], "request {i}");
    }
    // Three mails written, not six (each request was claimed once), and all
    // three sent. A mail is marked sent only after the mail server took it,
    // and no other sender takes it meanwhile (its lease): had either
    // instance sent one twice, the sink would hold it by now.
    until_outbox(&first, (0, 3, 0)).await;
    assert!(
        sink.next_within(Duration::from_millis(200)).await.is_none(),
        "a mail arrived twice"
    );
    // Each newer link voided the one before, whichever instance wrote it.
    let links = "SELECT COUNT(*) FROM email_tokens WHERE kind = 'reset'";
    assert_eq!(first.sql_number(links).await, 1);
}

/// Waits (at most 10 s) until every reset request has been turned into
/// mail (or into none).
async fn until_requests_handled(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pending = "SELECT COUNT(*) FROM mail_requests WHERE address <> ''";
    while s.sql_number(pending).await > 0 {
        assert!(Instant::now() < deadline, "reset requests still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn accounts_sharing_an_address_get_one_mail_per_request_within_the_limit() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&sink.config()).await;
    // Thirty accounts carrying one address, as signups leave them
    // (unverified), and the address's owner, verified, made after them.
    for i in 0..30 {
        s.create_user(&format!("twin{i:02}"), false).await;
    }
    s.create_user("owner", false).await;
    s.sql(
        "UPDATE users SET email = 'victim@example.com' \
         WHERE username LIKE 'twin%' OR username = 'owner'",
    )
    .await;
    s.sql("UPDATE users SET email_verified = TRUE WHERE username = 'owner'")
        .await;
    // Eight requests: five honoured (the address's limit), one mail each,
    // whatever the number of accounts (the red team got 150 mails).
    for _ in 0..8 {
        request_reset(&s, "victim@example.com").await;
    }
    until_requests_handled(&s).await;
    let (waiting, sent, _) = outbox(&s).await;
    assert_eq!(waiting + sent, 5, "mails written for 8 requests");
    let mut mails = Vec::new();
    for _ in 0..5 {
        mails.push(sink.next().await);
    }
    assert!(
        sink.next_within(Duration::from_millis(300)).await.is_none(),
        "a sixth mail arrived"
    );
    // Each mail names the accounts, with a link for each: the verified
    // owner first, then the oldest, at most 20 in all.
    let last = mails.pop().expect("five mails");
    assert_eq!(last.to, ["victim@example.com"]);
    assert_eq!(last.body.matches("?reset=").count(), 20, "{}", last.body);
    let owner_at = last.body.find("Hello owner,").expect("the owner's link");
    let twin_at = last
        .body
        .find("Hello twin00,")
        .expect("the oldest twin's link");
    assert!(owner_at < twin_at);
    assert!(!last.body.contains("Hello twin19,"), "{}", last.body);
    // The owner's link resets the owner's password, and only it.
    let owner_token = last.body[owner_at..]
        .split_whitespace()
        .find_map(|w| w.split("?reset=").nth(1))
        .expect("a link after the greeting")
        .to_owned();
    let r = confirm(&s, &owner_token, "only-the-owners-new-pass8").await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        login_with(&s, "owner", "only-the-owners-new-pass8")
            .await
            .status,
        200
    );
    s.login("twin00").await;
}

#[tokio::test]
async fn a_change_of_address_voids_the_users_reset_and_verification_links() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&format!(
        "{}email_verification = \"optional\"\n",
        sink.config()
    ))
    .await;
    sign_up(&s, "nora", "nora@example.com").await;
    let verify_old = sink.next().await.token("verify");
    request_reset(&s, "nora@example.com").await;
    let reset_old = sink.next().await.token("reset");
    let (staff, _) = s.superuser("root").await;
    let id = s
        .sql_number("SELECT id FROM users WHERE username = 'nora'")
        .await;
    let patch = |email: &str| {
        s.send(
            reqwest::Client::new()
                .patch(s.url(&format!("/api/admin/users/{id}")))
                .bearer_auth(&staff)
                .json(&json!({ "email": email })),
        )
    };
    // Staff move the account to another address: the links mailed to the
    // old one no longer act on the account.
    assert_eq!(patch("nora@example.net").await.status, 200);
    assert_invalid_token(&confirm(&s, &reset_old, "taken-over-by-old-inbox1").await);
    assert_eq!(login_with(&s, "nora", PASSWORD).await.status, 200);
    // Nor once the address is set back: they were voided, not suspended.
    assert_eq!(patch("nora@example.com").await.status, 200);
    assert_invalid_token(&confirm(&s, &reset_old, "taken-over-by-old-inbox1").await);
    let r = s
        .post("/api/auth/email/verify", json!({"token": verify_old}))
        .await;
    assert_invalid_token(&r);
    let (access, _) = s.login("nora").await;
    assert_eq!(s.me(&access).await.body["email_verified"], false);
    // A link mailed to the address the account has now works.
    request_reset(&s, "nora@example.com").await;
    let fresh = sink.next().await.token("reset");
    assert_eq!(
        confirm(&s, &fresh, "a-fresh-link-still-works4")
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn signups_carrying_someone_elses_address_do_not_starve_their_own_link() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&format!(
        "{}email_verification = \"required\"\n",
        sink.config()
    ))
    .await;
    // Five signups with the victim's address: five links, one per account.
    for i in 0..5 {
        sign_up(&s, &format!("mallory{i}"), "victim@example.com").await;
    }
    for _ in 0..5 {
        sink.next().await;
    }
    // The victim's own signup still gets its link (the red team's got none,
    // the address's five an hour being spent), and it works.
    sign_up(&s, "victim", "victim@example.com").await;
    let mail = sink
        .next_within(Duration::from_secs(5))
        .await
        .expect("the victim's own signup mailed no link");
    assert!(mail.body.contains("Hello victim,"), "{}", mail.body);
    let r = s
        .post(
            "/api/auth/email/verify",
            json!({"token": mail.token("verify")}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(login_with(&s, "victim", PASSWORD).await.status, 200);
    // Each account's links are still limited: five an hour.
    for _ in 0..7 {
        let r = login_with(&s, "mallory0", PASSWORD).await;
        assert_eq!(r.body["code"], "email_not_verified", "{}", r.text);
    }
    for _ in 0..4 {
        assert!(sink.next().await.body.contains("Hello mallory0,"));
    }
    assert!(
        sink.next_within(Duration::from_millis(500)).await.is_none(),
        "more than five links an hour for one account"
    );
}

#[tokio::test]
async fn staff_and_superusers_log_in_with_verification_required_whatever_their_address() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&format!(
        "{}email_verification = \"required\"\n",
        sink.config()
    ))
    .await;
    // Accounts that existed before the setting was switched on: a
    // superuser without an address (as `createsuperuser` makes one when
    // asked for none), and a staff user whose address was never verified.
    s.create_user("root", true).await;
    s.create_user("helper", false).await;
    s.sql(
        "UPDATE users SET is_staff = TRUE, email = 'helper@example.com' \
         WHERE username = 'helper'",
    )
    .await;
    for name in ["root", "helper"] {
        let r = login_with(&s, name, PASSWORD).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
    }
    // Anybody else still proves their address first.
    s.create_user("plain", false).await;
    s.sql("UPDATE users SET email = 'plain@example.com' WHERE username = 'plain'")
        .await;
    let r = login_with(&s, "plain", PASSWORD).await;
    assert_eq!(r.body["code"], "email_not_verified", "{}", r.text);
}

#[tokio::test]
async fn a_login_before_clicking_leaves_the_signup_link_working() {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let s = Server::start(&format!(
        "{}email_verification = \"required\"\n",
        sink.config()
    ))
    .await;
    sign_up(&s, "olga", "olga@example.com").await;
    let from_signup = sink.next().await.token("verify");
    // Tried as a new user would: a login before opening the mail is
    // refused, and mails another link ...
    let r = login_with(&s, "olga", PASSWORD).await;
    assert_eq!(r.body["code"], "email_not_verified", "{}", r.text);
    let from_login = sink.next().await.token("verify");
    assert_ne!(from_signup, from_login);
    // ... and the link of the signup mail, in the inbox first, still works.
    let verify = |token: String| {
        let s = &s;
        async move {
            s.post("/api/auth/email/verify", json!({"token": token}))
                .await
        }
    };
    let r = verify(from_signup.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(login_with(&s, "olga", PASSWORD).await.status, 200);
    // Once used, a link is used.
    assert_invalid_token(&verify(from_signup).await);
}
