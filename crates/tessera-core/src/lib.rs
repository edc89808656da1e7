//! Tessera's token rules, free of I/O and HTTP.
//!
//! Everything that decides whether a token is good lives here, so that the
//! server and the verification library apply exactly the same rules
//! (docs/API.md): claims ([`claims`]) and the ids they carry ([`ids`]),
//! key material and key ids ([`keys`]), issuing and validating tokens ([`token`]) and service clients' tokens
//! ([`client`]), the in-memory revocation markers ([`revocation`]) and the
//! feed that carries them to other services ([`feed`]), the one reload on an
//! unknown key id ([`reload`]), usernames ([`username`]) and passwords
//! ([`password`]).
#![deny(missing_docs)]

pub mod claims;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod feed;
pub mod ids;
pub mod keys;
pub mod link;
pub mod password;
pub mod refusal;
pub mod reload;
pub mod revocation;
pub mod successor;
pub mod throttle;
pub mod token;
pub mod username;
pub mod verified;

pub use jsonwebtoken::Algorithm;
pub use refusal::Refusal;
