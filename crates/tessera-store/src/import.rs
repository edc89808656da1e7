//! Creating imported users with the ids they had (`Store::import_users`),
//! for both engines: the same steps, in each engine's SQL.
//!
//! Each user is one conditional insert (`ON CONFLICT DO NOTHING`): a
//! concurrent signup that takes a name first makes that row "taken", never
//! an error that would undo the whole batch. Only when nothing was inserted
//! is the existing user read, to say whether it is the same one.
//!
//! No change-log entry is written: a change tells running processes to
//! reload what they hold in memory, and no process holds a user that did
//! not exist (a lookup that misses asks the database).

use crate::{ImportOutcome, ImportedUser, StoreResult};
use sqlx::{Postgres, Sqlite, Transaction};

/// The existing users a row collides with: the name of the one with its id,
/// the id of the one with its name.
fn classify(
    user: &ImportedUser,
    by_id: Option<String>,
    by_name: Option<i64>,
) -> Option<ImportOutcome> {
    match (user.id, by_id, by_name) {
        (Some(id), Some(name), _) if name == user.username => {
            Some(ImportOutcome::AlreadyPresent { id })
        }
        (Some(_), Some(username), _) => Some(ImportOutcome::IdTaken { username }),
        (None, _, Some(id)) => Some(ImportOutcome::AlreadyPresent { id }),
        (Some(_), None, Some(id)) => Some(ImportOutcome::UsernameTaken { id }),
        (_, _, None) => None,
    }
}

/// The steps of one batch, in `$tx`, with the engine's insert, lookups and
/// (for PostgreSQL) sequence bump.
macro_rules! import_batch {
    ($tx:ident, $users:expr, $insert:expr, $by_id:expr, $by_name:expr) => {{
        let mut outcomes = Vec::with_capacity($users.len());
        for user in $users {
            let inserted: Option<i64> = sqlx::query_scalar($insert)
                .bind(user.id)
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.is_staff)
                .bind(user.is_superuser)
                .bind(user.is_active)
                .bind(user.date_joined)
                .bind(user.last_login)
                .fetch_optional(&mut *$tx)
                .await?;
            if let Some(id) = inserted {
                outcomes.push(ImportOutcome::Imported { id });
                continue;
            }
            let by_id: Option<String> = match user.id {
                Some(id) => {
                    sqlx::query_scalar($by_id)
                        .bind(id)
                        .fetch_optional(&mut *$tx)
                        .await?
                }
                None => None,
            };
            let by_name: Option<i64> = sqlx::query_scalar($by_name)
                .bind(&user.username)
                .fetch_optional(&mut *$tx)
                .await?;
            // Nothing inserted and nothing found: the conflict was with a
            // row deleted since; say taken rather than guess.
            outcomes.push(
                classify(user, by_id, by_name).unwrap_or(ImportOutcome::UsernameTaken {
                    id: user.id.unwrap_or_default(),
                }),
            );
        }
        outcomes
    }};
}

/// [`crate::Store::import_users`] on SQLite. Its AUTOINCREMENT sequence
/// follows the highest id inserted by itself.
pub(crate) async fn sqlite(
    mut tx: Transaction<'_, Sqlite>,
    users: &[ImportedUser],
    commit: bool,
) -> StoreResult<Vec<ImportOutcome>> {
    // The first statement writes, so the transaction holds SQLite's write
    // lock from the start instead of failing to upgrade to it later.
    let outcomes = import_batch!(
        tx,
        users,
        "INSERT INTO users (id, username, email, password_hash, is_staff, is_superuser, \
                            is_active, date_joined, last_login) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        "SELECT username FROM users WHERE id = ?",
        "SELECT id FROM users WHERE username = ?"
    );
    finish(tx, commit).await?;
    Ok(outcomes)
}

/// [`crate::Store::import_users`] on PostgreSQL. The id sequence is raised
/// past the batch's highest id first (not transactional, so only when
/// committing): a signup meanwhile takes an id after the imported ones
/// instead of one the import is about to use.
pub(crate) async fn postgres(
    mut tx: Transaction<'_, Postgres>,
    users: &[ImportedUser],
    commit: bool,
) -> StoreResult<Vec<ImportOutcome>> {
    let highest = users.iter().filter_map(|u| u.id).max();
    if let (Some(highest), true) = (highest, commit) {
        sqlx::query("SELECT setval('users_id_seq', GREATEST($1, last_value)) FROM users_id_seq")
            .bind(highest)
            .execute(&mut *tx)
            .await?;
    }
    let outcomes = import_batch!(
        tx,
        users,
        "INSERT INTO users (id, username, email, password_hash, is_staff, is_superuser, \
                            is_active, date_joined, last_login) \
         VALUES (COALESCE($1, nextval('users_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING RETURNING id",
        "SELECT username FROM users WHERE id = $1",
        "SELECT id FROM users WHERE username = $1"
    );
    finish(tx, commit).await?;
    Ok(outcomes)
}

async fn finish<DB: sqlx::Database>(tx: Transaction<'_, DB>, commit: bool) -> StoreResult<()> {
    if commit {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: Option<i64>, name: &str) -> ImportedUser {
        ImportedUser {
            id,
            username: name.into(),
            email: String::new(),
            password_hash: String::new(),
            is_staff: false,
            is_superuser: false,
            is_active: true,
            date_joined: 0,
            last_login: None,
        }
    }

    #[test]
    fn a_collision_is_the_same_user_only_when_id_and_name_agree() {
        let with_id = user(Some(7), "ann");
        assert_eq!(
            classify(&with_id, Some("ann".into()), Some(7)),
            Some(ImportOutcome::AlreadyPresent { id: 7 })
        );
        assert_eq!(
            classify(&with_id, Some("bob".into()), None),
            Some(ImportOutcome::IdTaken {
                username: "bob".into()
            })
        );
        assert_eq!(
            classify(&with_id, None, Some(9)),
            Some(ImportOutcome::UsernameTaken { id: 9 })
        );
        // Without an id, the name is all there is to go by.
        assert_eq!(
            classify(&user(None, "ann"), None, Some(9)),
            Some(ImportOutcome::AlreadyPresent { id: 9 })
        );
        assert_eq!(classify(&user(None, "ann"), None, None), None);
    }
}
