//! Tessera's tokens verify in an independent implementation: PyJWT (from
//! PyPI, in a virtual environment this test creates), from the JWKS for
//! ES256, RS256 and EdDSA, and from the shared secret for HS256.

use super::harness::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

/// Verifies each case of a JSON list on stdin (`token`, `alg`, `source`: the
/// JWKS URL, or the HMAC secret) and prints one result per case: the claims
/// and header, or the error. One Python for every case: its start and
/// imports cost more than all the verifications.
const VERIFY: &str = r#"
import json, sys, jwt
results = []
for case in json.load(sys.stdin):
    token, alg, source = case["token"], case["alg"], case["source"]
    try:
        if alg.startswith("HS"):
            key = source.encode()
        else:
            key = jwt.PyJWKClient(source).get_signing_key_from_jwt(token).key
        claims = jwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "iat", "jti", "sub"]})
        results.append({"claims": claims, "header": jwt.get_unverified_header(token)})
    except Exception as e:
        results.append({"error": repr(e)})
print(json.dumps(results))
"#;

#[tokio::test]
async fn tokens_verify_with_pyjwt_for_es256_rs256_eddsa_and_hs256() {
    let Some(python) = python() else { return };
    let mut servers = Vec::new();
    let mut cases = Vec::new();
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
        // And a tampered one PyJWT must refuse, so that the rest means something.
        let mut tampered = access.clone();
        tampered.insert(tampered.find('.').unwrap() + 5, 'x');
        for (token, valid) in [(access, true), (refresh, true), (tampered, false)] {
            cases.push((
                alg,
                valid,
                json!({"token": token, "alg": alg, "source": source}),
            ));
        }
        servers.push(s);
    }
    let input = serde_json::to_vec(&cases.iter().map(|c| &c.2).collect::<Vec<_>>()).unwrap();
    // Blocking, off the runtime that serves the JWKS Python fetches.
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .args(["-c", VERIFY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), cases.len());
    for ((alg, valid, _), verified) in cases.iter().zip(&results) {
        if *valid {
            assert!(verified.get("error").is_none(), "{alg}: {verified}");
            assert_eq!(verified["claims"]["user_id"], 1, "{alg}");
            assert_eq!(verified["claims"]["sub"], "1");
            assert_eq!(verified["header"]["alg"], *alg);
        } else {
            assert!(
                verified.get("error").is_some(),
                "{alg}: PyJWT accepted a tampered token"
            );
        }
    }
    drop(servers);
}
