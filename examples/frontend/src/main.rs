//! Runs the frontend. Environment: `RESOURCE_URL` (default
//! http://127.0.0.1:9001), `BIND` (default 127.0.0.1:9002). Prints `listening on HOST:PORT`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let resource = std::env::var("RESOURCE_URL").unwrap_or_else(|_| "http://127.0.0.1:9001".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9002".into());
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
    match axum::serve(listener, frontend::app(resource)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
