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
        assert_eq!(ring.signing_key().unwrap().kid(), new_kid);
        assert!(ring.get(&old_kid, 99).is_some());
        assert!(ring.get(&old_kid, 100).is_none());
        assert_eq!(ring.jwks(99)["keys"].as_array().unwrap().len(), 2);
        let after = ring.jwks(100);
        let keys = after["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"], new_kid.as_str());
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
