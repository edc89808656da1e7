//! Creating imported users with the ids they had
//! ([`UserStore::import_users`](crate::UserStore::import_users)): the same
//! steps on both engines, which differ only in how a row without an id
//! gets one and in what runs first (see `Dialect::before_import` in `engine`).
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

use crate::engine::for_each_engine;
use crate::{ImportOutcome, ImportedUser, StoreResult};
use sqlx::{QueryBuilder, Transaction};
use std::collections::HashMap;

/// Rows per insert statement: 10 parameters each stays far below either
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

for_each_engine! {
    /// The (id, username) of every user whose id or username one of `users`
    /// has, in `tx`.
    async fn lookup<'u>(
        tx: &mut Transaction<'_, Db>,
        users: impl Iterator<Item = &'u ImportedUser>,
    ) -> StoreResult<Vec<(i64, String)>> {
        let mut query =
            QueryBuilder::<Db>::new("SELECT id, username FROM users WHERE username IN (");
        let mut names = query.separated(", ");
        let mut ids = Vec::new();
        for user in users {
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
        Ok(query.build_query_as().fetch_all(&mut **tx).await?)
    }

    impl Engine {
        /// [`crate::UserStore::import_users`] in `tx`, committed if
        /// `commit`, else rolled back.
        pub(crate) async fn import(
            mut tx: Transaction<'_, Db>,
            users: &[ImportedUser],
            commit: bool,
        ) -> StoreResult<Vec<ImportOutcome>> {
            if users.is_empty() {
                return Ok(Vec::new());
            }
            let highest = users.iter().filter_map(|u| u.id).max();
            Db::before_import(&mut tx, highest, commit).await?;
            let mut existing = Existing::default();
            existing.add(lookup(&mut tx, users.iter()).await?);
            let mut outcomes: Vec<Option<ImportOutcome>> =
                users.iter().map(|u| existing.outcome(u)).collect();
            let fresh: Vec<&ImportedUser> = users
                .iter()
                .zip(&outcomes)
                .filter_map(|(u, o)| o.is_none().then_some(u))
                .collect();
            let mut inserted: HashMap<String, i64> = HashMap::new();
            // A row without an id takes the next one.
            let next_id = format!(", {})", Db::NEXT_USER_ID);
            for chunk in fresh.chunks(ROWS_PER_INSERT) {
                let mut insert = QueryBuilder::<Db>::new(
                    "INSERT INTO users (id, username, email, password_hash, is_staff, \
                     is_superuser, is_active, date_joined, last_login, roles) ",
                );
                insert.push_values(chunk, |mut row, user| {
                    row.push("COALESCE(")
                        .push_bind_unseparated(user.id)
                        .push_unseparated(&next_id)
                        .push_bind(&user.username)
                        .push_bind(&user.email)
                        .push_bind(&user.password_hash)
                        .push_bind(user.is_staff)
                        .push_bind(user.is_superuser)
                        .push_bind(user.is_active)
                        .push_bind(user.date_joined)
                        .push_bind(user.last_login)
                        .push_bind(&user.roles);
                });
                insert.push(" ON CONFLICT DO NOTHING RETURNING id, username");
                let rows: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
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
                existing.add(lookup(&mut tx, kept_out.iter().copied()).await?);
            }
            for (user, outcome) in users.iter().zip(outcomes.iter_mut()) {
                if outcome.is_none() {
                    *outcome = Some(existing.outcome(user).unwrap_or(ImportOutcome::UsernameTaken {
                        id: user.id.unwrap_or_default(),
                    }));
                }
            }
            if commit {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(outcomes.into_iter().flatten().collect())
        }
    }
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
            roles: "[]".into(),
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
