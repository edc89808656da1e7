//! The bodies of the drop-in routes for Flask-JWT-Extended and FastAPI
//! clients (setting `compat`), as the OpenAPI document describes them and
//! the handlers answer with them.

use serde::Serialize;
use utoipa::ToSchema;

/// Flask-JWT-Extended's login answer.
#[derive(Serialize, ToSchema)]
pub struct FlaskTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// Flask-JWT-Extended's refresh answer; `refresh_token` when rotating.
#[derive(Serialize, ToSchema)]
pub struct FlaskRefreshed {
    pub access_token: String,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Flask-JWT-Extended's error body (and its logout's answer).
#[derive(Serialize, ToSchema)]
pub struct FlaskMessage {
    #[schema(example = "Bad username or password")]
    pub msg: String,
}

/// FastAPI's `OAuth2PasswordRequestForm`.
#[derive(ToSchema)]
pub struct FastApiForm {
    #[schema(example = "alice")]
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
    /// `password` when present.
    #[schema(nullable = false, pattern = "^password$")]
    pub grant_type: Option<String>,
    /// Ignored.
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// One problem of FastAPI's validation error.
#[derive(ToSchema)]
pub struct FastApiProblem {
    #[schema(example = "missing")]
    pub r#type: String,
    pub loc: Vec<String>,
    #[schema(example = "Field required")]
    pub msg: String,
    pub input: Option<serde_json::Value>,
}

/// FastAPI's 422 body.
#[derive(ToSchema)]
pub struct FastApiValidation {
    pub detail: Vec<FastApiProblem>,
}
