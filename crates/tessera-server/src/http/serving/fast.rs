//! The hot routes, answered by the edge without the router.
//!
//! `GET /healthz` (every load balancer's probe), `GET /api/auth/me` and
//! `GET /api/auth/check` (a token checked on every page, or by nginx's
//! `auth_request` on every request) are most of what a busy instance
//! answers. Through axum's router each one paid for matching the path, the
//! `MatchedPath` and URL-parameter extensions, two clones of boxed route
//! services, a boxed handler future and the per-route layer: about a fifth
//! of a `/healthz` (docs/PERFORMANCE.md). The edge answers these three
//! itself, with the very handlers and extractor the router calls, so that
//! what they answer cannot differ: the same statuses, headers and bodies,
//! the same `Content-Length` rule as axum's routes, metrics under the same
//! route label. A test holds the two paths to the same answers
//! (`tests/http/fast_lane.rs`).
//!
//! Only exact `GET`s take it (a `HEAD`, another method, a path with
//! anything else goes through the router, which answers them as before),
//! and only while CORS is off: with `cors_allowed_origins` set, every route
//! carries the CORS layer, and so every request goes through the router.

use crate::authority::Authority;
use crate::http::extract::auth::Authenticated;
use crate::http::routes::{accounts, meta};
use crate::telemetry::GetRouteMetrics;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;
use std::sync::Arc;

/// A route the edge answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastRoute {
    /// `GET /healthz`.
    Healthz,
    /// `GET /api/auth/me`.
    Me,
    /// `GET /api/auth/check`.
    Check,
}

impl FastRoute {
    /// Every route the edge answers itself, in the order of their
    /// discriminants.
    pub const ALL: [Self; 3] = [Self::Healthz, Self::Me, Self::Check];

    /// The route `req` is for, when the edge answers it itself: a `GET` of
    /// exactly one of the three paths (the trailing slash already trimmed).
    pub fn of(req: &Request) -> Option<Self> {
        if req.method() != Method::GET {
            return None;
        }
        match req.uri().path() {
            "/healthz" => Some(Self::Healthz),
            "/api/auth/me" => Some(Self::Me),
            "/api/auth/check" => Some(Self::Check),
            _ => None,
        }
    }

    /// The route's pattern, its label in the metrics (what the router's
    /// `MatchedPath` says for it).
    pub fn pattern(self) -> &'static str {
        match self {
            Self::Healthz => "/healthz",
            Self::Me => "/api/auth/me",
            Self::Check => "/api/auth/check",
        }
    }

    /// The status the route answers when it succeeds.
    pub fn success(self) -> u16 {
        match self {
            Self::Healthz | Self::Me => 200,
            Self::Check => 204,
        }
    }

    /// The route's answer to `req`, as the router would give it, with the
    /// id of the user the request authenticated (for the request log).
    pub async fn answer(self, authority: &Arc<Authority>, req: Request) -> (Response, Option<i64>) {
        if let Some(response) = self.answer_now() {
            return (response, None);
        }
        // Boxed: authenticating is most of this future's size, which every
        // request to the edge would carry (and copy) otherwise.
        let (response, user) = Box::pin(self.authenticated(authority, req)).await;
        (with_content_length(response), user)
    }

    /// The route's answer when it awaits nothing (`/healthz`, whatever the
    /// request), as [`answer`](Self::answer) gives it.
    pub fn answer_now(self) -> Option<Response> {
        match self {
            Self::Healthz => Some(with_content_length(meta::health())),
            Self::Me | Self::Check => None,
        }
    }

    /// The answer of `/api/auth/me` or `/api/auth/check` to `req`, with the
    /// id of the user it authenticated.
    async fn authenticated(
        self,
        authority: &Arc<Authority>,
        req: Request,
    ) -> (Response, Option<i64>) {
        // The body, if any, is not read: neither handler takes one (a JSON
        // body's token was captured before, as for the router).
        let (mut parts, _body) = req.into_parts();
        match Authenticated::from_request_parts(&mut parts, authority).await {
            Ok(auth) => {
                let user = auth.user.id.get();
                let response = if self == Self::Me {
                    accounts::me(auth).await.into_response()
                } else {
                    accounts::check(auth).await
                };
                (response, Some(user))
            }
            Err(refused) => (refused.into_response(), None),
        }
    }
}

/// The request metrics of each route the edge answers itself.
pub struct FastMetrics([GetRouteMetrics; 3]);

impl Default for FastMetrics {
    /// Nothing counted yet.
    fn default() -> Self {
        Self(FastRoute::ALL.map(|route| GetRouteMetrics::new(route.pattern(), route.success())))
    }
}

impl FastMetrics {
    /// The metrics of `route`.
    pub fn of(&self, route: FastRoute) -> &GetRouteMetrics {
        &self.0[route as usize]
    }
}

/// What axum's routes do to every answer: a body of known size gets its
/// `Content-Length`, unless the handler set one.
fn with_content_length(mut response: Response) -> Response {
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_LENGTH) {
        return response;
    }
    if let Some(size) = response.body().size_hint().exact() {
        let value = match size {
            0 => HeaderValue::from_static("0"),
            n => HeaderValue::from(n),
        };
        response.headers_mut().insert(header::CONTENT_LENGTH, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_is_a_get_route_of_the_table_under_its_pattern_and_found_by_it() {
        let (_, openapi) = crate::http::routes::table(&[]);
        for (index, route) in FastRoute::ALL.into_iter().enumerate() {
            assert_eq!(route as usize, index);
            let get = openapi
                .paths
                .paths
                .get(route.pattern())
                .and_then(|item| item.get.as_ref());
            let success = route.success().to_string();
            assert!(
                get.is_some_and(|get| get.responses.responses.contains_key(&success)),
                "{} {success}",
                route.pattern()
            );
            let get = Request::get(route.pattern())
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(FastRoute::of(&get), Some(route));
            let head = Request::head(route.pattern())
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(FastRoute::of(&head), None);
        }
        let other = Request::get("/api/auth/me2")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(FastRoute::of(&other), None);
    }
}
