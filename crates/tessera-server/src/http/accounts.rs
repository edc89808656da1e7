//! Account endpoints: signup and the current user.

use super::auth::Authenticated;
use super::body::Payload;
use super::error::ApiError;
use crate::authority::{Authority, NewAccount, User};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 in UTC, as Django REST framework renders datetimes.
pub fn timestamp(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The user object of SPEC section 3.
pub fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "is_staff": user.is_staff,
        "is_active": user.is_active,
        "date_joined": timestamp(user.date_joined),
        "last_login": user.last_login.map(timestamp),
    })
}

/// `POST /api/auth/signup`: 201 with the new user's id, username and email.
pub async fn signup(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !authority.settings().signup_enabled {
        return Err(ApiError::PermissionDenied);
    }
    let mut fields = payload.fields();
    let username = fields.string("username");
    let password = fields.string("password");
    let email = fields.optional_string("email").unwrap_or_default();
    fields.finish()?;
    let user = authority
        .signup(NewAccount {
            username: &username,
            password: &password,
            email: &email,
            superuser: false,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": user.id, "username": user.username, "email": user.email})),
    ))
}

/// `GET /api/auth/me`: the authenticated user.
pub async fn me(auth: Authenticated) -> Json<Value> {
    Json(user_json(&auth.user))
}
