//! Operational endpoints: health and key publication.

use crate::authority::Authority;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /.well-known/jwks.json`: the public keys (RFC 7517); empty for HMAC.
pub async fn jwks(State(authority): State<Arc<Authority>>) -> Json<Value> {
    Json(authority.jwks())
}
