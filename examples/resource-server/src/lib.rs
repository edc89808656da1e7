//! The "backend" of a microservice pair: accepts Tessera's access tokens
//! without calling Tessera. `GET /orders` needs a valid access token and
//! answers with the caller's orders; `GET /admin/orders` needs a staff user
//! (Tessera configured with `extra_claims = ["is_staff"]`); `GET
//! /internal/orders/count` is for other services, with a Tessera service
//! client's token.

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_verify::{Authenticated, AuthenticatedClient, Verifier};

/// The claims this service reads beyond Tessera's own.
#[derive(Debug, Deserialize)]
pub struct Roles {
    /// Copied into access tokens by Tessera's `extra_claims`.
    #[serde(default)]
    pub is_staff: bool,
}

/// The service's state: only the verifier.
#[derive(Clone)]
pub struct AppState {
    /// Checks Tessera's tokens.
    pub verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

async fn orders(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({
        "user_id": claims.user_id,
        "orders": [
            {"id": 1001, "item": "The Rust Programming Language", "owner": claims.user_id},
            {"id": 1002, "item": "A mechanical keyboard", "owner": claims.user_id},
        ],
    }))
}

async fn admin_orders(
    Authenticated(claims): Authenticated<Roles>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    if !claims.custom.is_staff {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({
                "detail": "You do not have permission to perform this action.",
                "code": "permission_denied",
            })),
        ));
    }
    Ok(Json(
        json!({"orders": [{"id": 1001}, {"id": 1002}, {"id": 2001}], "seen_by": claims.user_id}),
    ))
}

/// For another service (a Tessera service client), not a user: how many
/// orders there are.
async fn order_count(AuthenticatedClient(client): AuthenticatedClient) -> Json<Value> {
    Json(json!({"orders": 2, "asked_by": client.client_id}))
}

/// The service's routes.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/orders", get(orders))
        .route("/internal/orders/count", get(order_count))
        .route("/admin/orders", get(admin_orders))
        .with_state(AppState { verifier })
}
