//! Key rotation while tokens are live, and the keys and users CLI.

use super::harness::*;
use serde_json::json;
use std::time::Duration;

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_until_they_expire_then_drops_the_old_key() {
    let s = Server::start(
        "algorithm = \"ES256\"\naccess_token_lifetime = \"3s\"\nrefresh_token_lifetime = \"4s\"",
    )
    .await;
    let (old_access, old_refresh) = s.user("alice").await;
    let old_kid = segment(&old_access, 0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        kids(&s.get("/.well-known/jwks.json").await.body),
        vec![old_kid.clone()]
    );

    // `--now`: the new key signs at once (an emergency), not after
    // key_publish_lead.
    let (code, out, err) = s.cli(&["keys", "rotate", "--now"], None).await;
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.starts_with("New signing key "), "{out}");
    // The running server picks the rotation up from the change log.
    s.caught_up().await;

    assert_eq!(
        s.me(&old_access).await.status,
        200,
        "a token signed by the old key still verifies"
    );
    let (new_access, _) = s.login("alice").await;
    let new_kid = segment(&new_access, 0)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert!(out.contains(&new_kid), "{out}");
    assert_eq!(s.me(&new_access).await.status, 200);
    let mut both = kids(&s.get("/.well-known/jwks.json").await.body);
    both.sort();
    let mut expected = vec![old_kid.clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(both, expected);
    // A refresh token signed by the old key yields an access token signed by the new one.
    let r = s
        .post("/api/token/refresh/", json!({"refresh": old_refresh}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        segment(r.body["access"].as_str().unwrap(), 0)["kid"],
        new_kid.as_str()
    );

    let (code, out, _) = s.cli(&["keys", "list"], None).await;
    assert_eq!(code, 0);
    let line = |kid: &str| {
        out.lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line(&new_kid).contains("ES256") && line(&new_kid).ends_with("signing"),
        "{out}"
    );
    assert!(line(&old_kid).contains("verifying until"), "{out}");

    // Past the longest lifetime (4 s) after the rotation, only the new key
    // remains. Times are whole seconds, and the rotation's second was taken
    // by the CLI's own clock a moment ago: 4.3 s could land on the very
    // second the old key retires (it failed so once on a loaded machine),
    // 5.5 s is past it whatever the fractions.
    s.advance(Duration::from_millis(5500));
    assert_eq!(
        kids(&s.get("/.well-known/jwks.json").await.body),
        vec![new_kid.clone()]
    );
    assert_eq!(
        s.me(&new_access).await.status,
        401,
        "3 s access lifetime is over too"
    );
    let (fresh, _) = s.login("alice").await;
    assert_eq!(s.me(&fresh).await.status, 200);
}

#[tokio::test]
async fn rotation_to_another_algorithm_signs_with_it_at_once() {
    let s = Server::start("").await;
    let (hs_access, _) = s.user("alice").await;
    let (code, _, err) = s
        .cli(&["keys", "rotate", "--algorithm", "EdDSA", "--now"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("configured algorithm is HS256"), "{err}");
    s.caught_up().await;
    let (ed_access, _) = s.login("alice").await;
    assert_eq!(segment(&ed_access, 0)["alg"], "EdDSA");
    assert_eq!(s.me(&ed_access).await.status, 200);
    // An asymmetric key in service retires every HMAC key at once, on this
    // server too although its own settings say HS256.
    assert_refused(&s.me(&hs_access).await, "invalid");
    let (code, _, err) = s
        .cli(&["keys", "rotate", "--algorithm", "HS999"], None)
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("HS256"), "{err}");
}

#[tokio::test]
async fn hmac_tokens_are_refused_at_once_after_a_switch_to_an_asymmetric_algorithm() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    s.create_user("root", true).await;
    // The HS256 secret, as anyone who once read the database or the
    // configuration has it.
    let store = s.store().await;
    let old = store.signing_keys().await.unwrap();
    let (secret, kid) = (old[0].private_key.clone(), old[0].kid.clone());
    let now = segment(&refresh, 1)["iat"].as_i64().unwrap();
    let forged = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &json!({"token_type": "refresh", "exp": now + 10 * 365 * 86_400, "iat": now,
                "jti": "f".repeat(32), "fid": "e".repeat(32), "user_id": 2, "sub": "2", "ver": 0}),
        &secret,
    );
    // At once: without the lead a switching start would publish the new key
    // first (see the next test).
    let s = s
        .restart_with("algorithm = \"ES256\"\nkey_publish_lead = \"0s\"")
        .await;
    assert_refused(&s.me(&access).await, "invalid");
    for token in [&refresh, &forged] {
        assert_token_not_valid(
            &s.post("/api/token/refresh/", json!({"refresh": token}))
                .await,
        );
    }
    let jwks = s.get("/.well-known/jwks.json").await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    let discovery = s.get("/.well-known/openid-configuration").await;
    assert!(!discovery.text.contains("HS256"), "{}", discovery.text);
    // Logins sign with ES256 and work.
    let (es, _) = s.login("alice").await;
    assert_eq!(segment(&es, 0)["alg"], "ES256");
    assert_eq!(s.me(&es).await.status, 200);
}

#[tokio::test]
async fn keys_rotate_to_an_asymmetric_algorithm_retires_hmac_at_once_and_an_old_instance_cannot_switch_back()
 {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    s.create_user("root", true).await;
    let root = s.me(&s.login("root").await.0).await.body["id"]
        .as_i64()
        .unwrap();
    // An admin token forged with the HS256 secret, as anyone who once read
    // the database or the configuration could.
    let store = s.store().await;
    let old = store.signing_keys().await.unwrap();
    let (secret, kid) = (old[0].private_key.clone(), old[0].kid.clone());
    let now = segment(&access, 1)["iat"].as_i64().unwrap();
    let forged = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &json!({"token_type": "access", "exp": now + 86_400, "iat": now, "jti": "f".repeat(32),
                "fid": "e".repeat(32), "user_id": root, "sub": root.to_string(), "ver": 0,
                "username": "root", "fresh": true}),
        &secret,
    );
    assert_eq!(
        s.me(&forged).await.status,
        200,
        "the forged token works before"
    );
    // The deployment switches on purpose: the server runs on, unrestarted,
    // with its HS256 settings.
    let (code, _, err) = s
        .cli_with_env(
            &["keys", "rotate", "--now"],
            None,
            &[("TESSERA_ALGORITHM", "ES256")],
        )
        .await;
    assert_eq!(code, 0, "{err}");
    s.caught_up().await;
    assert_refused(&s.me(&forged).await, "invalid");
    assert_refused(&s.me(&access).await, "invalid");
    let r = s
        .send(s.http.get(s.url("/api/admin/users")).bearer_auth(&forged))
        .await;
    assert_eq!(r.status, 401);
    let discovery = s.get("/.well-known/openid-configuration").await;
    assert!(!discovery.text.contains("HS256"), "{}", discovery.text);
    let jwks = s.get("/.well-known/jwks.json").await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    let (es, _) = s.login("alice").await;
    assert_eq!(segment(&es, 0)["alg"], "ES256");
    let (code, out, _) = s.cli(&["keys", "list"], None).await;
    assert_eq!(code, 0);
    let hs_line = out.lines().find(|l| l.contains("HS256")).unwrap();
    assert!(
        hs_line.ends_with("refused (HMAC, with an asymmetric key in service)"),
        "{out}"
    );
    // Another instance started with the old settings refuses to start
    // rather than switch the deployment back to HS256.
    let started = tokio::time::timeout(Duration::from_secs(30), s.cli(&["serve"], None))
        .await
        .expect("serve with the old algorithm stops at once");
    let (code, _, err) = started;
    assert_ne!(code, 0);
    assert!(
        err.contains("the key in service is ES256, this instance is configured for HS256"),
        "{err}"
    );
    let in_service: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.algorithm)
        .collect();
    assert_eq!(in_service, ["ES256"]);
    assert_eq!(s.me(&es).await.status, 200);
}

/// `tessera keys rotate` without `--now`: the new key is published at once
/// (JWKS, discovery, `/readyz`, `keys list`) and signs once
/// key_publish_lead (5 minutes by default) has passed, on the database's
/// clock; the old key signs until then, and verifies on after.
#[tokio::test]
async fn a_rotated_key_is_published_at_once_and_signs_after_the_lead() {
    use tessera_core::clock::{Clock, SystemClock};
    let s = Server::start("algorithm = \"ES256\"").await;
    let (_, refresh) = s.user("alice").await;
    let old_kid = s.store().await.signing_keys().await.unwrap()[0].kid.clone();

    let before = SystemClock.now();
    let (code, out, err) = s
        .cli(&["keys", "rotate", "--algorithm", "EdDSA"], None)
        .await;
    let after = SystemClock.now();
    assert_eq!(code, 0, "{out} {err}");
    s.caught_up().await;
    let stored = s.store().await.signing_keys().await.unwrap();
    let new = stored.iter().find(|k| k.algorithm == "EdDSA").unwrap();
    let (new_kid, signs_from) = (new.kid.clone(), new.signs_from.unwrap());
    // Five minutes after the rotation, on the database's clock (this
    // machine's, for SQLite and the test's PostgreSQL alike).
    assert!(
        (before + 300..=after + 301).contains(&signs_from),
        "{before} {signs_from} {after}"
    );
    let at = tessera_server::http::routes::accounts::timestamp(signs_from);
    assert_eq!(
        out.trim(),
        format!(
            "New key {new_kid} (EdDSA) published; every instance signs with it from {at} \
             (key_publish_lead = \"5m\"), the key in service until then."
        )
    );

    // Published: in the JWKS, in discovery's algorithms.
    let mut expected = vec![old_kid.clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(kids(&s.get("/.well-known/jwks.json").await.body), expected);
    let discovery = s.get("/.well-known/openid-configuration").await.body;
    assert_eq!(
        discovery["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    // `/readyz` says which key signs next, and from when on this instance's
    // clock: the database's moment, as read here (the same clock here,
    // give or take the rounding up to a whole second).
    let ready = s.get("/readyz").await;
    assert_eq!(ready.status, 200);
    let here = ready.body["next_key"]["signs_from"].as_i64().unwrap();
    assert!(
        (signs_from..=signs_from + 1).contains(&here),
        "{}",
        ready.text
    );
    assert_eq!(
        ready.body,
        json!({
            "status": "ready",
            "applied_change": ready.body["applied_change"],
            "next_key": {"kid": new_kid, "alg": "EdDSA", "signs_from": here},
        })
    );
    // `keys list`: the one signing until then, the one published.
    let (code, out, _) = s.cli(&["keys", "list"], None).await;
    assert_eq!(code, 0);
    let line = |kid: &str| out.lines().find(|l| l.starts_with(kid)).unwrap().to_owned();
    assert!(
        line(&new_kid).ends_with(&format!("published, signs from {at}")),
        "{out}"
    );
    assert!(
        line(&old_kid).ends_with(&format!("signing until {at}")),
        "{out}"
    );
    // The old key signs meanwhile.
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    assert_eq!(segment(&access, 0)["kid"], old_kid.as_str());

    // Once the moment has passed (this server's clock moved past it, no
    // change in between): the new key signs, the old one verifies on.
    s.advance(Duration::from_secs((here - SystemClock.now()) as u64 + 1));
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    assert_eq!(segment(&access, 0)["kid"], new_kid.as_str());
    assert_eq!(segment(&access, 0)["alg"], "EdDSA");
    assert_eq!(s.me(&access).await.status, 200);
    let ready = s.get("/readyz").await;
    assert!(ready.body.get("next_key").is_none(), "{}", ready.text);
    assert_eq!(kids(&s.get("/.well-known/jwks.json").await.body), expected);
}

/// A start that switches from HMAC to published keys (an asymmetric
/// `algorithm` after an HMAC one) publishes the new key ahead too: HMAC
/// tokens work until it signs, and are refused from that moment on. (The
/// moment is the database's, so this test waits for it: moving this
/// server's clock would only put it ahead of the database's.)
#[tokio::test]
async fn a_switch_to_published_keys_at_start_publishes_ahead_and_refuses_hmac_once_it_signs() {
    use tessera_core::clock::{Clock, SystemClock};
    let s = Server::start("").await;
    let (_, refresh) = s.user("alice").await;
    let s = s
        .restart_with("algorithm = \"ES256\"\nkey_publish_lead = \"2s\"")
        .await;
    let jwks = s.get("/.well-known/jwks.json").await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    let ready = s.get("/readyz").await.body;
    assert_eq!(ready["next_key"]["alg"], "ES256", "{ready}");
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        segment(r.body["access"].as_str().unwrap(), 0)["alg"],
        "HS256"
    );

    // Refused from the switch on: polled (the moment is whole seconds of a
    // clock that is not this one; a loaded machine answers late), never
    // before `signs_from`, at most 3 s after it.
    let signs_from = ready["next_key"]["signs_from"].as_i64().unwrap();
    let refused = loop {
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        if r.status != 200 || SystemClock.now() > signs_from + 3 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_token_not_valid(&refused);
    assert!(
        SystemClock.now() >= signs_from - 1,
        "refused before the switch"
    );
    let (es, _) = s.login("alice").await;
    assert_eq!(segment(&es, 0)["alg"], "ES256");
    assert_eq!(s.me(&es).await.status, 200);
    assert!(s.get("/readyz").await.body.get("next_key").is_none());
}

#[tokio::test]
async fn no_cli_command_puts_a_key_in_service_but_keys_rotate() {
    let s = Server::start("algorithm = \"ES256\"").await;
    s.create_user("alice", false).await;
    let kids_before = kids(&s.get("/.well-known/jwks.json").await.body);
    // Commands run with another algorithm in their environment, as an
    // operator's shell without the server's settings would.
    let hs = [("TESSERA_ALGORITHM", "HS256")];
    let (code, _, err) = s
        .cli_with_env(
            &["createsuperuser", "--username", "root", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
            &hs,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the key in service is ES256"), "{err}");
    for args in [
        &["users", "deactivate", "alice"][..],
        &["users", "list"],
        &["keys", "list"],
    ] {
        let (code, _, err) = s.cli_with_env(args, None, &hs).await;
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let (code, out, err) = s
        .cli_with_env(&["token", "issue", "--username", "root"], None, &hs)
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(segment(out.trim(), 0)["alg"], "ES256");
    s.caught_up().await;
    assert_eq!(
        kids(&s.get("/.well-known/jwks.json").await.body),
        kids_before
    );
    let store = s.store().await;
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    let (root, _) = s.login("root").await;
    assert_eq!(segment(&root, 0)["alg"], "ES256", "the server kept its key");
}

#[tokio::test]
async fn a_configured_key_cannot_be_rotated_from_the_cli() {
    let s = Server::start(&format!("signing_key = \"{HS_SECRET}\"")).await;
    let (code, _, err) = s.cli(&["keys", "rotate"], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("signing_key"), "{err}");
}

#[tokio::test]
async fn users_cli_lists_and_deactivates() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    s.create_user("bob", false).await;
    let (code, out, _) = s.cli(&["users", "list"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("alice") && out.contains("bob"), "{out}");
    let (code, out, err) = s.cli(&["users", "deactivate", "alice"], None).await;
    assert_eq!(code, 0, "{out} {err}");
    s.caught_up().await;
    assert_refused(&s.me(&access).await, "revoked");
    let (code, _, err) = s.cli(&["users", "deactivate", "nobody"], None).await;
    assert_ne!(code, 0);
    assert!(err.contains("nobody"), "{err}");
}

#[tokio::test]
async fn token_issue_prints_a_working_service_token() {
    let s = Server::start("").await;
    s.create_user("svc", false).await;
    let (code, out, err) = s
        .cli(
            &["token", "issue", "--username", "svc", "--lifetime", "10m"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let token = out.trim();
    let claims = segment(token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(claims["token_type"], "access");
    assert_eq!(s.me(token).await.status, 200);
    let (code, _, _) = s
        .cli(&["token", "issue", "--username", "nobody"], None)
        .await;
    assert_ne!(code, 0);
    let (code, _, _) = s
        .cli(
            &["token", "issue", "--username", "svc", "--lifetime", "soon"],
            None,
        )
        .await;
    assert_ne!(code, 0);
}
