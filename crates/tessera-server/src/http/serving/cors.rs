//! CORS for browser clients on other origins (docs/API.md, section 10).
//!
//! tower-http's [`CorsLayer`] answers every `OPTIONS` request as a preflight,
//! whatever its `Origin`: an unlisted origin got a `200` (only without
//! `Access-Control-Allow-Origin`), which reads as if it were allowed. So a
//! gate in front of it sends it only the preflights of listed origins;
//! an `OPTIONS` from any other origin is refused with a `403`, and one with
//! no `Origin` at all (not a CORS request) gets what the routes answer
//! without CORS.

use crate::http::extract::cookies;
use crate::http::extract::error::ApiError;
use crate::http::serving::note::Unrouted;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The detail of the `403` that answers an `OPTIONS` request from an origin
/// that `cors_allowed_origins` does not list.
pub const ORIGIN_NOT_ALLOWED: &str = "Cross-origin requests from this origin are not allowed.";

/// The request headers a listed origin's page may send. `X-Requested-With`
/// because Swagger UI's password flow ("Authorize") sends it, as jQuery-era
/// clients do.
const ALLOWED_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static(cookies::CSRF_HEADER),
    HeaderName::from_static(cookies::TRANSPORT_HEADER),
    HeaderName::from_static("x-requested-with"),
];

/// Whether `origins` turn CORS on: at least one of them is a valid header
/// value (what [`apply`] keeps).
pub fn is_on(origins: &[String]) -> bool {
    origins.iter().any(|o| HeaderValue::from_str(o).is_ok())
}

/// `router` with CORS for exactly `origins` (credentials allowed), or
/// `router` unchanged when none of them is a valid header value: then there
/// is no CORS handling at all.
pub fn apply(router: Router, origins: &[String]) -> Router {
    let origins: Arc<[HeaderValue]> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return router;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(ALLOWED_HEADERS)
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600));
    let gate = Gate {
        origins,
        without_cors: router.clone(),
    };
    router
        .layer(layer)
        .layer(middleware::from_fn_with_state(gate, gate_options))
}

/// What [`gate_options`] needs: the listed origins, and the routes without
/// the CORS layer for an `OPTIONS` that is not a CORS request.
#[derive(Clone)]
struct Gate {
    origins: Arc<[HeaderValue]>,
    without_cors: Router,
}

/// Lets through every request but an `OPTIONS` whose `Origin` is not
/// listed: with an unlisted `Origin` it is refused (`403`, no CORS headers,
/// so the browser refuses the call clearly), and with none it is answered
/// by the routes as if CORS were off (the usual `405`).
async fn gate_options(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if request.method() != Method::OPTIONS {
        return next.run(request).await;
    }
    match request.headers().get(header::ORIGIN) {
        Some(origin) if gate.origins.contains(origin) => {
            // The CORS layer answers every `OPTIONS` as a preflight, before
            // the route: the edge counts it, as no route did.
            let mut response = next.run(request).await;
            response.extensions_mut().insert(Unrouted);
            response
        }
        Some(_) => {
            let mut response =
                ApiError::Raw(StatusCode::FORBIDDEN, json!({"detail": ORIGIN_NOT_ALLOWED}))
                    .into_response();
            // The answer depends on the Origin: no cache may reuse it for
            // a listed one.
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("origin"));
            response.extensions_mut().insert(Unrouted);
            response
        }
        None => {
            // Routed once already: the second routing would append its
            // pattern to this one (axum nests them), spoiling the metrics'
            // route label.
            let mut request = request;
            request.extensions_mut().remove::<MatchedPath>();
            match gate.without_cors.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }
}
