//! The `compat` routes' tokens in the Python code they stand in for (from
//! PyPI, in the virtual environment `.ci/install-test-tools` makes): a real
//! Flask app guarded by Flask-JWT-Extended, sharing the HS256 secret, takes
//! the access tokens of `POST /login` and `POST /refresh` and refuses the
//! refresh tokens where Flask-JWT-Extended refuses them; and the FastAPI
//! tutorial's `get_current_user` (PyJWT) finds the username in `sub` of a
//! `POST /token` access token.

use super::harness::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The Python of the virtual environment `.ci/install-test-tools` makes, if
/// it can `import` these modules.
pub(super) fn python(modules: &str, what: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-pyjwt");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    let what = format!("{what} in the virtual environment {}", venv.display());
    available(&what, ready).then_some(python)
}

/// Runs `script` in `python` with `input` (JSON) on stdin; the JSON it prints.
async fn run(python: PathBuf, script: &'static str, input: Value) -> Value {
    let input = serde_json::to_vec(&input).unwrap();
    // Blocking, off the runtime that serves the tests' servers.
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .args(["-c", script])
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
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A Flask app as Flask-JWT-Extended's documentation writes one, on the
/// secret of stdin's `secret`; each of stdin's `requests` (`path`, `token`)
/// goes through its test client (no network server), and one JSON line says
/// each answer's `status` and `body` (the JSON, or else the text).
const FLASK: &str = r#"
import json, sys
from flask import Flask
from flask_jwt_extended import JWTManager, get_jwt, jwt_required

given = json.load(sys.stdin)
app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = given["secret"]
app.config["JWT_ALGORITHM"] = "HS256"
JWTManager(app)

@app.get("/protected")
@jwt_required()
def protected():
    return get_jwt()["username"]

@app.get("/refresh-only")
@jwt_required(refresh=True)
def refresh_only():
    return "refreshed"

client = app.test_client()
answers = []
for request in given["requests"]:
    r = client.get(request["path"], headers={"Authorization": "Bearer " + request["token"]})
    body = r.get_json(silent=True)
    answers.append({"status": r.status_code, "body": r.get_data(as_text=True) if body is None else body})
print(json.dumps(answers))
"#;

#[tokio::test]
async fn flask_jwt_extended_accepts_access_tokens_and_refuses_refresh_tokens() {
    let Some(python) = python(
        "jwt, flask, flask_jwt_extended",
        "Flask and Flask-JWT-Extended",
    ) else {
        return;
    };
    let s = Server::start(&format!(
        "algorithm = \"HS256\"\nsigning_key = \"{HS_SECRET}\"\ncompat = [\"flask_jwt_extended\"]"
    ))
    .await;
    s.create_user("alice", false).await;
    // As a Flask front end logs in and refreshes: the compat routes.
    let login = s
        .post("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .send(s.http.post(s.url("/refresh")).bearer_auth(&refresh))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refreshed = r.body["access_token"].as_str().unwrap().to_owned();
    // And one signed with another secret, which must be refused, so that
    // the rest means something.
    let foreign = hs256(
        &segment(&access, 0),
        &segment(&access, 1),
        b"another-secret-0123456789-abcdefghij",
    );

    let cases = [
        ("/protected", &access, 200, json!("alice")),
        (
            "/protected",
            &refresh,
            422,
            json!({"msg": "Only non-refresh tokens are allowed"}),
        ),
        ("/refresh-only", &refresh, 200, json!("refreshed")),
        (
            "/refresh-only",
            &access,
            422,
            json!({"msg": "Only refresh tokens are allowed"}),
        ),
        ("/protected", &refreshed, 200, json!("alice")),
        (
            "/protected",
            &foreign,
            422,
            json!({"msg": "Signature verification failed"}),
        ),
    ];
    let requests: Vec<Value> = cases
        .iter()
        .map(|(path, token, ..)| json!({"path": path, "token": token}))
        .collect();
    let answers = run(
        python,
        FLASK,
        json!({"secret": HS_SECRET, "requests": requests}),
    )
    .await;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), cases.len());
    let names = [
        "access token on /protected",
        "refresh token on /protected",
        "refresh token on /refresh-only",
        "access token on /refresh-only",
        "POST /refresh's access token on /protected",
        "a token of another secret on /protected",
    ];
    for (((_, _, status, body), answer), name) in cases.iter().zip(answers).zip(names) {
        assert_eq!(
            (&answer["status"], &answer["body"]),
            (&json!(status), body),
            "{name}"
        );
    }
}

/// The FastAPI tutorial's `get_current_user`, on stdin's `token` and
/// `secret`: the claims it decodes, or the error.
const FASTAPI: &str = r#"
import json, sys, jwt
given = json.load(sys.stdin)
SECRET_KEY, ALGORITHM = given["secret"], "HS256"
try:
    payload = jwt.decode(given["token"], SECRET_KEY, algorithms=[ALGORITHM])
    print(json.dumps({"username": payload.get("sub"), "payload": payload}))
except Exception as e:
    print(json.dumps({"error": repr(e)}))
"#;

#[tokio::test]
async fn a_fastapi_style_verifier_finds_the_username_in_sub() {
    let Some(python) = python("jwt", "PyJWT") else {
        return;
    };
    let s = Server::start(&format!(
        "algorithm = \"HS256\"\nsigning_key = \"{HS_SECRET}\"\ncompat = [\"fastapi\"]\nsubject = \"username\""
    ))
    .await;
    s.create_user("alice", false).await;
    // As FastAPI's OAuth2PasswordRequestForm client posts it.
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "bearer");
    let access = r.body["access_token"].as_str().unwrap();
    let decoded = run(
        python,
        FASTAPI,
        json!({"token": access, "secret": HS_SECRET}),
    )
    .await;
    assert!(decoded.get("error").is_none(), "{decoded}");
    assert_eq!(decoded["username"], "alice", "{decoded}");
    let payload = &decoded["payload"];
    assert_eq!(payload["type"], "access", "{payload}");
    assert!(payload["nbf"].is_i64(), "no nbf: {payload}");
}
