//! Operational endpoints: health, key publication and discovery.

use super::origin::{issuer, origin};
use crate::authority::Authority;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
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

/// `GET /.well-known/openid-configuration`: where everything is, as absolute URLs.
pub async fn openid_configuration(
    State(authority): State<Arc<Authority>>,
    headers: HeaderMap,
) -> Json<Value> {
    let settings = authority.settings();
    let base = origin(settings, &headers);
    let algorithms: Vec<&str> = {
        let ring = authority.key_ring();
        let mut names: Vec<&str> = ring
            .keys(authority.now())
            .map(|k| tessera_core::keys::algorithm_name(k.algorithm()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    Json(json!({
        "issuer": issuer(settings, &headers),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["none"],
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "jti", settings.user_id_claim.as_str(), "username", "token_type", "fid", "ver", "fresh"],
    }))
}
