//! Runs the resource server. Environment: `TESSERA_JWKS_URL` (required),
//! `BIND` (default 127.0.0.1:9001). Prints `listening on HOST:PORT`.

use std::process::ExitCode;
use tessera_verify::Verifier;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(jwks) = std::env::var("TESSERA_JWKS_URL") else {
        eprintln!("set TESSERA_JWKS_URL, e.g. http://127.0.0.1:8000/.well-known/jwks.json");
        return ExitCode::FAILURE;
    };
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9001".into());
    let verifier = match Verifier::builder().jwks_url(jwks).build() {
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
