//! `GET /api/admin/audit`: the audit log for staff, newest first, filtered
//! and paged as the users list is.

use super::accounts::timestamp;
use super::admin::Staff;
use super::openapi::*;
use crate::authority::{
    AuditKind, AuditPage, Authority, DEFAULT_PAGE_SIZE, FieldErrors, MAX_PAGE_SIZE,
};
use crate::http::extract::error::ApiError;
use crate::http::extract::origin::PublicOrigin;
use axum::Json;
use axum::extract::{Query, State};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_store::{AuditFilter, AuditRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The API's form of one event: `detail` as the object it is.
fn event_object(e: &AuditRecord) -> AuditEventObject {
    AuditEventObject {
        actor_id: e.actor_id,
        at: timestamp(e.at),
        detail: serde_json::from_str::<Value>(&e.detail)
            .unwrap_or_else(|_| Value::Object(serde_json::Map::new())),
        event: e.event.clone(),
        id: e.id,
        ip: e.ip.clone(),
        user_agent: e.user_agent.clone(),
        user_id: e.user_id,
    }
}

/// The query's filters and page, each bad parameter named (DRF's bodies).
fn read_query(query: &HashMap<String, String>) -> Result<(AuditFilter, i64, i64), ApiError> {
    let mut errors = FieldErrors::new();
    let mut fail = |name: &str, message: String| {
        errors.insert(name.to_owned(), vec![message]);
    };
    let mut filter = AuditFilter::default();
    if let Some(raw) = query.get("user_id") {
        match raw.parse::<i64>() {
            Ok(id) => filter.user_id = Some(id),
            Err(_) => fail("user_id", "A valid integer is required.".into()),
        }
    }
    if let Some(event) = query.get("event") {
        if let Some(kind) = AuditKind::parse(event) {
            filter.event = Some(kind.as_str().to_owned());
        } else {
            let shown: String = event.chars().take(64).collect();
            fail(
                "event",
                format!("Select a valid choice. {shown} is not one of the available choices."),
            );
        }
    }
    for (name, slot) in [("since", &mut filter.since), ("until", &mut filter.until)] {
        if let Some(raw) = query.get(name) {
            match OffsetDateTime::parse(raw, &Rfc3339) {
                Ok(at) => *slot = Some(at.unix_timestamp()),
                Err(_) => fail(
                    name,
                    "Datetime has wrong format. Use RFC 3339, such as 2026-12-01T08:00:00Z.".into(),
                ),
            }
        }
    }
    let page = match query.get("page").map(|p| p.parse::<i64>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => {
            fail("page", "A positive integer is required.".into());
            1
        }
    };
    let page_size = match query.get("page_size").map(|p| p.parse::<i64>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => {
            fail(
                "page_size",
                format!("Ensure this value is an integer from 1 to {MAX_PAGE_SIZE}."),
            );
            DEFAULT_PAGE_SIZE
        }
    };
    if errors.is_empty() {
        Ok((filter, page, page_size))
    } else {
        Err(ApiError::Fields(errors))
    }
}

/// The address of one page of events: the filters as given (they were
/// valid), in a stable order, then the page and its size.
fn page_link(base: &str, query: &HashMap<String, String>, page: i64, page_size: i64) -> String {
    let mut pairs: Vec<(&str, String)> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "page" | "page_size"))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    pairs.sort();
    pairs.push(("page", page.to_string()));
    pairs.push(("page_size", page_size.to_string()));
    let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}?{encoded}")
}

/// `GET /api/admin/audit?user_id=&event=&since=&until=&page=&page_size=`.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin",
    summary = "Security events, newest first",
    params(
        ("user_id" = Option<i64>, Query, description = "Events of this user"),
        ("event" = Option<String>, Query, description = "One event name"),
        ("since" = Option<String>, Query, description = "RFC 3339: at or after"),
        ("until" = Option<String>, Query, description = "RFC 3339: at or before"),
        ("page" = Option<i64>, Query, description = "1-based page, default 1"),
        ("page_size" = Option<i64>, Query, description = "1 to 100, default 20")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of events", body = AuditList),
        (status = 400, description = "A bad parameter, named", body = BadRequest),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 404, description = "Invalid page", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail)
    )
)]
pub async fn list(
    State(authority): State<Arc<Authority>>,
    _staff: Staff,
    origin: PublicOrigin,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<AuditList>, ApiError> {
    let (filter, page, page_size) = read_query(&query)?;
    let AuditPage {
        count,
        events,
        next,
        previous,
    } = authority
        .accounts()
        .audit_page(&filter, page, page_size)
        .await?;
    let base = format!("{}/api/admin/audit", origin.base(authority.settings()));
    let link = |page: Option<i64>| page.map(|p| page_link(&base, &query, p, page_size));
    Ok(Json(AuditList {
        count,
        next: link(next),
        previous: link(previous),
        results: events.iter().map(event_object).collect(),
    }))
}
