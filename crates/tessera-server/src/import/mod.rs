//! `tessera import-users`: users brought from another system with their
//! ids and password hashes (SPEC's import section, docs/MIGRATING.md).
//!
//! A reader streams the source ([`sources`]); each row is checked
//! ([`row`]) and rows are written in batches, each batch one transaction
//! ([`tessera_store::Store::import_users`]), so an interrupted import keeps
//! what it committed and can simply be run again.

pub mod row;
pub mod sources;

use row::Candidate;
use sources::Item;
use std::collections::HashMap;
use tessera_core::password::imported::HashProblem;
use tessera_store::{ImportOutcome, ImportedUser, Store};
use tokio::sync::mpsc;

pub use sources::Source;

/// Users written per transaction.
pub const BATCH: usize = 1000;

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Users created.
    pub imported: u64,
    /// Users that were there already, left as they are.
    pub already_present: u64,
    /// Rows not imported (each reported).
    pub skipped: u64,
    /// Of the users created, those whose password cannot serve a login
    /// until one is set (an unusable, empty, unknown or too costly hash).
    pub without_password: u64,
}

impl Summary {
    /// The closing line of the command.
    pub fn line(&self, dry_run: bool) -> String {
        let counts = format!(
            "{} {}, {} already present, {} skipped, {} without a usable password",
            self.imported,
            if self.imported == 1 { "user" } else { "users" },
            self.already_present,
            self.skipped,
            self.without_password
        );
        let mut line = if dry_run {
            format!("Dry run, nothing written: would import {counts}.")
        } else {
            format!("Imported {counts}.")
        };
        if self.imported == 0 && self.already_present > 0 && self.skipped == 0 {
            line.push_str(" Nothing to do: every user is already here.");
        }
        line
    }
}

/// One row that was skipped, or imported without a usable password: every
/// such row has one. Values from the
/// source are quoted in it as excerpts ([`crate::printable::excerpt`]); the
/// command prints each remark escaped whole, as `tessera audit` its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    /// Where and who: `line 3`, `row 5 (id 7, "bob")`.
    pub row: String,
    /// Whether the row was skipped (else imported, with this remark).
    pub skipped: bool,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Remark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.skipped {
            write!(f, "skipped {}: {}", self.row, self.reason)
        } else {
            write!(
                f,
                "imported {} without a usable password: {}",
                self.row, self.reason
            )
        }
    }
}

/// An error that stopped the import: the source could not be read at all,
/// or the database failed (batches committed before stay).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(String);

/// Imports every row of `source` into `store` (nothing is written with
/// `dry_run`), calling `remark` for each row skipped or imported without a
/// usable password, and `progress` with the rows read so far after each
/// batch. `now` is the `date_joined` of rows without one.
pub async fn import(
    store: &dyn Store,
    source: &Source,
    dry_run: bool,
    now: i64,
    remark: &mut (dyn FnMut(Remark) + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Summary, ImportError> {
    let items = sources::open(source).await.map_err(ImportError)?;
    let mut run = Run {
        store,
        dry_run,
        summary: Summary::default(),
        seen_ids: HashMap::new(),
        seen_names: HashMap::new(),
        rows_read: 0,
        rows_unreadable: 0,
        remark,
    };
    run.all(items, now, progress).await?;
    if run.rows_read == 0 && run.rows_unreadable > 0 {
        return Err(ImportError(
            "no row of the source could be read as a user".into(),
        ));
    }
    Ok(run.summary)
}

/// The state of one import.
struct Run<'a> {
    store: &'a dyn Store,
    dry_run: bool,
    summary: Summary,
    /// Where each id and username was first seen in the source: a second
    /// row with either is a duplicate, told as such (in a dry run too).
    seen_ids: HashMap<i64, String>,
    seen_names: HashMap<String, String>,
    rows_read: u64,
    rows_unreadable: u64,
    remark: &'a mut (dyn FnMut(Remark) + Send),
}

/// A row on its way to the store.
struct Pending {
    row: String,
    password_problem: Option<HashProblem>,
}

impl Run<'_> {
    async fn all(
        &mut self,
        mut items: mpsc::Receiver<Item>,
        now: i64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), ImportError> {
        let mut users = Vec::with_capacity(BATCH);
        let mut pending = Vec::with_capacity(BATCH);
        let mut read = 0;
        while let Some(item) = items.recv().await {
            read += 1;
            if let Some((user, row)) = self.check(item, now) {
                users.push(user);
                pending.push(row);
            }
            if users.len() == BATCH {
                self.write(&users, &pending).await?;
                users.clear();
                pending.clear();
                progress(read);
            }
        }
        self.write(&users, &pending).await?;
        progress(read);
        Ok(())
    }

    /// The user of one item, unless it is to be skipped (then told).
    fn check(&mut self, item: Item, now: i64) -> Option<(ImportedUser, Pending)> {
        let (at, fields) = match item {
            Item::Row { at, fields } => (at, fields),
            Item::Unreadable { at, reason } => {
                self.rows_unreadable += 1;
                self.skip(at, reason);
                return None;
            }
        };
        self.rows_read += 1;
        let Candidate {
            user,
            password_problem,
        } = match row::candidate(&fields, now) {
            Ok(candidate) => candidate,
            Err(reason) => {
                self.skip(at, reason);
                return None;
            }
        };
        let name = crate::printable::excerpt(&user.username);
        let row = match user.id {
            Some(id) => format!("{at} (id {id}, {name})"),
            None => format!("{at} ({name})"),
        };
        if let Some(first) = user.id.and_then(|id| self.seen_ids.get(&id)) {
            let reason = format!("the same id as {first}");
            self.skip(row, reason);
            return None;
        }
        if let Some(first) = self.seen_names.get(&user.username) {
            let reason = format!("the same username (after normalisation) as {first}");
            self.skip(row, reason);
            return None;
        }
        if let Some(id) = user.id {
            self.seen_ids.insert(id, at.clone());
        }
        self.seen_names.insert(user.username.clone(), at);
        Some((
            user,
            Pending {
                row,
                password_problem,
            },
        ))
    }

    fn skip(&mut self, row: String, reason: String) {
        self.summary.skipped += 1;
        (self.remark)(Remark {
            row,
            skipped: true,
            reason,
        });
    }

    async fn write(
        &mut self,
        users: &[ImportedUser],
        pending: &[Pending],
    ) -> Result<(), ImportError> {
        if users.is_empty() {
            return Ok(());
        }
        let outcomes = self
            .store
            .import_users(users, !self.dry_run)
            .await
            .map_err(|e| {
                // Rows are checked before they are written, so this is the
                // database's own failure; name the batch it failed on.
                let first = pending.first().map_or("", |p| p.row.as_str());
                let last = pending.last().map_or("", |p| p.row.as_str());
                ImportError(format!(
                    "the database failed on the batch from {first} to {last}: {e}; what was imported before stays, and running the import again resumes it"
                ))
            })?;
        for (outcome, row) in outcomes.into_iter().zip(pending) {
            match outcome {
                ImportOutcome::Imported { .. } => {
                    self.summary.imported += 1;
                    if let Some(problem) = &row.password_problem {
                        self.summary.without_password += 1;
                        // Each is named, those the source made without a
                        // password too (Django's `!`): the count alone
                        // left the administrator to find them (issue 30,
                        // item 4).
                        (self.remark)(Remark {
                            row: row.row.clone(),
                            skipped: false,
                            reason: problem.to_string(),
                        });
                    }
                }
                ImportOutcome::AlreadyPresent { .. } => self.summary.already_present += 1,
                ImportOutcome::IdTaken { username } => self.skip(
                    row.row.clone(),
                    format!(
                        "its id belongs to another user here, {}",
                        crate::printable::excerpt(&username)
                    ),
                ),
                ImportOutcome::UsernameTaken { id } => self.skip(
                    row.row.clone(),
                    format!(
                        "its username (after normalisation) belongs to another user here, id {id}"
                    ),
                ),
            }
        }
        Ok(())
    }
}
