//! The HTTP rules of docs/API.md, tested without a socket: each test builds
//! the whole application ([`tessera_server::http::app`]) on a fresh SQLite
//! file and a clock that stands still, and calls it with
//! `tower::ServiceExt::oneshot`, as a connection would. What needs a
//! connection or a process (admission, timeouts, the log, signals) is tested
//! over TCP by the `server` binary.

mod app;
#[path = "../server/authenticator.rs"]
#[allow(dead_code)]
mod authenticator;

mod bodies;
mod clients;
mod clients_admin;
mod cookies;
mod cors;
mod credentials;
mod documents;
mod drift;
mod fast_lane;
mod feed;
mod routing;
