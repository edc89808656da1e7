//! The revocation feed (docs/API.md, "Revocation feed"): its wire format,
//! which Tessera writes and every follower reads, and the state a follower
//! keeps from it. A follower decides with the same [`RevocationSet`] as
//! Tessera's own instances, so a service refuses exactly what Tessera does.
//!
//! A snapshot holds every marker that can still refuse a token: those newer
//! than its `window` (the longest lifetime of an access or client token, plus
//! the leeway). An older marker cannot concern a token still valid, so the
//! snapshot stays small whatever the history. Events then carry each change
//! after the snapshot's cursor.

mod state;

pub use state::FeedState;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A position in Tessera's change log, which a snapshot is exact at and
/// each event leads to. Opaque to followers: they hand it back as it came
/// (`Last-Event-ID`, `?after=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor(i64);

impl Cursor {
    /// The cursor at change-log position `position` (0: before every change).
    pub fn at(position: i64) -> Self {
        Self(position.max(0))
    }

    /// The change-log position.
    pub fn position(self) -> i64 {
        self.0
    }

    /// Reads a cursor as [`fmt::Display`] writes it: 1 to 19 ASCII digits
    /// that fit an `i64`; anything else (a sign, spaces, other text) is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cursor::parse(&text).ok_or_else(|| serde::de::Error::custom("not a feed cursor"))
    }
}

/// A family (a login and everything refreshed from it) that was ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FamilyEntry {
    /// The family's id, the `fid` claim.
    pub fid: String,
    /// Its user.
    pub user_id: i64,
    /// When it was ended, epoch seconds.
    pub at: i64,
}

/// A user whose standing changed: tokens with a `ver` below `ver`, and all
/// of an inactive user's, are refused as revoked; access tokens with a
/// `cver` below `cver` (roles or metadata changed since) as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntry {
    /// The user.
    pub user_id: i64,
    /// The user's token version now.
    pub ver: i64,
    /// Whether the user is active now.
    pub active: bool,
    /// The version of the user's claims now (0, and absent from servers
    /// older than it: never changed).
    #[serde(default)]
    pub cver: i64,
    /// When it changed, epoch seconds.
    pub at: i64,
}

/// An access token revoked by its `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenEntry {
    /// The token's `jti`.
    pub jti: String,
    /// Its expiry, epoch seconds: after it the marker is moot.
    pub exp: i64,
}

/// A service client that was removed: each of its tokens is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientEntry {
    /// The client's id.
    pub client_id: String,
    /// When it was removed, epoch seconds.
    pub at: i64,
}

/// `GET /api/revocations`: every marker that can still refuse a token,
/// exact at `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Where the stream resumes after this snapshot.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1042"))]
    pub cursor: Cursor,
    /// How far back the markers reach, seconds: the longest an access or
    /// client token is accepted after it is issued.
    pub window: i64,
    /// Families ended within the window.
    pub families: Vec<FamilyEntry>,
    /// Users changed within the window, as they are now.
    pub users: Vec<UserEntry>,
    /// Access tokens revoked that have not expired.
    pub tokens: Vec<TokenEntry>,
    /// Clients removed within the window.
    pub clients: Vec<ClientEntry>,
}

/// One event of `GET /api/revocations/stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// `family_revoked`.
    FamilyRevoked(FamilyEntry),
    /// `user_changed`.
    UserChanged(UserEntry),
    /// `token_revoked`.
    TokenRevoked(TokenEntry),
    /// `client_removed`.
    ClientRemoved(ClientEntry),
    /// `keys_changed`: fetch the key set again.
    KeysChanged,
    /// `reset`: the cursor is no longer held; fetch the snapshot again.
    Reset,
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// An event name this version does not know (a newer server's).
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
    /// The data is not the event's JSON.
    #[error("malformed `{0}` data")]
    Malformed(&'static str),
}

impl FeedEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            FeedEvent::FamilyRevoked(_) => "family_revoked",
            FeedEvent::UserChanged(_) => "user_changed",
            FeedEvent::TokenRevoked(_) => "token_revoked",
            FeedEvent::ClientRemoved(_) => "client_removed",
            FeedEvent::KeysChanged => "keys_changed",
            FeedEvent::Reset => "reset",
        }
    }

    /// The SSE `data:` JSON: the entry, `{}` for `keys_changed` and `reset`.
    pub fn data(&self) -> String {
        let json = match self {
            FeedEvent::FamilyRevoked(e) => serde_json::to_string(e),
            FeedEvent::UserChanged(e) => serde_json::to_string(e),
            FeedEvent::TokenRevoked(e) => serde_json::to_string(e),
            FeedEvent::ClientRemoved(e) => serde_json::to_string(e),
            FeedEvent::KeysChanged | FeedEvent::Reset => Ok("{}".to_owned()),
        };
        // Serialising these plain structs cannot fail.
        json.unwrap_or_else(|_| "{}".to_owned())
    }

    /// Reads an event from its SSE `event:` name and `data:`.
    pub fn parse(name: &str, data: &str) -> Result<Self, FeedError> {
        fn entry<T: serde::de::DeserializeOwned>(
            name: &'static str,
            data: &str,
        ) -> Result<T, FeedError> {
            serde_json::from_str(data).map_err(|_| FeedError::Malformed(name))
        }
        Ok(match name {
            "family_revoked" => FeedEvent::FamilyRevoked(entry("family_revoked", data)?),
            "user_changed" => FeedEvent::UserChanged(entry("user_changed", data)?),
            "token_revoked" => FeedEvent::TokenRevoked(entry("token_revoked", data)?),
            "client_removed" => FeedEvent::ClientRemoved(entry("client_removed", data)?),
            "keys_changed" => FeedEvent::KeysChanged,
            "reset" => FeedEvent::Reset,
            other => return Err(FeedError::UnknownEvent(other.chars().take(64).collect())),
        })
    }
}

#[cfg(test)]
mod tests;
