//! The records of second factors: a user's TOTP factor, and the challenges
//! of logins waiting for a second factor.

/// A user's TOTP factor as the store keeps it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpRecord {
    /// Whose.
    pub user_id: i64,
    /// The raw shared secret; never logged (this type's `Debug` hides it).
    pub secret: Vec<u8>,
    /// When enrolment began, Unix seconds.
    pub created_at: i64,
    /// When a code confirmed it, Unix seconds; `None` while pending.
    pub confirmed_at: Option<i64>,
    /// The last time step whose code was accepted, if any.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("secret", &"..")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A login waiting for its second factor, known by the SHA-256 of its
/// `mfa_token`; or (`purpose` `enrolment`) a login waiting for the user to
/// enrol one, known by the SHA-256 of its enrolment token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChallengeRecord {
    /// SHA-256 (lowercase hex) of the `mfa_token`; never the token.
    pub token_hash: String,
    /// The user whose password was right.
    pub user_id: i64,
    /// The user's token version when the password was checked.
    pub token_version: i64,
    /// How the login began: `password`, `oauth`, `flask_jwt_extended`, `fastapi`.
    pub method: String,
    /// How its tokens travel: `header` or `cookie`.
    pub transport: String,
    /// The client address of the password step.
    pub ip: String,
    /// The User-Agent of the password step.
    pub user_agent: String,
    /// When the password was checked, Unix seconds.
    pub created_at: i64,
    /// When the challenge can no longer be answered, Unix seconds.
    pub expires_at: i64,
    /// What the token allows: `login` (an `mfa_token`: the login's second
    /// step) or `enrolment` (an enrolment token: the enrolment routes).
    pub purpose: String,
}

/// What proves the second factor, for the store's conditional write that
/// accepts it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorProof<'a> {
    /// A TOTP code of this time step (accepted if no code of this step or
    /// a later one was).
    TotpStep(i64),
    /// A recovery code with this SHA-256 (hex), unused.
    RecoveryCode(&'a str),
    /// An assertion of the user's passkey `id` with signature counter
    /// `sign_count` (accepted if above the last one accepted, or both
    /// zero), which leaves the credential as `passkey` says.
    Passkey {
        /// The passkey's id.
        id: &'a str,
        /// The assertion's signature counter.
        sign_count: i64,
        /// The credential after the assertion (the library's JSON).
        passkey: &'a str,
    },
}

/// What became of an answer to a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeAnswer {
    /// The challenge was live and the proof accepted: both used up, in one
    /// transaction.
    Completed(ChallengeRecord),
    /// No live challenge has that hash (unknown, expired, used, or
    /// another user's): nothing written.
    ChallengeGone,
    /// The challenge is live but the proof was used already (or the factor
    /// is gone): nothing written, the challenge kept.
    ProofRefused,
}

/// One of a user's passkeys as the store keeps it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PasskeyRecord {
    /// The server's name for it (random; in the API).
    pub id: String,
    /// Whose.
    pub user_id: i64,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// The WebAuthn user handle it was registered under.
    pub user_handle: String,
    /// The label its user gave it.
    pub name: String,
    /// The credential as the WebAuthn library keeps it (JSON: the public
    /// key, the signature counter).
    pub passkey: String,
    /// The signature counter of the last assertion accepted.
    pub sign_count: i64,
    /// When it was registered, Unix seconds.
    pub created_at: i64,
    /// When an assertion of it was last accepted, Unix seconds.
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("sign_count", &self.sign_count)
            .finish_non_exhaustive()
    }
}

/// What became of a new passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyAdded {
    /// Stored; `first_factor` when the user had no factor before (no
    /// confirmed TOTP factor, no passkey), whose recovery codes were then
    /// written with it.
    Added {
        /// Whether it is the user's first factor.
        first_factor: bool,
    },
    /// A passkey of that credential id exists (this user's or another's):
    /// nothing written.
    Duplicate,
    /// The user has the most passkeys allowed: nothing written.
    TooMany,
}

/// A WebAuthn ceremony under way, known by its challenge.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CeremonyRecord {
    /// The challenge, base64url, as the options carried it.
    pub challenge: String,
    /// `register`, `second_factor` or `login`.
    pub purpose: String,
    /// The user it is for (`None` for a passwordless login's).
    pub user_id: Option<i64>,
    /// For a second factor's: the SHA-256 (hex) of its `mfa_token`.
    pub mfa_token_hash: Option<String>,
    /// The library's ceremony state (JSON).
    pub state: String,
    /// For a passwordless login's: the client address that began it (an
    /// IPv6 client: its /64); else empty.
    pub ip: String,
    /// When it began, Unix seconds.
    pub created_at: i64,
    /// When it can no longer be finished, Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for CeremonyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyRecord")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
