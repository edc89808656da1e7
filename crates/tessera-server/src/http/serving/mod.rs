//! Serving: what stands between a connection and the routes.
//!
//! - [`listener`]: the listening socket and accepting from it.
//! - [`admission`]: who gets a connection slot (per-client share, closing
//!   the longest-idle connection when full).
//! - [`connections`]: HTTP/1.1 on each connection, with the header-read and
//!   idle timeouts.
//! - [`edge`]: the rules every answer shares, as one tower layer around the
//!   routes (body rules, browser headers, the JSON 405, metrics, the request
//!   log).
//! - [`fast`]: the three hot routes (`/healthz`, `/api/auth/me`,
//!   `/api/auth/check`), which the edge answers without the router.
//! - [`note`]: what the edge and the routes tell each other: a request's
//!   arrival (which the route that answers counts in the metrics), and on
//!   the response its user, an answer given in front of the routes, a store
//!   refusal.
//! - [`body`]: reading request bodies (64 KiB, JSON or a form, the 413, 408
//!   and 415 before any handler).
//! - [`cors`]: CORS for the listed origins, and the gate that refuses the
//!   preflights of others.

pub mod admission;
pub mod body;
pub mod connections;
pub mod cors;
pub mod edge;
pub mod fast;
pub mod listener;
pub mod note;
