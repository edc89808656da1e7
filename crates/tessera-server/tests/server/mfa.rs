//! Second factors (docs/API.md, "Second factors"): TOTP enrolment and
//! confirmation, the login's 401 `mfa_required` on every login route and
//! its second step answering as that route would have, recovery codes,
//! removal and regeneration, every bad input refused with its body and
//! counted by the login throttle, and a second step on another instance.

use super::harness::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Wrong codes are failed logins: a generous limit where a test is not
/// about the throttle (every request of a test comes from one address).
pub(super) const ROOMY: &str = "login_rate_limit = \"100/min\"";

/// A user's confirmed factor: its secret and its recovery codes.
pub(super) struct Enrolled {
    pub(super) secret: Vec<u8>,
    pub(super) recovery_codes: Vec<String>,
}

/// The TOTP code of `secret` at `at` (Unix seconds): RFC 6238, SHA-1, 6
/// digits, 30 s.
pub(super) fn code(secret: &[u8], at: i64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .unwrap()
        .generate(at as u64)
        .to_string()
}

/// The raw secret of an enrolment's base32.
pub(super) fn secret_of(base32: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(base32)
        .unwrap()
        .as_bytes()
        .to_vec()
}

pub(super) async fn post_with(s: &Server, path: &str, access: &str, body: Value) -> Reply {
    s.send(s.http.post(s.url(path)).bearer_auth(access).json(&body))
        .await
}

pub(super) async fn delete_with(s: &Server, path: &str, access: &str, body: Value) -> Reply {
    s.send(s.http.delete(s.url(path)).bearer_auth(access).json(&body))
        .await
}

/// Enrols and confirms a TOTP factor for the holder of `access` (fresh),
/// with a code of the server's clock now.
pub(super) async fn enrol(s: &Server, access: &str) -> Enrolled {
    let r = post_with(s, "/api/auth/mfa/totp", access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let secret = secret_of(r.body["secret"].as_str().unwrap());
    let r = post_with(
        s,
        "/api/auth/mfa/totp/confirm",
        access,
        json!({"code": code(&secret, s.now())}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let recovery_codes = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    Enrolled {
        secret,
        recovery_codes,
    }
}

/// The first step of a simplejwt login of a user with a factor: its
/// 401 `mfa_required`, checked, and the `mfa_token`.
pub(super) async fn first_step(s: &Server, username: &str) -> String {
    let r = s
        .post(
            "/api/token/",
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    mfa_token_of(&r)
}

/// The `mfa_token` of a 401 `mfa_required`, its other fields checked.
pub(super) fn mfa_token_of(r: &Reply) -> String {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["detail"], "Second factor required.", "{}", r.text);
    assert_eq!(r.body["code"], "mfa_required");
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "{token}");
    token
}

pub(super) async fn verify(s: &Server, mfa_token: &str, field: &str, value: &str) -> Reply {
    s.post(
        "/api/auth/mfa/verify",
        json!({"mfa_token": mfa_token, field: value}),
    )
    .await
}

pub(super) fn assert_code_invalid(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "The code is wrong or was used already.", "code": "mfa_code_invalid"})
    );
}

pub(super) fn assert_mfa_token_invalid(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "detail": "The second-factor token is invalid, expired or used: log in again.",
            "code": "mfa_token_invalid",
        })
    );
}

/// The audit events of kind `kind` once there are at least `count` (the
/// audit writer runs behind the requests; bounded by 20 s).
pub(super) async fn audited(
    s: &Server,
    kind: &str,
    count: usize,
) -> Vec<tessera_store::AuditRecord> {
    let filter = tessera_store::AuditFilter {
        event: Some(kind.into()),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, events) = s.store().await.audit_page(&filter, 0, 100).await.unwrap();
        if events.len() >= count {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} {kind} events",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `amr` of an access token.
pub(super) fn amr(access: &str) -> Value {
    segment(access, 1)["amr"].clone()
}

#[tokio::test]
async fn enrolment_then_logins_with_a_code_and_with_a_recovery_code() {
    let s = Server::start(ROOMY).await;
    let (access, _) = s.user("alice").await;
    assert_eq!(amr(&access), json!(["pwd"]));
    let r = post_with(&s, "/api/auth/mfa/totp", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let base32 = r.body["secret"].as_str().unwrap();
    assert_eq!(base32.len(), 32, "160 bits: {base32}");
    assert_eq!(
        r.body["otpauth_uri"],
        format!("otpauth://totp/Tessera:alice?secret={base32}&issuer=Tessera")
    );
    let svg = r.body["qr_svg"].as_str().unwrap();
    assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>"), "{svg}");
    let mut fields: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["otpauth_uri", "qr_svg", "secret"]);
    let secret = secret_of(base32);
    // Pending: a password alone still logs in.
    s.login("alice").await;
    // A wrong code confirms nothing; a malformed one says what a code is.
    let wrong = format!(
        "{:06}",
        (code(&secret, s.now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &access,
        json!({"code": wrong}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"code": ["The code is wrong or was used already."]})
    );
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &access,
        json!({"code": "12345"}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"code": ["Enter the 6 digits your authenticator app shows."]})
    );
    let now = code(&secret, s.now());
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &access,
        json!({"code": now}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let codes = r.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.as_str().is_some_and(|c| c.len() == 11 && &c[5..6] == "-"))
    );
    // Confirmed: enrolling again is refused, as is confirming again.
    let r = post_with(&s, "/api/auth/mfa/totp", &access, json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "mfa_already_enrolled");

    // The login: 401 mfa_required, then the code. The code that confirmed
    // was of this step: a code of the next one.
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    let r = verify(&s, &token, "code", &code(&secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let access = r.body["access"].as_str().unwrap();
    let refresh = r.body["refresh"].as_str().unwrap();
    assert_eq!(amr(access), json!(["pwd", "otp", "mfa"]));
    assert_eq!(segment(access, 1)["fresh"], true);
    assert_eq!(s.me(access).await.status, 200);
    // A refresh carries the family's amr.
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["pwd", "otp", "mfa"])
    );
    // The token is used: once only.
    assert_mfa_token_invalid(&verify(&s, &token, "code", &code(&secret, s.now())).await);

    // A recovery code, typed in capitals without its hyphen.
    let first = codes[0].as_str().unwrap();
    let token = first_step(&s, "alice").await;
    let typed = first.replace('-', "").to_uppercase();
    let r = verify(&s, &token, "recovery_code", &typed).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["pwd", "otp", "mfa"])
    );
    // Used once: refused the second time, the challenge kept for another try.
    let token = first_step(&s, "alice").await;
    assert_code_invalid(&verify(&s, &token, "recovery_code", first).await);
    let r = verify(&s, &token, "recovery_code", codes[1].as_str().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn bad_codes_and_bad_mfa_tokens_are_refused_each_with_its_body() {
    let s = Server::start(ROOMY).await;
    let (alice, _) = s.user("alice").await;
    let a = enrol(&s, &alice).await;
    let (bob, _) = s.user("bob").await;
    let b = enrol(&s, &bob).await;
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    // A code from five minutes ago, and one of another user's secret.
    assert_code_invalid(&verify(&s, &token, "code", &code(&a.secret, s.now() - 300)).await);
    assert_code_invalid(&verify(&s, &token, "code", &code(&b.secret, s.now())).await);
    // The wrong length or alphabet: a field error (counted all the same).
    for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", " 123456", ""] {
        let r = verify(&s, &token, "code", bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"code": ["Enter the 6 digits your authenticator app shows."]}),
            "{bad:?}"
        );
    }
    for bad in ["abcde-fghj", "abcde-fghjo", "0000000000"] {
        let r = verify(&s, &token, "recovery_code", bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"recovery_code": ["A recovery code is 10 letters and digits, as it was shown (xxxxx-xxxxx)."]})
        );
    }
    // Another user's recovery code.
    assert_code_invalid(&verify(&s, &token, "recovery_code", &b.recovery_codes[0]).await);
    // Both fields, or neither.
    let r = s
        .post(
            "/api/auth/mfa/verify",
            json!({"mfa_token": token, "code": "123456", "recovery_code": "abcde-fghjk"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["Give either code or recovery_code, not both."]})
    );
    let r = s
        .post("/api/auth/mfa/verify", json!({"code": "123456"}))
        .await;
    assert_eq!(r.body, json!({"mfa_token": ["This field is required."]}));
    // Unknown tokens, of any shape.
    for bad in ["x", &"A".repeat(43), &token[..42]] {
        assert_mfa_token_invalid(&verify(&s, bad, "code", &code(&a.secret, s.now())).await);
    }
    // Another user's token: the code is checked against that user's factor.
    let bobs = first_step(&s, "bob").await;
    assert_code_invalid(&verify(&s, &bobs, "code", &code(&a.secret, s.now())).await);
    // The challenge survived every wrong answer; a code of this step works
    // once, and again not even on a new challenge.
    let now = code(&a.secret, s.now());
    let r = verify(&s, &token, "code", &now).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = first_step(&s, "alice").await;
    assert_code_invalid(&verify(&s, &token, "code", &now).await);
    // An earlier step's code is refused once a later one was accepted.
    assert_code_invalid(&verify(&s, &token, "code", &code(&a.secret, s.now() - 30)).await);
    // Every refusal is audited, never with the code.
    let events = audited(&s, "mfa_failed", 18).await;
    assert_eq!(events.len(), 18, "{events:?}");
    assert!(
        events.iter().all(|e| !e.detail.contains(&now)),
        "{events:?}"
    );
    let reasons: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap()["reason"].to_string())
        .collect();
    assert_eq!(
        reasons.into_iter().collect::<Vec<_>>(),
        ["\"malformed\"", "\"token\"", "\"used\"", "\"wrong\""]
    );
}

#[tokio::test]
async fn an_mfa_token_lives_five_minutes() {
    let s = Server::start(ROOMY).await;
    let (access, _) = s.user("alice").await;
    let a = enrol(&s, &access).await;
    let token = first_step(&s, "alice").await;
    s.advance(Duration::from_secs(301));
    assert_mfa_token_invalid(&verify(&s, &token, "code", &code(&a.secret, s.now())).await);
    let token = first_step(&s, "alice").await;
    // The server's clock is the wall clock moved ahead, and its seconds are
    // whole: 295 s leave the test's own time (under load, seconds) to spare.
    s.advance(Duration::from_secs(295));
    let r = verify(&s, &token, "code", &code(&a.secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_burst_of_wrong_codes_meets_429_and_the_right_code_works_after_the_window() {
    let s = Server::start("login_rate_limit = \"5/min\"").await;
    let (access, _) = s.user("alice").await;
    let a = enrol(&s, &access).await;
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    let right = code(&a.secret, s.now());
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let r = verify(&s, &token, "code", &wrong).await;
        if r.status == 429 {
            assert_eq!(r.body["code"], "throttled", "{}", r.text);
            assert!(r.header("retry-after").is_some());
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Throttled, even the right code waits; a password too.
    assert_eq!(verify(&s, &token, "code", &right).await.status, 429);
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    // After the window the right code of now still logs in.
    s.advance(Duration::from_secs(61));
    let r = verify(&s, &token, "code", &code(&a.secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn removal_and_regeneration_need_the_second_factor() {
    let s = Server::start(ROOMY).await;
    let (before, _) = s.user("alice").await;
    let a = enrol(&s, &before).await;
    // A token from before the factor, fresh as it is, changes nothing now.
    for r in [
        post_with(&s, "/api/auth/mfa/recovery-codes", &before, json!({})).await,
        delete_with(
            &s,
            "/api/auth/mfa/totp",
            &before,
            json!({"recovery_code": a.recovery_codes[0]}),
        )
        .await,
    ] {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body["code"], "fresh_token_required", "{}", r.text);
    }
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    let r = verify(&s, &token, "code", &code(&a.secret, s.now())).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh"].as_str().unwrap().to_owned();
    // Regeneration: ten new codes, the old ones void.
    let r = post_with(&s, "/api/auth/mfa/recovery-codes", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let new: Vec<String> = serde_json::from_value(r.body["recovery_codes"].clone()).unwrap();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !a.recovery_codes.contains(c)));
    let token = first_step(&s, "alice").await;
    assert_code_invalid(&verify(&s, &token, "recovery_code", &a.recovery_codes[2]).await);
    // A refreshed token is not fresh.
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    let refreshed = r.body["access"].as_str().unwrap();
    let r = post_with(&s, "/api/auth/mfa/recovery-codes", refreshed, json!({})).await;
    assert_eq!(r.body["code"], "fresh_token_required", "{}", r.text);
    // Removal: a wrong code refuses it, a recovery code does it.
    let r = delete_with(&s, "/api/auth/mfa/totp", &access, json!({"code": "000000"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = delete_with(
        &s,
        "/api/auth/mfa/totp",
        &access,
        json!({"recovery_code": new[0]}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // A password alone logs in again; there is nothing left to remove.
    let (plain, _) = s.login("alice").await;
    assert_eq!(amr(&plain), json!(["pwd"]));
    let r = delete_with(
        &s,
        "/api/auth/mfa/totp",
        &access,
        json!({"recovery_code": new[1]}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "mfa_not_enrolled");
    let r = post_with(&s, "/api/auth/mfa/recovery-codes", &plain, json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    // Each change audited.
    for kind in [
        "totp_enrolment_started",
        "totp_confirmed",
        "recovery_codes_regenerated",
        "totp_removed",
        "mfa_required",
        "mfa_succeeded",
    ] {
        audited(&s, kind, 1).await;
    }
}

#[tokio::test]
async fn every_login_route_asks_and_its_second_step_answers_as_the_route_would_have() {
    let s = Server::start(&format!(
        "{ROOMY}\ntoken_locations = [\"headers\", \"cookies\"]\ncompat = [\"flask_jwt_extended\", \"fastapi\"]"
    ))
    .await;
    let (access, _) = s.user("alice").await;
    let a = enrol(&s, &access).await;
    let mut at = s.now();
    let mut next_code = || {
        // Each login a code of a later step (each step is accepted once).
        s.advance(Duration::from_secs(30));
        at += 30;
        code(&a.secret, at)
    };

    // Cookie transport: the cookies and the decoded claims.
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    let token = mfa_token_of(&r);
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
    let r = verify(&s, &token, "code", &next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for name in [
        "access_token_cookie=",
        "refresh_token_cookie=",
        "csrf_access_token=",
    ] {
        assert!(
            cookies.iter().any(|c| c.starts_with(name)),
            "{name}: {cookies:?}"
        );
    }
    assert_eq!(r.body["claims"]["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(r.body["claims"]["username"], "alice");
    assert!(r.body["refresh_csrf"].is_string(), "{}", r.text);

    // OAuth2's password grant: its error shape with the same fields.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let token = mfa_token_of(&r);
    assert_eq!(r.body["error"], "mfa_required");
    assert_eq!(r.body["error_description"], "Second factor required.");
    let r = verify(&s, &token, "code", &next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut fields: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(
        amr(r.body["access_token"].as_str().unwrap()),
        json!(["pwd", "otp", "mfa"])
    );

    // Flask-JWT-Extended's login: `msg` beside the fields.
    let r = s
        .post("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    let token = mfa_token_of(&r);
    assert_eq!(r.body["msg"], "Second factor required.");
    let r = verify(&s, &token, "code", &next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut fields: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["access_token", "refresh_token"]);

    // FastAPI's token route.
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    let token = mfa_token_of(&r);
    let r = verify(&s, &token, "code", &next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "bearer");
    let access = r.body["access_token"].as_str().unwrap();
    assert_eq!(s.me(access).await.status, 200);
}

#[tokio::test]
async fn the_second_step_may_reach_another_instance_which_knows_the_code_was_used() {
    let first = Server::start(ROOMY).await;
    let second = first.start_beside().await;
    let (access, _) = first.user("alice").await;
    let a = enrol(&first, &access).await;
    first.advance(Duration::from_secs(30));
    second.advance(Duration::from_secs(30));
    // The password on one, the code on the other.
    let token = first_step(&first, "alice").await;
    let now = code(&a.secret, second.now());
    let r = verify(&second, &token, "code", &now).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        second.me(r.body["access"].as_str().unwrap()).await.status,
        200
    );
    // The same code on the first, for another login: the database says used.
    let token = first_step(&first, "alice").await;
    assert_code_invalid(&verify(&first, &token, "code", &now).await);
    // The token used on the second is used for the first too.
    let token = first_step(&second, "alice").await;
    let r = verify(&first, &token, "recovery_code", &a.recovery_codes[0]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_mfa_token_invalid(&verify(&second, &token, "recovery_code", &a.recovery_codes[1]).await);
}

/// The Python of the test tools' virtual environment, with pyotp.
fn pyotp() -> Option<PathBuf> {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-pyjwt");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import pyotp"])
        .output()
        .is_ok_and(|o| o.status.success());
    let what = format!("pyotp in the virtual environment {}", venv.display());
    available(&what, ready).then_some(python)
}

/// An independent implementation: pyotp reads the otpauth URI enrolment
/// answers and makes the codes that confirm the factor and log in.
#[tokio::test]
async fn codes_made_by_pyotp_from_the_otpauth_uri_confirm_and_log_in() {
    let Some(python) = pyotp() else { return };
    let s = Server::start(ROOMY).await;
    let (access, _) = s.user("alice").await;
    let r = post_with(&s, "/api/auth/mfa/totp", &access, json!({})).await;
    let uri = r.body["otpauth_uri"].as_str().unwrap().to_owned();
    let pyotp_code = |at: i64| {
        let out = Command::new(&python)
            .args([
                "-c",
                "import sys, pyotp\n\
                 t = pyotp.parse_uri(sys.argv[1])\n\
                 assert (t.digits, t.interval, t.issuer, t.name) == (6, 30, 'Tessera', 'alice')\n\
                 print(t.at(int(sys.argv[2])))",
                &uri,
                &at.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &access,
        json!({"code": pyotp_code(s.now())}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    let r = verify(&s, &token, "code", &pyotp_code(s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["pwd", "otp", "mfa"])
    );
}

/// The right password no longer forgives the user's failed attempts while
/// a second factor is due: only a right code does. (Each request from an
/// address of its own, so that the username's count alone decides.)
#[tokio::test]
async fn a_password_alone_forgives_no_wrong_code() {
    let s = Server::start("login_rate_limit = \"5/min\"\ntrusted_proxies = [\"127.0.0.1\"]").await;
    let (access, _) = s.user("alice").await;
    let a = enrol(&s, &access).await;
    s.advance(Duration::from_secs(30));
    let sent = std::cell::Cell::new(0);
    let from = |request: reqwest::RequestBuilder| {
        sent.set(sent.get() + 1);
        request.header("X-Forwarded-For", format!("192.0.2.{}", sent.get()))
    };
    let password = json!({"username": "alice", "password": PASSWORD});
    let wrong = |token: &str| {
        let body = json!({"mfa_token": token, "code": code(&a.secret, s.now() - 300)});
        from(s.http.post(s.url("/api/auth/mfa/verify"))).json(&body)
    };
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = s
            .send(from(s.http.post(s.url("/api/token/"))).json(&password))
            .await;
        let token = mfa_token_of(&r);
        for _ in 0..2 {
            assert_code_invalid(&s.send(wrong(&token)).await);
        }
        tokens.push(token);
    }
    // Four failures: a fifth password is still checked, and forgives nothing.
    let r = s
        .send(from(s.http.post(s.url("/api/token/"))).json(&password))
        .await;
    let token = mfa_token_of(&r);
    assert_code_invalid(&s.send(wrong(&token)).await);
    let r = s.send(wrong(&token)).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let r = s
        .send(from(s.http.post(s.url("/api/token/"))).json(&password))
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    // A right code after the window forgives them all.
    s.advance(Duration::from_secs(61));
    let right = json!({"mfa_token": tokens[0], "code": code(&a.secret, s.now())});
    let r = s
        .send(from(s.http.post(s.url("/api/auth/mfa/verify"))).json(&right))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
