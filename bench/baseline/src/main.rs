//! The baseline `bench/run.sh` measures Tessera against: the least an axum
//! 0.8 server with jsonwebtoken can do for the same two requests, written by
//! hand, with nothing else (no store, no revocation, no metrics, no logs).
//!
//! - `GET /hello` answers a constant `{"status":"ok"}`, the body of Tessera's
//!   `GET /healthz`: routing and HTTP only.
//! - `GET /me` reads `Authorization: Bearer TOKEN`, decodes the token as
//!   HS256 with jsonwebtoken (signature and `exp` checked, no leeway) and
//!   answers a user object with the seven fields of Tessera's
//!   `GET /api/auth/me` (id, username, email, is_staff, is_active,
//!   date_joined, last_login), from the claims or constants. Any problem
//!   with the token answers 401. Tessera's own HS256 access tokens are
//!   accepted when both share the secret.
//!
//! Usage: `tessera-bench-baseline [--bind HOST:PORT] [--secret SECRET]`, or
//! the environment variables `BASELINE_BIND` and `BASELINE_SECRET` (the
//! command line wins). The address defaults to `127.0.0.1:0` (a free port);
//! the secret is required. Once bound, the server prints
//! `Baseline listening on HOST:PORT` on standard output, and it runs until
//! it is killed.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::sync::Arc;

/// What `GET /me` needs to decode a token: the key and the checks.
struct Verifier {
    /// The HS256 secret.
    key: DecodingKey,
    /// HS256 only, `exp` required and checked, no leeway.
    validation: Validation,
}

/// The claims `GET /me` reads from a token; others are ignored.
#[derive(Deserialize)]
struct Claims {
    /// The user's id (Tessera's default `user_id_claim`).
    user_id: i64,
    /// The username (Tessera puts it in access tokens).
    #[serde(default)]
    username: String,
    /// The email, when the token carries it.
    #[serde(default)]
    email: String,
    /// Whether the user is staff, when the token carries it.
    #[serde(default)]
    is_staff: bool,
}

/// The user object `GET /me` answers: the fields of Tessera's.
#[derive(Serialize)]
struct UserObject {
    /// From the `user_id` claim.
    id: i64,
    /// From the `username` claim.
    username: String,
    /// From the `email` claim, or empty.
    email: String,
    /// From the `is_staff` claim, or false.
    is_staff: bool,
    /// Always true.
    is_active: bool,
    /// A constant.
    date_joined: &'static str,
    /// A constant.
    last_login: &'static str,
}

/// `GET /hello`: a constant small body.
async fn hello() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// `GET /me`: the user named by a valid HS256 bearer token, or 401.
async fn me(State(verifier): State<Arc<Verifier>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation) {
        Ok(data) => {
            let claims = data.claims;
            Json(UserObject {
                id: claims.user_id,
                username: claims.username,
                email: claims.email,
                is_staff: claims.is_staff,
                is_active: true,
                date_joined: "2026-01-01T00:00:00Z",
                last_login: "2026-01-01T00:00:00Z",
            })
            .into_response()
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The address and the secret, from the command line or the environment.
fn parse_args() -> Result<(String, String), String> {
    let mut bind = std::env::var("BASELINE_BIND").ok();
    let mut secret = std::env::var("BASELINE_SECRET").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = Some(args.next().ok_or("--bind needs HOST:PORT")?),
            "--secret" => secret = Some(args.next().ok_or("--secret needs a value")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: tessera-bench-baseline [--bind HOST:PORT] [--secret SECRET]"
                ));
            }
        }
    }
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or("the HS256 secret is required: --secret SECRET or BASELINE_SECRET")?;
    Ok((bind.unwrap_or_else(|| "127.0.0.1:0".into()), secret))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (bind, secret) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tessera-bench-baseline: {e}");
            return ExitCode::from(2);
        }
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    let verifier = Arc::new(Verifier {
        key: DecodingKey::from_secret(secret.as_bytes()),
        validation,
    });
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/me", get(me))
        .with_state(verifier);
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tessera-bench-baseline: cannot listen on {bind}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("Baseline listening on {addr}"),
        Err(e) => {
            eprintln!("tessera-bench-baseline: {e}");
            return ExitCode::FAILURE;
        }
    }
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench-baseline: {e}");
            ExitCode::FAILURE
        }
    }
}
