//! What the routed part of a request tells the edge about it, carried in its
//! response's extensions: the route's pattern (for the metrics), the user the
//! request authenticated (for the request log), and whether the database
//! refused to serve it (for `/readyz`).
//!
//! The notes travel with the response, not in a task-local, so that the
//! extractors that write them and the edge that reads them do not know each
//! other, and so that a test calling the application with `oneshot` sees
//! them as a served request would.

use axum::extract::{MatchedPath, Request};
use axum::http::Extensions;
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// A response's notes for the edge (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Noted {
    /// The pattern of the route that answered; `None` for the fallback.
    pub route: Option<MatchedPath>,
    /// The user the request authenticated, when the request log wants it.
    pub user_id: Option<i64>,
}

/// Marks a response answered because the database could not serve the
/// request (a 503), so that the edge tells `/readyz`.
#[derive(Debug, Clone, Copy)]
pub struct StoreRefused;

/// Where an extractor writes the user a request authenticated: put in the
/// request by [`NoteRoute`] (only while the request log is on, so that a
/// request costs nothing more otherwise) and moved into [`Noted`] when the
/// route answers.
#[derive(Debug, Clone, Default)]
struct UserSlot(Arc<OnceLock<i64>>);

/// Notes that the request of `extensions` authenticated `user_id` (nothing
/// when nobody listens: see [`UserSlot`]).
pub fn note_user(extensions: &Extensions, user_id: i64) {
    if let Some(slot) = extensions.get::<UserSlot>() {
        let _ = slot.0.set(user_id);
    }
}

/// The per-route layer that notes, on each route's response, its pattern
/// and its user.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoteRoute;

impl<S> Layer<S> for NoteRoute {
    type Service = RouteNoted<S>;

    fn layer(&self, inner: S) -> RouteNoted<S> {
        RouteNoted(inner)
    }
}

/// A route that notes its pattern and user on its response (see [`NoteRoute`]).
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

    fn call(&mut self, mut req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let slot = if crate::logging::request_log_enabled() {
            // A request routed twice (the CORS gate's) keeps its slot.
            let slot = req
                .extensions()
                .get::<UserSlot>()
                .cloned()
                .unwrap_or_default();
            req.extensions_mut().insert(slot.clone());
            Some(slot)
        } else {
            None
        };
        Noting {
            inner: self.0.call(req),
            route,
            slot,
        }
    }
}

/// The future of a [`RouteNoted`] route.
pub struct Noting<F> {
    inner: F,
    route: Option<MatchedPath>,
    slot: Option<UserSlot>,
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
        let user_id = this.slot.as_ref().and_then(|slot| slot.0.get().copied());
        response.extensions_mut().insert(Noted {
            route: this.route.take(),
            user_id,
        });
        Poll::Ready(Ok(response))
    }
}
