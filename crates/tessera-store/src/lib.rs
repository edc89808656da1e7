//! Tessera's storage: the [`Store`] trait the server talks to, and its two
//! implementations with embedded migrations: [`SqliteStore`] (one file) and
//! [`PgStore`] (PostgreSQL), with the same schema and the same semantics.
//! [`scratch`] makes throwaway PostgreSQL databases for tests.
//!
//! Every write that affects whether a token is accepted also appends a
//! [`Change`], in the same transaction, so that every process sharing the
//! database can bring its in-memory revocation state up to date.
#![deny(missing_docs)]

mod audit;
mod batch;
mod import;
mod mail;
mod model;
mod pool;
mod postgres;
pub mod scratch;
mod sessions;
mod sqlite;
mod sqlite_file;
mod successors;

pub use model::*;
pub use postgres::tls::{
    connect_options as pg_connect_options, explain_connect_error as explain_pg_connect_error,
};
pub use postgres::{AUDIT_LOG_LOCK, CHANGE_LOG_LOCK, PgStore};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::Notify;

/// The columns of a [`UserRecord`], in its order.
pub(crate) const USER_COLUMNS: &str = "id, username, email, password_hash, is_staff, is_superuser, \
                                       is_active, token_version, date_joined, last_login, revision, \
                                       email_verified";

/// The condition, in an `UPDATE users ... WHERE` (its one parameter, `?`:
/// whether the update demotes), that the row is the last active staff user
/// and the update would demote it: such an update changes nothing. The same
/// text for both engines; PostgreSQL's caller numbers the parameter.
pub(crate) const LAST_ACTIVE_STAFF: &str = "? AND is_staff AND is_active AND NOT EXISTS \
     (SELECT 1 FROM users AS other WHERE other.id <> users.id AND other.is_staff AND other.is_active)";

/// Retires every signing key not retired by the moment `$1` at that moment:
/// a rotation's first statement, before it stores the key that signs from
/// then. The same text for both engines (SQLite too reads both `$1` as one
/// parameter).
pub(crate) const RETIRE_KEYS: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1";

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The (normalised) username is already taken.
    #[error("a user with that username already exists")]
    UsernameTaken,
    /// No id is left for a new user: the users' id sequence is at its
    /// largest value, 2^63 - 1 (an import before ids were bounded could
    /// leave it there).
    #[error(
        "no user id is left for a new account: the users' id sequence is at its largest value, \
         9223372036854775807"
    )]
    UserIdsExhausted,
    /// The update would leave no active staff user: it demotes or
    /// deactivates the last one.
    #[error("the last active staff user cannot be deactivated or lose staff status")]
    LastActiveStaff,
    /// The database file cannot be opened or created; `reason` says why in
    /// one sentence.
    #[error("{reason}")]
    Open {
        /// The file.
        path: String,
        /// Why, naming the file or directory at fault.
        reason: String,
    },
    /// The database URL is not one this store understands (each store's
    /// `connect` takes only its own scheme).
    #[error("unsupported database_url `{0}`: expected sqlite://PATH or postgres://HOST/DATABASE")]
    UnsupportedUrl(String),
    /// PostgreSQL over TLS cannot be used as the URL asks: a TLS parameter
    /// that cannot be honoured, a CA file that cannot be read, a server
    /// certificate that is not trusted, or a server without TLS (or with
    /// TLS only, for a URL without it). Says what to change in the URL.
    #[error("{0}")]
    Tls(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Running migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database could not be reached or was too busy to answer
    /// (a refused or lost connection, a pool that timed out, a server that
    /// is shutting down or takes no connections, a SQLite file locked past
    /// the busy timeout): a failure that passes, which a client may retry,
    /// as opposed to one that retrying does not mend.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                db.code()
                    .is_some_and(|code| unavailable_code(&code, sqlite))
            }
            _ => false,
        }
    }
}

/// SQLSTATE classes and codes of a server that cannot serve now: 08
/// (connection exception), 53 (insufficient resources: disk full, out of
/// memory, too many connections), 57P01-57P05 (shutdown, cannot connect
/// now, idle-session timeout), 55000 (the database takes no connections),
/// 3D000 (no such database, as while it is being restored). For SQLite,
/// whose codes are numbers: BUSY (5), LOCKED (6), IOERR (10: a read or
/// write the disk refused) and FULL (13), in their extended forms too.
fn unavailable_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        return code
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || ["55000", "3D000"].contains(&code)
}

/// Result of storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistent state of a Tessera server. Implementations must make each
/// method atomic, and durable once it returns.
#[async_trait]
pub trait Store: LinkStore + Send + Sync + 'static {
    /// Brings the schema up to date.
    async fn migrate(&self) -> StoreResult<()>;

    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a user; [`StoreError::UsernameTaken`] if the name exists,
    /// [`StoreError::UserIdsExhausted`] if no id is left.
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord>;

    /// The user with this (normalised) username.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;

    /// The user with this id.
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>>;

    /// Every user, ordered by id.
    async fn all_users(&self) -> StoreResult<Vec<UserRecord>>;

    /// How many users there are.
    async fn count_users(&self) -> StoreResult<i64>;

    /// Users ordered by id, skipping `offset`, at most `limit`.
    async fn list_users(&self, offset: i64, limit: i64) -> StoreResult<Vec<UserRecord>>;

    /// Records a successful login, and replaces the password hash as
    /// `rehash` says in the same statement; returns the user as it is now
    /// (`None` if it no longer exists), which may differ from what the
    /// login read.
    async fn record_login(
        &self,
        id: i64,
        at: i64,
        rehash: Option<Rehash<'_>>,
    ) -> StoreResult<Option<UserRecord>>;

    /// Creates `users` in one transaction, each unless its id or username
    /// is taken, and says what became of each, in order. With `commit`
    /// false nothing is written (a dry run). Ids given are kept, and later
    /// users created by [`Store::create_user`] get higher ones.
    async fn import_users(
        &self,
        users: &[ImportedUser],
        commit: bool,
    ) -> StoreResult<Vec<ImportOutcome>>;

    /// Changes a user; returns the updated user, `None` if there is none.
    /// An update that sets `is_staff` or `is_active` false on the last
    /// active staff user is refused ([`StoreError::LastActiveStaff`]),
    /// changing nothing: checked and written in one statement, so of two
    /// staff users demoting each other at once one stays. An update that
    /// sets `email` also voids, in the same transaction, every reset and
    /// verification link of the user mailed to another address than the
    /// one it now has.
    async fn update_user(
        &self,
        id: i64,
        update: UserUpdate,
        now: i64,
    ) -> StoreResult<Option<UserRecord>>;

    /// Records a newly issued refresh token.
    async fn record_refresh_token(&self, token: &RefreshRecord) -> StoreResult<()>;

    /// Records a new session and its first refresh token, in one
    /// transaction.
    async fn begin_session(
        &self,
        token: &RefreshRecord,
        session: &SessionRecord,
    ) -> StoreResult<()>;

    /// Notes that session `family_id` was refreshed at `at` by a refresh
    /// that wrote nothing else. Best effort and without waiting: it may be
    /// lost (a full queue, a crash), never a refresh held back by it.
    fn touch_session(&self, family_id: &str, at: i64);

    /// The user's sessions not ended (revoked family, older token version)
    /// and not expired at `now`, most recently used first.
    async fn live_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Appends `events` to the audit log, in one transaction.
    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()>;

    /// How many audit events match `filter`, and `limit` of them from
    /// `offset`, newest first.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<AuditRecord>)>;

    /// The audit events matching `filter` with an id above `after`, oldest
    /// first, at most `limit`: what a follower reads from its cursor (the
    /// last id it read), page after page. Ids are given in commit order (on
    /// PostgreSQL appends take [`AUDIT_LOG_LOCK`]; SQLite has one writer),
    /// so an event committed after a read never has an id below the ids that
    /// read returned, and a follower misses none.
    async fn audit_after(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// Deletes audit events older than `before` (Unix seconds); how many.
    async fn prune_audit(&self, before: i64) -> StoreResult<u64>;

    /// Blacklists `token` unless it already is; true when this call did it.
    /// Among concurrent calls for one token exactly one returns true.
    async fn blacklist_refresh_token(&self, token: &RefreshRecord, now: i64) -> StoreResult<bool>;

    /// Rotation with blacklisting: blacklists `old` and records `new` in one
    /// transaction, only if `old` was not blacklisted yet (then returns true),
    /// keeping `successor` (`new` sealed) for `old`'s grace period in the
    /// same transaction.
    async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
    ) -> StoreResult<bool>;

    /// The sealed successor the refresh token `jti` was rotated into, if one
    /// was kept and not pruned yet (whether its grace period has passed is
    /// the caller's to decide, from `usable_until_ms`).
    async fn refresh_successor(&self, jti: &str) -> StoreResult<Option<SealedSuccessor>>;

    /// Revokes every token of family `family_id` until `expires_at`.
    async fn revoke_family(
        &self,
        family_id: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()>;

    /// Whether the refresh token `jti` of family `family_id` is blacklisted,
    /// and whether its family was ended, as the database has it now: a
    /// refresh is decided on this, not on a process's memory, so that what
    /// any instance decided holds on every other at once.
    async fn refresh_standing(&self, jti: &str, family_id: &str) -> StoreResult<RefreshStanding>;

    /// The user's live sessions (families with a refresh token unexpired at
    /// `now` and not revoked) beyond the `keep` most recently begun: the
    /// ones to end, oldest first.
    async fn sessions_beyond(&self, user_id: i64, keep: i64, now: i64) -> StoreResult<Vec<String>>;

    /// The revocation markers still in force at `now`.
    async fn revocations(&self, now: i64) -> StoreResult<Revocations>;

    /// The id of the newest change, 0 if none.
    async fn latest_change(&self) -> StoreResult<i64>;

    /// Changes after `after`, oldest first, at most `limit`. Change ids
    /// commit in id order on both engines, so an id missing below one that
    /// was returned never appears later: it was rolled back (a request cut
    /// short; PostgreSQL draws ids before commit) or pruned.
    async fn changes_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Change>>;

    /// The id of the oldest change still kept, `None` when none is. Pruning
    /// removes the oldest changes only (see [`Store::prune`]), so while this
    /// is at most a reader's position, nothing after that position was
    /// pruned, and an id missing after it was rolled back.
    async fn oldest_change(&self) -> StoreResult<Option<i64>>;

    /// Deletes what no longer matters at `now`: refresh tokens, revoked
    /// families and mailed links past their expiry, sealed successors past
    /// their grace period, mail requests and sent
    /// or abandoned mail older than a week, and the change-log entries below
    /// the oldest one written at or after `changes_before` (every process
    /// has long applied them; one that was away longer reloads its whole
    /// state), keeping the newest entry whatever its age. Returns rows deleted.
    async fn prune(&self, now: i64, changes_before: i64) -> StoreResult<u64>;

    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<KeyRecord>>;

    /// Stores a new signing key.
    async fn insert_signing_key(&self, key: &KeyRecord) -> StoreResult<()>;

    /// Stores `key` as the key in service, signing from when it is stored
    /// (its `signs_from` and `retired_at` are not used), only if no key is
    /// in service: of several processes starting on an empty database at
    /// once exactly one succeeds (true); the others load its key.
    async fn put_first_signing_key(&self, key: &KeyRecord) -> StoreResult<bool>;

    /// Stores `key`, which signs from `key.signs_from` (from
    /// `key.created_at` when `None`), and retires every other key at that
    /// moment: each key not retired by then gets that moment as its
    /// retirement, so a key published but not yet signing whose moment is
    /// later never signs. Rotations run one at a time.
    async fn rotate_signing_key(&self, key: &KeyRecord) -> StoreResult<()>;

    /// The database's clock: milliseconds since the Unix epoch. The moments
    /// keys start signing are on this clock, so that every instance
    /// switches at the same moment whatever its own clock says.
    async fn database_time_ms(&self) -> StoreResult<i64>;

    /// Wakes `hint` whenever the change log may have grown (some connection,
    /// of this process or another, committed a change), for as long as the
    /// future is polled; it never returns. A lost connection is made again
    /// by itself, and `hint` is woken once it is, since what was committed
    /// meanwhile was not announced. A hint is only a hint: the change log
    /// stays the truth, and the caller still reads it periodically. A store
    /// that cannot announce changes (SQLite) never wakes `hint`.
    async fn follow_changes(&self, hint: Arc<Notify>) {
        let _ = hint;
        std::future::pending::<()>().await;
    }
}

/// The links Tessera mails (password reset, email verification), the
/// requests their limits count, and the outbox: the part of [`Store`] that
/// account recovery uses, with [`Store`]'s promises.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Active or not, the users whose address is `email` (ignoring case),
    /// by id; none for `""`.
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>>;

    /// Counts `request` against its limits and, unless it is past one,
    /// keeps its address for [`LinkStore::fulfil_mail_request`] and writes
    /// `letter`'s links (a reset link voiding its user's older ones, see
    /// [`LinkKind::newer_voids_older`]) and its one mail to the outbox: all in one transaction, the request
    /// counted either way. True when it was within the limits.
    async fn request_links(
        &self,
        request: &MailRequest,
        letter: Option<&Letter>,
    ) -> StoreResult<bool>;

    /// Up to `limit` requests within the limits whose mails are not
    /// written yet, oldest first.
    async fn pending_mail_requests(&self, limit: i64) -> StoreResult<Vec<PendingRequest>>;

    /// Writes the letter of pending request `id` (its links and its one
    /// mail, as [`LinkStore::request_links`] does) and forgets its address,
    /// in one transaction; false, writing nothing, when the request is no
    /// longer pending (another instance fulfilled it).
    async fn fulfil_mail_request(&self, id: i64, letter: Option<&Letter>) -> StoreResult<bool>;

    /// The link of this kind whose token hashes to `token_hash`, if it is
    /// unused and unexpired at `now`.
    async fn link(
        &self,
        token_hash: &str,
        kind: LinkKind,
        now: i64,
    ) -> StoreResult<Option<LinkRecord>>;

    /// Uses the reset link `token_hash` at `now` to give its user the
    /// password `password_hash`: the token version raised (every earlier
    /// token refused) and the address verified (the link was read there),
    /// in one transaction. `None`, and nothing changed, when the link is
    /// bad, used, voided or expired, its user is not active, or the user's
    /// address is no longer the one the link went to. Of concurrent uses of
    /// one link at most one succeeds.
    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Option<UserRecord>>;

    /// Uses the verification link `token_hash` at `now`: its user's
    /// address verified if it is still the one the link went to, and the
    /// user's other verification links voided, in one transaction. `None`
    /// when the link is bad, used, voided or expired, the address changed
    /// or the user is not active.
    async fn verify_email(&self, token_hash: &str, now: i64) -> StoreResult<Option<UserRecord>>;

    /// Takes up to `limit` mails due at `now` to send, leasing each until
    /// `lease_until` (no other caller gets it before then).
    async fn take_mail(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>>;

    /// Records mail `id` as sent at `now`, and forgets its text.
    async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()>;

    /// Records a failed try of mail `id`: to try again at `retry_at`, or
    /// (`None`) given up on, its text forgotten.
    async fn mail_failed(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
        now: i64,
    ) -> StoreResult<()>;

    /// Gives back mails taken by [`LinkStore::take_mail`] and neither sent
    /// nor failed (a sender stopping mid-try): due again at `now`, for any
    /// sender, instead of when their lease ends.
    async fn release_mail(&self, ids: &[i64], now: i64) -> StoreResult<()>;

    /// How many mails wait, were sent and were given up on.
    async fn outbox_counts(&self) -> StoreResult<OutboxCounts>;
}

#[cfg(test)]
mod tests {
    use super::unavailable_code;

    #[test]
    fn codes_of_a_database_that_cannot_serve_now() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "55000", "3D000", "53100", "53200",
        ] {
            assert!(unavailable_code(code, false), "{code}");
        }
        // A unique violation, a syntax error, a serialisation failure: not so.
        for code in ["23505", "42601", "40001"] {
            assert!(!unavailable_code(code, false), "{code}");
        }
        // SQLite: BUSY, LOCKED, BUSY_SNAPSHOT (517), FULL, IOERR and
        // IOERR_WRITE (778); not CONSTRAINT_UNIQUE (2067).
        for code in ["5", "6", "517", "13", "10", "778"] {
            assert!(unavailable_code(code, true), "{code}");
        }
        assert!(!unavailable_code("2067", true));
    }
}
