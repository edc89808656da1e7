//! Tessera's tokens verify in an independent implementation: PyJWT (from
//! PyPI, in a virtual environment this test creates), from the JWKS for
//! ES256, RS256 and EdDSA, and from the shared secret for HS256.

use crate::harness::*;
use std::path::PathBuf;
use std::process::Command;

/// The Python of a virtual environment with PyJWT and cryptography, made by
/// `.ci/install-test-tools`.
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-pyjwt");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    let what = format!("PyJWT in the virtual environment {}", venv.display());
    available(&what, ready).then_some(python)
}

const VERIFY: &str = r#"
import json, sys, jwt
token, alg, source = sys.argv[1], sys.argv[2], sys.argv[3]
if alg.startswith("HS"):
    key = source.encode()
else:
    key = jwt.PyJWKClient(source).get_signing_key_from_jwt(token).key
claims = jwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "iat", "jti", "sub"]})
header = jwt.get_unverified_header(token)
print(json.dumps({"claims": claims, "header": header}))
"#;

#[tokio::test]
async fn tokens_verify_with_pyjwt_for_es256_rs256_eddsa_and_hs256() {
    let Some(python) = python() else { return };
    for alg in ["ES256", "RS256", "EdDSA", "HS256"] {
        let config = if alg == "HS256" {
            format!("algorithm = \"HS256\"\nsigning_key = \"{HS_SECRET}\"")
        } else {
            format!("algorithm = \"{alg}\"")
        };
        let s = Server::start(&config).await;
        let (access, refresh) = s.user("alice").await;
        let source = if alg == "HS256" {
            HS_SECRET.to_owned()
        } else {
            s.url("/.well-known/jwks.json")
        };
        for token in [&access, &refresh] {
            let python = python.clone();
            let (token, source, name) = (token.clone(), source.clone(), alg.to_owned());
            let out = tokio::task::spawn_blocking(move || {
                Command::new(python)
                    .args(["-c", VERIFY, &token, &name, &source])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert!(
                out.status.success(),
                "{alg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(verified["claims"]["user_id"], 1, "{alg}");
            assert_eq!(verified["claims"]["sub"], "1");
            assert_eq!(verified["header"]["alg"], alg);
        }
        // And PyJWT refuses a tampered one, so the check above means something.
        let mut tampered = access.clone();
        tampered.insert(tampered.find('.').unwrap() + 5, 'x');
        let out = Command::new(&python)
            .args(["-c", VERIFY, &tampered, alg, &source])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{alg}: PyJWT accepted a tampered token"
        );
    }
}
