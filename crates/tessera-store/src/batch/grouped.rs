//! A batch's writes as a handful of multi-row statements: each statement is
//! a trip to the engine's connection (for SQLite, to sqlx's worker thread),
//! and at five statements a rotation those trips, not the disk, were what
//! limited the refreshes a second. Grouped, a batch costs about one
//! statement per kind of row it writes, however many writes it holds.
//!
//! The outcome of every write is the one the writes would have had applied
//! one after another, in their order (`apply_write`): the rotations'
//! blacklisting, which decides which rotation of a token wins, runs first,
//! in one statement whose rows the engine applies in order and which
//! answers the jtis it blacklisted; a token rotated twice in one batch has
//! its later rotations applied one by one after it, as they would have
//! been. Only then are the rows of the writes that were done inserted (new
//! sessions, refresh tokens, change-log entries, successors) and the
//! sessions' last use noted: none of these decides anything, and none can
//! concern a row another write of the same batch decides (a token is
//! rotated only once its predecessor's answer, hence its batch, committed).

use super::{Applied, Write};
use crate::changes::Logged;
use crate::engine::for_each_engine;
use crate::{ExpectedUser, RefreshRecord, SealedSuccessor, SessionRecord, StoreResult};
use sqlx::Transaction;
use std::collections::{HashMap, HashSet};

/// A rotation of the batch: its index among the writes, and its parts.
struct Rotating<'a> {
    index: usize,
    old: &'a RefreshRecord,
    new: &'a RefreshRecord,
    successor: Option<&'a SealedSuccessor>,
    now: i64,
    expected: Option<&'a ExpectedUser>,
}

/// The rows a batch inserts or updates once its rotations are decided.
#[derive(Default)]
struct Rows<'a> {
    sessions: Vec<&'a SessionRecord>,
    tokens: Vec<&'a RefreshRecord>,
    changes: Vec<(Logged<'a>, i64)>,
    successors: Vec<(&'a str, &'a SealedSuccessor)>,
    /// A session's latest use and expiry, merged over the batch's writes.
    uses: HashMap<&'a str, (i64, i64)>,
}

impl<'a> Rows<'a> {
    /// Notes a refresh of `family` at `at` whose newest token expires at
    /// `expires_at` (0: unchanged).
    fn use_session(&mut self, family: &'a str, at: i64, expires_at: i64) {
        let entry = self.uses.entry(family).or_insert((at, expires_at));
        entry.0 = entry.0.max(at);
        entry.1 = entry.1.max(expires_at);
    }

    /// The rows of a rotation that was done.
    fn rotated(&mut self, rotation: &Rotating<'a>) {
        let old = rotation.old;
        let entry = Logged::jti(&old.jti, old.user_id, old.expires_at, true);
        self.changes.push((entry, rotation.now));
        self.tokens.push(rotation.new);
        if let Some(successor) = rotation.successor {
            self.successors.push((&old.jti, successor));
        }
        let new = rotation.new;
        self.use_session(&new.family_id, new.issued_at, new.expires_at);
    }
}

for_each_engine! {
    impl Engine {
        /// Applies `writes` in `tx` grouped into multi-row statements,
        /// answering for each what `apply_write` would have, applied in
        /// order. Any failure fails the whole call (the caller then undoes
        /// the transaction and applies the writes one by one).
        pub(crate) async fn apply_grouped(
            tx: &mut Transaction<'_, Db>,
            writes: &[Write],
        ) -> StoreResult<Vec<Applied>> {
            let mut results = vec![Applied::Done; writes.len()];
            let mut rows = Rows::default();
            let mut first = Vec::new();
            let mut again = Vec::new();
            let mut seen = HashSet::new();
            for (index, write) in writes.iter().enumerate() {
                match write {
                    Write::Record(token) => {
                        rows.tokens.push(token);
                        rows.use_session(&token.family_id, token.issued_at, token.expires_at);
                    }
                    Write::Begin { token, session } => {
                        rows.sessions.push(session);
                        rows.tokens.push(token);
                    }
                    Write::Touch { family_id, at } => rows.use_session(family_id, *at, 0),
                    Write::Rotate { old, new, successor, now, expected } => {
                        let rotation = Rotating {
                            index,
                            old,
                            new,
                            successor: successor.as_ref(),
                            now: *now,
                            expected: expected.as_ref(),
                        };
                        if seen.insert(old.jti.as_str()) {
                            first.push(rotation);
                        } else {
                            again.push(rotation);
                        }
                    }
                }
            }
            if !first.is_empty() {
                let decided: Vec<_> = first.iter().map(|r| (r.old, r.now, r.expected)).collect();
                let blacklisted = Engine::blacklist_rotated(tx, &decided).await?;
                for rotation in &first {
                    results[rotation.index] = if blacklisted.contains(&rotation.old.jti) {
                        rows.rotated(rotation);
                        Applied::Done
                    } else if let Some(expected) = rotation.expected {
                        // Rare: refused by the guard, or blacklisted already?
                        if Engine::is_still_current(tx, rotation.old, expected).await? {
                            Applied::NotDone
                        } else {
                            Applied::Stale
                        }
                    } else {
                        Applied::NotDone
                    };
                }
            }
            // Rare: a token presented twice at once. Its first rotation is
            // decided above; the others see what it left, as in order.
            for rotation in &again {
                results[rotation.index] = Engine::rotate_in(
                    tx,
                    rotation.old,
                    rotation.new,
                    rotation.successor,
                    rotation.now,
                    rotation.expected,
                )
                .await?;
            }
            Engine::insert_sessions(tx, &rows.sessions).await?;
            Engine::insert_refreshes(tx, &rows.tokens).await?;
            Engine::log_changes(tx, &rows.changes).await?;
            Engine::keep_successors(tx, &rows.successors).await?;
            let uses: Vec<_> = rows.uses.iter().map(|(f, (at, until))| (*f, *at, *until)).collect();
            Engine::note_sessions_use(tx, &uses).await?;
            Ok(results)
        }
    }
}
