//! What the revocation feed's routes take from a request: a service
//! client's bearer token, and where a stream starts.

use super::auth::bearer_token;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::json;
use tessera_core::feed::Cursor;

/// The token of `Authorization: Bearer <token>`, unchecked: the route hands
/// it to the clients part. Without one: 401 `not_authenticated`.
#[derive(Debug)]
pub struct ClientBearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers, &["Bearer".to_owned()])? {
            Some(token) => Ok(Self(token)),
            None => Err(ApiError::NotAuthenticated),
        }
    }
}

/// Where a stream starts, as presented: `Last-Event-ID` (what an
/// EventSource resends after a drop) or `?after=`; the header wins.
#[derive(Debug)]
pub struct StreamStart(Option<String>);

impl StreamStart {
    /// The cursor presented, `None` when none was (the stream starts at the
    /// present); 400 `invalid_cursor` when it is not one of this feed's.
    pub fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        match &self.0 {
            None => Ok(None),
            Some(text) => Cursor::parse(text).map(Some).ok_or_else(|| {
                ApiError::Raw(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "detail": "The cursor is not one of this feed's: resume with an event's id or a snapshot's cursor.",
                        "code": "invalid_cursor",
                    }),
                )
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StreamStart {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get("last-event-id") {
            // Not text: not a cursor either.
            let text = value.to_str().unwrap_or("\u{fffd}");
            return Ok(Self(Some(text.to_owned())));
        }
        let after = parts.uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "after")
                .map(|(_, value)| value.into_owned())
        });
        Ok(Self(after))
    }
}
