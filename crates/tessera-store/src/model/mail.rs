//! The records of what account recovery mails: links, mails and letters,
//! requests and the limits they count against, the outbox as read.

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
