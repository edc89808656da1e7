//! Where servers keep their state: a directory and, on PostgreSQL, a
//! database of their own; and SQL on it from the test, outside the store.

use super::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    pub(super) async fn new() -> Arc<Place> {
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
    pub(super) async fn on(database: Database) -> Option<Arc<Place>> {
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
    pub(super) fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("tessera.db").display()),
        }
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

impl Server {
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
}
