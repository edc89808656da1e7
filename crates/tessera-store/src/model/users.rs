//! The records of users: as stored, to create, to import (and what
//! importing did), and the changes an update or a login makes.

/// A stored user. `password_hash` is a PHC string; it never leaves the server.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    /// Integer id, assigned by the database.
    pub id: i64,
    /// Normalised username.
    pub username: String,
    /// Email, `""` when none.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May use the administration endpoints.
    pub is_staff: bool,
    /// Created by `createsuperuser`.
    pub is_superuser: bool,
    /// May log in and use tokens.
    pub is_active: bool,
    /// Token version: tokens carrying an older one are refused.
    pub token_version: i64,
    /// Unix seconds.
    pub date_joined: i64,
    /// Unix seconds of the last successful login.
    pub last_login: Option<i64>,
    /// Raised by every update of the row: of two copies of a user, the one
    /// with the higher revision is the newer.
    pub revision: i64,
    /// The user followed a link mailed to `email` (cleared when it changes).
    pub email_verified: bool,
    /// The user's roles: a JSON array of names, sorted, each once.
    pub roles: String,
    /// What staff keep about the user: a JSON object, `{}` when nothing.
    pub app_metadata: String,
    /// Raised by each change of `roles` or `app_metadata`: access tokens
    /// minted with an older one are stale.
    pub claims_version: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_active", &self.is_active)
            .field("token_version", &self.token_version)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// A user to create.
#[derive(Clone)]
pub struct NewUser {
    /// Normalised username.
    pub username: String,
    /// Email, `""` when none.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Unix seconds.
    pub date_joined: i64,
    /// The address counts as verified from the start (an account an
    /// operator made).
    pub email_verified: bool,
}

/// A user brought from another system (`tessera import-users`), with the
/// id it had there when it has one.
#[derive(Clone)]
pub struct ImportedUser {
    /// The id to keep; `None` takes the next one.
    pub id: Option<i64>,
    /// Normalised username.
    pub username: String,
    /// Email, `""` when none.
    pub email: String,
    /// The hash as the other system stored it (see
    /// `tessera_core::password::imported`), or one that matches nothing.
    pub password_hash: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Active flag.
    pub is_active: bool,
    /// Unix seconds.
    pub date_joined: i64,
    /// Unix seconds of the last login there, if any.
    pub last_login: Option<i64>,
    /// Its roles (Django's groups) as a JSON array of names, sorted, each
    /// once; `[]` for none.
    pub roles: String,
}

impl std::fmt::Debug for ImportedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the hash: an imported one may be weak enough to crack.
        f.debug_struct("ImportedUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// What importing one [`ImportedUser`] did, or would do in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Created with this id.
    Imported {
        /// Its id.
        id: i64,
    },
    /// A user with this id and username exists already (or, for a row
    /// without an id, with this username): nothing was changed.
    AlreadyPresent {
        /// Its id.
        id: i64,
    },
    /// The id belongs to a user of another name, left as it is.
    IdTaken {
        /// The name of the user who has the id.
        username: String,
    },
    /// The username belongs to a user of another id, left as it is.
    UsernameTaken {
        /// The id of the user who has the name.
        id: i64,
    },
}

/// A password hash to replace at a login, only if it is still the one the
/// login checked (a password change in between wins).
#[derive(Clone, Copy)]
pub struct Rehash<'a> {
    /// The hash the login verified.
    pub old: &'a str,
    /// The hash to store instead.
    pub new: &'a str,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct UserUpdate {
    /// New active flag.
    pub is_active: Option<bool>,
    /// New staff flag.
    pub is_staff: Option<bool>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// Raise the token version, refusing every token issued before.
    pub bump_token_version: bool,
    /// New email; a different address is no longer verified (unless
    /// `email_verified` says otherwise in the same update), and links
    /// mailed to any other address are voided.
    pub email: Option<String>,
    /// New verified flag.
    pub email_verified: Option<bool>,
    /// New roles, a JSON array of names (sorted, each once); setting them
    /// raises the claims version.
    pub roles: Option<String>,
    /// New metadata, a JSON object; setting it raises the claims version.
    pub app_metadata: Option<String>,
}

impl UserUpdate {
    /// Whether the update takes a user's staff status or activity away,
    /// which the last active staff user may not lose.
    pub fn demotes(&self) -> bool {
        self.is_staff == Some(false) || self.is_active == Some(false)
    }

    /// Whether the update changes what access tokens say of the user beyond
    /// its flags (roles, metadata), which raises the claims version.
    pub fn changes_claims(&self) -> bool {
        self.roles.is_some() || self.app_metadata.is_some()
    }
}
