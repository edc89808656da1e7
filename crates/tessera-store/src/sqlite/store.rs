//! `impl Store for SqliteStore`: each method as one statement or one
//! transaction on the file.

use super::{MIGRATOR, SqliteStore, is_full, is_unique_violation};
use crate::LAST_ACTIVE_STAFF;
use crate::sqlite_file;
use crate::{
    AuditEvent, AuditFilter, AuditRecord, Change, ChangeKind, ImportOutcome, ImportedUser,
    KeyRecord, NewUser, RefreshRecord, RefreshStanding, Rehash, Revocations, SealedSuccessor,
    SessionRecord, Store, StoreError, StoreResult, USER_COLUMNS, UserRecord, UserUpdate,
};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        // sqlx takes no lock while migrating SQLite: of several processes
        // starting on a fresh file at once, one may try to create a table
        // another has just created. Its migration rolled back whole; run
        // again, it finds the migrations applied (or applies what is left).
        use sqlx::migrate::MigrateError;
        let mut attempt = 0;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))
                    if attempt < 5 =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                Err(MigrateError::Execute(e)) => return Err(sqlite_file::explain(&self.path, e)),
                Err(other) => return Err(StoreError::Migration(other)),
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_as::<_, UserRecord>(&format!(
            "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, date_joined, \
             email_verified) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {USER_COLUMNS}"
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
            Err(e) if is_unique_violation(&e) => return Err(StoreError::UsernameTaken),
            // SQLITE_FULL: a full disk, or AUTOINCREMENT at its largest id.
            Err(e) if is_full(&e) => {
                let exhausted: Vec<bool> = sqlx::query_scalar(
                    "SELECT seq = 9223372036854775807 FROM sqlite_sequence WHERE name = 'users'",
                )
                .fetch_all(&mut *tx)
                .await?;
                if exhausted.first().copied().unwrap_or(false) {
                    return Err(StoreError::UserIdsExhausted);
                }
                return Err(e.into());
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
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        Ok(
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
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

    async fn list_users(&self, offset: i64, limit: i64) -> StoreResult<Vec<UserRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
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
            "UPDATE users SET last_login = ?, revision = revision + 1, \
               password_hash = CASE WHEN password_hash = ? THEN ? ELSE password_hash END \
             WHERE id = ? RETURNING {USER_COLUMNS}"
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
        crate::import::sqlite(self.pool.begin().await?, users, commit).await
    }

    async fn update_user(
        &self,
        id: i64,
        update: UserUpdate,
        now: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let address_changes = update.email.is_some();
        let mut tx = self.pool.begin().await?;
        let demotes = update.demotes();
        // The statement writes first (taking SQLite's one write lock), and
        // its condition reads under it: of concurrent demotions of the last
        // two staff users, the second sees the first.
        let record = sqlx::query_as::<_, UserRecord>(&format!(
            "UPDATE users SET \
               is_active = COALESCE(?, is_active), \
               is_staff = COALESCE(?, is_staff), \
               password_hash = COALESCE(?, password_hash), \
               token_version = token_version + ?, \
               email_verified = COALESCE(?, CASE WHEN ? <> email THEN FALSE ELSE email_verified END), \
               email = COALESCE(?, email), \
               revision = revision + 1 \
             WHERE id = ? AND NOT ({LAST_ACTIVE_STAFF}) RETURNING {USER_COLUMNS}"
        ))
        .bind(update.is_active)
        .bind(update.is_staff)
        .bind(update.password_hash)
        .bind(i64::from(update.bump_token_version))
        .bind(update.email_verified)
        .bind(update.email.clone())
        .bind(update.email)
        .bind(id)
        .bind(demotes)
        .fetch_optional(&mut *tx)
        .await?;
        if record.is_none() && demotes {
            let exists: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            if !exists.is_empty() {
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
        crate::audit::sqlite::append(&self.pool, events).await
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<AuditRecord>)> {
        crate::audit::sqlite::page(&self.pool, filter, offset, limit).await
    }

    async fn audit_after(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        // Ids commit in id order without a lock: SQLite has one writer.
        crate::audit::sqlite::after(&self.pool, filter, after, limit).await
    }

    async fn prune_audit(&self, before: i64) -> StoreResult<u64> {
        crate::audit::sqlite::prune(&self.pool, before).await
    }

    async fn live_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionRecord>> {
        crate::sessions::sqlite::live(&self.pool, user_id, now).await
    }

    async fn blacklist_refresh_token(&self, token: &RefreshRecord, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = Self::blacklist_in(&mut tx, token, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
    ) -> StoreResult<bool> {
        // Through the writer: concurrent rotations commit together, and the
        // first of one token's rotations in the log of writes wins.
        self.writer.rotate(old, new, successor, now).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO revoked_families (family_id, user_id, revoked_at, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (family_id) DO UPDATE SET expires_at = MAX(revoked_families.expires_at, excluded.expires_at)",
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
        crate::successors::sqlite::find(&self.pool, jti).await
    }

    async fn refresh_standing(&self, jti: &str, family_id: &str) -> StoreResult<RefreshStanding> {
        let (blacklisted, family_revoked): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = ? AND blacklisted_at IS NOT NULL), \
                    EXISTS (SELECT 1 FROM revoked_families WHERE family_id = ?)",
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
        let mut beyond: Vec<String> = sqlx::query_scalar(
            "SELECT family_id FROM refresh_tokens r \
             WHERE user_id = ? AND expires_at > ? \
               AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = r.family_id) \
             GROUP BY family_id ORDER BY MIN(issued_at) DESC, family_id LIMIT -1 OFFSET ?",
        )
        .bind(user_id)
        .bind(now)
        .bind(keep)
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
            "SELECT jti, expires_at FROM refresh_tokens WHERE blacklisted_at IS NOT NULL AND expires_at >= ?",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let families = sqlx::query_as::<_, (String, i64)>(
            "SELECT family_id, expires_at FROM revoked_families WHERE expires_at >= ?",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(Revocations { jtis, families })
    }

    async fn latest_change(&self) -> StoreResult<i64> {
        // The last id handed out, which stays when pruning empties the table:
        // the next change is this + 1, so a reader starting here sees no gap.
        let row = sqlx::query(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>(0))
    }

    async fn oldest_change(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(id) FROM changes")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn changes_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Change>> {
        let rows = sqlx::query(
            "SELECT id, kind, subject, expires_at FROM changes WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(limit)
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
        let mut deleted = 0;
        for (sql, bound) in [
            ("DELETE FROM refresh_tokens WHERE expires_at < ?", now),
            ("DELETE FROM revoked_families WHERE expires_at < ?", now),
            ("DELETE FROM sessions WHERE expires_at < ?", now),
            // The oldest entries only, up to the first young one, and never the
            // newest: a reader can then tell a pruned id from a rolled-back
            // one (Store::oldest_change).
            (
                "DELETE FROM changes WHERE id < COALESCE(\
                   (SELECT MIN(id) FROM changes WHERE created_at >= ?), \
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
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(sqlx::query_as(
            "SELECT kid, algorithm, private_key, created_at, signs_from, retired_at \
             FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn insert_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_key_in(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_first_signing_key(&self, key: &KeyRecord) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // One statement decides: it holds SQLite's write lock while it looks.
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, \
             retired_at) SELECT ?, ?, ?, ?, NULL, NULL \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            Self::log_change(&mut tx, ChangeKind::Keys, &key.kid, None, key.created_at).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn rotate_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(crate::RETIRE_KEYS)
            .bind(key.signs_from.unwrap_or(key.created_at))
            .execute(&mut *tx)
            .await?;
        Self::insert_key_in(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn database_time_ms(&self) -> StoreResult<i64> {
        // SQLite has no clock of its own: this is the clock of the machine
        // holding the file, which every process sharing it reads alike.
        Ok(sqlx::query_scalar(
            "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
