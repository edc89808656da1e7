//! What the edge and the routes tell each other about a request.
//!
//! The edge hands each request it routes an [`Arrival`]: when the request
//! arrived, where its metrics go and, while the request log is on, where an
//! extractor writes the user it authenticated. The route that answers
//! ([`NoteRoute`]) records the request's metrics itself, where its pattern
//! is known, so that a routed answer carries nothing back: no extensions map
//! is allocated on its response. What does travel back, on the response's
//! extensions, is rare: the user a request authenticated ([`UserNoted`],
//! for the request log), an answer given in front of the routes
//! ([`Unrouted`], which the edge counts as `unmatched`), and a refusal of
//! the database ([`StoreRefused`], for `/readyz`).
//!
//! The notes travel with the request and the response, not in a task-local,
//! so that the extractors that write them and the edge that reads them do
//! not know each other, and so that a test calling the application with
//! `oneshot` sees them as a served request would.

use crate::telemetry::RequestMetrics;
use axum::extract::{MatchedPath, Request};
use axum::http::{Extensions, Method};
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// What the edge tells the routes about a request it routes (see the module
/// documentation). One extension, so that a request's extensions map stays
/// within its first allocation (the peer's address, this, the route).
#[derive(Clone)]
pub struct Arrival {
    started: Instant,
    metrics: Arc<RequestMetrics>,
    user: Option<UserSlot>,
}

impl Arrival {
    /// A request that reached the edge at `started`, whose metrics go to
    /// `metrics`; with `log_users`, its routes note the user they
    /// authenticate (only while the request log is on, so that a request
    /// costs nothing more otherwise).
    pub fn new(started: Instant, metrics: Arc<RequestMetrics>, log_users: bool) -> Self {
        Self {
            started,
            metrics,
            user: log_users.then(UserSlot::default),
        }
    }

    /// Counts the request `route` answered with `status`: its latency runs
    /// from its arrival at the edge.
    fn record(&self, method: &Method, route: Option<&MatchedPath>, status: u16) {
        let route = route.map_or(UNMATCHED, MatchedPath::as_str);
        self.metrics
            .record(method, route, status, self.started.elapsed());
    }
}

/// The route label of a request no route answered.
pub const UNMATCHED: &str = "unmatched";

/// Marks a response answered because the database could not serve the
/// request (a 503), so that the edge tells `/readyz`.
#[derive(Debug, Clone, Copy)]
pub struct StoreRefused;

/// Marks a response answered in front of the routes, by a layer that
/// [`Router::layer`](axum::Router::layer) put around them (the CORS gate's
/// refusals and preflights): no [`NoteRoute`] counted it, so the edge does,
/// as `unmatched`.
#[derive(Debug, Clone, Copy)]
pub struct Unrouted;

/// The user a request authenticated, on its response for the request log
/// (only while the request log is on).
#[derive(Debug, Clone, Copy)]
pub struct UserNoted(pub i64);

/// Where an extractor writes the user a request authenticated, shared by
/// the request's [`Arrival`] and the route's future, which moves it into
/// [`UserNoted`] when the route answers.
#[derive(Debug, Clone, Default)]
struct UserSlot(Arc<OnceLock<i64>>);

/// Notes that the request of `extensions` authenticated `user_id` (nothing
/// when nobody listens: see [`Arrival::new`]).
pub fn note_user(extensions: &Extensions, user_id: i64) {
    if let Some(slot) = extensions.get::<Arrival>().and_then(|a| a.user.as_ref()) {
        let _ = slot.0.set(user_id);
    }
}

/// The per-route layer that counts each route's requests under its pattern
/// and notes, on its response, its user.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoteRoute;

impl<S> Layer<S> for NoteRoute {
    type Service = RouteNoted<S>;

    fn layer(&self, inner: S) -> RouteNoted<S> {
        RouteNoted(inner)
    }
}

/// A route that counts its requests and notes its user (see [`NoteRoute`]).
#[derive(Debug, Clone)]
pub struct RouteNoted<S>(S);

impl<S> Service<Request> for RouteNoted<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Noting<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Without an edge (the routes called on their own) nobody counts.
        let counted = req.extensions().get::<Arrival>().map(|arrival| Counted {
            arrival: arrival.clone(),
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned(),
        });
        Noting {
            inner: self.0.call(req),
            counted,
        }
    }
}

/// What a [`Noting`] future counts when its route answers.
struct Counted {
    arrival: Arrival,
    method: Method,
    route: Option<MatchedPath>,
}

/// The future of a [`RouteNoted`] route.
pub struct Noting<F> {
    inner: F,
    counted: Option<Counted>,
}

impl<F, E> Future for Noting<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut response = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if let Some(counted) = this.counted.take() {
            let status = response.status().as_u16();
            counted
                .arrival
                .record(&counted.method, counted.route.as_ref(), status);
            let user = counted.arrival.user.as_ref().and_then(|s| s.0.get());
            if let Some(&user_id) = user {
                response.extensions_mut().insert(UserNoted(user_id));
            }
        }
        Poll::Ready(Ok(response))
    }
}
