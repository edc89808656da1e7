//! HTTP to a server as a client speaks it, and the accounts tests log in with.

use super::*;
use serde_json::{Value, json};
use std::time::Duration;

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Self::reply(request.send().await.expect("request")).await
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

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// `POST /api/auth/logout` with this access token.
    pub async fn logout(&self, access: &str) -> Reply {
        self.send(
            self.http
                .post(self.url("/api/auth/logout"))
                .bearer_auth(access)
                .json(&json!({})),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.get_with_token("/api/auth/me", token).await
    }

    pub async fn signup(&self, username: &str) -> Reply {
        let r = self
            .post(
                "/api/auth/signup",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 201, "signup {username}: {}", r.text);
        r
    }

    /// Logs in and returns (access, refresh).
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

    /// Creates an account with [`PASSWORD`] straight in the database, as one
    /// that existed before the test: no signup, so no hashing beyond the
    /// login's (the suite's CPU goes to Argon2; signup has tests of its own).
    pub async fn create_user(&self, username: &str, staff: bool) {
        static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            tessera_core::password::hash(PASSWORD).expect("hash the test password")
        });
        use tessera_core::clock::Clock;
        self.store()
            .await
            .create_user(tessera_store::NewUser {
                username: username.to_owned(),
                email: String::new(),
                password_hash: HASH.clone(),
                is_staff: staff,
                is_superuser: staff,
                date_joined: tessera_core::clock::SystemClock.now(),
                email_verified: false,
            })
            .await
            .expect("create the user");
    }

    /// An existing account, logged in: (access, refresh). In process the
    /// session is begun directly (no password hash: the suite's CPU goes to
    /// Argon2, and logins have tests of their own); a process is logged in.
    pub async fn user(&self, username: &str) -> (String, String) {
        self.create_user(username, false).await;
        self.session(username).await
    }

    /// A new session of an existing account, as a password login would begin
    /// it: (access, refresh).
    async fn session(&self, username: &str) -> (String, String) {
        let Running::InProcess { authority, .. } = &self.running else {
            return self.login(username).await;
        };
        let user = authority
            .accounts()
            .user_by_username(username)
            .await
            .expect("store")
            .expect("the account exists");
        let pair = authority
            .sessions()
            .begin_session(
                &user,
                tessera_server::authority::Transport::Header,
                &tessera_server::authority::SessionOrigin::new(
                    std::net::IpAddr::from([127, 0, 0, 1]),
                    "test harness",
                    tessera_server::authority::LoginMethod::Password,
                ),
            )
            .await
            .expect("a session");
        (pair.access.token, pair.refresh.token)
    }

    /// An existing staff superuser, logged in: (access, refresh). (The
    /// CLI's createsuperuser has tests of its own.)
    pub async fn superuser(&self, username: &str) -> (String, String) {
        self.create_user(username, true).await;
        self.session(username).await
    }

    /// Sends raw bytes on a new connection and returns what comes back (for
    /// requests an HTTP client would refuse to send).
    pub async fn raw(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The server may answer (and close) before reading everything we send.
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Sends raw bytes and reads whatever comes back, without closing our
    /// side first (for requests that leave the server waiting).
    pub async fn raw_open(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).await.unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    /// Waits until the server has applied every change-log entry committed
    /// so far (by the CLI, another process): it polls the id `/readyz`
    /// reports, never a fixed pause.
    pub async fn caught_up(&self) {
        let latest = self
            .store()
            .await
            .latest_change()
            .await
            .expect("latest change");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get("/readyz").await;
            if r.body["applied_change"]
                .as_i64()
                .is_some_and(|n| n >= latest)
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server never applied change {latest}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts the server is up and answers.
    pub async fn assert_healthy(&self) {
        let r = self.get("/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"status": "ok"}));
    }
}
