//! The HTTP face of the authority: routes, the rules every endpoint shares
//! (docs/API.md), and serving on a listener.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod body;
pub mod client;
pub mod compat;
pub mod connections;
pub mod cookies;
pub mod cors;
pub mod docs;
pub mod edge;
pub mod error;
pub mod listener;
pub mod meta;
pub mod note;
pub mod oauth;
pub mod openapi;
pub mod origin;
pub mod page;
pub mod recovery;
pub mod requests;
pub mod sessions;
pub mod tokens;

use crate::authority::Authority;
use crate::config::CompatSet;
use axum::Router;
use axum::routing::get;
use error::ApiError;
use openapi::ApiDoc;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its OpenAPI document, the drop-in routes of the sets
/// in `compat` among them: a route is registered only through its
/// documented handler, so none can go undocumented, and one that is not
/// served is not documented.
pub fn routes(compat: &[CompatSet]) -> (Router<Arc<Authority>>, utoipa::openapi::OpenApi) {
    let mut routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tokens::obtain))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::verify))
        .routes(routes!(tokens::blacklist))
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::check))
        .routes(routes!(recovery::request_reset))
        .routes(routes!(recovery::confirm_reset))
        .routes(routes!(recovery::request_verification))
        .routes(routes!(recovery::verify_email))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::revoke_user))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::end))
        .routes(routes!(sessions::end_others))
        .routes(routes!(sessions::admin_list))
        .routes(routes!(sessions::admin_end))
        .routes(routes!(audit::list))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::jwks))
        .routes(routes!(meta::openid_configuration))
        .routes(routes!(page::index))
        .routes(routes!(page::static_file));
    if compat.contains(&CompatSet::FlaskJwtExtended) {
        routes = routes
            .routes(routes!(compat::flask_login))
            .routes(routes!(compat::flask_refresh))
            .routes(routes!(compat::flask_logout));
    }
    if compat.contains(&CompatSet::Fastapi) {
        routes = routes.routes(routes!(compat::fastapi_token));
    }
    routes.split_for_parts()
}

/// The documentation's own routes, documented in the same document.
fn documentation(openapi: &mut utoipa::openapi::OpenApi) -> Router {
    let (router, docs_api) = OpenApiRouter::<docs::Docs>::new()
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::index))
        .split_for_parts();
    openapi.merge(docs_api);
    // The assets route is axum's catch-all `{*file}`, which OpenAPI cannot
    // name: document it as `{file}` and route it by hand.
    openapi.merge(
        OpenApiRouter::<docs::Docs>::new()
            .routes(routes!(docs::asset))
            .into_openapi(),
    );
    let state = docs::Docs::new(openapi);
    router
        .route("/docs/{*file}", get(docs::asset))
        .with_state(state)
}

/// Every route, each noting its pattern and user for the edge
/// ([`note::NoteRoute`]), with the documentation, the fallback and CORS:
/// the routes without the shared rules ([`app`] adds them).
pub fn router(authority: Arc<Authority>) -> Router {
    let (api, mut openapi) = routes(&authority.settings().compat);
    let docs = documentation(&mut openapi);
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
    NormalizePathLayer::trim_trailing_slash()
        .layer(edge::EdgeLayer::new(authority.clone()).layer(router(authority)))
}

/// Serves `authority` on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    authority: Arc<Authority>,
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
    authority.set_public_origin(listener.local_addr()?);
    connections::serve(listener, admission, app(authority), timeouts, shutdown).await
}
