//! Prometheus metrics: what the server counts, and the text it serves at
//! `/metrics`. The `metrics` facade is process-global by design, so the
//! domain can count events without knowing who collects them.

use axum::http::Method;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;
use tessera_core::claims::TokenType;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: token verification answers in microseconds,
/// password hashing in tens of milliseconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Writes per batch of the store's batched writer: powers of two up to
/// its largest batch.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the process's recorder (once; later calls do nothing).
pub fn install() {
    if HANDLE.get().is_some() {
        return;
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(AUDIT_WRITE.into()), &LATENCY_BUCKETS))
        .and_then(|b| {
            let batch = tessera_store::BATCH_SECONDS.into();
            b.set_buckets_for_metric(Matcher::Full(batch), &LATENCY_BUCKETS)
        })
        .and_then(|b| {
            let writes = tessera_store::BATCH_WRITES.into();
            b.set_buckets_for_metric(Matcher::Full(writes), &BATCH_BUCKETS)
        })
        .unwrap_or_else(|_| PrometheusBuilder::new());
    match builder.install_recorder() {
        Ok(handle) => {
            let _ = HANDLE.set(handle);
            describe();
        }
        Err(e) => tracing::warn!(error = %e, "metrics recorder not installed"),
    }
}

/// The metrics in Prometheus text format; empty when no recorder is installed.
pub fn render() -> String {
    counter!(LOG_DROPPED).absolute(crate::logging::dropped());
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Housekeeping the exporter needs now and then (histogram windows).
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

const REQUESTS: &str = "tessera_http_requests_total";
const REQUEST_DURATION: &str = "tessera_http_request_duration_seconds";
const LOGINS: &str = "tessera_logins_total";
const ISSUED: &str = "tessera_tokens_issued_total";
const REFRESHED: &str = "tessera_tokens_refreshed_total";
const REVOKED: &str = "tessera_revocations_total";
const REUSE: &str = "tessera_refresh_reuse_detected_total";
const THROTTLED: &str = "tessera_rate_limited_total";
const LOG_DROPPED: &str = "tessera_log_lines_dropped_total";
const AUDIT_WRITTEN: &str = "tessera_audit_events_written_total";
const AUDIT_WRITE: &str = "tessera_audit_write_duration_seconds";
const MAIL: &str = "tessera_mail_total";
const CONNECTIONS_REFUSED: &str = "tessera_connections_refused_total";
const CONNECTIONS_SHED: &str = "tessera_connections_shed_total";
const FEED_FOLLOWERS: &str = "tessera_feed_followers";
const FEED_EVENTS: &str = "tessera_feed_events_total";
const FEED_DROPPED: &str = "tessera_feed_followers_dropped_total";
const FEED_BACKLOG: &str = "tessera_feed_backlog_events";

/// A connection closed on arrival: its client held its share of the slots.
pub fn connection_refused() {
    counter!(CONNECTIONS_REFUSED).increment(1);
}

/// An idle connection closed to make room for a new one.
pub fn connection_shed() {
    counter!(CONNECTIONS_SHED).increment(1);
}

/// The number of revocation-feed streams now open.
pub fn feed_followers(open: usize) {
    gauge!(FEED_FOLLOWERS).set(open as f64);
}

/// One revocation-feed event published.
pub fn feed_published() {
    counter!(FEED_EVENTS).increment(1);
}

/// A revocation-feed stream ended early: `lagged` or `database`.
pub fn feed_dropped(reason: &'static str) {
    counter!(FEED_DROPPED, "reason" => reason).increment(1);
}

/// A stream took an event with `waiting` more queued behind it.
pub fn feed_backlog(waiting: usize) {
    histogram!(FEED_BACKLOG).record(waiting as f64);
}

/// What became of one try to send a mail: `sent`, `retried` (it failed and
/// will be tried again) or `abandoned` (failed, and its link expired).
pub fn mail(outcome: &'static str) {
    counter!(MAIL, "outcome" => outcome).increment(1);
}

/// Counts one batch of `events` audit events appended in `took`: the
/// writer's busy time, which is what it could take from the requests.
pub fn audit_written(events: usize, took: Duration) {
    counter!(AUDIT_WRITTEN).increment(events as u64);
    histogram!(AUDIT_WRITE).record(took.as_secs_f64());
}

fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by method, route and status");
    describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by method and route"
    );
    describe_counter!(LOGINS, "Password logins by result");
    describe_counter!(ISSUED, "Tokens issued by type");
    describe_counter!(REFRESHED, "Successful refreshes");
    describe_counter!(REVOKED, "Revocations by kind (token, family, user)");
    describe_counter!(REUSE, "Rotated refresh tokens presented again");
    describe_counter!(THROTTLED, "Requests refused by a rate limit");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed on arrival: their client held max_connections_per_client"
    );
    describe_counter!(
        CONNECTIONS_SHED,
        "Idle connections closed to let a new one in while every slot was taken"
    );
    describe_counter!(
        LOG_DROPPED,
        "Log lines dropped because stderr could not keep up"
    );
    describe_counter!(AUDIT_WRITTEN, "Audit events appended to the store");
    describe_counter!(
        MAIL,
        "Tries to send a mail, by outcome (sent, retried, abandoned)"
    );
    describe_histogram!(
        AUDIT_WRITE,
        metrics::Unit::Seconds,
        "Time the audit writer took to append one batch"
    );
    describe_histogram!(
        tessera_store::BATCH_WRITES,
        "Refresh-token writes (logins, refreshes, rotations) committed together in one transaction by the batched writer"
    );
    describe_histogram!(
        tessera_store::BATCH_SECONDS,
        metrics::Unit::Seconds,
        "Time the batched writer took for one batch, first statement to commit"
    );
    describe_gauge!(
        FEED_FOLLOWERS,
        "Revocation-feed streams open on this instance"
    );
    describe_counter!(
        FEED_EVENTS,
        "Revocation-feed events published by this instance's sync"
    );
    describe_counter!(
        FEED_DROPPED,
        "Revocation-feed streams ended early, by reason (lagged: the follower fell too far behind; database)"
    );
    describe_histogram!(
        FEED_BACKLOG,
        "Events waiting for a revocation-feed stream when it takes the next one: its lag"
    );
    counter!(LOG_DROPPED).absolute(0);
    gauge!(FEED_FOLLOWERS).set(0.0);
    counter!(FEED_EVENTS).absolute(0);
    for reason in ["lagged", "database"] {
        counter!(FEED_DROPPED, "reason" => reason).absolute(0);
    }
    // Present from the start, so that dashboards see zeros rather than gaps.
    counter!(AUDIT_WRITTEN).absolute(0);
    for result in ["success", "failure"] {
        counter!(LOGINS, "result" => result).absolute(0);
    }
    for outcome in ["sent", "retried", "abandoned"] {
        counter!(MAIL, "outcome" => outcome).absolute(0);
    }
    counter!(REFRESHED).absolute(0);
    counter!(REUSE).absolute(0);
    counter!(THROTTLED).absolute(0);
}

/// The request metrics' handles, registered once per method, status and
/// route, so that counting a request costs two atomic updates rather than a
/// registry lookup with freshly allocated labels.
#[derive(Default)]
pub struct RequestMetrics {
    handles: RwLock<HashMap<(&'static str, u16), RouteHandles, Hashing>>,
}

/// Per route: the request counter and the latency histogram.
type RouteHandles = HashMap<String, (Counter, Histogram), Hashing>;

/// The maps' hasher: foldhash rather than SipHash, which cost two lookups
/// on every request about 400 instructions. Flooding needs no defence here:
/// every key is ours (a method label, a status the server answers, a route
/// pattern of its table or `unmatched`), none is chosen by a client.
type Hashing = foldhash::fast::FixedState;

impl RequestMetrics {
    /// One HTTP request answered.
    pub fn record(&self, method: &Method, route: &str, status: u16, latency: Duration) {
        let (count, duration) = self.handles(method_label(method), route, status);
        count.increment(1);
        duration.record(latency.as_secs_f64());
    }

    /// The counter and histogram of `method`'s requests to `route` answered
    /// with `status`, registered at the first such request.
    fn handles(&self, method: &'static str, route: &str, status: u16) -> (Counter, Histogram) {
        {
            let handles = self.handles.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = handles
                .get(&(method, status))
                .and_then(|routes| routes.get(route))
            {
                return found.clone();
            }
        }
        let count = counter!(REQUESTS, "method" => method, "route" => route.to_owned(), "status" => status.to_string());
        let duration =
            histogram!(REQUEST_DURATION, "method" => method, "route" => route.to_owned());
        self.handles
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, status))
            .or_default()
            .insert(route.to_owned(), (count.clone(), duration.clone()));
        (count, duration)
    }
}

/// The request metrics of one `GET` route the edge answers itself, with the
/// handles of its usual answers (its success and 401) kept at hand from
/// their first request: counting one then takes neither the map's lock nor
/// two lookups (about 200 instructions of a `/healthz`). Other statuses are
/// counted through [`RequestMetrics::record`]; the series are the same
/// either way.
pub struct GetRouteMetrics {
    route: &'static str,
    success: u16,
    succeeded: OnceLock<(Counter, Histogram)>,
    unauthorized: OnceLock<(Counter, Histogram)>,
}

impl GetRouteMetrics {
    /// The metrics of `GET route` (its pattern), which answers `success`
    /// when it succeeds.
    pub const fn new(route: &'static str, success: u16) -> Self {
        Self {
            route,
            success,
            succeeded: OnceLock::new(),
            unauthorized: OnceLock::new(),
        }
    }

    /// One request answered with `status`, counted in `all`'s series.
    pub fn record(&self, all: &RequestMetrics, status: u16, latency: Duration) {
        let slot = if status == self.success {
            &self.succeeded
        } else if status == 401 {
            &self.unauthorized
        } else {
            return all.record(&Method::GET, self.route, status, latency);
        };
        let (count, duration) = slot.get_or_init(|| all.handles("GET", self.route, status));
        count.increment(1);
        duration.record(latency.as_secs_f64());
    }
}

/// The method as a label; methods outside HTTP's own are one label, so that
/// clients cannot create series at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// A password login, successful or not.
pub fn login(success: bool) {
    counter!(LOGINS, "result" => if success { "success" } else { "failure" }).increment(1);
}

/// A token minted.
pub fn issued(token_type: TokenType) {
    counter!(ISSUED, "type" => token_type.as_str()).increment(1);
}

/// A refresh token exchanged.
pub fn refreshed() {
    counter!(REFRESHED).increment(1);
}

/// A revocation: `token`, `family`, `user` or `client`.
pub fn revoked(kind: &'static str) {
    counter!(REVOKED, "kind" => kind).increment(1);
}

/// A rotated refresh token presented again.
pub fn reuse_detected() {
    counter!(REUSE).increment(1);
}

/// A request refused by a rate limit.
pub fn throttled() {
    counter!(THROTTLED).increment(1);
}
