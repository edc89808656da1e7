//! The records the store reads and writes.

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
}

impl UserUpdate {
    /// Whether the update takes a user's staff status or activity away,
    /// which the last active staff user may not lose.
    pub fn demotes(&self) -> bool {
        self.is_staff == Some(false) || self.is_active == Some(false)
    }
}

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

/// A stored signing key. `private_key` is secret: never logged.
#[derive(Clone, sqlx::FromRow)]
pub struct KeyRecord {
    /// Key id.
    pub kid: String,
    /// Algorithm name as in the settings.
    pub algorithm: String,
    /// HMAC secret or PKCS#8 PEM.
    pub private_key: Vec<u8>,
    /// Unix seconds, on the clock of the process that stored it.
    pub created_at: i64,
    /// When it starts signing, on the database's clock (Unix seconds): it is
    /// published from when it is stored, and every instance switches to it
    /// at this moment. `None`: from when it was stored (a first key, and the
    /// keys stored before keys were published ahead).
    pub signs_from: Option<i64>,
    /// When it stops signing (a newer key takes over then), possibly still
    /// ahead; on the database's clock, except for keys retired before keys
    /// were published ahead (the clock of the process that rotated).
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The two kinds of link Tessera mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Sets a new password (`/?reset=TOKEN`).
    Reset,
    /// Verifies the user's address (`/?verify=TOKEN`).
    Verify,
}

impl LinkKind {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Reset => "reset",
            LinkKind::Verify => "verify",
        }
    }

    /// Whether writing a link of this kind voids the user's older ones of
    /// the kind. A reset link does: it hands over the account, so only the
    /// newest may. A verification link does not: it only proves that its
    /// reader has the address it went to, so an older one is as good, and
    /// voiding it broke the signup mail's link for a user whose login,
    /// tried before opening that mail, mailed another. (Verification links
    /// still end when used, when one of them is used, when they expire and
    /// when the address changes.)
    pub fn newer_voids_older(self) -> bool {
        match self {
            LinkKind::Reset => true,
            LinkKind::Verify => false,
        }
    }
}

/// A link to mail: the SHA-256 of its token (hex), and whose it is.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// SHA-256 of the token, hex; the token itself is never stored.
    pub token_hash: String,
    /// The user it acts for.
    pub user_id: i64,
    /// What it does.
    pub kind: LinkKind,
    /// The address it was mailed to.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; refused from then on.
    pub expires_at: i64,
}

impl std::fmt::Debug for LinkRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRecord")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A mail for the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// One address (already checked to be one).
    pub recipient: String,
    /// One line.
    pub subject: String,
    /// Plain UTF-8 text; holds the links.
    pub body: String,
    /// Unix seconds: written then, and due to be sent from then.
    pub created_at: i64,
    /// Given up on from then (Unix seconds): its link has expired.
    pub expires_at: i64,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the body: it holds a live link.
        f.debug_struct("OutgoingMail")
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One mail for the outbox and the links it carries: what one honoured
/// request writes, at most. A reset mail to an address several accounts
/// share carries a link for each of them, so that the number of mails an
/// address receives is the number of requests honoured for it, whatever
/// the number of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The links, each for its own user (none is stored without the mail).
    pub links: Vec<LinkRecord>,
    /// The mail that carries them.
    pub mail: OutgoingMail,
}

/// A request for links (a reset request, a verification request), known
/// address or not, and the limits it counts against: at most `per_key`
/// requests of its kind with one `limit_key` and `per_client` from one
/// client within `window` seconds are honoured.
#[derive(Debug, Clone)]
pub struct MailRequest {
    /// Which kind of link was asked for.
    pub kind: LinkKind,
    /// What the first limit counts (SHA-256, hex): for a reset, the address
    /// asked for, lower-cased; for a verification, the account and its
    /// address.
    pub limit_key: String,
    /// The client's address, `""` when none (the CLI).
    pub client: String,
    /// Unix seconds.
    pub at: i64,
    /// The address asked for, kept (within the limits) until
    /// [`crate::LinkStore::fulfil_mail_request`] writes its mails; `""`
    /// when the links come with the request.
    pub address: String,
    /// Seconds the limits count over.
    pub window: i64,
    /// Requests honoured per `limit_key` within the window.
    pub per_key: i64,
    /// Requests honoured per client within the window.
    pub per_client: i64,
}

/// A reset request within the limits whose mails are not written yet.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingRequest {
    /// Its row.
    pub id: i64,
    /// The address asked for.
    pub address: String,
    /// The client's address, `""` when none.
    pub client: String,
    /// Unix seconds.
    pub at: i64,
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("id", &self.id)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// A mail taken from the outbox to be sent.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedMail {
    /// Its row.
    pub id: i64,
    /// One address.
    pub recipient: String,
    /// One line.
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// Tries before this one.
    pub attempts: i64,
    /// Unix seconds; given up on from then.
    pub expires_at: i64,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What the outbox holds, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent (or being sent).
    pub pending: i64,
    /// Delivered.
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
}
