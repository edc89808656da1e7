//! Second factors: a TOTP factor from enrolment to removal, each code's
//! time step and each recovery code accepted once (also among concurrent
//! uses), and challenges used once, bounded per user, pruned once expired.

use crate::{Engine, all_at_once, new_user};
use tessera_store::*;

fn hashes(prefix: &str) -> Vec<String> {
    (0..10).map(|i| format!("{prefix}{i:02}")).collect()
}

fn challenge(hash: &str, user_id: i64, at: i64) -> ChallengeRecord {
    ChallengeRecord {
        token_hash: hash.into(),
        user_id,
        token_version: 0,
        method: "password".into(),
        transport: "cookie".into(),
        ip: "192.0.2.7".into(),
        user_agent: "Mozilla/5.0 (test)".into(),
        created_at: at,
        expires_at: at + 300,
        purpose: "login".into(),
    }
}

/// A user with a confirmed factor of secret `secret`, its code of step 100
/// used, and the recovery codes `r00`..`r09`.
async fn enrolled(s: &std::sync::Arc<dyn Store>, name: &str, secret: &[u8]) -> i64 {
    let u = s.create_user(new_user(name)).await.unwrap();
    assert!(s.begin_totp_enrolment(u.id, secret, 10).await.unwrap());
    assert!(
        s.confirm_totp(u.id, secret, 100, &hashes("r"), 11)
            .await
            .unwrap()
    );
    u.id
}

pub async fn a_totp_factor_is_pending_until_confirmed_and_never_replaced_once_confirmed(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s.create_user(new_user("alice")).await.unwrap();
    assert_eq!(s.totp_factor(u.id).await.unwrap(), None);
    assert!(s.begin_totp_enrolment(u.id, b"first", 10).await.unwrap());
    let pending = TotpRecord {
        user_id: u.id,
        secret: b"first".to_vec(),
        created_at: 10,
        confirmed_at: None,
        last_step: None,
    };
    assert_eq!(s.totp_factor(u.id).await.unwrap(), Some(pending));
    assert!(!format!("{:?}", s.totp_factor(u.id).await.unwrap()).contains("first"));
    // Begun again: the new secret replaces the pending one.
    assert!(s.begin_totp_enrolment(u.id, b"second", 20).await.unwrap());
    // A code checked against the replaced secret confirms nothing.
    assert!(
        !s.confirm_totp(u.id, b"first", 7, &hashes("r"), 21)
            .await
            .unwrap()
    );
    assert_eq!(s.recovery_codes_left(u.id).await.unwrap(), 0);
    assert!(
        s.confirm_totp(u.id, b"second", 7, &hashes("r"), 22)
            .await
            .unwrap()
    );
    let confirmed = s.totp_factor(u.id).await.unwrap().unwrap();
    assert_eq!(
        (
            confirmed.secret.as_slice(),
            confirmed.created_at,
            confirmed.confirmed_at,
            confirmed.last_step
        ),
        (&b"second"[..], 20, Some(22), Some(7))
    );
    assert_eq!(s.recovery_codes_left(u.id).await.unwrap(), 10);
    // Confirmed: neither enrolment nor confirmation changes it.
    assert!(!s.begin_totp_enrolment(u.id, b"third", 30).await.unwrap());
    assert!(
        !s.confirm_totp(u.id, b"second", 9, &hashes("x"), 31)
            .await
            .unwrap()
    );
    assert_eq!(s.totp_factor(u.id).await.unwrap(), Some(confirmed));
}

pub async fn codes_and_recovery_codes_are_accepted_once_and_removal_takes_both(e: Engine) {
    let (_db, s) = e.store().await;
    let id = enrolled(&s, "alice", b"secret").await;
    let other = enrolled(&s, "bob", b"secret").await;
    // A challenge answered by a code of a later step, once.
    s.create_challenge(&challenge("c1", id, 50), 5)
        .await
        .unwrap();
    s.create_challenge(&challenge("c2", id, 50), 5)
        .await
        .unwrap();
    let answer = s
        .answer_challenge("c1", id, FactorProof::TotpStep(101), 60)
        .await
        .unwrap();
    assert_eq!(answer, ChallengeAnswer::Completed(challenge("c1", id, 50)));
    assert_eq!(
        s.answer_challenge("c1", id, FactorProof::TotpStep(102), 60)
            .await
            .unwrap(),
        ChallengeAnswer::ChallengeGone
    );
    // The same step, or an earlier one, again: refused, the challenge kept.
    for step in [101, 100, 99] {
        assert_eq!(
            s.answer_challenge("c2", id, FactorProof::TotpStep(step), 60)
                .await
                .unwrap(),
            ChallengeAnswer::ProofRefused
        );
    }
    assert!(s.challenge("c2", 60).await.unwrap().is_some());
    // Another user's challenge is not this user's to answer.
    assert_eq!(
        s.answer_challenge("c2", other, FactorProof::TotpStep(500), 60)
            .await
            .unwrap(),
        ChallengeAnswer::ChallengeGone
    );
    // A recovery code once; another user's not at all; an unknown one never.
    assert_eq!(
        s.answer_challenge("c2", id, FactorProof::RecoveryCode("r03"), 61)
            .await
            .unwrap(),
        ChallengeAnswer::Completed(challenge("c2", id, 50))
    );
    assert_eq!(s.recovery_codes_left(id).await.unwrap(), 9);
    s.create_challenge(&challenge("c3", id, 62), 5)
        .await
        .unwrap();
    for code in ["r03", "x03"] {
        assert_eq!(
            s.answer_challenge("c3", id, FactorProof::RecoveryCode(code), 63)
                .await
                .unwrap(),
            ChallengeAnswer::ProofRefused
        );
    }
    assert_eq!(s.recovery_codes_left(other).await.unwrap(), 10);
    // Regeneration voids the old codes.
    assert!(
        s.replace_recovery_codes(id, &hashes("n"), 70)
            .await
            .unwrap()
    );
    assert_eq!(s.recovery_codes_left(id).await.unwrap(), 10);
    assert_eq!(
        s.answer_challenge("c3", id, FactorProof::RecoveryCode("r04"), 71)
            .await
            .unwrap(),
        ChallengeAnswer::ProofRefused
    );
    // Removal needs an unused proof, and takes the codes with the factor.
    assert!(
        !s.remove_totp(id, FactorProof::TotpStep(101), 72)
            .await
            .unwrap()
    );
    assert!(
        s.remove_totp(id, FactorProof::RecoveryCode("n05"), 72)
            .await
            .unwrap()
    );
    assert_eq!(s.totp_factor(id).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(id).await.unwrap(), 0);
    assert!(
        !s.replace_recovery_codes(id, &hashes("m"), 73)
            .await
            .unwrap()
    );
    assert_eq!(s.recovery_codes_left(id).await.unwrap(), 0);
    // Without a factor, a live challenge accepts nothing.
    assert_eq!(
        s.answer_challenge("c3", id, FactorProof::TotpStep(900), 74)
            .await
            .unwrap(),
        ChallengeAnswer::ProofRefused
    );
    assert!(
        !s.remove_totp(id, FactorProof::TotpStep(901), 75)
            .await
            .unwrap()
    );
    // The other user's factor is untouched.
    assert_eq!(
        s.totp_factor(other).await.unwrap().unwrap().last_step,
        Some(100)
    );
}

pub async fn challenges_expire_are_bounded_per_user_and_pruned(e: Engine) {
    let (db, s) = e.store().await;
    let id = enrolled(&s, "alice", b"secret").await;
    let other = enrolled(&s, "bob", b"secret").await;
    s.create_challenge(&challenge("b1", other, 100), 5)
        .await
        .unwrap();
    for i in 0..8 {
        s.create_challenge(&challenge(&format!("a{i}"), id, 100 + i), 5)
            .await
            .unwrap();
    }
    // The newest five live; the other user's untouched.
    assert_eq!(
        db.count("mfa_challenges WHERE user_id = (SELECT id FROM users WHERE username = 'alice')")
            .await,
        5
    );
    for i in 0..3 {
        assert_eq!(s.challenge(&format!("a{i}"), 110).await.unwrap(), None);
    }
    assert_eq!(
        s.challenge("a7", 110).await.unwrap(),
        Some(challenge("a7", id, 107))
    );
    assert!(s.challenge("b1", 110).await.unwrap().is_some());
    // Expired: no longer answered, then pruned.
    assert_eq!(s.challenge("b1", 400).await.unwrap(), None);
    assert_eq!(
        s.answer_challenge("b1", other, FactorProof::TotpStep(200), 400)
            .await
            .unwrap(),
        ChallengeAnswer::ChallengeGone
    );
    s.prune(402, 0).await.unwrap();
    assert_eq!(db.count("mfa_challenges").await, 5);
    s.prune(407, 0).await.unwrap();
    assert_eq!(db.count("mfa_challenges").await, 0);
}

pub async fn one_of_many_uses_of_a_code_or_a_challenge_wins(e: Engine) {
    let (_db, s) = e.store().await;
    let id = enrolled(&s, "alice", b"secret").await;
    // Eight challenges answered at once with a code of the same step: one.
    for i in 0..8 {
        s.create_challenge(&challenge(&format!("c{i}"), id, 100), 8)
            .await
            .unwrap();
    }
    let answers = all_at_once(8, |i| {
        let s = s.clone();
        async move {
            s.answer_challenge(&format!("c{i}"), id, FactorProof::TotpStep(150), 110)
                .await
                .unwrap()
        }
    })
    .await;
    let won = answers
        .iter()
        .filter(|a| matches!(a, ChallengeAnswer::Completed(_)))
        .count();
    assert_eq!(won, 1, "{answers:?}");
    // One challenge answered at once with eight recovery codes: one.
    s.create_challenge(&challenge("d", id, 100), 8)
        .await
        .unwrap();
    let answers = all_at_once(8, |i| {
        let s = s.clone();
        async move {
            s.answer_challenge("d", id, FactorProof::RecoveryCode(&format!("r0{i}")), 110)
                .await
                .unwrap()
        }
    })
    .await;
    let won = answers
        .iter()
        .filter(|a| matches!(a, ChallengeAnswer::Completed(_)))
        .count();
    assert_eq!(won, 1, "{answers:?}");
    assert_eq!(s.recovery_codes_left(id).await.unwrap(), 9);
}

pub async fn a_reset_removes_factor_codes_and_challenges_of_one_user(e: Engine) {
    let (_db, s) = e.store().await;
    let alice = enrolled(&s, "alice", b"alice-secret").await;
    let bob = enrolled(&s, "bob", b"bob-secret").await;
    s.create_challenge(&challenge("a-login", alice, 50), 5)
        .await
        .unwrap();
    let enrolment = ChallengeRecord {
        purpose: "enrolment".into(),
        ..challenge("a-enrol", alice, 50)
    };
    s.create_challenge(&enrolment, 5).await.unwrap();
    // The purpose is kept.
    assert_eq!(s.challenge("a-enrol", 60).await.unwrap(), Some(enrolment));
    s.create_challenge(&challenge("b-login", bob, 50), 5)
        .await
        .unwrap();
    assert!(s.reset_factors(alice).await.unwrap());
    assert_eq!(s.totp_factor(alice).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(alice).await.unwrap(), 0);
    assert_eq!(s.challenge("a-login", 60).await.unwrap(), None);
    assert_eq!(s.challenge("a-enrol", 60).await.unwrap(), None);
    // Nothing left: false. Bob's are untouched.
    assert!(!s.reset_factors(alice).await.unwrap());
    assert!(s.totp_factor(bob).await.unwrap().is_some());
    assert_eq!(s.recovery_codes_left(bob).await.unwrap(), 10);
    assert!(s.challenge("b-login", 60).await.unwrap().is_some());
    // A pending enrolment alone is reset too.
    let carol = s.create_user(new_user("carol")).await.unwrap().id;
    assert!(s.begin_totp_enrolment(carol, b"pending", 10).await.unwrap());
    assert!(s.reset_factors(carol).await.unwrap());
    assert_eq!(s.totp_factor(carol).await.unwrap(), None);
}
