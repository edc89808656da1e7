//! The records of the change log: what an entry is about, and an entry.

/// What a [`Change`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A user was created or changed; `subject` is the id.
    User,
    /// A refresh token was blacklisted; `subject` is the jti.
    Jti,
    /// A family was revoked; `subject` is the fid.
    Family,
    /// The signing keys changed.
    Keys,
    /// A service client was removed; `subject` is its client id, and every
    /// token of it is refused until `expires_at`.
    Client,
}

impl ChangeKind {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::User => "user",
            ChangeKind::Jti => "jti",
            ChangeKind::Family => "family",
            ChangeKind::Keys => "keys",
            ChangeKind::Client => "client",
        }
    }

    /// Parses a stored name; unknown kinds (from a newer version) are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ChangeKind::User,
            "jti" => ChangeKind::Jti,
            "family" => ChangeKind::Family,
            "keys" => ChangeKind::Keys,
            "client" => ChangeKind::Client,
            _ => return None,
        })
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Increasing id.
    pub id: i64,
    /// What changed; `None` for kinds this version does not know.
    pub kind: Option<ChangeKind>,
    /// Which user, jti or family.
    pub subject: String,
    /// For jti, family and client entries: until when the marker holds.
    pub expires_at: Option<i64>,
    /// For user and family entries: the user (`None` for a family revoked
    /// before the column existed whose record was since pruned).
    pub user_id: Option<i64>,
    /// For jti entries: whether the token was a refresh token (which no
    /// other service accepts); false for an access token or when unknown.
    pub refresh_token: bool,
    /// When it was written, Unix seconds.
    pub created_at: i64,
}

/// A user's standing as it is now, for a user the change log names within a
/// window (the revocation feed's snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangedUser {
    /// The user.
    pub id: i64,
    /// The user's token version now.
    pub token_version: i64,
    /// Whether the user is active now.
    pub is_active: bool,
    /// The version of the user's claims now.
    pub claims_version: i64,
    /// When the newest change of the window about the user was written.
    pub changed_at: i64,
}

/// The markers the change log holds within a window, up to a position: what
/// the revocation feed's snapshot is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowChanges {
    /// Family, jti (not refresh tokens') and client entries, oldest first.
    pub markers: Vec<Change>,
    /// The users named, as they stand now: only those whose standing refuses
    /// some token (a raised token or claims version, or inactive).
    pub users: Vec<ChangedUser>,
}
