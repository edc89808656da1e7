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
//!
//! By concern: [`databases`], [`processes`], [`config`], the HTTP [`client`],
//! [`jwt`] forging and the expected refusals, [`redis_prefix`], and the test [`clock`].

use std::sync::Arc;
use tempfile::TempDir;
use tokio::process::Child;

/// A password zxcvbn scores 4 and no test username resembles.
pub const PASSWORD: &str = "vivid-otter-canyon-1987!";

/// An HS256 secret tests can sign with, to forge tokens the server would
/// otherwise accept and so isolate the one defect each attack test is about.
pub const HS_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

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

impl Drop for Server {
    fn drop(&mut self) {
        if let Running::InProcess { task, .. } = &self.running {
            task.abort();
        }
    }
}

mod client;
mod clock;
mod config;
mod databases;
mod jwt;
mod processes;
mod redis_prefix;
#[path = "../../common/replies.rs"]
mod replies;

// Every binary that includes the harness takes what it needs of these.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use clock::*;
#[allow(unused_imports)]
pub use config::*;
#[allow(unused_imports)]
pub use databases::*;
#[allow(unused_imports)]
pub use jwt::*;
#[allow(unused_imports)]
pub use processes::*;
#[allow(unused_imports)]
pub use redis_prefix::*;
pub use replies::*;
