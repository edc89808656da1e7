//! Reading the audit log (the events are written by `crate::audit`).

use super::*;
use tessera_store::{AuditFilter, AuditRecord};

/// Every event name the audit log holds.
pub const AUDIT_EVENTS: [&str; 18] = [
    "login_succeeded",
    "login_failed",
    "login_throttled",
    "signup",
    "refresh_reused",
    "logout",
    "session_ended",
    "password_changed",
    "password_set",
    "user_updated",
    "user_revoked",
    "keys_rotated",
    "token_issued",
    "users_imported",
    "password_reset_requested",
    "password_reset",
    "email_verification_requested",
    "email_verified",
];

/// One page of audit events, newest first.
#[derive(Debug)]
pub struct AuditPage {
    /// Events matching in all.
    pub count: i64,
    /// This page's.
    pub events: Vec<AuditRecord>,
    /// The next page's number, if there is one.
    pub next: Option<i64>,
    /// The previous page's number, if there is one.
    pub previous: Option<i64>,
}

impl Authority {
    /// Page `page` (from 1) of the events matching `filter`, `page_size`
    /// a page; a page past the last is [`AuthError::InvalidPage`], except
    /// page 1 of nothing.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        page: i64,
        page_size: i64,
    ) -> Result<AuditPage, AuthError> {
        let offset = (page - 1).saturating_mul(page_size);
        let (count, events) = self.store.audit_page(filter, offset, page_size).await?;
        if page > 1 && offset >= count {
            return Err(AuthError::InvalidPage);
        }
        Ok(AuditPage {
            count,
            events,
            next: (offset + page_size < count).then_some(page + 1),
            previous: (page > 1).then_some(page - 1),
        })
    }
}
