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
}

impl ChangeKind {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::User => "user",
            ChangeKind::Jti => "jti",
            ChangeKind::Family => "family",
            ChangeKind::Keys => "keys",
        }
    }

    /// Parses a stored name; unknown kinds (from a newer version) are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ChangeKind::User,
            "jti" => ChangeKind::Jti,
            "family" => ChangeKind::Family,
            "keys" => ChangeKind::Keys,
            _ => return None,
        })
    }
}

/// One entry of the change log.
#[derive(Debug, Clone)]
pub struct Change {
    /// Increasing id.
    pub id: i64,
    /// What changed; `None` for kinds this version does not know.
    pub kind: Option<ChangeKind>,
    /// Which user, jti or family.
    pub subject: String,
    /// For jti and family: until when the marker holds.
    pub expires_at: Option<i64>,
}
