//! The records of the audit log: an event to append, an event as kept,
//! and which events to read.

/// A security event to append to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// Its name: `login_succeeded`, `login_failed`, ...
    pub event: String,
    /// The user it concerns, when known.
    pub user_id: Option<i64>,
    /// The staff user who did it, if not the user.
    pub actor_id: Option<i64>,
    /// The client address, `""` when none (the CLI).
    pub ip: String,
    /// The User-Agent, `""` when none.
    pub user_agent: String,
    /// A JSON object of further facts; never a password, a hash or a token.
    pub detail: String,
}

/// An event as the audit log keeps it, with its id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    /// Increasing with each event appended.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Its name.
    pub event: String,
    /// The user it concerns.
    pub user_id: Option<i64>,
    /// The staff user who did it.
    pub actor_id: Option<i64>,
    /// The client address.
    pub ip: String,
    /// The User-Agent.
    pub user_agent: String,
    /// A JSON object.
    pub detail: String,
}

/// Which events to read; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Of this user.
    pub user_id: Option<i64>,
    /// With this name.
    pub event: Option<String>,
    /// At or after, Unix seconds.
    pub since: Option<i64>,
    /// At or before, Unix seconds.
    pub until: Option<i64>,
}
