//! A Tessera server on a random port against a fresh database, and HTTP to
//! it the way a client would speak it. Most tests run the server inside the
//! test process ([`Server::start`]), on a clock they can move instead of
//! sleeping; those about the process itself (SIGKILL, logs, the metrics of
//! one process) start the real binary ([`Server::start_process`]).
//!
//! The same tests build twice: as `server` (and `browser`, `timing`), on a
//! SQLite file per server, and as `server_on_postgres` (`browser_on_postgres`,
//! `timing_on_postgres`), on a PostgreSQL database per server, created
//! through `TESSERA_TEST_POSTGRES_URL` and dropped with the last server on
//! it (without that variable the second binary says so and runs nothing).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A password zxcvbn scores 4 and no test username resembles.
pub const PASSWORD: &str = "vivid-otter-canyon-1987!";

/// An HS256 secret tests can sign with, to forge tokens the server would
/// otherwise accept and so isolate the one defect each attack test is about.
pub const HS_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// The wall clock plus an offset a test moves forward: time passes as usual,
/// and an expiry is reached without waiting for it.
#[derive(Default)]
pub struct TestClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// Moves this clock `by` ahead of the wall clock (further than before).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tessera_core::clock::Clock for TestClock {
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    fn now_ms(&self) -> i64 {
        tessera_core::clock::SystemClock.now_ms()
            + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How the server runs.
enum Running {
    /// The `tessera` binary.
    Process(Child),
    /// Inside the test process; dropping the sender stops it.
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        authority: Arc<tessera_server::authority::Authority>,
    },
    Stopped,
}

/// Where a server keeps its state: a directory (config, log, and the SQLite
/// file), and on PostgreSQL its own database. Shared by the servers of one
/// deployment ([`Server::start_beside`], [`Server::restart`]); the database
/// is dropped with the last of them.
struct Place {
    dir: TempDir,
    /// The store, opened once by the test (as another process would).
    store: tokio::sync::OnceCell<Arc<dyn tessera_store::Store>>,
    /// Dropped last: after every server on it has stopped.
    database: Option<tessera_store::scratch::ScratchDatabase>,
}

/// The database of a [`Place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file in the place's directory.
    Sqlite,
    /// A scratch database on the server `TESSERA_TEST_POSTGRES_URL` names.
    Postgres,
}

/// The PostgreSQL administrator URL tests create databases through; `None`
/// (with a line saying the test was skipped) when it is not set.
pub fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("TESSERA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: PostgreSQL tests (TESSERA_TEST_POSTGRES_URL is not set)"
        );
    }
    url
}

/// Whether this binary's servers can start: always on SQLite, on
/// PostgreSQL only with `TESSERA_TEST_POSTGRES_URL`. A test that starts a
/// helper process (a browser, a mail server) asks first: without a
/// database the first server ends the binary (`exit`, which runs no
/// destructor), and the helper would be left running.
pub fn servers_can_start() -> bool {
    !on_postgres() || std::env::var("TESSERA_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty())
}

/// Whether this test binary runs its servers on PostgreSQL (see the module
/// documentation).
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_on_postgres")
}

impl Place {
    /// A place on this binary's engine (see the module documentation).
    async fn new() -> Arc<Place> {
        let database = if on_postgres() {
            Database::Postgres
        } else {
            Database::Sqlite
        };
        match Place::on(database).await {
            Some(place) => place,
            // Every test of this binary would be skipped alike (said once).
            None => std::process::exit(0),
        }
    }

    /// A place on `database`; `None` (skipped, saying so) for PostgreSQL
    /// when `TESSERA_TEST_POSTGRES_URL` is not set.
    async fn on(database: Database) -> Option<Arc<Place>> {
        // Before anything of this process hashes (the harness's own users).
        if !real_hashing() {
            tessera_core::password::use_insecure_test_cost();
        }
        let dir = tempfile::Builder::new()
            .prefix("tessera-test")
            .tempdir_in(scratch_root())
            .expect("tempdir");
        let database = match database {
            Database::Sqlite => None,
            Database::Postgres => {
                let admin = postgres_admin_url()?;
                Some(
                    tessera_store::scratch::ScratchDatabase::create(&admin)
                        .await
                        .expect("a scratch PostgreSQL database"),
                )
            }
        };
        Some(Arc::new(Place {
            dir,
            store: tokio::sync::OnceCell::new(),
            database,
        }))
    }

    /// The `database_url` of every server here.
    fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("tessera.db").display()),
        }
    }
}

/// Runs `$body` with `$pool` connected to the database at `$url`, whichever
/// engine it is on (their pool types differ), and closes the pool.
macro_rules! on_database {
    ($url:expr, |$pool:ident| $body:expr) => {{
        let url = $url;
        if url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect(&url).await.expect("connect");
            let out = $body;
            $pool.close().await;
            out
        } else {
            let $pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
            let out = $body;
            $pool.close().await;
            out
        }
    }};
}

/// A running server in its own directory.
pub struct Server {
    running: Running,
    clock: Arc<TestClock>,
    place: Arc<Place>,
    config: String,
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for it.
    pub http: reqwest::Client,
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Where servers keep their files: memory (`/dev/shm`) where there is a
/// writable one, else the temporary directory. Each commit of a SQLite
/// database is an fsync, and the tests make thousands: in memory they cost
/// nothing, and what the tests check (a SIGKILL loses no acknowledged
/// write, file modes) holds there as on a disk, since the process dies, not
/// the machine.
fn scratch_root() -> &'static Path {
    static ROOT: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(|| {
        let shm = Path::new("/dev/shm");
        let writable = tempfile::tempdir_in(shm).is_ok();
        if writable {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        }
    });
    &ROOT
}

/// Whether the files a test needs (a browser, nginx) are here; see [`available`].
pub fn tools_present(what: &str, paths: &[&Path]) -> bool {
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    available(
        &format!("{what} ({})", missing.join(", ")),
        missing.is_empty(),
    )
}

/// Tests never install software: when what a test needs is missing, the
/// test is skipped with a message saying what installs it, except where
/// `TESSERA_TEST_REQUIRE_TOOLS` is set (by `.ci/run`, after installing
/// everything), where its absence is a failure.
pub fn available(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let message = format!("{what} not found; `.ci/install-test-tools` installs it");
    if std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{message} (TESSERA_TEST_REQUIRE_TOOLS is set: .ci/run installed it)");
    }
    // Past the test harness's capture, so that a skip is seen without --nocapture.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {message}");
    false
}

/// The environment variable that makes a `tessera` process the tests start
/// hash at Argon2's minimum cost; a test that measures hashing passes it as
/// `""` (the cost is real then).
pub const TEST_HASHING: &str = "TESSERA_TEST_INSECURE_HASHING";

/// Whether this binary's servers hash at the real cost: the timing tests,
/// which measure what an attacker would. Every other test hashes at
/// Argon2's minimum: what it tests is the same, and hundreds of real hashes
/// were a quarter of the suite's time on two cores.
fn real_hashing() -> bool {
    env!("CARGO_CRATE_NAME").starts_with("timing")
}

/// The environment a `tessera` process starts with, before the test's own.
pub fn hashing_env() -> [(&'static str, &'static str); 1] {
    [(TEST_HASHING, if real_hashing() { "" } else { "1" })]
}

/// This package's directory (crates/tessera-server), as cargo gives it to
/// the running test: the path compiled in may name another clone whose build
/// cargo reused (clones sharing one target directory), since deleted.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

impl Server {
    /// Starts a server inside the test process with these extra TOML settings.
    pub async fn start(extra_config: &str) -> Server {
        Self::start_in(
            Place::new().await,
            extra_config.to_owned(),
            Vec::new(),
            false,
            Arc::default(),
        )
        .await
    }

    /// Starts the `tessera` binary with these extra TOML settings.
    pub async fn start_process(extra_config: &str) -> Server {
        Self::start_process_with_env(extra_config, &[]).await
    }

    /// Starts the `tessera` binary with these settings and environment variables.
    pub async fn start_process_with_env(extra_config: &str, env: &[(&str, &str)]) -> Server {
        let place = Place::new().await;
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in(place, extra_config.to_owned(), env, true, Arc::default()).await
    }

    async fn start_in(
        place: Arc<Place>,
        config: String,
        env: Vec<(String, String)>,
        process: bool,
        clock: Arc<TestClock>,
    ) -> Server {
        let config_path = Self::write_config(&place, &config);
        let (running, addr) = if process {
            Self::spawn_process(place.dir.path(), &env).await
        } else {
            Self::spawn_in_process(&config_path, clock.clone()).await
        };
        Self::assemble(running, &addr, place, config, env, clock)
    }

    /// Starts `count` `tessera serve` processes at once (as an orchestrator
    /// starts replicas) on one fresh database of `database`, with these
    /// extra settings. `None`, saying so, when PostgreSQL is not available.
    pub async fn start_together(
        database: Database,
        extra_config: &str,
        count: usize,
    ) -> Option<Vec<Server>> {
        let place = Place::on(database).await?;
        Self::write_config(&place, extra_config);
        let starting: Vec<_> = (0..count)
            .map(|_| {
                let dir = place.dir.path().to_owned();
                tokio::spawn(async move { Self::spawn_process(&dir, &[]).await })
            })
            .collect();
        let mut servers = Vec::new();
        for started in starting {
            let (running, addr) = started.await.expect("a server started");
            servers.push(Self::assemble(
                running,
                &addr,
                place.clone(),
                extra_config.to_owned(),
                Vec::new(),
                Arc::default(),
            ));
        }
        Some(servers)
    }

    fn assemble(
        running: Running,
        addr: &str,
        place: Arc<Place>,
        config: String,
        env: Vec<(String, String)>,
        clock: Arc<TestClock>,
    ) -> Server {
        Server {
            running,
            clock,
            place,
            config,
            env,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }

    /// Writes the place's config file: these settings on its database.
    fn write_config(place: &Place, config: &str) -> PathBuf {
        let dir = place.dir.path();
        // Tests sign up many users from one address; the signup limit has tests of its own.
        let signup_limit = if config.contains("signup_rate_limit") {
            ""
        } else {
            "signup_rate_limit = \"off\"\n"
        };
        // A test may bring its own database.
        let database = if config.contains("database_url") {
            String::new()
        } else {
            format!("database_url = \"{}\"\n", place.database_url())
        };
        let text = format!("bind = \"127.0.0.1:0\"\n{database}{signup_limit}{config}\n");
        let config_path = dir.join("tessera.toml");
        std::fs::write(&config_path, text).expect("write config");
        config_path
    }

    async fn spawn_in_process(config: &Path, clock: Arc<TestClock>) -> (Running, String) {
        use tessera_server::{authority::Authority, config::Settings, server};
        // One recorder for every server of this test binary: tests that count
        // metrics of one server start it as a process.
        tessera_server::telemetry::install();
        let settings = Settings::load(Some(config), Vec::new()).expect("settings");
        let store = server::open_store(&settings).await.expect("store");
        let authority = Authority::open(settings, store, clock)
            .await
            .expect("authority");
        let listener = tessera_server::http::listener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let authority = Arc::new(authority);
        let serving = authority.clone();
        let task = tokio::spawn(async move {
            let _ = server::serve(serving, listener, shutdown).await;
        });
        (
            Running::InProcess {
                stop,
                task,
                authority,
            },
            addr,
        )
    }

    async fn spawn_process(dir: &Path, env: &[(String, String)]) -> (Running, String) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(dir.join("tessera.toml"))
            .arg("serve")
            .current_dir(dir)
            .env("TESSERA_LOG", "info")
            .envs(hashing_env())
            .envs(env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tessera");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    return addr.trim().to_owned();
                }
            }
            panic!("server exited before listening: {}", read_log(dir));
        })
        .await
        .expect("server did not start in time");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (Running::Process(child), addr)
    }

    /// Moves the server's clock forward (servers started in process only):
    /// tokens expire, windows pass, without waiting.
    pub fn advance(&self, by: Duration) {
        assert!(
            matches!(self.running, Running::InProcess { .. }),
            "advance needs a server started in process"
        );
        self.clock.advance(by);
    }

    /// The server's clock now, seconds (moved by [`Server::advance`]).
    pub fn now(&self) -> i64 {
        tessera_core::clock::Clock::now(self.clock.as_ref())
    }

    /// The server's directory (database, config, log).
    pub fn dir(&self) -> &Path {
        self.place.dir.path()
    }

    /// The database URL (the SQLite file, or this server's PostgreSQL
    /// database in `server_on_postgres`), unless the test's own settings
    /// name another.
    pub fn database_url(&self) -> String {
        self.place.database_url()
    }

    /// The server's store (SQLite or PostgreSQL, as its settings say), opened
    /// by this test as another process would.
    pub async fn store(&self) -> Arc<dyn tessera_store::Store> {
        let open = || async {
            let settings =
                tessera_server::config::Settings::load(Some(&self.config_path()), Vec::new())
                    .expect("settings");
            tessera_server::server::open_store(&settings)
                .await
                .expect("store")
        };
        // A PostgreSQL pool is opened once (connecting and checking the
        // migrations each time would add up); a SQLite file is opened anew,
        // so that no test finds it held open by the test itself.
        if self.place.database.is_some() {
            self.place.store.get_or_init(open).await.clone()
        } else {
            open().await
        }
    }

    /// Runs one SQL statement on the server's database, outside the store
    /// (as an operator or a broken process would); returns rows affected.
    pub async fn sql(&self, statement: &str) -> u64 {
        on_database!(self.database_url(), |pool| sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement)
            .rows_affected())
    }

    /// Runs several `;`-separated statements on the server's database, in
    /// one session (a transaction the script begins and ends itself).
    pub async fn sql_script(&self, script: &str) {
        on_database!(self.database_url(), |pool| {
            sqlx::raw_sql(script).execute(&pool).await.expect(script);
        });
    }

    /// The one integer a SQL query on the server's database answers.
    pub async fn sql_number(&self, query: &str) -> i64 {
        on_database!(self.database_url(), |pool| sqlx::query_scalar(query)
            .fetch_one(&pool)
            .await
            .expect(query))
    }

    /// The name of this server's PostgreSQL database (places on PostgreSQL).
    pub fn postgres_database(&self) -> String {
        let database = self.place.database.as_ref();
        database.expect("a place on PostgreSQL").name().to_owned()
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("tessera.toml")
    }

    /// Everything the server logged so far (servers started as a process).
    pub fn log(&self) -> String {
        assert!(
            matches!(self.running, Running::Process(_)),
            "logs are kept for servers started with start_process"
        );
        read_log(self.dir())
    }

    /// The log once it satisfies `ready` (the server writes its request log
    /// after answering, so a test waits for the lines it is about).
    pub async fn log_until(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if ready(&log) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the awaited lines never reached the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The resident memory of the server's process, bytes (servers started
    /// as a process; Linux).
    pub fn resident_bytes(&self) -> u64 {
        let Running::Process(child) = &self.running else {
            panic!("resident memory needs a server started with start_process");
        };
        let pid = child.id().expect("the server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// Kills the process with SIGKILL: no chance to flush or clean up.
    pub async fn kill(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Process(mut child) => {
                child.start_kill().expect("kill");
                let _ = child.wait().await;
            }
            Running::InProcess { .. } => panic!("kill needs a server started with start_process"),
            Running::Stopped => {}
        }
    }

    /// A second instance in this process on the same database and settings
    /// (another `tessera serve` of the same deployment), on a clock of its own.
    pub async fn start_beside(&self) -> Server {
        Self::start_in(
            self.place.clone(),
            self.config.clone(),
            Vec::new(),
            false,
            Arc::default(),
        )
        .await
    }

    /// [`Server::restart`] with other extra settings.
    pub async fn restart_with(mut self, extra_config: &str) -> Server {
        self.config = extra_config.to_owned();
        self.restart().await
    }

    /// Stops the server (a SIGKILL for a process; a clean stop in process)
    /// and starts a new one on the same directory, settings and clock.
    pub async fn restart(mut self) -> Server {
        let process = match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Process(mut child) => {
                child.start_kill().expect("kill");
                let _ = child.wait().await;
                true
            }
            Running::InProcess { stop, task, .. } => {
                drop(stop);
                let _ = task.await;
                false
            }
            Running::Stopped => true,
        };
        let clock = self.clock.clone();
        Self::start_in(
            self.place.clone(),
            self.config.clone(),
            self.env.clone(),
            process,
            clock,
        )
        .await
    }

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

    /// Runs `tessera` with this server's configuration; returns (exit code,
    /// stdout, stderr). Awaited, never blocked on: the test's runtime also
    /// runs an in-process server, which must go on (its writers holding
    /// locks the command may wait for) while the command runs.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        self.cli_with_env(args, stdin, &[]).await
    }

    /// [`Server::cli`] with these environment variables too.
    pub async fn cli_with_env(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> (i32, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .envs(hashing_env())
            .envs(env.iter().copied())
            .current_dir(self.dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tessera");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.expect("write stdin");
        }
        drop(input);
        let out = child.wait_with_output().await.expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

impl Drop for Server {
    fn drop(&mut self) {
        if let Running::InProcess { task, .. } = &self.running {
            task.abort();
        }
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// The JSON of one token segment.
pub fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// Signs `header.payload` with HMAC-SHA256 under `secret`.
pub fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .expect("sign");
    format!("{input}.{sig}")
}

/// Asserts a 401 refusing a presented token with this reason, as docs/API.md states.
pub fn assert_refused(r: &Reply, reason: &str) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": reason}),
        "{}",
        r.text
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
}

/// Asserts simplejwt's token-endpoint 401.
pub fn assert_token_not_valid(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
}

/// Asserts the no-credentials 401.
pub fn assert_not_authenticated(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Authentication credentials were not provided.", "code": "not_authenticated"})
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
}

pub const REDIS: &str = "redis://127.0.0.1:6379/0";

/// A Redis key prefix of this test's own (`redis_prefix`), its keys deleted when dropped; `None`
/// (skipped) when Redis does not answer.
pub struct RedisPrefix(String);

impl RedisPrefix {
    pub async fn new() -> Option<RedisPrefix> {
        let answered = match redis::Client::open(REDIS) {
            Ok(client) => tokio::time::timeout(
                std::time::Duration::from_secs(2),
                client.get_multiplexed_async_connection(),
            )
            .await
            .is_ok_and(|c| c.is_ok()),
            Err(_) => false,
        };
        if !answered {
            let message = "Redis not reachable at 127.0.0.1:6379";
            if std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_some() {
                panic!("{message} (TESSERA_TEST_REQUIRE_TOOLS is set)");
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {message}");
            return None;
        }
        let id = tessera_core::claims::new_token_id();
        Some(RedisPrefix(format!("tessera-test-{id}:")))
    }

    /// The prefix itself.
    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn config(&self, extra: &str) -> String {
        format!(
            "redis_url = \"{REDIS}\"\nredis_prefix = \"{}\"\n{extra}",
            self.0
        )
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // Synchronously, so that it also runs when a test fails.
        if let Ok(client) = redis::Client::open(REDIS)
            && let Ok(mut connection) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.0))
                .query(&mut connection)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut connection);
            }
        }
    }
}
