//! Each supervised task made to panic in a serving process: it is started
//! again, `/readyz` and `/metrics` say it is down meanwhile, and what it
//! had to do is not lost. The faults are [`super::faults`]'s (test builds
//! only); the servers are [`crate::server::serve_supervised`] on a real
//! listener, with SQLite.

use super::faults::Faults;
use super::*;
use crate::authority::{Authority, KeyUse};
use crate::config::Settings;
use serde_json::{Value, json};
use tessera_core::clock::SystemClock;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod restarts;

const PASSWORD: &str = "vivid-otter-canyon-1987!";
/// The longest any test waits for one thing to happen.
const WITHIN: Duration = Duration::from_secs(20);

struct Running {
    _dir: tempfile::TempDir,
    base: String,
    faults: Faults,
    settings: Settings,
    authority: Arc<Authority>,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: JoinHandle<Result<(), crate::server::ServeError>>,
}

/// A server on a fresh SQLite file, with `tweak`'s settings.
async fn start(tweak: impl FnOnce(&mut Settings)) -> Running {
    tessera_core::password::use_insecure_test_cost();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        database_url: format!("sqlite://{}", dir.path().join("tessera.db").display()),
        login_rate_limit: None,
        signup_rate_limit: None,
        ..Settings::default()
    };
    tweak(&mut settings);
    let store = crate::server::open_store(&settings).await.unwrap();
    let authority = Arc::new(
        Authority::open(settings.clone(), store, Arc::new(SystemClock))
            .await
            .unwrap(),
    );
    let listener = crate::http::listener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tasks = Supervisor::new();
    let faults = tasks.faults();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(crate::server::serve_supervised(
        tasks,
        authority.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let running = Running {
        _dir: dir,
        base,
        faults,
        settings,
        authority,
        http: reqwest::Client::new(),
        stop: Some(stop),
        serving,
    };
    running.until_ready().await;
    running
}

impl Running {
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn readyz(&self) -> (u16, Value) {
        let (status, body) = self.get("/readyz").await;
        (status, serde_json::from_str(&body).unwrap())
    }

    /// The value of `metric{task="task"}` in `/metrics`.
    async fn task_metric(&self, metric: &str, task: &str) -> u64 {
        let (_, text) = self.get("/metrics").await;
        let series = format!("{metric}{{task=\"{task}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    async fn until_ready(&self) {
        poll(|| async { self.readyz().await.0 == 200 }, "ready").await;
    }

    /// Makes `task` panic, and every run of it until [`Running::mend`];
    /// returns once `/readyz` and `/metrics` say it is down, and it was
    /// started again (and panicked again) at least once.
    async fn break_down(&self, task: &'static str) {
        let restarts = self.task_metric("tessera_task_restarts_total", task).await;
        self.faults.break_down(task);
        poll(
            || async {
                let (status, body) = self.readyz().await;
                status == 503
                    && body == json!({"status": "unavailable", "reason": "task", "task": task})
            },
            "readyz naming the task",
        )
        .await;
        poll(
            || async { self.task_metric("tessera_task_up", task).await == 0 },
            "tessera_task_up 0",
        )
        .await;
        poll(
            || async { self.task_metric("tessera_task_restarts_total", task).await > restarts },
            "a restart counted",
        )
        .await;
    }

    /// Lets `task` run again; returns once it is up and the server ready.
    async fn mend(&self, task: &'static str) {
        self.faults.mend(task);
        poll(
            || async { self.task_metric("tessera_task_up", task).await == 1 },
            "tessera_task_up 1",
        )
        .await;
        self.until_ready().await;
    }

    async fn signup_and_login(&self, name: &str, email: &str) -> (i64, String) {
        let (status, body) = self
            .post(
                "/api/auth/signup",
                json!({"username": name, "password": PASSWORD, "email": email}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, tokens) = self.login(name).await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access"].as_str().unwrap().to_owned();
        let (_, me) = self.me(&access).await;
        (me["id"].as_i64().unwrap(), access)
    }

    async fn login(&self, name: &str) -> (u16, Value) {
        self.post(
            "/api/token",
            json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await
    }

    async fn me(&self, access: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/auth/me", self.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server as a signal would; it must stop in time.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WITHIN, &mut self.serving)
            .await
            .expect("the server did not stop in time")
            .unwrap()
            .unwrap();
    }
}

/// Waits until `check` holds, failing the test after [`WITHIN`].
async fn poll<F, Fut>(check: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WITHIN;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {WITHIN:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A mail server that accepts everything: each message's text arrives on
/// `mail`.
struct Smtp {
    port: u16,
    mail: tokio::sync::mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Smtp {
    async fn start() -> Smtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (delivered, mail) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(converse(socket, delivered.clone()));
            }
        });
        Smtp { port, mail, task }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// One SMTP session: every command accepted, each message handed on.
async fn converse(
    socket: tokio::net::TcpStream,
    delivered: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
    let mut message: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(text) = message.as_mut() {
            if line == "." {
                let _ = delivered.send(message.take().unwrap_or_default());
                let _ = write.write_all(b"250 queued\r\n").await;
            } else {
                text.push_str(&line);
                text.push('\n');
            }
            continue;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("DATA") {
            message = Some(String::new());
            b"354 go on\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
