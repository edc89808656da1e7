use super::*;
use crate::ids::UserId;
use jsonwebtoken::Algorithm;

const NOW: i64 = 1_800_000_000;

fn setup(alg: Algorithm) -> (TokenPolicy, KeyRing) {
    let key = crate::keys::testing::test_material(alg).into_key().unwrap();
    (TokenPolicy::new(), KeyRing::single(key))
}

fn alice() -> Subject {
    Subject {
        user_id: UserId::new(42),
        username: "alice".into(),
        email: "a@example.com".into(),
        is_staff: true,
        is_superuser: false,
        token_version: 3,
        roles: Vec::new(),
        app_metadata: Default::default(),
        claims_version: 0,
    }
}

fn mint(policy: &TokenPolicy, ring: &KeyRing, t: TokenType, now: i64) -> IssuedToken {
    let fid = FamilyId::random();
    let grant = Grant {
        token_type: t,
        fid: &fid,
        fresh: true,
        extra: None,
        csrf: None,
        amr: &[],
    };
    issue(policy, ring, &alice(), &grant, now).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn issued_tokens_validate_with_every_algorithm() {
    for name in crate::keys::ALGORITHM_NAMES {
        let alg = crate::keys::parse_algorithm(name).unwrap();
        let (policy, ring) = setup(alg);
        let t = mint(&policy, &ring, TokenType::Access, NOW);
        let c = validate(&policy, &ring, &t.token, Some(TokenType::Access), NOW).unwrap();
        assert_eq!(c.user_id, 42);
        assert_eq!(c.jti, t.jti);
        assert_eq!(c.raw["sub"], "42");
        assert_eq!(c.raw["username"], "alice");
        assert_eq!(c.raw["ver"], 3);
        assert_eq!(c.exp - c.iat, 300);
        assert_eq!(
            (&c.raw["type"], &c.raw["nbf"]),
            (&json!("access"), &json!(NOW))
        );
    }
}

#[test]
fn every_token_says_its_type_twice_and_sub_follows_the_subject_setting() {
    let (mut policy, ring) = setup(Algorithm::HS256);
    for token_type in [TokenType::Access, TokenType::Refresh] {
        let t = mint(&policy, &ring, token_type, NOW);
        let c = validate(&policy, &ring, &t.token, None, NOW).unwrap();
        assert_eq!(c.raw["type"], token_type.as_str());
        assert_eq!(c.raw["token_type"], token_type.as_str());
        assert_eq!(c.raw["nbf"], c.raw["iat"]);
    }
    policy.subject = SubjectClaim::Username;
    for token_type in [TokenType::Access, TokenType::Refresh] {
        let t = mint(&policy, &ring, token_type, NOW);
        let c = validate(&policy, &ring, &t.token, None, NOW).unwrap();
        assert_eq!(
            (c.raw["sub"].as_str(), c.user_id.get()),
            (Some("alice"), 42)
        );
        // A verifier expecting ids refuses it: sub does not repeat the id.
        let by_id = TokenPolicy::new();
        assert_eq!(
            validate(&by_id, &ring, &t.token, None, NOW),
            Err(Refusal::Invalid)
        );
    }
}

#[test]
fn refresh_tokens_carry_no_username_and_extra_claims_are_opt_in() {
    let (mut policy, ring) = setup(Algorithm::HS256);
    let r = mint(&policy, &ring, TokenType::Refresh, NOW);
    let c = validate(&policy, &ring, &r.token, None, NOW).unwrap();
    assert!(c.raw.get("username").is_none() && c.raw.get("fresh").is_none());
    assert!(c.raw.get("email").is_none());
    policy.extra_claims = vec![ExtraClaim::Email, ExtraClaim::IsStaff];
    let a = mint(&policy, &ring, TokenType::Access, NOW);
    let c = validate(&policy, &ring, &a.token, None, NOW).unwrap();
    assert_eq!(c.raw["email"], "a@example.com");
    assert_eq!(c.raw["is_staff"], true);
}

#[test]
fn renamed_claims_are_written_and_read_under_their_new_names() {
    use crate::claims::UserClaim;
    let (mut policy, ring) = setup(Algorithm::HS256);
    // The simplejwt tutorial's names, with the superuser flag too.
    policy.extra_claims = ExtraClaim::ALL.to_vec();
    policy.claim_names.set(UserClaim::Username, "user_name");
    policy.claim_names.set(UserClaim::IsStaff, "is_admin");
    policy.claim_names.set(UserClaim::IsSuperuser, "is_root");
    policy.subject = SubjectClaim::Username;
    let a = mint(&policy, &ring, TokenType::Access, NOW);
    let c = validate(&policy, &ring, &a.token, None, NOW).unwrap();
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(
        (
            &c.raw["user_name"],
            &c.raw["email"],
            &c.raw["is_admin"],
            &c.raw["is_root"]
        ),
        (
            &json!("alice"),
            &json!("a@example.com"),
            &json!(true),
            &json!(false)
        )
    );
    for gone in ["username", "is_staff", "is_superuser"] {
        assert!(c.raw.get(gone).is_none(), "{gone}");
    }
    // A verifier that does not know the names finds no username to back
    // `sub` (the username), and refuses the token.
    let mut unaware = TokenPolicy::new();
    unaware.subject = SubjectClaim::Username;
    assert_eq!(
        validate(&unaware, &ring, &a.token, None, NOW),
        Err(Refusal::Invalid)
    );
}

#[test]
fn expiry_is_exact_and_leeway_extends_it() {
    let (mut policy, ring) = setup(Algorithm::HS256);
    let t = mint(&policy, &ring, TokenType::Access, NOW);
    assert!(validate(&policy, &ring, &t.token, None, NOW + 299).is_ok());
    assert_eq!(
        validate(&policy, &ring, &t.token, None, NOW + 300),
        Err(Refusal::Expired)
    );
    policy.leeway = 10;
    assert!(validate(&policy, &ring, &t.token, None, NOW + 309).is_ok());
}

#[test]
fn amr_is_written_in_both_types_and_only_when_given() {
    use crate::claims::AuthMethod;
    let (policy, ring) = setup(Algorithm::HS256);
    let methods = [
        AuthMethod::Password,
        AuthMethod::Otp,
        AuthMethod::MultiFactor,
    ];
    for token_type in [TokenType::Access, TokenType::Refresh] {
        for amr in [&methods[..], &[]] {
            let grant = Grant {
                token_type,
                fid: &FamilyId::random(),
                fresh: false,
                extra: None,
                csrf: None,
                amr,
            };
            let t = issue(&policy, &ring, &alice(), &grant, NOW).unwrap();
            let c = validate(&policy, &ring, &t.token, None, NOW).unwrap();
            assert_eq!(c.amr, amr);
            match amr {
                [] => assert!(!c.raw.contains_key("amr")),
                _ => assert_eq!(c.raw["amr"], serde_json::json!(["pwd", "otp", "mfa"])),
            }
        }
    }
}

#[test]
fn every_claim_tessera_writes_is_reserved() {
    let (mut policy, ring) = setup(Algorithm::HS256);
    policy.issuer = Some("https://auth.example".into());
    policy.audience = Some("api".into());
    policy.extra_claims = ExtraClaim::ALL.to_vec();
    for token_type in [TokenType::Access, TokenType::Refresh] {
        let grant = Grant {
            token_type,
            fid: &FamilyId::random(),
            fresh: true,
            extra: None,
            csrf: Some("csrf-value"),
            amr: &[crate::claims::AuthMethod::Password],
        };
        let t = issue(&policy, &ring, &alice(), &grant, NOW).unwrap();
        let c = validate(&policy, &ring, &t.token, None, NOW).unwrap();
        for name in c.raw.keys() {
            assert!(
                name == &policy.user_id_claim
                    || crate::claims::RESERVED_CLAIMS.contains(&name.as_str()),
                "`{name}` is written into tokens but not in RESERVED_CLAIMS"
            );
        }
    }
}

#[test]
fn the_other_type_is_wrong_type() {
    let (policy, ring) = setup(Algorithm::HS256);
    let r = mint(&policy, &ring, TokenType::Refresh, NOW);
    assert_eq!(
        validate(&policy, &ring, &r.token, Some(TokenType::Access), NOW),
        Err(Refusal::WrongType)
    );
}

#[test]
fn issuer_and_audience_are_required_when_configured() {
    let (mut policy, ring) = setup(Algorithm::HS256);
    let plain = mint(&policy, &ring, TokenType::Access, NOW);
    policy.issuer = Some("https://auth.example".into());
    policy.audience = Some("api".into());
    let full = mint(&policy, &ring, TokenType::Access, NOW);
    assert!(validate(&policy, &ring, &full.token, None, NOW).is_ok());
    assert_eq!(
        validate(&policy, &ring, &plain.token, None, NOW),
        Err(Refusal::Invalid)
    );
    let mut other = policy.clone();
    other.audience = Some("other".into());
    assert_eq!(
        validate(&other, &ring, &full.token, None, NOW),
        Err(Refusal::Invalid)
    );
}

#[test]
fn malformed_tokens_are_invalid() {
    let (policy, ring) = setup(Algorithm::HS256);
    let t = mint(&policy, &ring, TokenType::Access, NOW).token;
    let parts: Vec<&str> = t.split('.').collect();
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{t}.x"),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!(" {t}"),
        format!("{t}\0"),
        format!("{}.{}.", parts[0], parts[1]),
        "a".repeat(MAX_TOKEN_LEN + 1),
        format!("{}.{}.{}", b64(&json!([1])), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64(&json!("claims")), parts[2]),
    ];
    for bad in cases {
        assert_eq!(
            validate(&policy, &ring, &bad, None, NOW),
            Err(Refusal::Invalid),
            "{bad:.60}"
        );
    }
}

#[test]
fn foreign_headers_and_algorithms_are_invalid() {
    let (policy, ring) = setup(Algorithm::HS256);
    let t = mint(&policy, &ring, TokenType::Access, NOW).token;
    let parts: Vec<&str> = t.split('.').collect();
    let kid = ring.signing_key(NOW).unwrap().kid().to_owned();
    for header in [
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
        json!({"alg": "HS384", "typ": "JWT", "kid": kid}),
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": "other"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": kid, "jku": "http://127.0.0.1:1/"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": kid, "crit": ["exp"]}),
        json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
    ] {
        // Re-signed with the real key, so only the header can be at fault.
        let signing_input = format!("{}.{}", b64(&header), parts[1]);
        let sig = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            ring.signing_key(NOW).unwrap().encoding().unwrap(),
            Algorithm::HS256,
        )
        .unwrap();
        let forged = format!("{signing_input}.{sig}");
        assert_eq!(
            validate(&policy, &ring, &forged, None, NOW),
            Err(Refusal::Invalid),
            "{header}"
        );
    }
}

#[test]
fn a_future_nbf_is_invalid() {
    // Every token carries nbf = iat: one minted 100 s ahead of the
    // verifier's clock is not valid yet, beyond the leeway.
    let (mut policy, ring) = setup(Algorithm::HS256);
    let fid = FamilyId::random();
    let grant = Grant {
        token_type: TokenType::Access,
        fid: &fid,
        fresh: false,
        extra: None,
        csrf: None,
        amr: &[],
    };
    let t = issue(&policy, &ring, &alice(), &grant, NOW + 100).unwrap();
    assert_eq!(
        validate(&policy, &ring, &t.token, None, NOW),
        Err(Refusal::Invalid)
    );
    assert!(validate(&policy, &ring, &t.token, None, NOW + 100).is_ok());
    policy.leeway = 100;
    assert!(validate(&policy, &ring, &t.token, None, NOW).is_ok());
}
