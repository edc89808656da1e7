//! The HTTP face of the authority: routes, the rules every endpoint shares
//! (docs/API.md), and serving on a listener.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod body;
pub mod client;
pub mod connections;
pub mod cookies;
pub mod docs;
pub mod error;
pub mod listener;
pub mod meta;
pub mod oauth;
pub mod openapi;
pub mod origin;
pub mod page;
pub mod requests;
pub mod tokens;

use crate::authority::Authority;
use crate::telemetry::RequestMetrics;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::ApiError;
use openapi::ApiDoc;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its OpenAPI document: a route is registered only
/// through its documented handler, so none can go undocumented.
pub fn routes() -> (Router<Arc<Authority>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tokens::obtain))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::verify))
        .routes(routes!(tokens::blacklist))
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::check))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::revoke_user))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::jwks))
        .routes(routes!(meta::openid_configuration))
        .routes(routes!(page::index))
        .routes(routes!(page::static_file))
        .split_for_parts()
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

/// Every route, with the shared rules applied (except the trailing slash,
/// which [`serve`] handles in front of routing).
pub fn router(authority: Arc<Authority>) -> Router {
    let (api, mut openapi) = routes();
    let docs = documentation(&mut openapi);
    let cors = cors_layer(&authority.settings().cors_allowed_origins);
    let json_token = middleware::from_fn_with_state(authority.clone(), auth::capture_json_token);
    let body_rules = middleware::from_fn_with_state(authority.clone(), body::body_rules);
    api.with_state(authority)
        .merge(docs)
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn(json_method_not_allowed))
        .layer(middleware::from_fn(security_headers))
        .layer(json_token)
        // Outside the token capture: the body is checked before anything reads it.
        .layer(body_rules)
        .layer(middleware::from_fn_with_state(
            Arc::new(RequestMetrics::default()),
            track,
        ))
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
        .layer(cors)
}

/// CORS for browser clients on other origins: exactly the listed origins,
/// with credentials (cookies); nothing at all when the list is empty.
fn cors_layer(origins: &[String]) -> tower::util::Either<CorsLayer, tower::layer::util::Identity> {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return tower::util::Either::Right(tower::layer::util::Identity::new());
    }
    tower::util::Either::Left(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(cookies::CSRF_HEADER),
                HeaderName::from_static(cookies::TRANSPORT_HEADER),
            ])
            .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
            .max_age(Duration::from_secs(600)),
    )
}

/// Counts every request by method, route (the pattern, not the path, so
/// that ids do not make new series) and status, with its latency.
async fn track(State(metrics): State<Arc<RequestMetrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.record(&method, route, response.status().as_u16(), start.elapsed());
    response
}

/// The page's policy: its own scripts, styles and API, nothing inline, no
/// other origin, never in a frame.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Swagger UI's: the same, but for the style attributes its React views set
/// (styles, not scripts: no inline script runs).
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers for browsers: no content sniffing on any answer (a JSON body is
/// never run as a script or page), and on the pages (`/`, `/docs`,
/// `/static/...`) a Content-Security-Policy, no framing and no referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let path = req.uri().path();
    let policy = if path == "/" || path.starts_with("/static/") {
        Some(PAGE_POLICY)
    } else if path == "/docs" || path.starts_with("/docs/") {
        Some(DOCS_POLICY)
    } else {
        None
    };
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
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
    let settings = authority.settings();
    let max_connections = settings.max_connections;
    let timeouts = connections::Timeouts {
        header_read: settings.header_read_timeout,
        idle: settings.idle_timeout,
    };
    let origin = origin::PublicOrigin::new(settings, listener.local_addr()?);
    // Every path answers with or without a trailing slash, with no redirect.
    let app = NormalizePathLayer::trim_trailing_slash()
        .layer(router(authority).layer(axum::Extension(origin)));
    connections::serve(
        listener::CappedListener::new(listener, max_connections),
        app,
        timeouts,
        shutdown,
    )
    .await
}
