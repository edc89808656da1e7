//! The records of service clients (OAuth2 confidential clients).

/// A service client as the store keeps it (one not removed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRecord {
    /// Its id (`tc_` and 24 hex characters).
    pub client_id: String,
    /// Its name, unique among clients not removed.
    pub name: String,
    /// The SHA-256 of its secret, lowercase hex; never the secret.
    pub secret_digest: String,
    /// Its scopes, space-separated.
    pub scope: String,
    /// When it was added, Unix seconds.
    pub created_at: i64,
}
