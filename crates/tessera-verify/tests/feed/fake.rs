//! A stand-in for Tessera's side of the revocation feed, faithful to its
//! contract: `POST /oauth/token` (client_credentials, HTTP Basic with
//! form-url-encoded parts), `GET /api/revocations` (the snapshot) and
//! `GET /api/revocations/stream` (Server-Sent Events after `Last-Event-ID`
//! or `?after=`, heartbeats as comments, `reset` for a cursor no longer
//! held, 400 for a malformed one), plus a JWKS. Tests drive it: push events,
//! drop every stream, go down, refuse the tokens handed out so far.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::feed::{Cursor, FeedEvent, Snapshot};
use tessera_core::keys::KeyRing;
use tokio::sync::{mpsc, watch};

pub const CLIENT_ID: &str = "tc_0123456789abcdef01234567";
pub const SECRET: &str = "s3cret:with/odd+chars";
pub const WINDOW: i64 = 3600;

#[derive(Default)]
struct Log {
    /// Every event, its position its index + 1.
    events: Vec<FeedEvent>,
    /// Cursors below this are no longer held: a follower gets `reset`.
    held_from: i64,
}

pub struct Fake {
    log: Mutex<Log>,
    /// Bumped on each new event (streams wake) and when streams must drop.
    changed: watch::Sender<(usize, u64)>,
    tokens: Mutex<HashSet<String>>,
    pub token_lifetime: AtomicUsize,
    down: AtomicBool,
    heartbeat_ms: AtomicUsize,
    /// What each stream request resumed after (`Last-Event-ID` or `?after`).
    pub resumed_after: Mutex<Vec<String>>,
    pub token_requests: AtomicUsize,
    pub snapshots: AtomicUsize,
    pub streams: AtomicUsize,
    pub open_streams: Arc<AtomicUsize>,
    pub jwks_fetches: AtomicUsize,
    ring: Mutex<Option<Arc<KeyRing>>>,
}

impl Fake {
    /// Starts the fake on a free port; its origin.
    pub async fn start() -> (Arc<Fake>, String) {
        let fake = Arc::new(Fake {
            log: Mutex::default(),
            changed: watch::channel((0, 0)).0,
            tokens: Mutex::default(),
            token_lifetime: AtomicUsize::new(300),
            down: AtomicBool::new(false),
            heartbeat_ms: AtomicUsize::new(15_000),
            resumed_after: Mutex::default(),
            token_requests: AtomicUsize::new(0),
            snapshots: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            open_streams: Arc::new(AtomicUsize::new(0)),
            jwks_fetches: AtomicUsize::new(0),
            ring: Mutex::default(),
        });
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/api/revocations", get(snapshot))
            .route("/api/revocations/stream", get(stream))
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, origin)
    }

    /// Appends an event; its cursor.
    pub fn push(&self, event: FeedEvent) -> Cursor {
        let mut log = self.log.lock().unwrap();
        log.events.push(event);
        let at = log.events.len();
        drop(log);
        self.changed.send_modify(|(n, _)| *n = at);
        Cursor::at(at as i64)
    }

    /// Closes every open stream (a slow follower dropped, a restart).
    pub fn drop_streams(&self) {
        self.changed.send_modify(|(_, generation)| *generation += 1);
    }

    /// Forgets the history: every cursor before now gets `reset`.
    pub fn forget_history(&self) {
        let mut log = self.log.lock().unwrap();
        log.held_from = log.events.len() as i64;
    }

    /// Down: every request answered 503 and every stream closed; or up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.drop_streams();
        }
    }

    /// Heartbeat interval for streams opened from now on.
    pub fn set_heartbeat(&self, every: Duration) {
        self.heartbeat_ms
            .store(every.as_millis() as usize, Ordering::SeqCst);
    }

    /// Refuses every client token handed out so far (401).
    pub fn refuse_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }

    /// Serves this ring's public keys at `/.well-known/jwks.json`.
    pub fn serve_keys(&self, ring: Arc<KeyRing>) {
        *self.ring.lock().unwrap() = Some(ring);
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        presented.is_some_and(|t| self.tokens.lock().unwrap().contains(t))
    }

    fn snapshot_now(&self) -> Snapshot {
        let log = self.log.lock().unwrap();
        let mut snapshot = Snapshot {
            cursor: Cursor::at(log.events.len() as i64),
            window: WINDOW,
            families: vec![],
            users: vec![],
            tokens: vec![],
            clients: vec![],
        };
        let mut users = HashMap::new();
        for event in &log.events {
            match event {
                FeedEvent::FamilyRevoked(e) => snapshot.families.push(e.clone()),
                FeedEvent::UserChanged(e) => {
                    users.insert(e.user_id, *e);
                }
                FeedEvent::TokenRevoked(e) => snapshot.tokens.push(e.clone()),
                FeedEvent::ClientRemoved(e) => snapshot.clients.push(e.clone()),
                FeedEvent::KeysChanged | FeedEvent::Reset => {}
            }
        }
        snapshot.users = users.into_values().collect();
        snapshot
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"})),
    )
        .into_response()
}

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    if fake.is_down() {
        return unavailable();
    }
    fake.token_requests.fetch_add(1, Ordering::SeqCst);
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((decode(id)?, decode(secret)?))
        });
    if body != "grant_type=client_credentials"
        || credentials != Some((CLIENT_ID.to_owned(), SECRET.to_owned()))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client authentication failed."})),
        )
            .into_response();
    }
    let n = fake.token_requests.load(Ordering::SeqCst);
    let token = format!("client-token-{n}");
    fake.tokens.lock().unwrap().insert(token.clone());
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": fake.token_lifetime.load(Ordering::SeqCst),
        "scope": "revocations",
    }))
    .into_response()
}

async fn snapshot(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    if fake.is_down() {
        return unavailable();
    }
    if !fake.authorized(&headers) {
        return unauthorized();
    }
    fake.snapshots.fetch_add(1, Ordering::SeqCst);
    Json(fake.snapshot_now()).into_response()
}

async fn jwks(State(fake): State<Arc<Fake>>) -> Response {
    fake.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let ring = fake.ring.lock().unwrap().clone();
    match ring {
        Some(ring) => ([("cache-control", "max-age=3600")], Json(ring.jwks(0))).into_response(),
        None => Json(json!({"keys": []})).into_response(),
    }
}

async fn stream(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if fake.is_down() {
        return unavailable();
    }
    if !fake.authorized(&headers) {
        return unauthorized();
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get("after").cloned())
        .unwrap_or_default();
    let Some(cursor) = Cursor::parse(&after) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "Malformed cursor."})),
        )
            .into_response();
    };
    fake.resumed_after.lock().unwrap().push(after);
    fake.streams.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::channel::<Event>(16);
    let open = fake.open_streams.clone();
    open.fetch_add(1, Ordering::SeqCst);
    let writer = fake.clone();
    tokio::spawn(async move {
        feed(writer, cursor, tx).await;
        open.fetch_sub(1, Ordering::SeqCst);
    });
    let events = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>))
    });
    Sse::new(events).into_response()
}

/// Writes one stream: the events after `cursor`, then each new one, with
/// heartbeats, until the follower leaves or the stream must drop.
async fn feed(fake: Arc<Fake>, cursor: Cursor, tx: mpsc::Sender<Event>) {
    let mut changed = fake.changed.subscribe();
    let generation = changed.borrow_and_update().1;
    let every = Duration::from_millis(fake.heartbeat_ms.load(Ordering::SeqCst) as u64);
    let mut sent = cursor.position() as usize;
    let reset = {
        let log = fake.log.lock().unwrap();
        (cursor.position() < log.held_from || sent > log.events.len()).then(|| {
            Event::default()
                .id(log.events.len().to_string())
                .event("reset")
                .data("{}")
        })
    };
    if let Some(reset) = reset {
        let _ = tx.send(reset).await;
        return;
    }
    loop {
        let pending: Vec<(usize, FeedEvent)> = {
            let log = fake.log.lock().unwrap();
            log.events[sent..]
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, e)| (sent + i + 1, e))
                .collect()
        };
        for (at, event) in pending {
            let sse = Event::default()
                .id(at.to_string())
                .event(event.name())
                .data(event.data());
            if tx.send(sse).await.is_err() {
                return;
            }
            sent = at;
        }
        tokio::select! {
            result = changed.changed() => {
                if result.is_err() || changed.borrow_and_update().1 != generation {
                    return;
                }
            }
            () = tokio::time::sleep(every) => {
                if tx.send(Event::default().comment("")).await.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}
