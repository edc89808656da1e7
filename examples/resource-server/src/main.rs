//! Runs the resource server. Environment: `TESSERA_JWKS_URL` (required),
//! `BIND` (default 127.0.0.1:9001). With `TESSERA_CLIENT_ID` and
//! `TESSERA_CLIENT_SECRET` (a Tessera service client holding the
//! `revocations` scope) it follows Tessera's revocation feed, so revoked
//! tokens are refused within a second; Tessera's base URL is `TESSERA_URL`,
//! by default the JWKS URL's origin. Prints `listening on HOST:PORT`.

use std::process::ExitCode;
use tessera_verify::Verifier;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(jwks) = std::env::var("TESSERA_JWKS_URL") else {
        eprintln!("set TESSERA_JWKS_URL, e.g. http://127.0.0.1:8000/.well-known/jwks.json");
        return ExitCode::FAILURE;
    };
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9001".into());
    let mut builder = Verifier::builder().jwks_url(&jwks);
    if let (Ok(id), Ok(secret)) = (
        std::env::var("TESSERA_CLIENT_ID"),
        std::env::var("TESSERA_CLIENT_SECRET"),
    ) {
        let origin = std::env::var("TESSERA_URL")
            .unwrap_or_else(|_| jwks.trim_end_matches("/.well-known/jwks.json").to_owned());
        builder = builder.revocations(origin, id, secret);
    }
    let verifier = match builder.build() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {bind}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("listening on {addr}");
    }
    match axum::serve(listener, resource_server::app(verifier)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
