//! [`LinkStore`], and its implementation for both engines: each method
//! begins the transaction it needs and runs the SQL of `links.rs`,
//! `requests.rs` and `outbox.rs`.

use crate::changes::Logged;
use crate::engine::for_each_engine;
use crate::{Letter, LinkKind, LinkRecord, MailRequest, OutboxCounts, PendingRequest};
use crate::{QueuedMail, StoreResult, UserRecord};
use async_trait::async_trait;
use sqlx::Transaction;

/// The key of the PostgreSQL transaction advisory lock that serialises
/// counting mail requests, so that concurrent requests for one address
/// cannot all see room under the limit.
pub(crate) const MAIL_REQUEST_LOCK: i64 = 0x5465_7373_6572_6102;

/// The links Tessera mails (password reset, email verification), the
/// requests their limits count, and the outbox: the part of [`Store`](crate::Store)
/// that account recovery uses, with its promises: each method atomic, and
/// durable once it returns.
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

for_each_engine! {
    #[async_trait]
    impl LinkStore for Engine {
        async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>> {
            Engine::users_with_address(&self.pool, email).await
        }

        async fn request_links(
            &self,
            request: &MailRequest,
            letter: Option<&Letter>,
        ) -> StoreResult<bool> {
            // On SQLite, which has one writer at a time, the request's first
            // statement (an insert) takes the write lock for the whole
            // transaction; PostgreSQL takes a lock of its own.
            let mut tx = self.pool.begin().await?;
            Db::lock(&mut tx, MAIL_REQUEST_LOCK).await?;
            let written = Engine::count_request(&mut tx, request, letter).await?;
            tx.commit().await?;
            Ok(written)
        }

        async fn pending_mail_requests(&self, limit: i64) -> StoreResult<Vec<PendingRequest>> {
            Engine::pending_requests(&self.pool, limit).await
        }

        async fn fulfil_mail_request(&self, id: i64, letter: Option<&Letter>) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            let done = Engine::claim_request(&mut tx, id, letter).await?;
            tx.commit().await?;
            Ok(done)
        }

        async fn link(
            &self,
            token_hash: &str,
            kind: LinkKind,
            now: i64,
        ) -> StoreResult<Option<LinkRecord>> {
            Engine::find_link(&self.pool, token_hash, kind, now).await
        }

        async fn reset_password(
            &self,
            token_hash: &str,
            password_hash: &str,
            now: i64,
        ) -> StoreResult<Option<UserRecord>> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let user = Engine::reset_with_link(&mut tx, token_hash, password_hash, now).await?;
            finish_user_change(tx, user, now).await
        }

        async fn verify_email(
            &self,
            token_hash: &str,
            now: i64,
        ) -> StoreResult<Option<UserRecord>> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let user = Engine::verify_with_link(&mut tx, token_hash, now).await?;
            finish_user_change(tx, user, now).await
        }

        async fn take_mail(
            &self,
            now: i64,
            lease_until: i64,
            limit: i64,
        ) -> StoreResult<Vec<QueuedMail>> {
            Engine::lease_mail(&self.pool, now, lease_until, limit).await
        }

        async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()> {
            Engine::mark_sent(&self.pool, id, now).await
        }

        async fn mail_failed(
            &self,
            id: i64,
            retry_at: Option<i64>,
            error: &str,
            now: i64,
        ) -> StoreResult<()> {
            Engine::mark_failed(&self.pool, id, retry_at, error, now).await
        }

        async fn release_mail(&self, ids: &[i64], now: i64) -> StoreResult<()> {
            Engine::release_leased(&self.pool, ids, now).await
        }

        async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
            Engine::count_outbox(&self.pool).await
        }
    }

    /// Commits `tx` with a change-log entry when `user` changed; rolls it
    /// back (a used link stays unused) when not.
    async fn finish_user_change(
        mut tx: Transaction<'static, Db>,
        user: Option<UserRecord>,
        now: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let Some(user) = user else {
            tx.rollback().await?;
            return Ok(None);
        };
        Engine::log_change(&mut tx, Logged::user(user.id, &user.id.to_string()), now).await?;
        tx.commit().await?;
        Ok(Some(user))
    }
}
