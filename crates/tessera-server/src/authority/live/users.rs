//! The users held in memory for the hot path, which only ever move forward.
//!
//! Several code paths bring a copy of a user row into memory: a login (read
//! before a hash that takes milliseconds), a lookup on a miss, this process's
//! own updates, and the sync from the change log. A copy read earlier can
//! arrive later; keeping whichever arrived last would let a login that read
//! the row before a deactivation bring the active user back. So every row
//! carries a revision, raised by each update in the same statement, and a
//! copy replaces the one in memory only when it is newer.

use crate::authority::User;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use tessera_core::ids::UserId;
use tessera_store::UserRecord;

/// Users by id, each the newest revision seen.
#[derive(Default)]
pub(super) struct Users {
    by_id: RwLock<HashMap<UserId, Arc<User>>>,
}

impl Users {
    /// Every user of `records`, as loaded at start.
    pub(super) fn new(records: Vec<UserRecord>) -> Self {
        let users = Self::default();
        for record in records {
            users.remember(record);
        }
        users
    }

    /// The user with this id, if memory holds it.
    pub(super) fn get(&self, id: UserId) -> Option<Arc<User>> {
        self.by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Keeps `record` unless memory already holds the same or a newer
    /// revision of the user; returns what memory holds afterwards, which is
    /// what the caller must act on.
    pub(super) fn remember(&self, record: UserRecord) -> Arc<User> {
        let mut by_id = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        match by_id.get(&UserId::new(record.id)) {
            Some(held) if held.revision >= record.revision => held.clone(),
            _ => {
                let user = Arc::new(User::from(record));
                by_id.insert(user.id, user.clone());
                user
            }
        }
    }

    /// Forgets a user that no longer exists.
    pub(super) fn forget(&self, id: UserId) {
        self.by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Brings memory to `records`, the whole table read after the change-log
    /// position the caller resumes from: newer rows replace older ones, and
    /// users absent from it are forgotten.
    pub(super) fn reload(&self, records: Vec<UserRecord>) {
        let present: std::collections::HashSet<UserId> =
            records.iter().map(|r| UserId::new(r.id)).collect();
        for record in records {
            self.remember(record);
        }
        self.by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id, _| present.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, revision: i64, is_active: bool) -> UserRecord {
        UserRecord {
            id,
            username: format!("user{id}"),
            email: String::new(),
            password_hash: String::new(),
            is_staff: false,
            is_superuser: false,
            is_active,
            token_version: revision,
            date_joined: 0,
            last_login: None,
            revision,
            email_verified: false,
            roles: "[]".into(),
            app_metadata: "{}".into(),
            claims_version: 0,
        }
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let users = Users::default();
        users.remember(record(1, 3, false));
        let kept = users.remember(record(1, 2, true));
        assert!(!kept.is_active && kept.revision == 3);
        assert!(!users.get(UserId::new(1)).unwrap().is_active);
        let newer = users.remember(record(1, 4, true));
        assert!(newer.is_active && users.get(UserId::new(1)).unwrap().revision == 4);
    }

    #[test]
    fn a_reload_forgets_deleted_users_and_keeps_newer_copies() {
        let users = Users::new(vec![record(1, 5, true), record(2, 0, true)]);
        users.reload(vec![record(1, 4, false)]);
        assert_eq!(users.get(UserId::new(1)).unwrap().revision, 5);
        assert!(users.get(UserId::new(2)).is_none());
    }
}
