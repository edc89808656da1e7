//! simplejwt's token endpoints: obtain, refresh, verify, blacklist.

use super::body::Payload;
use super::error::ApiError;
use super::error::no_store;
use crate::authority::Authority;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// Token responses must not be cached by anything between us and the client.
fn tokens(body: Value) -> Response {
    let mut response = Json(body).into_response();
    no_store(response.headers_mut());
    response
}

/// `POST /api/token/`: username and password for an access and a refresh token.
pub async fn obtain(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Response, ApiError> {
    let mut fields = payload.fields();
    let username = fields.string("username");
    let password = fields.string("password");
    fields.finish()?;
    let (pair, _) = authority.login(&username, &password).await?;
    Ok(tokens(
        json!({"access": pair.access.token, "refresh": pair.refresh.token}),
    ))
}

/// `POST /api/token/refresh/`: a refresh token for a new access token.
pub async fn refresh(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Response, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("refresh");
    fields.finish()?;
    let refreshed = authority
        .refresh(&token)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    let mut body = json!({"access": refreshed.access.token});
    if let Some(new) = refreshed.refresh {
        body["refresh"] = json!(new.token);
    }
    Ok(tokens(body))
}

/// `POST /api/token/verify/`: 200 `{}` for a valid token of either type.
pub async fn verify(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("token");
    fields.finish()?;
    authority
        .check(&token, None)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    Ok(Json(json!({})))
}

/// `POST /api/token/blacklist/`: refuses a refresh token from now on.
pub async fn blacklist(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("refresh");
    fields.finish()?;
    authority
        .blacklist(&token)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    Ok(Json(json!({})))
}
