//! The Tessera server: configuration, the domain service ([`authority`]),
//! its HTTP face ([`http`]), and the `tessera` command ([`cli`]).
#![deny(missing_docs)]

pub mod audit;
pub mod authority;
pub mod cli;
pub mod config;
pub mod http;
pub mod import;
pub mod logging;
pub mod mail;
pub mod printable;
pub mod server;
pub mod supervisor;
pub mod telemetry;
