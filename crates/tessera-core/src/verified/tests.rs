use super::*;
use crate::claims::Subject;
use crate::ids::{FamilyId, UserId};
use crate::keys::{Key, KeyRing};
use crate::token::{Grant, issue};
use jsonwebtoken::Algorithm;

const NOW: i64 = 1_800_000_000;

fn key(alg: Algorithm) -> Key {
    crate::keys::testing::test_material(alg).into_key().unwrap()
}

fn mint(policy: &TokenPolicy, ring: &KeyRing, t: TokenType, user_id: i64) -> String {
    let subject = Subject {
        user_id: UserId::new(user_id),
        username: format!("user{user_id}"),
        email: String::new(),
        is_staff: false,
        is_superuser: false,
        token_version: 0,
        roles: Vec::new(),
        app_metadata: Default::default(),
        claims_version: 0,
    };
    let fid = FamilyId::random();
    let grant = Grant {
        token_type: t,
        fid: &fid,
        fresh: false,
        extra: None,
        csrf: None,
        amr: &[],
    };
    issue(policy, ring, &subject, &grant, NOW).unwrap().token
}

#[test]
fn a_hit_answers_what_a_full_check_answers() {
    let policy = TokenPolicy::new();
    let ring = KeyRing::single(key(Algorithm::ES256));
    let cache = VerifiedTokens::new(16);
    let token = mint(&policy, &ring, TokenType::Access, 7);
    let first = cache
        .validate(&policy, &ring, &token, Some(TokenType::Access), NOW)
        .unwrap();
    assert_eq!(cache.len(), 1);
    let again = cache
        .validate(&policy, &ring, &token, Some(TokenType::Access), NOW + 1)
        .unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second answer came from the cache"
    );
    assert_eq!(again.user_id, 7);
    // The moment's checks run on a hit too: the type...
    assert_eq!(
        cache.validate(&policy, &ring, &token, Some(TokenType::Refresh), NOW),
        Err(Refusal::WrongType)
    );
    // ...and the expiry (300 s).
    assert_eq!(
        cache.validate(&policy, &ring, &token, None, NOW + 300),
        Err(Refusal::Expired)
    );
}

#[test]
fn a_token_whose_key_was_rotated_out_is_refused_though_cached() {
    let policy = TokenPolicy::new();
    let old = KeyRing::single(key(Algorithm::HS256));
    let cache = VerifiedTokens::new(16);
    let token = mint(&policy, &old, TokenType::Access, 1);
    assert!(cache.validate(&policy, &old, &token, None, NOW).is_ok());
    // The key was rotated out: the new ring does not hold it, and the cached
    // entry is not taken as proof.
    let new = KeyRing::single(key(Algorithm::HS256));
    assert_eq!(
        cache.validate(&policy, &new, &token, None, NOW),
        Err(Refusal::Invalid)
    );
}

#[test]
fn a_retired_key_past_its_time_fails_a_hit() {
    let policy = TokenPolicy::new();
    // The RSA test keys share one material: the same key twice.
    let signer = KeyRing::single(key(Algorithm::RS256));
    let token = mint(&policy, &signer, TokenType::Access, 1);
    // A ring where that key verifies until NOW + 10 only.
    let retired = key(Algorithm::RS256);
    let ring = KeyRing::with_previous(key(Algorithm::ES256), [(retired, Some(NOW + 10))]);
    let cache = VerifiedTokens::new(16);
    assert!(cache.validate(&policy, &ring, &token, None, NOW).is_ok());
    assert_eq!(
        cache.validate(&policy, &ring, &token, None, NOW + 10),
        Err(Refusal::Invalid)
    );
}

#[test]
fn only_tokens_that_pass_are_kept_and_a_changed_byte_is_a_full_check() {
    let policy = TokenPolicy::new();
    let ring = KeyRing::single(key(Algorithm::HS256));
    let cache = VerifiedTokens::new(16);
    let token = mint(&policy, &ring, TokenType::Access, 1);
    assert!(cache.validate(&policy, &ring, &token, None, NOW).is_ok());
    // The same token with its signature's last character changed.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        cache.validate(&policy, &ring, &forged, None, NOW),
        Err(Refusal::Invalid)
    );
    assert_eq!(
        cache.validate(&policy, &ring, "not.a.token", None, NOW),
        Err(Refusal::Invalid)
    );
    assert_eq!(cache.len(), 1, "refused tokens are not kept");
}

#[test]
fn the_cache_never_grows_past_its_capacity() {
    let policy = TokenPolicy::new();
    let ring = KeyRing::single(key(Algorithm::HS256));
    let cache = VerifiedTokens::new(100);
    for user in 0..1_000 {
        let token = mint(&policy, &ring, TokenType::Access, user);
        assert!(cache.validate(&policy, &ring, &token, None, NOW).is_ok());
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }
    assert!(cache.len() > 50, "it still holds tokens: {}", cache.len());
    cache.clear();
    assert!(cache.is_empty());
}
