//! Service clients for staff: `GET`, `POST /api/admin/clients` and `DELETE
//! /api/admin/clients/{client_id}`. The grant itself is the OAuth2 token
//! endpoint's ([`super::oauth`]).

pub mod schemas;

use super::admin::Staff;
use super::openapi::*;
use crate::authority::Authority;
use crate::authority::clients::ClientActor;
use crate::http::extract::error::{ApiError, no_store};
use crate::http::extract::requests::Body;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `GET /api/admin/clients`: every service client, oldest first.
#[utoipa::path(
    get,
    path = "/api/admin/clients",
    tag = "admin",
    summary = "Service clients, oldest first (never their secrets)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every client not removed", body = Vec<ClientObject>),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn list(
    State(authority): State<Arc<Authority>>,
    _staff: Staff,
) -> Result<Json<Vec<ClientObject>>, ApiError> {
    let clients = authority.clients().list().await?;
    Ok(Json(clients.iter().map(ClientObject::of).collect()))
}

/// `POST /api/admin/clients`: registers a client; its secret is in this
/// answer and nowhere else.
#[utoipa::path(
    post,
    path = "/api/admin/clients",
    tag = "admin",
    summary = "Register a service client; the answer holds its secret, shown this once",
    request_body(content((ClientRequest = "application/json"), (ClientRequest = "application/x-www-form-urlencoded"))),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The client and its secret", body = NewClientObject,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "A missing, too long, unprintable or taken `name`, an unknown `scope`, or an unreadable body", body = BadRequest),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn add(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Body(request): Body<ClientRequest>,
) -> Result<Response, ApiError> {
    let scope = request.scope.unwrap_or_default();
    let actor = ClientActor::Staff(staff.user.id);
    let added = authority
        .clients()
        .add(&request.name, &scope, actor)
        .await?;
    let client = ClientObject::of(&added.client);
    let body = NewClientObject {
        client_id: client.client_id,
        client_secret: added.secret,
        created: client.created,
        name: client.name,
        scope: client.scope,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // A secret: no cache may keep it.
    no_store(response.headers_mut());
    Ok(response)
}

/// `DELETE /api/admin/clients/{client_id}`: removes a client; its tokens
/// are refused at once, on every instance.
#[utoipa::path(
    delete,
    path = "/api/admin/clients/{client_id}",
    tag = "admin",
    summary = "Remove a service client: its secret and every token it holds stop working at once",
    params(("client_id" = String, Path, description = "The client's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such client", body = ErrorDetail),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn remove(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = ClientActor::Staff(staff.user.id);
    if authority.clients().remove(&client_id, actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
