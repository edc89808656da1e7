//! The users (`users`): created, read, listed, changed at login and by
//! updates, each change of one logged in the change log in its
//! transaction. Imports are in `import`; finding users by address and the
//! changes links make are in `mail`.

use crate::changes::Logged;
use crate::engine::for_each_engine;
use crate::{
    ImportOutcome, ImportedUser, NewUser, Rehash, StoreError, StoreResult, UserRecord, UserUpdate,
};
use async_trait::async_trait;

/// The columns of a [`UserRecord`], in its order.
pub(crate) const USER_COLUMNS: &str = "id, username, email, password_hash, is_staff, is_superuser, \
                                       is_active, token_version, date_joined, last_login, revision, \
                                       email_verified, roles, app_metadata, claims_version";

/// The condition, in an `UPDATE users ... WHERE` (its parameter `$8`:
/// whether the update demotes), that the row is the last active staff user
/// and the update would demote it: such an update changes nothing.
const LAST_ACTIVE_STAFF: &str = "$8 AND is_staff AND is_active AND NOT EXISTS \
     (SELECT 1 FROM users AS other WHERE other.id <> users.id AND other.is_staff AND other.is_active)";

/// The users, with the promises of [`Store`](crate::Store): each method
/// atomic, and durable once it returns.
#[async_trait]
pub trait UserStore: Send + Sync {
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
    /// users created by [`UserStore::create_user`] get higher ones.
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
}

for_each_engine! {
    #[async_trait]
    impl UserStore for Engine {
        async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let inserted = sqlx::query_as::<_, UserRecord>(&format!(
                "INSERT INTO users (username, email, password_hash, is_staff, is_superuser, \
                 date_joined, email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING {USER_COLUMNS}"
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
                Err(e) => return Err(Db::user_insert_error(tx, e).await),
            };
            let id = record.id.to_string();
            Engine::log_change(&mut tx, Logged::user(record.id, &id), user.date_joined).await?;
            tx.commit().await?;
            Ok(record)
        }

        async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
            Ok(sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
            Ok(sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn all_users(&self) -> StoreResult<Vec<UserRecord>> {
            Ok(sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await?)
        }

        async fn count_users(&self) -> StoreResult<i64> {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(&self.pool)
                .await?)
        }

        async fn list_users(&self, offset: i64, limit: i64) -> StoreResult<Vec<UserRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"
            ))
            .bind(crate::engine::limit(limit))
            .bind(crate::engine::offset(offset))
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
            Engine::import(self.pool.begin().await?, users, commit).await
        }

        async fn update_user(
            &self,
            id: i64,
            update: UserUpdate,
            now: i64,
        ) -> StoreResult<Option<UserRecord>> {
            // The statement's condition sees every demotion before it: on
            // SQLite the statement writes first, taking the one write lock,
            // and its condition reads under it; on PostgreSQL every update
            // of a user holds the change-log lock, and the condition (READ
            // COMMITTED: what was committed when it began) reads under it.
            let address_changes = update.email.is_some();
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let demotes = update.demotes();
            let claims_change = i64::from(update.changes_claims());
            let record = sqlx::query_as::<_, UserRecord>(&format!(
                "UPDATE users SET \
                   is_active = COALESCE($1, is_active), \
                   is_staff = COALESCE($2, is_staff), \
                   password_hash = COALESCE($3, password_hash), \
                   token_version = token_version + $4, \
                   email_verified = COALESCE($5, CASE WHEN $6 <> email THEN FALSE ELSE email_verified END), \
                   email = COALESCE($6, email), \
                   roles = COALESCE($9, roles), \
                   app_metadata = COALESCE($10, app_metadata), \
                   claims_version = claims_version + $11, \
                   revision = revision + 1 \
                 WHERE id = $7 AND NOT ({LAST_ACTIVE_STAFF}) RETURNING {USER_COLUMNS}"
            ))
            .bind(update.is_active)
            .bind(update.is_staff)
            .bind(update.password_hash)
            .bind(i64::from(update.bump_token_version))
            .bind(update.email_verified)
            .bind(update.email)
            .bind(id)
            .bind(demotes)
            .bind(update.roles)
            .bind(update.app_metadata)
            .bind(claims_change)
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
                Engine::log_change(&mut tx, Logged::user(id, &id.to_string()), now).await?;
            }
            tx.commit().await?;
            Ok(record)
        }
    }
}
