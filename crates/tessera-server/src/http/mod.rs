//! The HTTP face of the authority: routes, the rules every endpoint shares
//! (docs/API.md), and serving on a listener.
//!
//! Three parts, by role:
//! - [`serving`]: the listener, connections and their admission, and the
//!   rules every answer shares (the edge layer, bodies, CORS);
//! - [`extract`]: what handlers take from a request (credentials, cookies,
//!   the client, typed bodies) and the errors they answer with;
//! - [`routes`]: the handlers, one module per area of the API, and the
//!   OpenAPI document they answer by.
//!
//! [`app`] assembles the whole application, which [`serve`] serves and tests
//! call with `oneshot`.

pub mod extract;
pub mod routes;
pub mod serving;

pub use serving::listener;

use crate::authority::Authority;
use crate::supervisor::TaskHealth;
use axum::Router;
use extract::error::ApiError;
use serving::{admission, connections, cors, edge, note};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// Every route, each counting its requests under its pattern and noting
/// its user for the edge ([`note::NoteRoute`]), with the documentation, the fallback and CORS:
/// the routes without the shared rules ([`app`] adds them).
pub fn router(authority: Arc<Authority>) -> Router {
    let (api, mut openapi) = routes::table(&authority.settings().compat);
    let docs = routes::documentation(&mut openapi);
    let origins = authority.settings().cors_allowed_origins.clone();
    let routed = api
        .with_state(authority)
        .merge(docs)
        .fallback(|| async { ApiError::NotFound })
        .layer(note::NoteRoute);
    cors::apply(routed, &origins)
}

/// The whole application, as every connection serves it: the trailing
/// slash trimmed (every path answers with or without one, with no
/// redirect), then the shared rules of [`edge::EdgeLayer`] around
/// [`router`].
pub type App = NormalizePath<edge::Edge<Router>>;

/// The whole application of `authority` (see [`App`]). What needs a
/// connection is [`serve`]'s: admission, the connection timeouts, and the
/// peer's address (`ConnectInfo<listener::PeerAddr>`, which a request called
/// without one, as a test does with `oneshot`, reads as `127.0.0.1`).
pub fn app(authority: Arc<Authority>) -> App {
    let edge = edge::EdgeLayer::new(authority.clone());
    NormalizePathLayer::trim_trailing_slash().layer(edge.layer(router(authority)))
}

/// [`app`] with every request routed by the router, the hot routes that the
/// edge answers itself included ([`serving::fast`]): what those answers are
/// held to, answer for answer, by the tests.
pub fn routed_app(authority: Arc<Authority>) -> App {
    let edge = edge::EdgeLayer::new(authority.clone()).without_fast_lane();
    NormalizePathLayer::trim_trailing_slash().layer(edge.layer(router(authority)))
}

/// Serves `authority` on `listener` until `shutdown` completes, then lets
/// requests in flight finish; `tasks` is the background tasks' state,
/// which `/readyz` and `/metrics` report.
pub async fn serve(
    listener: TcpListener,
    authority: Arc<Authority>,
    tasks: TaskHealth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = authority.settings();
    let admission = admission::Admission::new(
        settings.max_connections,
        settings.max_connections_per_client,
        &settings.trusted_proxies,
    );
    let timeouts = connections::Timeouts {
        header_read: settings.header_read_timeout,
        idle: settings.idle_timeout,
    };
    authority
        .serving()
        .set_public_origin(listener.local_addr()?);
    // `/readyz` and `/metrics` read the tasks' state from the authority;
    // a test calling `app` directly has none, and reports no task.
    authority.serving().set_tasks(tasks);
    let app = app(authority);
    connections::serve(listener, admission, app, timeouts, shutdown).await
}
