//! What every answer shares, applied once around the router rather than as a
//! stack of middleware on each route: the body rules, browser headers, the
//! JSON body of a 405, the request metrics and the request log.
//!
//! One service instead of six layers matters on the hot path: each axum
//! `from_fn` layer clones its inner service and boxes a future per request,
//! and tower-http's trace layer formatted a span and an event on the
//! request's thread. Here a request costs one boxed future (`/healthz`,
//! answered at once, none), and its log line is a few numbers handed to the
//! log thread ([`crate::logging`]).

use super::body;
use super::cors;
use super::fast::{FastMetrics, FastRoute};
use super::listener::PeerAddr;
use super::note::{Arrival, StoreRefused, UNMATCHED, Unrouted, UserNoted};
use crate::authority::Authority;
use crate::http::extract::auth;
use crate::http::extract::error::ApiError;
use crate::logging::{self, RequestLine, RequestPath};
use crate::telemetry::RequestMetrics;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use std::convert::Infallible;
use std::future::{Future, Ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};
use tower::{Layer, Service, ServiceExt};

/// What every request's answer shares, beside the routes.
struct Shared {
    authority: Arc<Authority>,
    metrics: Arc<RequestMetrics>,
    /// The hot routes' own metrics, counted in `metrics`' series.
    fast_metrics: FastMetrics,
    /// Whether the edge answers the hot routes itself ([`super::fast`]):
    /// not while CORS is on, whose layer is on the routes.
    fast_lane: bool,
}

/// The layer that puts the shared rules around the routes (whose routes
/// carry [`super::note::NoteRoute`], which counts their requests and tells
/// the edge their user).
#[derive(Clone)]
pub struct EdgeLayer(Arc<Shared>);

impl EdgeLayer {
    /// The shared rules of `authority`'s settings, with request metrics of
    /// their own.
    pub fn new(authority: Arc<Authority>) -> Self {
        let fast_lane = !cors::is_on(&authority.settings().cors_allowed_origins);
        Self(Arc::new(Shared {
            authority,
            metrics: Arc::default(),
            fast_metrics: FastMetrics::default(),
            fast_lane,
        }))
    }

    /// The same rules, every request routed by the router (see
    /// [`crate::http::routed_app`]).
    pub fn without_fast_lane(self) -> Self {
        Self(Arc::new(Shared {
            authority: self.0.authority.clone(),
            metrics: self.0.metrics.clone(),
            fast_metrics: FastMetrics::default(),
            fast_lane: false,
        }))
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            shared: self.0.clone(),
            peer: None,
        }
    }
}

/// The routes with the shared rules around them (see [`EdgeLayer`]).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    shared: Arc<Shared>,
    /// The peer of the connection this copy serves, if it serves one.
    peer: Option<SocketAddr>,
}

impl<S> Edge<S> {
    /// Makes this copy serve a connection from `peer`: the requests it
    /// routes carry the address (`ConnectInfo<PeerAddr>`) for the routes
    /// that read it. Handed over here rather than on every request's
    /// extensions, so that a request the edge answers itself (none of which
    /// reads it) allocates no extensions map at all.
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = Some(peer);
    }
}

/// The future of an [`Edge`]: an answer given at once, or one to wait for.
pub type EdgeFuture = Either<
    Ready<Result<Response, Infallible>>,
    Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>,
>;

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> EdgeFuture {
        let received = Received::new(&self.shared, &req);
        if let Some(route) = received.fast
            && !body::may_have_body(&req)
            && let Some(response) = route.answer_now()
        {
            // Nothing to wait for (`/healthz`): no future to build, box and poll.
            let response = finish(
                &self.shared,
                received,
                response,
                Answered::Fast(route, None),
            );
            return Either::Left(std::future::ready(Ok(response)));
        }
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        let peer = self.peer;
        Either::Right(Box::pin(async move {
            let (response, answered) = answer(&shared, inner, peer, &received, req).await;
            Ok(finish(&shared, received, response, answered))
        }))
    }
}

/// What the edge notes of a request as it arrives, for its answer.
struct Received {
    started: Instant,
    method: Method,
    /// The hot route it is for, when the edge answers it itself.
    fast: Option<FastRoute>,
    /// Its path, while the request log is on.
    logged: Option<RequestPath>,
    /// The Content-Security-Policy of its answer, for a page.
    policy: Option<&'static str>,
}

impl Received {
    fn new(shared: &Shared, req: &Request) -> Self {
        let fast = shared.fast_route(req);
        Self {
            started: Instant::now(),
            method: req.method().clone(),
            fast,
            logged: logging::request_log_enabled().then(|| match fast {
                Some(route) => RequestPath::fixed(route.pattern()),
                None => RequestPath::of(req.uri()),
            }),
            policy: page_policy(req.uri().path()),
        }
    }
}

/// Who answered a request, which says who counts it.
enum Answered {
    /// The edge itself ([`super::fast`]), with the user the request
    /// authenticated: the edge counts it.
    Fast(FastRoute, Option<i64>),
    /// The router: its route counted it, unless the answer was given in
    /// front of the routes ([`Unrouted`]).
    Routed,
    /// Refused before any route (the body rules): the edge counts it.
    Refused,
}

/// The answer to `req`, and who gave it.
async fn answer<S>(
    shared: &Shared,
    inner: S,
    peer: Option<SocketAddr>,
    received: &Received,
    req: Request,
) -> (Response, Answered)
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match prepare(&shared.authority, req).await {
        Ok(req) if let Some(route) = received.fast => {
            let (response, user) = route.answer(&shared.authority, req).await;
            (response, Answered::Fast(route, user))
        }
        Ok(mut req) => {
            let logs_users = received.logged.is_some();
            let arrival = Arrival::new(received.started, shared.metrics.clone(), logs_users);
            req.extensions_mut().insert(arrival);
            if let Some(peer) = peer {
                req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            }
            // Boxed: the router's future is most of this one's size, which
            // every request to the edge would carry otherwise.
            match Box::pin(inner.oneshot(req)).await {
                Ok(response) => (response, Answered::Routed),
                Err(never) => match never {},
            }
        }
        Err(refused) => (refused.into_response(), Answered::Refused),
    }
}

/// What every answer gets on its way out: counted (where the routes did
/// not count it), a 405's JSON body, the browser headers, its log line.
fn finish(
    shared: &Shared,
    received: Received,
    mut response: Response,
    answered: Answered,
) -> Response {
    let Received {
        started,
        method,
        logged,
        policy,
        ..
    } = received;
    // Measured once in the fast lane, for its metrics and its log line.
    let mut measured = None;
    let (counted, fast_user) = match answered {
        Answered::Fast(route, user) => {
            let latency = started.elapsed();
            let metrics = shared.fast_metrics.of(route);
            metrics.record(&shared.metrics, response.status().as_u16(), latency);
            measured = Some(latency);
            (true, user)
        }
        Answered::Routed => (response.extensions().get::<Unrouted>().is_none(), None),
        Answered::Refused => (false, None),
    };
    if response.extensions().get::<StoreRefused>().is_some() {
        shared.authority.serving().note_store_refused();
    }
    // Taken before a 405 is replaced, with its extensions.
    let user_id = logged.as_ref().and_then(|_| {
        let noted = response.extensions_mut().remove::<UserNoted>();
        noted.map(|UserNoted(id)| id).or(fast_user)
    });
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response = json_method_not_allowed(&method, response);
    }
    browser_headers(&mut response, policy);
    if counted && logged.is_none() {
        // Nothing left to measure: spare the clock.
        return response;
    }
    let status = response.status().as_u16();
    let latency = measured.unwrap_or_else(|| started.elapsed());
    if !counted {
        shared.metrics.record(&method, UNMATCHED, status, latency);
    }
    if let Some(path) = logged {
        logging::request(RequestLine {
            at: SystemTime::now(),
            method,
            path,
            status,
            latency,
            user_id,
        });
    }
    response
}

impl Shared {
    /// The hot route `req` is for, when the edge answers it itself.
    fn fast_route(&self, req: &Request) -> Option<FastRoute> {
        if self.fast_lane {
            FastRoute::of(req)
        } else {
            None
        }
    }
}

/// The body rules (413, 408, 415) and the capture of a JSON body's token,
/// before any handler runs; nothing to do for a request without a body.
async fn prepare(authority: &Authority, req: Request) -> Result<Request, ApiError> {
    if !body::may_have_body(&req) {
        return Ok(req);
    }
    // Boxed, as the router's future is, for the size of the edge's future.
    Box::pin(async {
        let req = body::body_rules(authority, req).await?;
        auth::capture_json_token(authority, req).await
    })
    .await
}

/// The page's policy: its own scripts, styles and API, nothing inline, no
/// other origin, never in a frame.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Swagger UI's: the same, but for the style attributes its React views set
/// (styles, not scripts: no inline script runs).
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The Content-Security-Policy of the pages (`/`, `/docs`, `/static/...`).
fn page_policy(path: &str) -> Option<&'static str> {
    if path == "/" || path.starts_with("/static/") {
        Some(PAGE_POLICY)
    } else if path == "/docs" || path.starts_with("/docs/") {
        Some(DOCS_POLICY)
    } else {
        None
    }
}

/// Headers for browsers: no content sniffing on any answer (a JSON body is
/// never run as a script or page), and on the pages a Content-Security-Policy,
/// no framing and no referrer.
fn browser_headers(response: &mut Response, policy: Option<&'static str>) {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
}

/// axum answers a known path with the wrong method with an empty 405; give
/// it our JSON body, keeping its `Allow` header.
fn json_method_not_allowed(method: &Method, response: Response) -> Response {
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut replaced = ApiError::MethodNotAllowed(method.clone()).into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}
