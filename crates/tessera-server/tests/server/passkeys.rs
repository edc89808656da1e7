//! Passkeys (docs/API.md, "Passkeys"), with the software authenticator of
//! [`super::authenticator`]: registration (recovery codes with the first
//! factor), the list, a login's second step and a passwordless login
//! (each answering as its route would), removal, every WebAuthn bad input
//! refused with its body and the account unharmed, and a ceremony
//! finished on another instance than the one that began it.

use super::authenticator::{Authenticator, with_bad_signature};
use super::harness::*;
use super::mfa::{ROOMY, amr, audited, delete_with, enrol, post_with};
use serde_json::{Value, json};

const ORIGIN: &str = "https://auth.example.test";
const RP_ID: &str = "auth.example.test";

/// Settings of a server whose passkeys are bound to [`ORIGIN`], with
/// passwordless login on.
fn config() -> String {
    format!("{ROOMY}\npublic_url = \"{ORIGIN}\"\npasskey_login = true")
}

/// Registers a passkey of `authenticator` for the holder of `access`
/// (fresh), named `name`: the 201's body.
async fn register(
    s: &Server,
    access: &str,
    authenticator: &mut Authenticator,
    name: &str,
) -> Value {
    let r = post_with(s, "/api/auth/passkeys/register/start", access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let credential = authenticator.register(&r.body);
    let body = json!({"credential": credential, "name": name});
    let r = post_with(s, "/api/auth/passkeys/register/finish", access, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.body
}

/// The options of a registration begun with `access`.
async fn begin(s: &Server, access: &str) -> Value {
    let r = post_with(s, "/api/auth/passkeys/register/start", access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The first step of a password login of a user with a factor: the
/// `mfa_token`, the methods checked.
async fn first_step(s: &Server, username: &str, methods: Value) -> String {
    let r = s
        .post(
            "/api/token/",
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "mfa_required");
    assert_eq!(r.body["methods"], methods, "{}", r.text);
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

/// The options of a login's passkey step for `mfa_token`.
async fn second_factor_options(s: &Server, mfa_token: &str) -> Value {
    let r = s
        .post(
            "/api/auth/mfa/passkey/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.body
}

async fn finish_second_factor(s: &Server, mfa_token: &str, credential: Value) -> Reply {
    let body = json!({"mfa_token": mfa_token, "credential": credential});
    s.post("/api/auth/mfa/passkey/finish", body).await
}

async fn login_options(s: &Server) -> Value {
    let r = s.post("/api/auth/passkeys/login/start", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn finish_login(s: &Server, credential: Value) -> Reply {
    let body = json!({"credential": credential});
    s.post("/api/auth/passkeys/login/finish", body).await
}

fn assert_passkey_refused(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "The passkey was refused: start again.", "code": "passkey_invalid"})
    );
    assert!(r.header("www-authenticate").is_some(), "{}", r.text);
}

fn assert_registration_refused(r: &Reply) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"credential": [
            "This is not the answer to your passkey registration under way (it expired, was \
             finished, or is of another site): start it again."
        ]})
    );
}

/// A passkey's whole life: registered (the first factor, so with recovery
/// codes), listed, asked for and used at the password login's second step
/// (`amr` pwd+hwk+mfa), its use recorded, removed with a token of that
/// login (the last factor: the recovery codes go too), after which a
/// password alone logs in.
#[tokio::test]
async fn a_passkey_is_registered_listed_used_as_second_factor_and_removed() {
    let s = Server::start(&config()).await;
    s.create_user("ada", false).await;
    let (access, _) = s.login("ada").await;
    let r = post_with(&s, "/api/auth/passkeys/register/start", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let options = &r.body["publicKey"];
    assert_eq!(options["rp"]["id"], RP_ID);
    assert_eq!(options["user"]["name"], "ada");
    assert_eq!(
        options["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["excludeCredentials"], json!([]));
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    let credential = key.register(&r.body);
    let body = json!({"credential": credential, "name": "Laptop"});
    let before = s.now();
    let r = post_with(&s, "/api/auth/passkeys/register/finish", &access, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The test clock is the wall clock moved ahead: a second may pass.
    let created = r.body["created_at"].as_i64().unwrap();
    assert!((before..=s.now()).contains(&created), "{created}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 22, "{id}");
    let codes = r.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        r.body,
        json!({"id": id, "name": "Laptop", "created_at": created, "last_used_at": null,
               "recovery_codes": codes})
    );
    let listed = s.get_with_token("/api/auth/passkeys", &access).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body,
        json!([{"id": id, "name": "Laptop", "created_at": created, "last_used_at": null}])
    );

    let mfa_token = first_step(&s, "ada", json!(["passkey", "recovery_code"])).await;
    let options = second_factor_options(&s, &mfa_token).await;
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"],
        key.credential_id()
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    s.advance(std::time::Duration::from_secs(7));
    let before = s.now();
    let r = finish_second_factor(&s, &mfa_token, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    assert!(r.body["refresh"].is_string(), "{}", r.text);
    assert_eq!(amr(&access), json!(["pwd", "hwk", "mfa"]));
    let listed = s.get_with_token("/api/auth/passkeys", &access).await;
    let used = listed.body[0]["last_used_at"].as_i64().unwrap();
    assert!((before..=s.now()).contains(&used), "{used}");
    assert!(used >= created + 7, "{used} {created}");
    // The mfa_token is used up with it.
    let again = s
        .post(
            "/api/auth/mfa/passkey/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(again.status, 401, "{}", again.text);
    assert_eq!(again.body["code"], "mfa_token_invalid");

    let r = delete_with(&s, &format!("/api/auth/passkeys/{id}"), &access, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete_with(&s, &format!("/api/auth/passkeys/{id}"), &access, json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "You have no passkey of that id.", "code": "passkey_not_found"})
    );
    let listed = s.get_with_token("/api/auth/passkeys", &access).await;
    assert_eq!(listed.body, json!([]));
    let store = s.store().await;
    let ada = store.user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(store.recovery_codes_left(ada.id).await.unwrap(), 0);
    let r = s
        .post(
            "/api/token/",
            json!({"username": "ada", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(amr(r.body["access"].as_str().unwrap()), json!(["pwd"]));
    assert_eq!(audited(&s, "passkey_registered", 1).await.len(), 1);
    assert_eq!(audited(&s, "passkey_removed", 1).await.len(), 1);
    let used = audited(&s, "mfa_succeeded", 1).await;
    let detail: Value = serde_json::from_str(&used[0].detail).unwrap();
    assert_eq!(detail["factor"], "passkey");
}

/// With `passkey_login` on, a discoverable passkey alone logs in (`amr`
/// hwk+mfa, or swk for one its authenticator may copy), in the header
/// transport and in the cookie transport as `/api/token/` answers; a user
/// with a passkey and TOTP is offered both at the password's second step,
/// and a second passkey is no first factor (no new recovery codes) and
/// excludes the first. Off, the start is refused.
#[tokio::test]
async fn a_passkey_alone_logs_in_when_passkey_login_is_on() {
    let s = Server::start(&format!(
        "{}\ntoken_locations = [\"headers\", \"cookies\"]",
        config()
    ))
    .await;
    s.create_user("bo", false).await;
    let (access, _) = s.login("bo").await;
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    let first = register(&s, &access, &mut key, "").await;
    assert_eq!(first["name"], "Passkey");

    let options = login_options(&s).await;
    assert_eq!(options["publicKey"]["rpId"], RP_ID);
    assert!(
        options["publicKey"]
            .get("allowCredentials")
            .is_none_or(|a| a == &json!([])),
        "{options}"
    );
    let r = finish_login(&s, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["hwk", "mfa"])
    );
    assert!(r.body["refresh"].is_string());
    let fresh = r.body["access"].as_str().unwrap().to_owned();

    // A token of that login is fresh and multi-factor: it adds a second
    // passkey (synced: swk), which brings no new codes and was excluded.
    let r = post_with(&s, "/api/auth/passkeys/register/start", &fresh, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["publicKey"]["excludeCredentials"][0]["id"],
        key.credential_id()
    );
    let mut phone = Authenticator::new(ORIGIN, RP_ID);
    phone.synced = true;
    let credential = phone.register(&r.body);
    let body = json!({"credential": credential, "name": "Phone"});
    let r = post_with(&s, "/api/auth/passkeys/register/finish", &fresh, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("recovery_codes").is_none(), "{}", r.text);
    // Both answer to the same user handle.
    assert_eq!(phone.user_handle, key.user_handle);

    let options = login_options(&s).await;
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/passkeys/login/finish"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"credential": phone.assert(&options)})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["claims"]["amr"], json!(["swk", "mfa"]), "{}", r.text);
    assert!(r.body.get("access").is_none(), "{}", r.text);
    let cookies = r.headers.get_all("set-cookie").iter().count();
    assert_eq!(cookies, 4, "{:?}", r.headers);

    // TOTP besides: both offered, in order.
    enrol(&s, &fresh).await;
    first_step(&s, "bo", json!(["totp", "passkey", "recovery_code"])).await;
    let logins = audited(&s, "login_succeeded", 2).await;
    let by_passkey = logins
        .iter()
        .filter(|e| serde_json::from_str::<Value>(&e.detail).unwrap()["method"] == "passkey")
        .count();
    assert_eq!(by_passkey, 2);

    let off = Server::start(&format!("{ROOMY}\npublic_url = \"{ORIGIN}\"")).await;
    for path in [
        "/api/auth/passkeys/login/start",
        "/api/auth/passkeys/login/finish",
    ] {
        let body = json!({"credential": key.assert_challenge("AAAA")});
        let r = off.post(path, body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(
            r.body,
            json!({
                "detail": "Logging in with a passkey alone is off on this server: log in with \
                           your password.",
                "code": "passkey_login_disabled",
            })
        );
    }
    let none = Server::start(ROOMY).await;
    none.create_user("cy", false).await;
    let (access, _) = none.login("cy").await;
    let r = post_with(
        &none,
        "/api/auth/passkeys/register/start",
        &access,
        json!({}),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "detail": "Passkeys need the server's public_url, of a host name: its host is the \
                       passkeys' relying party.",
            "code": "passkeys_unavailable",
        })
    );
}

/// Every WebAuthn bad input is refused with its body, counted as a failed
/// login, audited, and leaves the account as it was: a registration's
/// answer of another ceremony, origin or relying party, finished twice, of
/// a credential registered already, with a name too long; a second step's
/// answer of another origin, relying party, challenge or user, with a bad
/// signature, replayed, with a counter gone back, of a removed passkey; a
/// body that is no credential. The right answer works after all of them.
#[tokio::test]
async fn every_bad_webauthn_answer_is_refused_and_the_account_unharmed() {
    let s = Server::start(&config()).await;
    s.create_user("di", false).await;
    s.create_user("ed", false).await;
    let (access, _) = s.login("di").await;
    let (eds_access, _) = s.login("ed").await;
    let path = "/api/auth/passkeys/register/finish";

    // Registration: a start replaced by another; another origin; another
    // relying party; no credential at all; one not an object; one of no
    // WebAuthn shape; a name too long.
    let start = "/api/auth/passkeys/register/start";
    let old = begin(&s, &access).await;
    let new = begin(&s, &access).await;
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    let r = post_with(&s, path, &access, json!({"credential": key.register(&old)})).await;
    assert_registration_refused(&r);
    let mut other_origin = Authenticator::new("https://evil.example.test", RP_ID);
    let r = post_with(
        &s,
        path,
        &access,
        json!({"credential": other_origin.register(&new)}),
    )
    .await;
    assert_registration_refused(&r);
    let new = begin(&s, &access).await;
    let mut other_rp = Authenticator::new(ORIGIN, "example.test");
    let r = post_with(
        &s,
        path,
        &access,
        json!({"credential": other_rp.register(&new)}),
    )
    .await;
    assert_registration_refused(&r);
    // Ed's registration under way is not Di's to finish.
    let eds = begin(&s, &eds_access).await;
    let r = post_with(&s, path, &access, json!({"credential": key.register(&eds)})).await;
    assert_registration_refused(&r);
    for (body, message) in [
        (json!({}), "This field is required."),
        (
            json!({"credential": "abc"}),
            "Expected an object: what PublicKeyCredential.toJSON() returns.",
        ),
        (
            json!({"credential": {"id": 1}}),
            "Not a WebAuthn credential: give what PublicKeyCredential.toJSON() returns.",
        ),
    ] {
        let r = post_with(&s, path, &access, body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body, json!({"credential": [message]}));
    }
    let new = begin(&s, &access).await;
    let credential = key.register(&new);
    let long = "n".repeat(101);
    let r = post_with(
        &s,
        path,
        &access,
        json!({"credential": credential, "name": long}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"name": ["A passkey's name is at most 100 characters, without control characters."]})
    );
    // The ceremony is still under way (the name was refused before it).
    let r = post_with(&s, path, &access, json!({"credential": credential})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Di has a factor now: a token of a password alone adds no other.
    let r = post_with(&s, start, &access, json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "fresh_token_required");

    // The second step.
    let mfa_token = first_step(&s, "di", json!(["passkey", "recovery_code"])).await;
    // Answers of the right key but for another origin or relying party,
    // of another key, of another challenge, with a bad signature: each in a
    // ceremony of its own (a refusal uses the ceremony up).
    let stranger = Authenticator::new(ORIGIN, RP_ID);
    for forgery in 0..5 {
        let options = second_factor_options(&s, &mfa_token).await;
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let answer = match forgery {
            0 => {
                key.origin = "https://evil.example.test".into();
                key.assert_challenge(challenge)
            }
            1 => {
                key.rp_id = "evil.example.test".into();
                key.assert_challenge(challenge)
            }
            2 => stranger.assert_challenge(challenge),
            3 => key.assert_challenge("bm90LXRoZS1jaGFsbGVuZ2U"),
            _ => with_bad_signature(&key.assert_challenge(challenge)),
        };
        key.origin = ORIGIN.into();
        key.rp_id = RP_ID.into();
        let r = finish_second_factor(&s, &mfa_token, answer).await;
        assert_passkey_refused(&r);
    }
    // Ed's mfa_token with Di's passkey answer of Di's ceremony.
    let (eds_access, _) = s.login("ed").await;
    let mut eds_key = Authenticator::new(ORIGIN, RP_ID);
    register(&s, &eds_access, &mut eds_key, "Ed's").await;
    let eds_token = first_step(&s, "ed", json!(["passkey", "recovery_code"])).await;
    let options = second_factor_options(&s, &mfa_token).await;
    let r = finish_second_factor(&s, &eds_token, key.assert(&options)).await;
    assert_passkey_refused(&r);
    // Replayed: the same answer twice (the first one right).
    let options = second_factor_options(&s, &mfa_token).await;
    let answer = key.assert(&options);
    let r = finish_second_factor(&s, &mfa_token, answer.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.body["access"].as_str().unwrap().to_owned();
    // With a token of that login: the registration finished already is
    // not finished again, and the same credential in a ceremony of its own
    // is refused (the options excluded it; a browser would not even make
    // it); registered by another user, it is registered already.
    let r = post_with(&s, path, &fresh, json!({"credential": credential})).await;
    assert_registration_refused(&r);
    let again = begin(&s, &fresh).await;
    let r = post_with(
        &s,
        path,
        &fresh,
        json!({"credential": key.register(&again)}),
    )
    .await;
    assert_registration_refused(&r);
    let dis_handle = key.user_handle.clone();
    s.create_user("fay", false).await;
    let (fays_access, _) = s.login("fay").await;
    let fays = begin(&s, &fays_access).await;
    let r = post_with(
        &s,
        path,
        &fays_access,
        json!({"credential": key.register(&fays)}),
    )
    .await;
    key.user_handle = dis_handle;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "This passkey is registered already.", "code": "passkey_already_registered"})
    );
    let mfa_token = first_step(&s, "di", json!(["passkey", "recovery_code"])).await;
    let r = finish_second_factor(&s, &mfa_token, answer).await;
    assert_passkey_refused(&r);
    // A counter gone back (a cloned authenticator), in a ceremony of its own.
    let options = second_factor_options(&s, &mfa_token).await;
    key.counter -= 1;
    let r = finish_second_factor(&s, &mfa_token, key.assert(&options)).await;
    assert_passkey_refused(&r);
    key.counter += 1;
    // Not a credential at all.
    for (body, field, message) in [
        (
            json!({"mfa_token": mfa_token}),
            "credential",
            "This field is required.",
        ),
        (
            json!({"mfa_token": mfa_token, "credential": []}),
            "credential",
            "Expected an object: what PublicKeyCredential.toJSON() returns.",
        ),
        (
            json!({"credential": {}}),
            "mfa_token",
            "This field is required.",
        ),
    ] {
        let r = s.post("/api/auth/mfa/passkey/finish", body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body[field], json!([message]), "{}", r.text);
    }
    let r = s
        .post(
            "/api/auth/mfa/passkey/start",
            json!({"mfa_token": "x".repeat(43)}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "mfa_token_invalid");

    // The right answer still works, after all of that.
    let options = second_factor_options(&s, &mfa_token).await;
    let r = finish_second_factor(&s, &mfa_token, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A removed passkey: its answers are refused, at the second step and alone.
    let id = s.get_with_token("/api/auth/passkeys", &fresh).await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = register(&s, &fresh, &mut Authenticator::new(ORIGIN, RP_ID), "Spare").await;
    assert!(second.get("recovery_codes").is_none());
    let r = delete_with(&s, &format!("/api/auth/passkeys/{id}"), &fresh, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let mfa_token = first_step(&s, "di", json!(["passkey", "recovery_code"])).await;
    let options = second_factor_options(&s, &mfa_token).await;
    let r = finish_second_factor(&s, &mfa_token, key.assert(&options)).await;
    assert_passkey_refused(&r);
    let options = login_options(&s).await;
    let r = finish_login(&s, key.assert(&options)).await;
    assert_passkey_refused(&r);

    let failures = audited(&s, "mfa_failed", 12).await;
    assert!(failures.len() >= 12, "{}", failures.len());
    let failed_logins = audited(&s, "login_failed", 1).await;
    let detail: Value = serde_json::from_str(&failed_logins[0].detail).unwrap();
    assert_eq!(
        detail,
        json!({"method": "passkey", "reason": "unknown_passkey"})
    );
    let r = s.me(&eds_access).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Each ceremony's start and finish may reach different instances (the
/// state waits in the database): a registration, a second step and a
/// passwordless login, each begun on one instance and finished on another.
#[tokio::test]
async fn a_ceremony_begun_on_one_instance_finishes_on_another() {
    let a = Server::start(&config()).await;
    let b = a.start_beside().await;
    a.create_user("flo", false).await;
    let (access, _) = a.login("flo").await;
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    let r = post_with(&a, "/api/auth/passkeys/register/start", &access, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let credential = key.register(&r.body);
    let body = json!({"credential": credential});
    let r = post_with(&b, "/api/auth/passkeys/register/finish", &access, body).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let mfa_token = first_step(&a, "flo", json!(["passkey", "recovery_code"])).await;
    let options = second_factor_options(&b, &mfa_token).await;
    let r = finish_second_factor(&a, &mfa_token, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["pwd", "hwk", "mfa"])
    );

    let options = login_options(&b).await;
    let answer = key.assert(&options);
    let r = finish_login(&a, answer.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Used once, on any instance.
    assert_passkey_refused(&finish_login(&b, answer).await);
}

/// Wrong passkey answers are failed logins: a burst meets 429 at the
/// login throttle's limit, and once the window has passed the right
/// passkey logs in, at the second step and alone.
#[tokio::test]
async fn a_burst_of_wrong_passkey_answers_meets_the_throttle() {
    let s = Server::start(&format!(
        "login_rate_limit = \"5/min\"\npublic_url = \"{ORIGIN}\"\npasskey_login = true"
    ))
    .await;
    s.create_user("gus", false).await;
    let (access, _) = s.login("gus").await;
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    register(&s, &access, &mut key, "Key").await;
    let stranger = Authenticator::new(ORIGIN, RP_ID);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let options = login_options(&s).await;
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let r = finish_login(&s, stranger.assert_challenge(challenge)).await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    s.advance(std::time::Duration::from_secs(61));
    let options = login_options(&s).await;
    let r = finish_login(&s, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A passkey answers the second step of every login route, which then
/// answers as that route would have: simplejwt's cookie transport, the
/// OAuth2 password grant, Flask-JWT-Extended's `/login`, FastAPI's `/token`.
#[tokio::test]
async fn every_login_route_takes_a_passkey_as_its_second_step() {
    let s = Server::start(&format!(
        "{}\ntoken_locations = [\"headers\", \"cookies\"]\ncompat = [\"flask_jwt_extended\", \"fastapi\"]",
        config()
    ))
    .await;
    let (access, _) = s.user("hal").await;
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    register(&s, &access, &mut key, "Key").await;
    let methods = json!(["passkey", "recovery_code"]);
    let firsts = [
        s.send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "hal", "password": PASSWORD})),
        )
        .await,
        s.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "hal"),
                ("password", PASSWORD),
            ],
        )
        .await,
        s.post("/login", json!({"username": "hal", "password": PASSWORD}))
            .await,
        s.post_form("/token", &[("username", "hal"), ("password", PASSWORD)])
            .await,
    ];
    let mut answers = Vec::new();
    for first in &firsts {
        assert_eq!(first.status, 401, "{}", first.text);
        assert_eq!(first.body["methods"], methods, "{}", first.text);
        let mfa_token = first.body["mfa_token"].as_str().unwrap();
        let options = second_factor_options(&s, mfa_token).await;
        let r = finish_second_factor(&s, mfa_token, key.assert(&options)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut fields: Vec<String> = r.body.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        answers.push((fields, r));
    }
    let (cookie_fields, cookie) = &answers[0];
    assert_eq!(cookie_fields, &["claims", "header", "refresh_csrf"]);
    assert_eq!(cookie.body["claims"]["amr"], json!(["pwd", "hwk", "mfa"]));
    assert_eq!(cookie.headers.get_all("set-cookie").iter().count(), 4);
    let (oauth_fields, oauth) = &answers[1];
    assert_eq!(
        oauth_fields,
        &["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(
        amr(oauth.body["access_token"].as_str().unwrap()),
        json!(["pwd", "hwk", "mfa"])
    );
    assert_eq!(answers[2].0, ["access_token", "refresh_token"]);
    let (fastapi_fields, fastapi) = &answers[3];
    assert_eq!(
        fastapi_fields,
        &["access_token", "expires_in", "refresh_token", "token_type"]
    );
    let access = fastapi.body["access_token"].as_str().unwrap();
    assert_eq!(s.me(access).await.status, 200);
}

/// With `mfa = "required"`, a user without a factor enrols a passkey with
/// the enrolment token their login answered with (and gets recovery
/// codes), then logs in with the password and the passkey.
#[tokio::test]
async fn the_enrolment_token_registers_a_passkey_when_a_factor_is_required() {
    let s = Server::start(&format!("{}\nmfa = \"required\"", config())).await;
    s.create_user("ida", false).await;
    let r = s
        .post(
            "/api/token/",
            json!({"username": "ida", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["code"], "mfa_enrolment_required");
    let enrolment = r.body["enrolment_token"].as_str().unwrap().to_owned();
    let mut key = Authenticator::new(ORIGIN, RP_ID);
    let registered = register(&s, &enrolment, &mut key, "Phone").await;
    assert_eq!(registered["recovery_codes"].as_array().unwrap().len(), 10);
    // It opens nothing else, and once the user has a factor it adds no
    // other: neither a passkey nor TOTP (already enrolled or not).
    let r = s.get_with_token("/api/auth/passkeys", &enrolment).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let start = "/api/auth/passkeys/register/start";
    assert_refused(
        &post_with(&s, start, &enrolment, json!({})).await,
        "invalid",
    );
    let r = post_with(&s, "/api/auth/mfa/totp", &enrolment, json!({})).await;
    assert_refused(&r, "invalid");
    let mfa_token = first_step(&s, "ida", json!(["passkey", "recovery_code"])).await;
    let options = second_factor_options(&s, &mfa_token).await;
    let r = finish_second_factor(&s, &mfa_token, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A passwordless login is as good as one with the password and a factor.
    let options = login_options(&s).await;
    let r = finish_login(&s, key.assert(&options)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A passwordless login's start needs no account, so one client address
/// may have only 10 under way at once (each lives 5 minutes): the 11th is
/// throttled, and once they expire it may start again.
#[tokio::test]
async fn one_client_holds_at_most_ten_passwordless_logins_under_way() {
    let s = Server::start(&config()).await;
    for _ in 0..10 {
        login_options(&s).await;
    }
    let r = s.post("/api/auth/passkeys/login/start", json!({})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(r.body["code"], "throttled");
    s.advance(std::time::Duration::from_secs(301));
    login_options(&s).await;
}
