//! The records of refresh tokens and sessions: a token as recorded, its
//! sealed successor, its standing, the revocation markers in force, and a
//! session as its user sees it.

/// A refresh token as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Its `jti`.
    pub jti: String,
    /// Owner.
    pub user_id: i64,
    /// Its family (`fid`).
    pub family_id: String,
    /// `iat`.
    pub issued_at: i64,
    /// `exp`.
    pub expires_at: i64,
}

/// The successor a refresh token was rotated into, sealed under a key only
/// that token gives (`tessera_core::successor`), and until when (Unix
/// milliseconds) presenting the rotated token again is answered with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSuccessor {
    /// The sealed successor, opaque to the store.
    pub sealed: Vec<u8>,
    /// The end of the grace period, Unix milliseconds.
    pub usable_until_ms: i64,
}

/// What the database says of one refresh token now, whichever process wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshStanding {
    /// The token was blacklisted (or rotated away with blacklisting).
    pub blacklisted: bool,
    /// Its family (session) was ended: logout, reuse, the session cap.
    pub family_revoked: bool,
}

/// What a refresh that minted its tokens from a process's memory assumed of
/// the user, for the rotation's own statement to confirm
/// ([`TokenStore::rotate_if_current`](crate::TokenStore::rotate_if_current)):
/// the user exists, is active, and is at these versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedUser {
    /// The user.
    pub user_id: i64,
    /// Their token version the tokens were minted with (`ver`).
    pub token_version: i64,
    /// Their claims version the access token was minted with (`cver`).
    pub claims_version: i64,
}

/// What a guarded rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is blacklisted and the new one recorded.
    Rotated,
    /// The old token was blacklisted already (another refresh rotated it):
    /// nothing was written.
    AlreadyBlacklisted,
    /// The database does not hold what the caller assumed (the user changed,
    /// was deactivated or removed, or the session was ended): nothing was
    /// written; decide again from the database.
    Stale,
}

/// The revocation markers in force.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    /// Blacklisted jtis with their tokens' expiry.
    pub jtis: Vec<(String, i64)>,
    /// Revoked families with the time until which they must stay revoked.
    pub families: Vec<(String, i64)>,
}

/// A session: one login's token family, as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    /// The family id (`fid`), the session's id.
    pub family_id: String,
    /// Its user.
    pub user_id: i64,
    /// When it began, Unix seconds.
    pub created_at: i64,
    /// When it was last refreshed (or began).
    pub last_used: i64,
    /// When its newest refresh token expires.
    pub expires_at: i64,
    /// The user's token version at login.
    pub token_version: i64,
    /// The client address at login.
    pub ip: String,
    /// The User-Agent at login (at most 256 characters).
    pub user_agent: String,
    /// How it began: `password`, `oauth`, or a compat set's name.
    pub method: String,
}
