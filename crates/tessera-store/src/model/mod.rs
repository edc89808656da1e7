//! The records the store reads and writes, by concern (all re-exported at
//! the crate's root).

mod audit;
mod changes;
mod clients;
mod keys;
mod mail;
mod mfa;
mod tokens;
mod users;

pub use audit::*;
pub use changes::*;
pub use clients::*;
pub use keys::*;
pub use mail::*;
pub use mfa::*;
pub use tokens::*;
pub use users::*;
