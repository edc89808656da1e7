//! The "frontend" of a microservice pair: `GET /dashboard` takes the caller's
//! bearer token, calls the resource server with it, and returns the combined
//! result. A refused token gets the resource server's 401, passed through.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// Where the resource server is, and a client to call it.
#[derive(Clone)]
pub struct AppState {
    /// Base URL of the resource server.
    pub resource_url: String,
    /// Shared HTTP client.
    pub client: reqwest::Client,
}

async fn dashboard(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let mut call = app
        .client
        .get(format!("{}/orders", app.resource_url.trim_end_matches('/')));
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        call = call.header(header::AUTHORIZATION, authorization.clone());
    }
    let answer = match call.send().await {
        Ok(answer) => answer,
        Err(_) => {
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({"detail": "The orders service is unreachable."})),
            )
                .into_response();
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let challenge = answer.headers().get(header::WWW_AUTHENTICATE).cloned();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // The resource server's refusal, as it gave it.
        let mut response = (status, Json(body)).into_response();
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        return response;
    }
    Json(json!({
        "dashboard": "Your recent orders",
        "user_id": body["user_id"],
        "orders": body["orders"],
    }))
    .into_response()
}

/// The service's routes.
pub fn app(resource_url: String) -> Router {
    Router::new()
        .route("/dashboard", get(dashboard))
        .with_state(AppState {
            resource_url,
            client: reqwest::Client::new(),
        })
}
