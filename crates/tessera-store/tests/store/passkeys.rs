//! Passkeys and their ceremonies: a passkey added with recovery codes only
//! as the first factor, bounded per user, unique by credential; its
//! counter accepted only upwards (also among concurrent uses); removal of
//! the last factor taking the codes; ceremonies taken once, replaced per
//! user and per `mfa_token`, bounded when anonymous, pruned once expired.

use crate::{Engine, all_at_once, new_user};
use tessera_store::*;

fn passkey(id: &str, user_id: i64, credential: &str, at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: id.into(),
        user_id,
        credential_id: credential.into(),
        user_handle: "4d1f0a8e-3b7c-4e2a-9c55-0d6f1e2a3b4c".into(),
        name: "Laptop".into(),
        passkey: format!("{{\"cred\":\"{credential}\"}}"),
        sign_count: 0,
        created_at: at,
        last_used_at: None,
    }
}

fn ceremony(challenge: &str, purpose: &str, user_id: Option<i64>, at: i64) -> CeremonyRecord {
    CeremonyRecord {
        challenge: challenge.into(),
        purpose: purpose.into(),
        user_id,
        mfa_token_hash: None,
        state: "{}".into(),
        ip: "192.0.2.7".into(),
        created_at: at,
        expires_at: at + 300,
    }
}

/// Three passwordless logins at once in all, two of one address.
const LIMITS: CeremonyLimits = CeremonyLimits {
    per_address: 2,
    in_all: 3,
};

fn codes(prefix: &str) -> Vec<String> {
    (0..10).map(|i| format!("{prefix}{i:02}")).collect()
}

pub async fn passkeys_are_added_bounded_unique_and_removed_with_the_last_codes(e: Engine) {
    let (_db, s) = e.store().await;
    let alice = s.create_user(new_user("alice")).await.unwrap().id;
    let bob = s.create_user(new_user("bob")).await.unwrap().id;
    // The first factor comes with its codes; the second does not replace them.
    let added = s
        .add_passkey(&passkey("p1", alice, "c1", 10), 3, &codes("a"))
        .await;
    assert_eq!(added.unwrap(), PasskeyAdded::Added { first_factor: true });
    assert_eq!(s.recovery_codes_left(alice).await.unwrap(), 10);
    let added = s
        .add_passkey(&passkey("p2", alice, "c2", 11), 3, &codes("b"))
        .await;
    assert_eq!(
        added.unwrap(),
        PasskeyAdded::Added {
            first_factor: false
        }
    );
    assert_eq!(s.recovery_codes_left(alice).await.unwrap(), 10);
    // A credential is registered once, whoever's.
    let added = s
        .add_passkey(&passkey("p3", bob, "c1", 12), 3, &codes("c"))
        .await;
    assert_eq!(added.unwrap(), PasskeyAdded::Duplicate);
    assert_eq!(s.recovery_codes_left(bob).await.unwrap(), 0);
    // At most `max_per_user`.
    let added = s
        .add_passkey(&passkey("p4", alice, "c4", 13), 3, &codes("d"))
        .await;
    assert_eq!(
        added.unwrap(),
        PasskeyAdded::Added {
            first_factor: false
        }
    );
    let added = s
        .add_passkey(&passkey("p5", alice, "c5", 14), 3, &codes("e"))
        .await;
    assert_eq!(added.unwrap(), PasskeyAdded::TooMany);
    let listed: Vec<String> = s
        .passkeys(alice)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, ["p1", "p2", "p4"]);
    assert_eq!(
        s.passkey_by_credential("c2")
            .await
            .unwrap()
            .map(|p| p.user_id),
        Some(alice)
    );
    // Removal: another user's is not removed; the codes stay while a
    // factor remains, and go with the last.
    assert!(!s.remove_passkey(bob, "p1").await.unwrap());
    assert!(s.remove_passkey(alice, "p1").await.unwrap());
    assert!(s.remove_passkey(alice, "p2").await.unwrap());
    assert_eq!(s.recovery_codes_left(alice).await.unwrap(), 10);
    assert!(
        s.replace_recovery_codes(alice, &codes("f"), 15)
            .await
            .unwrap()
    );
    assert!(s.remove_passkey(alice, "p4").await.unwrap());
    assert!(!s.remove_passkey(alice, "p4").await.unwrap());
    assert_eq!(s.recovery_codes_left(alice).await.unwrap(), 0);
    assert!(
        !s.replace_recovery_codes(alice, &codes("g"), 16)
            .await
            .unwrap()
    );
    // TOTP removed while a passkey remains: the codes stay.
    assert!(s.begin_totp_enrolment(bob, b"secret", 20).await.unwrap());
    assert!(
        s.confirm_totp(bob, b"secret", 100, &codes("h"), 21)
            .await
            .unwrap()
    );
    let added = s
        .add_passkey(&passkey("p6", bob, "c6", 22), 3, &codes("i"))
        .await;
    assert_eq!(
        added.unwrap(),
        PasskeyAdded::Added {
            first_factor: false
        }
    );
    assert!(
        s.remove_totp(bob, FactorProof::TotpStep(101), 23)
            .await
            .unwrap()
    );
    assert_eq!(s.recovery_codes_left(bob).await.unwrap(), 10);
    // A staff reset takes passkeys too.
    assert!(s.reset_factors(bob).await.unwrap());
    assert!(s.passkeys(bob).await.unwrap().is_empty());
}

pub async fn a_passkeys_counter_is_accepted_only_upwards_once(e: Engine) {
    let (_db, s) = e.store().await;
    let alice = s.create_user(new_user("alice")).await.unwrap().id;
    s.add_passkey(&passkey("p1", alice, "c1", 10), 10, &codes("a"))
        .await
        .unwrap();
    assert!(
        s.use_passkey(alice, "p1", 5, "{\"v\":5}", 20)
            .await
            .unwrap()
    );
    for stale in [5, 4, 0] {
        assert!(
            !s.use_passkey(alice, "p1", stale, "{}", 21).await.unwrap(),
            "{stale}"
        );
    }
    assert!(
        !s.use_passkey(999, "p1", 6, "{}", 21).await.unwrap(),
        "another user's"
    );
    let stored = s.passkey_by_credential("c1").await.unwrap().unwrap();
    assert_eq!((stored.sign_count, stored.last_used_at), (5, Some(20)));
    assert_eq!(stored.passkey, "{\"v\":5}");
    // Of many uses with one counter at once, one wins.
    let store = s.clone();
    let won = all_at_once(8, |_| {
        let s = store.clone();
        async move { s.use_passkey(alice, "p1", 6, "{}", 22).await.unwrap() }
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // Without a counter (zero after zero), each use is accepted: the
    // single-use ceremony is what refuses a replay then.
    s.add_passkey(&passkey("p2", alice, "c2", 10), 10, &codes("b"))
        .await
        .unwrap();
    assert!(s.use_passkey(alice, "p2", 0, "{}", 23).await.unwrap());
    assert!(s.use_passkey(alice, "p2", 0, "{}", 24).await.unwrap());
    // At a login's second step, with its challenge, once.
    let challenge = ChallengeRecord {
        token_hash: "t1".into(),
        user_id: alice,
        token_version: 0,
        method: "password".into(),
        transport: "header".into(),
        ip: String::new(),
        user_agent: String::new(),
        created_at: 30,
        expires_at: 330,
        purpose: "login".into(),
    };
    s.create_challenge(&challenge, 5).await.unwrap();
    let proof = FactorProof::Passkey {
        id: "p1",
        sign_count: 6,
        passkey: "{}",
    };
    let answered = s.answer_challenge("t1", alice, proof, 31).await.unwrap();
    assert_eq!(answered, ChallengeAnswer::ProofRefused);
    let proof = FactorProof::Passkey {
        id: "p1",
        sign_count: 7,
        passkey: "{}",
    };
    let answered = s.answer_challenge("t1", alice, proof, 31).await.unwrap();
    assert!(
        matches!(answered, ChallengeAnswer::Completed(_)),
        "{answered:?}"
    );
}

pub async fn ceremonies_are_taken_once_bounded_and_pruned(e: Engine) {
    let (db, s) = e.store().await;
    let alice = s.create_user(new_user("alice")).await.unwrap().id;
    // A user's registration replaces their one before.
    assert!(
        s.create_ceremony(&ceremony("r1", "register", Some(alice), 100), LIMITS)
            .await
            .unwrap()
    );
    assert!(
        s.create_ceremony(&ceremony("r2", "register", Some(alice), 101), LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(s.take_ceremony("r1", "register", 102).await.unwrap(), None);
    // Taken once, for its purpose only.
    assert_eq!(s.take_ceremony("r2", "login", 102).await.unwrap(), None);
    let taken = s
        .take_ceremony("r2", "register", 102)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.user_id, taken.state.as_str()), (Some(alice), "{}"));
    assert_eq!(s.take_ceremony("r2", "register", 102).await.unwrap(), None);
    // An mfa_token's second factor replaces its one before, not another token's.
    let mut first = ceremony("s1", "second_factor", Some(alice), 100);
    first.mfa_token_hash = Some("h1".into());
    let mut other = ceremony("s2", "second_factor", Some(alice), 100);
    other.mfa_token_hash = Some("h2".into());
    let mut again = ceremony("s3", "second_factor", Some(alice), 101);
    again.mfa_token_hash = Some("h1".into());
    for c in [&first, &other, &again] {
        assert!(s.create_ceremony(c, LIMITS).await.unwrap());
    }
    assert_eq!(
        s.take_ceremony("s1", "second_factor", 102).await.unwrap(),
        None
    );
    assert!(
        s.take_ceremony("s2", "second_factor", 102)
            .await
            .unwrap()
            .is_some()
    );
    // Anonymous logins: at most two of one address, three in all; expired
    // ones make room.
    for (name, accepted) in [("l0", true), ("l1", true), ("l2", false)] {
        let c = ceremony(name, "login", None, 200);
        assert_eq!(
            s.create_ceremony(&c, LIMITS).await.unwrap(),
            accepted,
            "{name}"
        );
    }
    for (name, accepted) in [("m0", true), ("m1", false)] {
        let mut c = ceremony(name, "login", None, 200);
        c.ip = "198.51.100.9".into();
        assert_eq!(
            s.create_ceremony(&c, LIMITS).await.unwrap(),
            accepted,
            "{name}"
        );
    }
    let mut elsewhere = ceremony("l3", "login", None, 201);
    elsewhere.ip = "203.0.113.1".into();
    assert!(!s.create_ceremony(&elsewhere, LIMITS).await.unwrap());
    assert!(
        s.create_ceremony(&ceremony("l4", "login", None, 500), LIMITS)
            .await
            .unwrap()
    );
    // Expired: not taken, then pruned.
    assert!(
        s.create_ceremony(&ceremony("l5", "login", None, 500), LIMITS)
            .await
            .unwrap()
    );
    assert_eq!(s.take_ceremony("l5", "login", 800).await.unwrap(), None);
    s.prune(799, 0).await.unwrap();
    assert_eq!(db.count("passkey_ceremonies").await, 2);
    s.prune(801, 0).await.unwrap();
    assert_eq!(db.count("passkey_ceremonies").await, 0);
}
