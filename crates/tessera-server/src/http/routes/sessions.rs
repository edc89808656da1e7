//! Sessions (SPEC: sessions): the caller's own, and any user's for staff.
//! A session's `id` is its token family's `fid`.

use super::accounts::timestamp;
use super::admin::Staff;
use super::openapi::*;
use crate::authority::{Authority, LoginMethod};
use crate::http::extract::auth::Authenticated;
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use std::sync::Arc;
use tessera_core::ids::{FamilyId, UserId};
use tessera_store::SessionRecord;

/// One session as the API shows it; `current` when `current_fid` is given.
fn session_object(session: &SessionRecord, current_fid: Option<&str>) -> SessionObject {
    SessionObject {
        created: timestamp(session.created_at),
        current: current_fid.map(|fid| session.family_id == fid),
        id: session.family_id.clone(),
        ip: session.ip.clone(),
        last_used: timestamp(session.last_used),
        user_agent: session.user_agent.clone(),
    }
}

const UNAUTHORIZED: &str = "No credentials, or a refused token (see `reason`)";

/// `GET /api/auth/sessions`: the caller's live sessions.
#[utoipa::path(
    get,
    path = "/api/auth/sessions",
    tag = "accounts",
    summary = "The caller's sessions, most recently used first",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 401, description = UNAUTHORIZED, body = ErrorDetail)
    )
)]
pub async fn list(
    State(authority): State<Arc<Authority>>,
    auth: Authenticated,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = authority.sessions().sessions_of(auth.user.id).await?;
    let current = Some(auth.claims.fid.as_str());
    let results = sessions
        .iter()
        .map(|s| session_object(s, current))
        .collect();
    Ok(Json(SessionList { results }))
}

/// `DELETE /api/auth/sessions/{id}`: ends one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/api/auth/sessions/{id}",
    tag = "accounts",
    summary = "End one of the caller's sessions (as logout ends it)",
    params(("id" = String, Path, description = "The session id (its fid)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "Not a live session of the caller's", body = ErrorDetail),
        (status = 401, description = UNAUTHORIZED, body = ErrorDetail)
    )
)]
pub async fn end(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // A malformed id is no session of anybody's.
    let fid = FamilyId::parse(&id).ok_or(ApiError::NotFound)?;
    let origin = origin(client, &headers, LoginMethod::Password);
    if authority
        .sessions()
        .end_session(auth.user.id, &fid, None, &origin)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `POST /api/auth/sessions/end-others`: ends every session but this one.
#[utoipa::path(
    post,
    path = "/api/auth/sessions/end-others",
    tag = "accounts",
    summary = "End every session of the caller's but the current one",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = UNAUTHORIZED, body = ErrorDetail)
    )
)]
pub async fn end_others(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    authority
        .sessions()
        .end_other_sessions(auth.user.id, &auth.claims.fid, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user id from the path, 404 when it names no user.
async fn existing_user(authority: &Authority, raw: &str) -> Result<UserId, ApiError> {
    let id = raw.parse::<UserId>().map_err(|_| ApiError::NotFound)?;
    authority
        .accounts()
        .user(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(id)
}

/// `GET /api/admin/users/{id}/sessions`: a user's live sessions, for staff.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/sessions",
    tag = "admin",
    summary = "A user's sessions, most recently used first",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions (no `current`)", body = SessionList),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 404, description = "No such user", body = ErrorDetail),
        (status = 401, description = UNAUTHORIZED, body = ErrorDetail)
    )
)]
pub async fn admin_list(
    State(authority): State<Arc<Authority>>,
    _staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<SessionList>, ApiError> {
    let id = existing_user(&authority, &id).await?;
    let sessions = authority.sessions().sessions_of(id).await?;
    let results = sessions.iter().map(|s| session_object(s, None)).collect();
    Ok(Json(SessionList { results }))
}

/// `DELETE /api/admin/users/{id}/sessions/{sid}`: ends a user's session, for staff.
#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/sessions/{sid}",
    tag = "admin",
    summary = "End a user's session",
    params(("id" = i64, Path, description = "User id"), ("sid" = String, Path, description = "The session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 403, description = "Not staff, or the user is a superuser and the caller is not", body = ErrorDetail),
        (status = 404, description = "No such user, or not a live session of theirs", body = ErrorDetail),
        (status = 401, description = UNAUTHORIZED, body = ErrorDetail)
    )
)]
pub async fn admin_end(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Staff(staff): Staff,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = existing_user(&authority, &id).await?;
    let fid = FamilyId::parse(&sid).ok_or(ApiError::NotFound)?;
    let origin = origin(client, &headers, LoginMethod::Password);
    if authority
        .sessions()
        .end_session(id, &fid, Some(staff.user.id), &origin)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
