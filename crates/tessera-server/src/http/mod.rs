//! The HTTP face of the authority: routes, the rules every endpoint shares
//! (SPEC section 3), and serving on a listener.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod body;
pub mod error;
pub mod meta;
pub mod oauth;
pub mod origin;
pub mod tokens;

use crate::authority::Authority;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use axum::{Router, ServiceExt};
use error::ApiError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;

/// Every route, with the shared rules applied (except the trailing slash,
/// which [`serve`] handles in front of routing).
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route("/api/token", post(tokens::obtain))
        .route("/api/token/refresh", post(tokens::refresh))
        .route("/api/token/verify", post(tokens::verify))
        .route("/api/token/blacklist", post(tokens::blacklist))
        .route("/api/auth/signup", post(accounts::signup))
        .route("/api/auth/me", get(accounts::me))
        .route("/api/auth/password", post(accounts::change_password))
        .route("/api/auth/logout", post(accounts::logout))
        .route("/api/auth/check", any(accounts::check))
        .route("/api/admin/users", get(admin::list_users))
        .route("/api/admin/users/{id}", patch(admin::update_user))
        .route("/api/admin/users/{id}/revoke", post(admin::revoke_user))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .route("/healthz", get(meta::healthz))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(meta::openid_configuration),
        )
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(middleware::from_fn(track))
        .layer(
            TraceLayer::new_for_http()
                // The path only: a query string may carry a token.
                .make_span_with(|req: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        user_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(
                        status = res.status().as_u16(),
                        latency_us = latency.as_micros() as u64,
                        "response"
                    );
                }),
        )
        .with_state(authority)
}

/// Counts every request by method, route (the pattern, not the path, so
/// that ids do not make new series) and status, with its latency.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    crate::telemetry::request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// axum answers a known path with the wrong method with an empty 405; give
/// it our JSON body, keeping its `Allow` header.
async fn json_method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let mut replaced = ApiError::MethodNotAllowed(method).into_response();
    if let Some(allow) = allow {
        replaced
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    replaced
}

/// Serves `authority` on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    authority: Arc<Authority>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every path answers with or without a trailing slash, with no redirect.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(authority));
    axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
