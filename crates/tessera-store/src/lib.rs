//! Tessera's storage: the [`Store`] trait the server talks to, the union
//! of narrower traits by concern ([`UserStore`], [`TokenStore`],
//! [`KeyStore`], [`ChangeLog`], [`AuditStore`], [`LinkStore`],
//! [`ClientStore`], [`MfaStore`], [`Maintenance`]), and its two implementations with embedded migrations:
//! [`SqliteStore`] (one file) and [`PgStore`] (PostgreSQL), with the same
//! schema and the same semantics. [`scratch`] makes throwaway PostgreSQL
//! databases for tests.
//!
//! Each concern's module holds its trait and its SQL, one text per
//! operation for both engines, instantiated for each by `for_each_engine!`
//! (see `engine`, which also holds the few real differences between them).
//!
//! Every write that affects whether a token is accepted also appends a
//! [`Change`], in the same transaction, so that every process sharing the
//! database can bring its in-memory revocation state up to date.
#![deny(missing_docs)]

mod audit;
mod batch;
mod changes;
mod clients;
mod engine;
mod error;
mod import;
mod keys;
mod mail;
mod maintenance;
mod mfa;
mod model;
mod passkeys;
mod pool;
mod postgres;
pub mod queue;
pub mod scratch;
mod sessions;
mod sqlite;
mod sqlite_file;
mod successors;
mod tokens;
mod users;

pub use audit::AuditStore;
pub use batch::{BATCH_SECONDS, BATCH_WRITES, BatchedWriter};
pub use changes::ChangeLog;
pub use clients::ClientStore;
pub use error::{StoreError, StoreResult};
pub use keys::KeyStore;
pub use mail::LinkStore;
pub use maintenance::Maintenance;
pub use mfa::MfaStore;
pub use model::*;
pub use passkeys::{CeremonyLimits, PasskeyStore};
pub use postgres::tls::{
    connect_options as pg_connect_options, explain_connect_error as explain_pg_connect_error,
};
pub use postgres::{AUDIT_LOG_LOCK, CHANGE_LOG_LOCK, PgStore};
pub use sqlite::SqliteStore;
pub use tokens::TokenStore;
pub use users::UserStore;

/// Persistent state of a Tessera server: every narrower trait at once, for
/// the server, which holds one `Arc<dyn Store>`. Implementations must make
/// each method atomic, and durable once it returns. Implemented for every
/// type that implements the narrower traits, so a test double implements
/// those (forwarding what it does not change), and code that needs only one
/// concern can take that trait (an `Arc<dyn Store>` upcasts to it).
pub trait Store:
    Maintenance
    + UserStore
    + TokenStore
    + KeyStore
    + ChangeLog
    + AuditStore
    + LinkStore
    + ClientStore
    + MfaStore
    + PasskeyStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: Maintenance
        + UserStore
        + TokenStore
        + KeyStore
        + ChangeLog
        + AuditStore
        + LinkStore
        + ClientStore
        + MfaStore
        + PasskeyStore
        + Send
        + Sync
        + 'static
{
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What lets code that needs one concern take only its trait (and a
    /// test double implement only that one): the server's `Arc<dyn Store>`
    /// upcasts to each narrower trait.
    #[test]
    fn a_store_upcasts_to_each_concern() {
        type Concerns = (
            Arc<dyn Maintenance>,
            Arc<dyn UserStore>,
            Arc<dyn TokenStore>,
            Arc<dyn KeyStore>,
            Arc<dyn ChangeLog>,
            Arc<dyn AuditStore>,
            Arc<dyn LinkStore>,
            Arc<dyn ClientStore>,
            Arc<dyn MfaStore>,
            Arc<dyn PasskeyStore>,
        );
        fn upcast(store: Arc<dyn Store>) -> Concerns {
            (
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store,
            )
        }
        let _ = upcast;
    }
}
