//! One application on a fresh SQLite file and a fixed clock, and requests
//! to it as the `server` suite's harness makes them over TCP: built with
//! reqwest's request builder, then handed to the application in process.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;
use tessera_core::clock::FixedClock;
use tessera_server::authority::{Authority, LoginMethod, SessionOrigin, Transport};
use tessera_server::config::Settings;
use tessera_server::http::listener::PeerAddr;
use tower::ServiceExt;

#[path = "../common/replies.rs"]
mod replies;
pub use replies::*;

/// A password zxcvbn scores 4 and no test username resembles.
pub const PASSWORD: &str = "vivid-otter-canyon-1987!";

/// When every test's clock stands: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

/// The address the application believes it is served on (its public origin).
pub const ORIGIN: &str = "127.0.0.1:8000";

/// The peer every request comes from, as a connection would give it.
const PEER: &str = "127.0.0.1:50000";

/// The application of one test, with what it runs on.
pub struct App {
    app: tessera_server::http::App,
    /// The domain behind it, for what a test sets up directly.
    pub authority: Arc<Authority>,
    /// The clock it reads.
    pub clock: Arc<FixedClock>,
    /// A client whose request builder the tests use (nothing is sent).
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl App {
    /// The application with these extra TOML settings.
    pub async fn start(extra_config: &str) -> App {
        tessera_core::password::use_insecure_test_cost();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = format!("sqlite://{}", dir.path().join("tessera.db").display());
        // Tests sign up many users from one address; the signup limit has tests of its own.
        let signup_limit = if extra_config.contains("signup_rate_limit") {
            ""
        } else {
            "signup_rate_limit = \"off\"\n"
        };
        let text = format!("database_url = \"{database}\"\n{signup_limit}{extra_config}\n");
        let config = dir.path().join("tessera.toml");
        std::fs::write(&config, text).expect("write the settings");
        let settings = Settings::load(Some(&config), Vec::new()).expect("settings");
        let store = tessera_server::server::open_store(&settings)
            .await
            .expect("store");
        let clock = Arc::new(FixedClock::new(NOW));
        let authority = Arc::new(
            Authority::open(settings, store, clock.clone())
                .await
                .expect("authority"),
        );
        authority
            .serving()
            .set_public_origin(ORIGIN.parse().expect("an address"));
        App {
            app: tessera_server::http::app(authority.clone()),
            authority,
            clock,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:8000` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{ORIGIN}{path}")
    }

    /// Answers `request`, as a connection would hand it over: with the peer's
    /// address, a `Host` and, for a body, its `Content-Length`.
    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.respond(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// The response to `request` as it comes, its body not read (a stream
    /// that never ends, for one).
    pub async fn respond(&self, mut request: Request<Body>) -> axum::response::Response {
        request
            .extensions_mut()
            .insert(ConnectInfo(PeerAddr(PEER.parse().expect("an address"))));
        self.app.clone().oneshot(request).await.expect("infallible")
    }

    /// Answers the request `builder` builds, its body `count` times `chunk`
    /// as it would arrive chunked: with no length declared or known ahead.
    pub async fn send_chunked(
        &self,
        builder: reqwest::RequestBuilder,
        chunk: &'static [u8],
        count: usize,
    ) -> Reply {
        let request = builder.build().expect("a request");
        let request: Request<reqwest::Body> = request.try_into().expect("an http request");
        let (parts, _) = request.into_parts();
        let chunks =
            (0..count).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(chunk)));
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        self.call(Request::from_parts(parts, body)).await
    }

    /// Moves the clock `by` forward (whole seconds).
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(by.as_secs() as i64);
    }

    /// Answers the request `builder` builds (a reqwest builder of
    /// [`App::http`]: nothing goes over the network).
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let request = builder.build().expect("a request");
        let request: Request<reqwest::Body> = request.try_into().expect("an http request");
        let (mut parts, body) = request.into_parts();
        let bytes = body.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
        if let Some(host) = parts.uri.authority().map(|a| a.to_string()) {
            parts
                .headers
                .entry(header::HOST)
                .or_insert(HeaderValue::from_str(&host).expect("a host"));
        }
        if !bytes.is_empty() {
            parts
                .headers
                .entry(header::CONTENT_LENGTH)
                .or_insert(HeaderValue::from(bytes.len()));
        }
        self.call(Request::from_parts(parts, Body::from(bytes)))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .header("Content-Type", content_type)
                .body(body),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.get_with_token("/api/auth/me", token).await
    }

    /// Logs in with [`PASSWORD`] and returns (access, refresh).
    pub async fn login(&self, username: &str) -> (String, String) {
        let r = self
            .post(
                "/api/token/",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text);
        (
            r.body["access"].as_str().expect("access").to_owned(),
            r.body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    /// Creates an account with [`PASSWORD`] straight in the database.
    pub async fn create_user(&self, username: &str, staff: bool) {
        static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            tessera_core::password::hash(PASSWORD).expect("hash the test password")
        });
        self.authority
            .store()
            .create_user(tessera_store::NewUser {
                username: username.to_owned(),
                email: String::new(),
                password_hash: HASH.clone(),
                is_staff: staff,
                is_superuser: staff,
                date_joined: NOW,
                email_verified: false,
            })
            .await
            .expect("create the user");
    }

    /// An existing account with a session begun directly (no login, so no
    /// hashing): (access, refresh).
    pub async fn user(&self, username: &str) -> (String, String) {
        self.create_user(username, false).await;
        self.session(username, Transport::Header).await
    }

    /// An existing staff superuser, with a session: (access, refresh).
    pub async fn superuser(&self, username: &str) -> (String, String) {
        self.create_user(username, true).await;
        self.session(username, Transport::Header).await
    }

    /// A new session of an existing account, as a login in `transport`
    /// would begin it: (access, refresh).
    pub async fn session(&self, username: &str, transport: Transport) -> (String, String) {
        let user = self
            .authority
            .accounts()
            .user_by_username(username)
            .await
            .expect("store")
            .expect("the account exists");
        let pair = self
            .authority
            .sessions()
            .begin_session(
                &user,
                transport,
                &SessionOrigin::new(
                    std::net::IpAddr::from([127, 0, 0, 1]),
                    "test",
                    LoginMethod::Password,
                ),
            )
            .await
            .expect("a session");
        (pair.access.token, pair.refresh.token)
    }

    /// Asserts the application answers `/healthz`.
    pub async fn assert_healthy(&self) {
        let r = self.get("/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"status": "ok"}));
    }
}

/// This package's directory (crates/tessera-server), as cargo gives it to
/// the running test.
pub fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

/// The JSON of one token segment.
pub fn segment(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}
