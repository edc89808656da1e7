//! Keys: generation, PEM and JWK forms, the ring.

use super::*;
use testing::test_material;

mod material {
    use super::*;

    /// Generation itself, for every family (the RSA algorithms share one
    /// generator; `test_material` generates for RS256 once).
    #[test]
    fn every_algorithm_generates_a_usable_key() {
        for name in ALGORITHM_NAMES {
            let alg = parse_algorithm(name).unwrap();
            assert_eq!(algorithm_name(alg), name);
            let material = test_material(alg);
            let again = KeyMaterial::from_bytes(alg, material.as_bytes().to_vec()).unwrap();
            let key = again.into_key().unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.public_jwk().is_none(), is_hmac(alg), "{name}");
            if let Some(jwk) = key.public_jwk() {
                // RFC 7638: the kid is the SHA-256 thumbprint, 43 base64url characters.
                assert_eq!(key.kid().len(), 43);
                let json = serde_json::to_value(jwk).unwrap();
                assert_eq!(json["use"], "sig");
                assert_eq!(json["alg"], name);
                assert_eq!(json["kid"], key.kid());
                assert!(json.get("d").is_none(), "private part published for {name}");
            }
        }
    }

    #[test]
    fn algorithm_names_are_case_sensitive() {
        assert!(parse_algorithm("hs256").is_none());
        assert!(parse_algorithm("none").is_none());
        assert!(parse_algorithm("EDDSA").is_none());
    }

    #[test]
    fn short_hmac_secrets_are_refused() {
        let err = KeyMaterial::from_bytes(Algorithm::HS256, vec![b'a'; 31]).unwrap_err();
        assert!(matches!(
            err,
            KeyError::SecretTooShort {
                min: 32,
                got: 31,
                ..
            }
        ));
        assert!(KeyMaterial::from_bytes(Algorithm::HS512, vec![b'a'; 63]).is_err());
        assert!(KeyMaterial::from_bytes(Algorithm::HS256, vec![b'a'; 32]).is_ok());
    }

    #[test]
    fn hmac_kid_names_the_key_without_revealing_it() {
        let key = KeyMaterial::from_bytes(
            Algorithm::HS256,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        )
        .unwrap()
        .into_key()
        .unwrap();
        assert!(!key.kid().contains("0123"));
        assert_eq!(key.kid().len(), 22);
        let ring = KeyRing::single(key);
        assert_eq!(ring.jwks(0), serde_json::json!({"keys": []}));
    }

    #[test]
    fn a_pem_of_the_wrong_type_is_refused() {
        let ec = KeyMaterial::generate(Algorithm::ES256).unwrap();
        assert!(KeyMaterial::from_bytes(Algorithm::RS256, ec.as_bytes().to_vec()).is_err());
        assert!(KeyMaterial::from_bytes(Algorithm::ES256, b"not a pem".to_vec()).is_err());
    }
}

mod ring_tests {
    use super::*;

    #[test]
    fn retired_keys_verify_until_their_time_then_leave_the_jwks() {
        let old = KeyMaterial::generate(Algorithm::ES256)
            .unwrap()
            .into_key()
            .unwrap();
        let new = KeyMaterial::generate(Algorithm::ES256)
            .unwrap()
            .into_key()
            .unwrap();
        let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
        let ring = KeyRing::with_previous(new, [(old, Some(100))]);
        assert_eq!(ring.signing_key(0).unwrap().kid(), new_kid);
        assert!(ring.get(&old_kid, 99).is_some());
        assert!(ring.get(&old_kid, 100).is_none());
        assert_eq!(ring.jwks(99)["keys"].as_array().unwrap().len(), 2);
        let after = ring.jwks(100);
        let keys = after["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"], new_kid.as_str());
    }

    fn es256() -> Key {
        test_material(Algorithm::ES256).into_key().unwrap()
    }

    /// A key published ahead: it verifies and is in the JWKS at once, and
    /// signs from its moment on, with no new ring (no reload) needed.
    #[test]
    fn the_signing_key_is_chosen_by_time() {
        let (old, new) = (es256(), es256());
        let (old_kid, new_kid) = (old.kid().to_owned(), new.kid().to_owned());
        let ring = KeyRing::scheduled([
            RingEntry {
                key: new,
                signs_from: Some(1_000),
                verifies_until: None,
            },
            RingEntry {
                key: old,
                signs_from: Some(i64::MIN),
                verifies_until: Some(1_000 + 60),
            },
        ]);
        assert_eq!(ring.signing_key(999).unwrap().kid(), old_kid);
        assert_eq!(ring.signing_key(1_000).unwrap().kid(), new_kid);
        assert_eq!(ring.signing_key(1_059).unwrap().kid(), new_kid);
        // Published before it signs: verifies, and in the JWKS.
        assert!(ring.get(&new_kid, 0).is_some());
        assert_eq!(ring.jwks(999)["keys"].as_array().unwrap().len(), 2);
        let upcoming: Vec<(String, i64)> = ring
            .upcoming(999)
            .map(|(k, from)| (k.kid().to_owned(), from))
            .collect();
        assert_eq!(upcoming, [(new_kid.clone(), 1_000)]);
        assert_eq!(ring.upcoming(1_000).count(), 0);
        // The old key verifies what it signed, then drops out.
        assert!(ring.get(&old_kid, 1_059).is_some());
        assert!(ring.get(&old_kid, 1_060).is_none());
        assert_eq!(ring.jwks(1_060)["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn several_published_keys_take_over_in_the_order_of_their_moments() {
        let (a, b, c) = (es256(), es256(), es256());
        let kids = [a.kid(), b.kid(), c.kid()].map(str::to_owned);
        // Given newest first, as the store lists them.
        let ring = KeyRing::scheduled([
            RingEntry {
                key: c,
                signs_from: Some(200),
                verifies_until: None,
            },
            RingEntry {
                key: b,
                signs_from: Some(100),
                verifies_until: Some(500),
            },
            RingEntry {
                key: a,
                signs_from: Some(i64::MIN),
                verifies_until: Some(400),
            },
        ]);
        let at = |t| ring.signing_key(t).unwrap().kid().to_owned();
        assert_eq!(
            [at(99), at(100), at(199), at(200)],
            [
                kids[0].clone(),
                kids[1].clone(),
                kids[1].clone(),
                kids[2].clone()
            ]
        );
        assert_eq!(
            ring.upcoming(50).map(|(_, from)| from).collect::<Vec<_>>(),
            [100, 200]
        );
        // A verifying ring signs nothing, at any time.
        assert!(
            KeyRing::verifying([es256()])
                .signing_key(i64::MAX)
                .is_none()
        );
    }
}

mod public_key_tests {
    use super::*;

    #[test]
    fn public_halves_get_the_same_kid_as_the_private_key() {
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
        ] {
            let private = test_material(alg).into_key().unwrap();
            let jwk = private.public_jwk().unwrap();
            let public = Key::from_jwk(jwk, None).unwrap();
            assert_eq!(public.kid(), private.kid());
            assert_eq!(public.algorithm(), alg);
            assert!(public.encoding().is_none());
            assert!(
                Key::from_jwk(jwk, Some(Algorithm::PS512)).is_err(),
                "{alg:?}"
            );
        }
    }
}
