//! What account recovery mails: password-reset and verification links
//! (`email_tokens`, in `links.rs`), the requests the mail limits count
//! (`mail_requests`, in `requests.rs`) and the outbox (`outbox.rs`), with
//! [`LinkStore`], the part of the store that account recovery uses
//! (implemented for both engines in `link_store.rs`). Each transaction is
//! begun by the store as it must be: on PostgreSQL under the change-log
//! lock when a user changes, and under `MAIL_REQUEST_LOCK` when requests
//! are counted.

mod link_store;
mod links;
mod outbox;
mod requests;

pub use link_store::LinkStore;

/// How long a mail's record outlives its sending (or giving up), and a
/// request its counting, before `prune` deletes them: long enough for an
/// operator to look into a complaint.
pub(crate) const KEPT_FOR: i64 = 7 * 24 * 3600;

/// Voids every link of user `$1` mailed to an address other than `$2`
/// (the user's address now), run in the transaction that changes it: a
/// link proves only that its reader has the address it went to, which
/// tells nothing about the account once its address is another. Deleted,
/// not merely refused, so that setting the old address back later does
/// not bring them back.
pub(crate) const VOID_LINKS_TO_OTHER_ADDRESSES: &str =
    "DELETE FROM email_tokens WHERE user_id = $1 AND email <> $2";

/// The statements prune runs, each bound to one time.
pub(crate) fn prune_statements(now: i64) -> [(&'static str, i64); 4] {
    [
        ("DELETE FROM email_tokens WHERE expires_at < $1", now),
        ("DELETE FROM mail_requests WHERE at < $1", now - KEPT_FOR),
        ("DELETE FROM outbox WHERE sent_at < $1", now - KEPT_FOR),
        ("DELETE FROM outbox WHERE failed_at < $1", now - KEPT_FOR),
    ]
}
