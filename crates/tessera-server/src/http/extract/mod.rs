//! What handlers take from a request, and how their failures are answered.
//!
//! - [`auth`]: the access token, from where the settings say to look, and
//!   the authenticated user (with the CSRF check of cookie requests).
//! - [`cookies`]: the token and CSRF cookies, read and set.
//! - [`client`]: the client's address (through trusted proxies) and the
//!   origin of a session it begins.
//! - [`feed`]: a service client's bearer token and a feed stream's cursor.
//! - [`client_auth`]: a service client's credentials (HTTP Basic, the
//!   body's fields) or bearer token, and the answers refusing its token.
//! - [`origin`]: the public origin of the absolute URLs the API gives out.
//! - [`requests`]: the typed bodies handlers read, with DRF's field errors.
//! - [`error`]: the one error type, and the single place where errors
//!   become statuses, bodies and headers.

pub mod auth;
pub mod client;
pub mod client_auth;
pub mod cookies;
pub mod error;
pub mod feed;
pub mod origin;
pub mod requests;
