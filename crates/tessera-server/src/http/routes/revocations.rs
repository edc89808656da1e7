//! The revocation feed for other services: the snapshot and the stream of
//! Server-Sent Events, read with a service client's token holding the
//! `revocations` scope.

use super::openapi::*;
use crate::authority::feed::FeedRefusal;
use crate::authority::{AuthError, Authority};
use crate::http::extract::error::ApiError;
use crate::http::extract::feed::{ClientBearer, StreamStart};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::client::SCOPE_REVOCATIONS;
use tessera_core::feed::Snapshot;

/// How often a quiet stream sends a comment line, so that proxies and
/// load balancers that close idle connections keep it open.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// `GET /api/revocations`: every marker that can still refuse a token.
#[utoipa::path(
    get,
    path = "/api/revocations",
    tag = "revocation feed",
    summary = "Snapshot of the revocations that can still refuse a token (client scope `revocations`)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The markers of the window, exact at `cursor`", body = Snapshot),
        (status = 401, description = "No client token, or not a valid one", body = ErrorDetail),
        (status = 403, description = "The client lacks the `revocations` scope", body = ErrorDetail),
        (status = 503, description = "The database cannot be reached", body = ErrorDetail)
    )
)]
pub async fn snapshot(
    State(authority): State<Arc<Authority>>,
    ClientBearer(token): ClientBearer,
) -> Result<Response, Response> {
    authority
        .clients()
        .authorize(&token, SCOPE_REVOCATIONS)
        .await
        .map_err(IntoResponse::into_response)?;
    let snapshot = authority
        .feed()
        .snapshot()
        .await
        .map_err(|e| ApiError::from(AuthError::from(e)).into_response())?;
    let mut response = Json(snapshot).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/revocations/stream`: the changes after a cursor, as they happen.
#[utoipa::path(
    get,
    path = "/api/revocations/stream",
    tag = "revocation feed",
    summary = "Server-Sent Events: each revocation after the cursor (Last-Event-ID or ?after=), as it happens",
    security(("bearer" = [])),
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "The cursor to resume after: a snapshot's or the last event's id"),
        ("after" = Option<String>, Query, description = "The same, for clients that cannot set the header")
    ),
    responses(
        (status = 200, description = "text/event-stream: events family_revoked, user_changed, token_revoked, client_removed, keys_changed, reset; a comment line every 10 s", content_type = "text/event-stream", body = String),
        (status = 400, description = "The cursor is malformed, or ahead of the change log", body = ErrorDetail),
        (status = 401, description = "No client token, or not a valid one", body = ErrorDetail),
        (status = 403, description = "The client lacks the `revocations` scope", body = ErrorDetail),
        (status = 429, description = "The client holds as many streams as it may", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 503, description = "The database cannot be reached", body = ErrorDetail)
    )
)]
pub async fn stream(
    State(authority): State<Arc<Authority>>,
    ClientBearer(token): ClientBearer,
    start: StreamStart,
) -> Result<Response, Response> {
    let claims = authority
        .clients()
        .authorize(&token, SCOPE_REVOCATIONS)
        .await
        .map_err(IntoResponse::into_response)?;
    let after = start.cursor().map_err(IntoResponse::into_response)?;
    let following = authority
        .feed()
        .follow(&claims.client_id, after, claims.exp)
        .await
        .map_err(|refusal| match refusal {
            FeedRefusal::FutureCursor => ApiError::Raw(
                StatusCode::BAD_REQUEST,
                json!({"detail": "The cursor is ahead of the change log.", "code": "invalid_cursor"}),
            ),
            FeedRefusal::TooManyStreams => ApiError::Throttled(1),
            FeedRefusal::Store(e) => AuthError::from(e).into(),
        })
        .map_err(IntoResponse::into_response)?;
    let events = following.map(|(cursor, event)| {
        Ok::<_, Infallible>(
            Event::default()
                .id(cursor.to_string())
                .event(event.name())
                .data(event.data()),
        )
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response();
    // nginx buffers a proxied response unless told not to: events would
    // wait for its buffer to fill.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
