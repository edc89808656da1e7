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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_that_panics_is_started_again_and_reported_down_meanwhile() {
    let redis = std::env::var("TESSERA_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let smtp = Smtp::start().await;
    let server = start(|settings| {
        settings.redis_url = Some(redis);
        settings.smtp_url = Some(smtp.url());
        settings.public_url = Some("https://auth.tessera.test".to_owned());
    })
    .await;
    for task in [
        "audit_writer",
        "batched_writer",
        "sync",
        "upkeep",
        "database_follower",
        "redis_follower",
        "redis_announcer",
        "mail_sender",
    ] {
        assert_eq!(
            server.task_metric("tessera_task_up", task).await,
            1,
            "{task}"
        );
        server.break_down(task).await;
        server.mend(task).await;
        assert!(
            server
                .task_metric("tessera_task_restarts_total", task)
                .await
                >= 1
        );
    }
    // A healthy server's readyz is as documented: no `task`.
    let (_, body) = server.readyz().await;
    assert!(body.get("task").is_none(), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_elsewhere_while_the_sync_is_down_arrives_once_it_is_started_again() {
    let server = start(|_| {}).await;
    let (id, access) = server.signup_and_login("ada", "").await;
    server.break_down("sync").await;
    // Another instance on the same database revokes the user's tokens.
    let store = crate::server::open_store(&server.settings).await.unwrap();
    let other = Authority::open_with(
        server.settings.clone(),
        store,
        Arc::new(SystemClock),
        KeyUse::Existing,
    )
    .await
    .unwrap();
    other.accounts().revoke_user(id, None).await.unwrap();
    // Not known here while the sync is down...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.me(&access).await.0, 200);
    // ...and applied once it runs again.
    server.mend("sync").await;
    poll(
        || async { server.me(&access).await.0 == 401 },
        "the revocation applied",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_event_queued_while_the_audit_writer_is_down_is_written_once_it_is_started_again()
{
    let server = start(|_| {}).await;
    server.signup_and_login("grace", "").await;
    server.authority.audit_log().flush().await;
    let count = || async {
        let pool = sqlx::SqlitePool::connect(&server.settings.database_url)
            .await
            .unwrap();
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'login_failed'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        n
    };
    server.break_down("audit_writer").await;
    let refused = server
        .post(
            "/api/token",
            json!({"username": "grace", "password": "not the password"}),
            None,
        )
        .await;
    assert_eq!(refused.0, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count().await, 0, "written while the writer was down?");
    server.mend("audit_writer").await;
    poll(|| async { count().await == 1 }, "the queued event written").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_while_the_batched_writer_is_down_is_acknowledged_once_it_is_started_again()
{
    let server = Arc::new(start(|_| {}).await);
    server.signup_and_login("linus", "").await;
    server.break_down("batched_writer").await;
    // A login's session is a batched write: it waits for the writer.
    let waiting = tokio::spawn({
        let server = server.clone();
        async move { server.login("linus").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "answered while the writer was down");
    server.mend("batched_writer").await;
    let (status, tokens) = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{tokens}");
    // Acknowledged means committed: the refresh token it recorded works.
    let (status, body) = server
        .post(
            "/api/token/refresh",
            json!({"refresh": tokens["refresh"]}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requested_while_the_mail_sender_is_down_is_delivered_once_it_is_started_again() {
    let mut smtp = Smtp::start().await;
    let url = smtp.url();
    let server = start(|settings| {
        settings.smtp_url = Some(url);
        settings.public_url = Some("https://auth.tessera.test".to_owned());
    })
    .await;
    server.signup_and_login("hedy", "hedy@example.com").await;
    server.break_down("mail_sender").await;
    let (status, body) = server
        .post(
            "/api/auth/password/reset",
            json!({"email": "hedy@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), smtp.mail.recv())
            .await
            .is_err(),
        "mail sent while the sender was down"
    );
    server.mend("mail_sender").await;
    let mail = tokio::time::timeout(WITHIN, smtp.mail.recv())
        .await
        .expect("no mail once the sender runs again")
        .unwrap();
    assert!(mail.contains("hedy@example.com"), "{mail}");
    server.stop().await;
}

#[tokio::test]
async fn a_task_that_fails_or_ends_is_started_again_with_a_growing_pause_and_stops_when_asked() {
    let runs = Arc::new(AtomicU64::new(0));
    let mut tasks = Supervisor::new();
    let counted = runs.clone();
    tasks.start(
        "flaky",
        Box::new(move |stop: Stop| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match run {
                    0 => Err("the database went away".to_owned()),
                    1 => Ok(()),
                    _ => {
                        stop.requested().await;
                        Ok(())
                    }
                }
            })
        }),
    );
    let health = tasks.health();
    let started = Instant::now();
    poll(|| async { runs.load(Ordering::SeqCst) == 3 }, "a third run").await;
    // Two pauses: 100 ms, then 200 ms.
    assert!(
        started.elapsed() >= BACKOFF_MIN * 3,
        "{:?}",
        started.elapsed()
    );
    poll(|| async { health.down().is_none() }, "up again").await;
    assert!(
        health
            .metrics()
            .contains("tessera_task_restarts_total{task=\"flaky\"} 2\n"),
        "{}",
        health.metrics()
    );
    // Asked to stop, it ends by itself well within the grace period.
    let stopping = Instant::now();
    tasks.stop("flaky", WITHIN).await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(!tasks.has("flaky"));
    assert_eq!(runs.load(Ordering::SeqCst), 3, "started again after a stop");
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
