//! Operational endpoints: health, key publication and discovery.

use super::openapi::*;
use crate::authority::Authority;
use crate::http::extract::origin::PublicOrigin;
use crate::supervisor::TaskHealth;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "The process answers",
    responses(
        (status = 200, description = "Up", body = Health)
    )
)]
pub async fn healthz() -> Response {
    health()
}

/// The answer of `GET /healthz`, which needs nothing awaited (the edge
/// gives it without a future: `serving::fast`).
pub fn health() -> Response {
    // A constant: health checks come often, and need not build JSON (nor
    // parse and copy a header value, nor format and allocate its length).
    const BODY: &str = r#"{"status":"ok"}"#;
    const _: () = assert!(BODY.len() == 15);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from_static("15")),
        ],
        BODY,
    )
        .into_response()
}

/// `GET /.well-known/jwks.json`: the public keys (RFC 7517); empty for HMAC.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    summary = "Public keys (RFC 7517); empty for HMAC",
    responses(
        (status = 200, description = "JWK Set", body = Jwks)
    )
)]
pub async fn jwks(State(authority): State<Arc<Authority>>) -> Response {
    // Verifiers may cache the set this long, and fetch it for an unknown kid
    // only now and then (PyJWKClient: once per 30 s): a rotated key is
    // published `key_publish_lead` (5 minutes) before it signs, so that
    // every cache has it by then.
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(authority.keys().jwks()),
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`: where everything is, as absolute URLs.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "operations",
    summary = "Discovery",
    responses(
        (status = 200, description = "Where everything is", body = OpenIdConfiguration)
    )
)]
pub async fn openid_configuration(
    State(authority): State<Arc<Authority>>,
    origin: PublicOrigin,
) -> Json<OpenIdConfiguration> {
    let settings = authority.settings();
    let base = origin.base(settings);
    let algorithms: Vec<&str> = {
        let ring = authority.keys().ring();
        let mut names: Vec<&str> = ring
            .keys(authority.now())
            .map(|k| tessera_core::keys::algorithm_name(k.algorithm()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let claims = [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        settings.user_id_claim.as_str(),
        settings
            .claim_names
            .get(tessera_core::claims::UserClaim::Username),
        "token_type",
        "type",
        "fid",
        "ver",
        "fresh",
        "amr",
    ];
    // With `introspection_requires_client`, a client by HTTP Basic (or its token).
    let introspection_auth = if settings.introspection_requires_client {
        vec!["client_secret_basic"]
    } else {
        vec!["none"]
    };
    Json(OpenIdConfiguration {
        claims_supported: claims.map(str::to_owned).to_vec(),
        grant_types_supported: vec!["password", "refresh_token", "client_credentials"],
        introspection_endpoint: format!("{base}/oauth/introspect"),
        introspection_endpoint_auth_methods_supported: introspection_auth,
        issuer: origin.issuer(settings),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        response_types_supported: vec!["token"],
        revocation_endpoint: format!("{base}/oauth/revoke"),
        revocation_endpoint_auth_methods_supported: vec!["none"],
        revocation_feed_endpoint: format!("{base}/api/revocations"),
        subject_types_supported: vec!["public"],
        token_endpoint: format!("{base}/oauth/token"),
        // `none`: the password grant needs no client.
        token_endpoint_auth_methods_supported: vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        token_endpoint_auth_signing_alg_values_supported: algorithms,
    })
}

/// `GET /readyz`: 200 when the database answers, keys are loaded and the
/// change log is being followed (with the id of the last change applied,
/// and a key published ahead of signing if one is), 503 with the reason
/// (`database`, `keys`, `sync`, or `task` while a background task is down,
/// named in `task`) otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Database reachable, keys loaded, change log followed",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reason", body = Readiness)
    )
)]
pub async fn readyz(State(authority): State<Arc<Authority>>) -> Response {
    let down = authority.serving().tasks().and_then(TaskHealth::down);
    match authority.readiness().await {
        // A background task is down (until its supervisor starts it again).
        Ok(_) if down.is_some() => unavailable("task", down),
        Ok(applied) => {
            let mut body = json!({"status": "ready", "applied_change": applied});
            // With Redis configured: whether the throttling counts are shared
            // right now, or this instance counts alone (Redis unreachable).
            if let Some(shared) = authority.serving().throttling_is_shared() {
                body["throttling"] = json!(if shared { "shared" } else { "local" });
            }
            // A rotation in progress: which key this instance signs with next, and from when.
            let ring = authority.keys().ring();
            if let Some((key, signs_from)) = ring.upcoming(authority.now()).next() {
                body["next_key"] = json!({
                    "kid": key.kid(),
                    "alg": tessera_core::keys::algorithm_name(key.algorithm()),
                    "signs_from": signs_from,
                });
            }
            Json(body).into_response()
        }
        Err(missing) => unavailable(missing.as_str(), down),
    }
}

fn unavailable(reason: &str, task: Option<&str>) -> Response {
    let mut body = json!({"status": "unavailable", "reason": reason});
    if let Some(task) = task {
        body["task"] = json!(task);
    }
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(State(authority): State<Arc<Authority>>) -> Response {
    let mut text = crate::telemetry::render();
    if let Some(tasks) = authority.serving().tasks() {
        // This server's own tasks (the recorder is the process's).
        text.push_str(&tasks.metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
