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
