//! `impl Store for PgStore`: each method as SQLite's, in PostgreSQL's SQL.

use super::{
    AUDIT_LOG_LOCK, CHANGE_LOG_LOCK, MIGRATOR, PgStore, is_sequence_exhausted, is_unique_violation,
    limit, offset,
};
use crate::{
    AuditEvent, AuditFilter, AuditRecord, Change, ChangeKind, ImportOutcome, ImportedUser,
    KeyRecord, NewUser, RefreshRecord, RefreshStanding, Rehash, Revocations, SealedSuccessor,
    SessionRecord, Store, StoreError, StoreResult, UserRecord, UserUpdate,
};
use crate::{LAST_ACTIVE_STAFF, USER_COLUMNS};
use async_trait::async_trait;
use sqlx::Row;
use std::sync::Arc;
use tokio::sync::Notify;

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> StoreResult<()> {
        // sqlx holds a session advisory lock (keyed by the database name)
        // while migrating, so concurrent migrations of one database queue.
        // A failed run may leave that lock held by the session: close the
        // connection instead of returning it to the pool.
        let mut conn = self.pool.acquire().await?;
        match MIGRATOR.run_direct(&mut *conn).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.close().await;
                Err(StoreError::Migration(e))
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
        let mut tx = self.begin_logged().await?;
        let inserted = sqlx::query_as::<_, UserRecord>(&format!(
            "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, date_joined, \
             email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}"
        ))
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.is_staff)
        .bind(user.is_superuser)
        .bind(user.date_joined)
        .bind(user.email_verified)
        .fetch_one(&mut *tx)
        .await;
        let record = match inserted {
            Ok(record) => record,
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::UsernameTaken);
            }
            Err(e) if is_sequence_exhausted(&e) => {
                tx.rollback().await?;
                return Err(StoreError::UserIdsExhausted);
            }
            Err(e) => return Err(e.into()),
        };
        Self::log_change(
            &mut tx,
            ChangeKind::User,
            &record.id.to_string(),
            None,
            user.date_joined,
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        Ok(
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn all_users(&self) -> StoreResult<Vec<UserRecord>> {
        Ok(
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn count_users(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0))
    }

    async fn list_users(&self, offset_by: i64, limit_to: i64) -> StoreResult<Vec<UserRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"
        ))
        .bind(limit(limit_to))
        .bind(offset(offset_by))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record_login(
        &self,
        id: i64,
        at: i64,
        rehash: Option<Rehash<'_>>,
    ) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as(&format!(
            "UPDATE users SET last_login = $1, revision = revision + 1, \
               password_hash = CASE WHEN password_hash = $2 THEN $3 ELSE password_hash END \
             WHERE id = $4 RETURNING {USER_COLUMNS}"
        ))
        .bind(at)
        .bind(rehash.map(|r| r.old))
        .bind(rehash.map(|r| r.new))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn import_users(
        &self,
        users: &[ImportedUser],
        commit: bool,
    ) -> StoreResult<Vec<ImportOutcome>> {
        crate::import::postgres(self.pool.begin().await?, users, commit).await
    }

    async fn update_user(
        &self,
        id: i64,
        update: UserUpdate,
        now: i64,
    ) -> StoreResult<Option<UserRecord>> {
        // Under the change-log lock, which every update of a user takes:
        // the statement's condition (READ COMMITTED: what was committed
        // when it began) sees every demotion before it.
        let address_changes = update.email.is_some();
        let mut tx = self.begin_logged().await?;
        let demotes = update.demotes();
        let record = sqlx::query_as::<_, UserRecord>(&format!(
            "UPDATE users SET \
               is_active = COALESCE($1, is_active), \
               is_staff = COALESCE($2, is_staff), \
               password_hash = COALESCE($3, password_hash), \
               token_version = token_version + $4, \
               email_verified = COALESCE($5, CASE WHEN $6 <> email THEN FALSE ELSE email_verified END), \
               email = COALESCE($6, email), \
               revision = revision + 1 \
             WHERE id = $7 AND NOT ({}) RETURNING {USER_COLUMNS}",
            LAST_ACTIVE_STAFF.replace('?', "$8")
        ))
        .bind(update.is_active)
        .bind(update.is_staff)
        .bind(update.password_hash)
        .bind(i64::from(update.bump_token_version))
        .bind(update.email_verified)
        .bind(update.email)
        .bind(id)
        .bind(demotes)
        .fetch_optional(&mut *tx)
        .await?;
        if record.is_none() && demotes {
            let exists: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            if !exists.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::LastActiveStaff);
            }
        }
        if let Some(user) = &record {
            if address_changes {
                sqlx::query(crate::mail::VOID_LINKS_TO_OTHER_ADDRESSES)
                    .bind(user.id)
                    .bind(&user.email)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::log_change(&mut tx, ChangeKind::User, &id.to_string(), None, now).await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    async fn record_refresh_token(&self, token: &RefreshRecord) -> StoreResult<()> {
        self.writer.record(token).await
    }

    async fn begin_session(
        &self,
        token: &RefreshRecord,
        session: &SessionRecord,
    ) -> StoreResult<()> {
        self.writer.begin(token, session).await
    }

    fn touch_session(&self, family_id: &str, at: i64) {
        self.writer.touch(family_id, at);
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Under the audit lock, as the change log is under its own: ids are
        // drawn and committed one append at a time, so they commit in id
        // order, and a follower reading `id > cursor` skips none.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        crate::audit::postgres::append(&mut *tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<AuditRecord>)> {
        crate::audit::postgres::page(&self.pool, filter, offset, limit).await
    }

    async fn audit_after(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        crate::audit::postgres::after(&self.pool, filter, after, limit).await
    }

    async fn prune_audit(&self, before: i64) -> StoreResult<u64> {
        crate::audit::postgres::prune(&self.pool, before).await
    }

    async fn live_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionRecord>> {
        crate::sessions::postgres::live(&self.pool, user_id, now).await
    }

    async fn blacklist_refresh_token(&self, token: &RefreshRecord, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin_logged().await?;
        let done = Self::blacklist_in(&mut tx, token, now).await?;
        if done {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(done)
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
    ) -> StoreResult<bool> {
        // Through the writer: concurrent rotations commit together under one
        // turn of the change-log lock; the first of one token's rotations wins.
        self.writer.rotate(old, new, successor, now).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_logged().await?;
        sqlx::query(
            "INSERT INTO revoked_families (family_id, user_id, revoked_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (family_id) DO UPDATE SET expires_at = GREATEST(revoked_families.expires_at, EXCLUDED.expires_at)",
        )
        .bind(family_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        Self::log_change(
            &mut tx,
            ChangeKind::Family,
            family_id,
            Some(expires_at),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_successor(&self, jti: &str) -> StoreResult<Option<SealedSuccessor>> {
        crate::successors::postgres::find(&self.pool, jti).await
    }

    async fn refresh_standing(&self, jti: &str, family_id: &str) -> StoreResult<RefreshStanding> {
        let (blacklisted, family_revoked): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = $1 AND blacklisted_at IS NOT NULL), \
                    EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2)",
        )
        .bind(jti)
        .bind(family_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(RefreshStanding {
            blacklisted,
            family_revoked,
        })
    }

    async fn sessions_beyond(&self, user_id: i64, keep: i64, now: i64) -> StoreResult<Vec<String>> {
        // COLLATE "C": ties broken by bytes, as SQLite's BINARY collation does.
        let mut beyond: Vec<String> = sqlx::query_scalar(
            "SELECT family_id FROM refresh_tokens r \
             WHERE user_id = $1 AND expires_at > $2 \
               AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = r.family_id) \
             GROUP BY family_id ORDER BY MIN(issued_at) DESC, family_id COLLATE \"C\" OFFSET $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(offset(keep))
        .fetch_all(&self.pool)
        .await?;
        beyond.reverse();
        Ok(beyond)
    }

    async fn revocations(&self, now: i64) -> StoreResult<Revocations> {
        // Decoded row by row as they arrive (`query_as`): with a million
        // markers, holding every raw row first would triple the peak memory
        // of a start.
        let jtis = sqlx::query_as::<_, (String, i64)>(
            "SELECT jti, expires_at FROM refresh_tokens WHERE blacklisted_at IS NOT NULL AND expires_at >= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let families = sqlx::query_as::<_, (String, i64)>(
            "SELECT family_id, expires_at FROM revoked_families WHERE expires_at >= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(Revocations { jtis, families })
    }

    async fn latest_change(&self) -> StoreResult<i64> {
        // The last id handed out, which stays when pruning empties the table
        // (as SQLite's sqlite_sequence does). Read under the change-log lock,
        // shared, so that no writer is between drawing an id and ending its
        // transaction: every id up to this one has committed or never will.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(CHANGE_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        let latest: i64 = sqlx::query_scalar(
            "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('changes', 'id')::regclass), 0)",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(latest)
    }

    async fn oldest_change(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(id) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn changes_since(&self, after: i64, limit_to: i64) -> StoreResult<Vec<Change>> {
        // Exact without a lock: change ids commit in id order, so when this
        // statement's snapshot holds an id it holds every lower one too.
        let rows = sqlx::query(
            "SELECT id, kind, subject, expires_at FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Change {
                id: row.get(0),
                kind: ChangeKind::parse(row.get::<&str, _>(1)),
                subject: row.get(2),
                expires_at: row.get(3),
            })
            .collect())
    }

    async fn prune(&self, now: i64, changes_before: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut deleted = 0;
        for (sql, bound) in [
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM revoked_families WHERE expires_at < $1", now),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            // The oldest entries only, up to the first young one, and never the
            // newest: a reader can then tell a pruned id from a rolled-back
            // one (Store::oldest_change).
            (
                "DELETE FROM changes WHERE id < COALESCE(\
                   (SELECT MIN(id) FROM changes WHERE created_at >= $1), \
                   (SELECT MAX(id) FROM changes))",
                changes_before,
            ),
        ]
        .into_iter()
        .chain(crate::mail::prune_statements(now))
        .chain([crate::successors::prune_statement(now)])
        {
            deleted += sqlx::query(sql)
                .bind(bound)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(sqlx::query_as(
            "SELECT kid, algorithm, private_key, created_at, signs_from, retired_at \
             FROM signing_keys ORDER BY created_at DESC, kid COLLATE \"C\" DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut tx = self.begin_logged().await?;
        Self::insert_key_in(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_first_signing_key(&self, key: &KeyRecord) -> StoreResult<bool> {
        // The change-log lock, taken first, makes the look and the insert one
        // step among every process.
        let mut tx = self.begin_logged().await?;
        let in_service: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if in_service {
            tx.rollback().await?;
            return Ok(false);
        }
        Self::insert_key_in(
            &mut tx,
            &KeyRecord {
                signs_from: None,
                retired_at: None,
                ..key.clone()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
        // The change-log lock, taken first, also makes rotations run one at
        // a time: each retires the key the one before it put in service.
        let mut tx = self.begin_logged().await?;
        sqlx::query(crate::RETIRE_KEYS)
            .bind(key.signs_from.unwrap_or(key.created_at))
            .execute(&mut *tx)
            .await?;
        Self::insert_key_in(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn database_time_ms(&self) -> StoreResult<i64> {
        // The time now, not the transaction's start (`now()`), which a
        // pooled connection's open transaction could hold back.
        Ok(sqlx::query_scalar(
            "SELECT CAST(ROUND(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn follow_changes(&self, hint: Arc<Notify>) {
        self.listen_for_changes(hint).await;
    }
}
