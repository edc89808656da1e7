//! Creating imported users with the ids they had (`Store::import_users`),
//! for both engines: the same steps, in each engine's SQL.
//!
//! A batch costs three statements however many users it holds: one reads
//! the users whose id or username the batch uses, one inserts the others
//! (`ON CONFLICT DO NOTHING`, so a concurrent signup that takes a name
//! first makes that row "taken", never an error that would undo the whole
//! batch), and, only for rows that such a race kept out, one more read.
//!
//! No change-log entry is written: a change tells running processes to
//! reload what they hold in memory, and no process holds a user that did
//! not exist (a lookup that misses asks the database).

use crate::{ImportOutcome, ImportedUser, StoreResult};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};
use std::collections::HashMap;

/// Rows per insert statement: 9 parameters each stays far below either
/// engine's limit on parameters (32,766 and 65,535).
const ROWS_PER_INSERT: usize = 500;

/// The users a batch collides with: id -> username, username -> id.
#[derive(Default)]
struct Existing {
    by_id: HashMap<i64, String>,
    by_name: HashMap<String, i64>,
}

impl Existing {
    fn add(&mut self, rows: Vec<(i64, String)>) {
        for (id, name) in rows {
            self.by_id.insert(id, name.clone());
            self.by_name.insert(name, id);
        }
    }

    fn outcome(&self, user: &ImportedUser) -> Option<ImportOutcome> {
        classify(
            user,
            user.id.and_then(|id| self.by_id.get(&id).cloned()),
            self.by_name.get(&user.username).copied(),
        )
    }
}

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

/// The steps of one batch in `$tx`, for the engine `$db`; `$id` pushes a
/// row's id into the insert (`$row` is the separated builder, `$user` the row).
macro_rules! import_batch {
    ($tx:ident, $db:ty, $users:expr, |$row:ident, $user:ident| $id:expr) => {{
        let users: &[ImportedUser] = $users;
        let mut existing = Existing::default();
        existing.add(lookup!($tx, $db, users.iter()));
        let mut outcomes: Vec<Option<ImportOutcome>> =
            users.iter().map(|u| existing.outcome(u)).collect();
        let fresh: Vec<&ImportedUser> = users
            .iter()
            .zip(&outcomes)
            .filter_map(|(u, o)| o.is_none().then_some(u))
            .collect();
        let mut inserted: HashMap<String, i64> = HashMap::new();
        for chunk in fresh.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<$db>::new(
                "INSERT INTO users (id, username, email, password_hash, is_staff, \
                 is_superuser, is_active, date_joined, last_login) ",
            );
            insert.push_values(chunk, |mut $row, $user| {
                $id;
                $row.push_bind(&$user.username)
                    .push_bind(&$user.email)
                    .push_bind(&$user.password_hash)
                    .push_bind($user.is_staff)
                    .push_bind($user.is_superuser)
                    .push_bind($user.is_active)
                    .push_bind($user.date_joined)
                    .push_bind($user.last_login);
            });
            insert.push(" ON CONFLICT DO NOTHING RETURNING id, username");
            let rows: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *$tx).await?;
            inserted.extend(rows.into_iter().map(|(id, name)| (name, id)));
        }
        // Each inserted row is claimed by the first row it can be (same
        // name, and same id when the row has one); the rest were kept out
        // by a row before them or a concurrent write: read who is there.
        let mut kept_out = Vec::new();
        for (user, outcome) in users.iter().zip(outcomes.iter_mut()) {
            if outcome.is_some() {
                continue;
            }
            match inserted.get(&user.username) {
                Some(&id) if user.id.is_none_or(|wanted| wanted == id) => {
                    inserted.remove(&user.username);
                    *outcome = Some(ImportOutcome::Imported { id });
                }
                _ => kept_out.push(user),
            }
        }
        if !kept_out.is_empty() {
            existing.add(lookup!($tx, $db, kept_out.iter().copied()));
        }
        for (user, outcome) in users.iter().zip(outcomes.iter_mut()) {
            if outcome.is_none() {
                *outcome = Some(
                    existing
                        .outcome(user)
                        .unwrap_or(ImportOutcome::UsernameTaken {
                            id: user.id.unwrap_or_default(),
                        }),
                );
            }
        }
        outcomes.into_iter().flatten().collect::<Vec<_>>()
    }};
}

/// The (id, username) of every user whose id or username one of `$users`
/// has, in `$tx`.
macro_rules! lookup {
    ($tx:ident, $db:ty, $users:expr) => {{
        let mut query =
            QueryBuilder::<$db>::new("SELECT id, username FROM users WHERE username IN (");
        let mut names = query.separated(", ");
        let mut ids = Vec::new();
        for user in $users {
            names.push_bind(&user.username);
            ids.extend(user.id);
        }
        query.push(")");
        if !ids.is_empty() {
            query.push(" OR id IN (");
            let mut separated = query.separated(", ");
            for id in ids {
                separated.push_bind(id);
            }
            query.push(")");
        }
        let rows: Vec<(i64, String)> = query.build_query_as().fetch_all(&mut *$tx).await?;
        rows
    }};
}

/// [`crate::Store::import_users`] on SQLite. Its AUTOINCREMENT sequence
/// follows the highest id inserted by itself.
pub(crate) async fn sqlite(
    mut tx: Transaction<'_, Sqlite>,
    users: &[ImportedUser],
    commit: bool,
) -> StoreResult<Vec<ImportOutcome>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    // SQLite lets several transactions read at once but only one write; one
    // that read first and writes later may find another has written since
    // and fail. Taking the write lock first (a write that changes nothing)
    // makes concurrent writers wait their turn instead.
    sqlx::query("UPDATE users SET id = id WHERE 0")
        .execute(&mut *tx)
        .await?;
    let outcomes = import_batch!(tx, Sqlite, users, |row, user| row.push_bind(user.id));
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
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let highest = users.iter().filter_map(|u| u.id).max();
    if let (Some(highest), true) = (highest, commit) {
        sqlx::query("SELECT setval('users_id_seq', GREATEST($1, last_value)) FROM users_id_seq")
            .bind(highest)
            .execute(&mut *tx)
            .await?;
    }
    let outcomes = import_batch!(tx, Postgres, users, |row, user| {
        row.push("COALESCE(")
            .push_bind_unseparated(user.id)
            .push_unseparated(", nextval('users_id_seq'))")
    });
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
