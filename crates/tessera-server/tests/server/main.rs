//! Integration tests: Tessera on a random port with a fresh database (a
//! SQLite file here; a PostgreSQL database in `server_on_postgres`, which
//! builds these same files), spoken to over HTTP. One module per area of
//! docs/API.md. What needs neither a process nor a connection (the rules
//! every route shares, bodies, credentials, cookies, CORS, the documents)
//! is tested without a socket in the `http` binary (tests/http).

mod harness;

mod accounts;
mod admin;
mod attacks;
mod audit;
mod authenticator;
mod axios;
mod bad_input;
mod cli;
mod clients;
mod compat;
mod disk_full;
mod durability;
mod email;
mod faults;
mod feed;
mod feed_faults;
mod general;
mod hardening;
mod import;
mod instances;
mod interop;
mod keys;
mod library;
mod mailbox;
mod mfa;
mod mfa_modes;
mod migrating_django;
mod nginx;
mod oauth;
mod passkeys;
mod postgres;
mod postgres_tls;
mod pyjwt;
mod refresh;
mod revocations;
mod roles;
mod security;
mod security_map;
mod session;
mod session_list;
mod several_instances;
mod shared_throttling;
mod sync;
mod tokens;
