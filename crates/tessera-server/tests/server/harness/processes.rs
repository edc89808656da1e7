//! Starting, restarting and stopping servers (in process or as the
//! `tessera` binary), their logs, and the `tessera` command.

use super::*;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The environment variable that makes a `tessera` process the tests start
/// hash at Argon2's minimum cost; a test that measures hashing passes it as
/// `""` (the cost is real then).
pub const TEST_HASHING: &str = "TESSERA_TEST_INSECURE_HASHING";

/// Whether this binary's servers hash at the real cost: the timing tests,
/// which measure what an attacker would. Every other test hashes at
/// Argon2's minimum: what it tests is the same, and hundreds of real hashes
/// were a quarter of the suite's time on two cores.
pub(super) fn real_hashing() -> bool {
    env!("CARGO_CRATE_NAME").starts_with("timing")
}

/// The environment a `tessera` process starts with, before the test's own.
pub fn hashing_env() -> [(&'static str, &'static str); 1] {
    [(TEST_HASHING, if real_hashing() { "" } else { "1" })]
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

    /// Starts a server inside the test process at `http://localhost:PORT`,
    /// which is its `public_url` and its [`Server::base`], with these extra
    /// settings. For WebAuthn (passkeys): browsers refuse it on an IP
    /// address, and the server takes its relying party from `public_url`.
    /// `localhost` resolves to the 127.0.0.1 the server listens on.
    // Only the browser tests, a binary of their own, use it.
    #[allow(dead_code)]
    pub async fn start_on_localhost(extra_config: &str) -> Server {
        // The port goes into the settings, which the server reads at start:
        // the socket is bound first, so no other process can take the port.
        let listener = tessera_server::http::listener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let config = format!("public_url = \"http://localhost:{port}\"\n{extra_config}");
        let place = Place::new().await;
        let clock = Arc::<TestClock>::default();
        let config_path = Self::write_config(&place, &config);
        let running = Self::serve_in_process(&config_path, clock.clone(), listener).await;
        Self::assemble(
            running,
            &format!("localhost:{port}"),
            place,
            config,
            Vec::new(),
            clock,
        )
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

    pub(super) async fn start_in(
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

    pub(super) fn assemble(
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

    async fn spawn_in_process(config: &Path, clock: Arc<TestClock>) -> (Running, String) {
        let listener = tessera_server::http::listener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        (Self::serve_in_process(config, clock, listener).await, addr)
    }

    /// Serves the settings at `config` on `listener`, inside the test process.
    async fn serve_in_process(
        config: &Path,
        clock: Arc<TestClock>,
        listener: tokio::net::TcpListener,
    ) -> Running {
        use tessera_server::{authority::Authority, config::Settings, server};
        // One recorder for every server of this test binary: tests that count
        // metrics of one server start it as a process.
        tessera_server::telemetry::install();
        let settings = Settings::load(Some(config), Vec::new()).expect("settings");
        let store = server::open_store(&settings).await.expect("store");
        let authority = Authority::open(settings, store, clock)
            .await
            .expect("authority");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let authority = Arc::new(authority);
        let serving = authority.clone();
        let task = tokio::spawn(async move {
            let _ = server::serve(serving, listener, shutdown).await;
        });
        Running::InProcess {
            stop,
            task,
            authority,
        }
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

    /// Stops the process as an orchestrator does, with SIGTERM, and waits
    /// for it to exit, at most `within`: how long it took, and its exit
    /// status (`None` if it had not exited by then; it is then killed).
    pub async fn terminate(
        &mut self,
        within: Duration,
    ) -> (Duration, Option<std::process::ExitStatus>) {
        let Running::Process(mut child) = std::mem::replace(&mut self.running, Running::Stopped)
        else {
            panic!("terminate needs a server started with start_process");
        };
        let pid = child.id().expect("the server is running").to_string();
        let since = std::time::Instant::now();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill(1)");
        assert!(sent.success(), "kill -TERM {pid}");
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => (since.elapsed(), Some(status.expect("wait"))),
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                (since.elapsed(), None)
            }
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
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}
