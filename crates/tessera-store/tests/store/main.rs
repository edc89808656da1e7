//! Store-level tests, each run on every available engine: SQLite always,
//! PostgreSQL when `TESSERA_TEST_POSTGRES_URL` names a server (an admin URL
//! such as `postgres://postgres@127.0.0.1:5432/postgres`). This binary then
//! creates one scratch database, gives every test a schema of its own in it,
//! and drops the database at the end, whether the tests passed or not.
//!
//! It has its own small runner (`harness = false`) for that last part:
//! libtest has no hook that runs once after every test. It takes a name
//! filter (substring, or exact with `--exact`), `--skip`, `--list` and
//! `--ignored`, and runs the tests one after another.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{Connection, Executor};
use tessera_store::scratch::ScratchDatabase;
use tessera_store::*;
use tokio::sync::Barrier;

mod audit;
mod cases;
mod clients;
mod concurrency;
mod import;
mod mail;
mod mfa;
mod notifications;
mod passkeys;
mod sessions;

/// The environment variable naming the PostgreSQL server to test against.
const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

/// How long one test may take before it counts as failed (a deadlock).
const TIMEOUT: Duration = Duration::from_secs(120);

type TestFn = fn(Engine) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$((stringify!($name), |engine| Box::pin($module::$name(engine)) as _)),*]
    };
}

/// Tests run at once.
const PARALLEL: usize = 4;

const TESTS: &[(&str, TestFn)] = tests![
    cases::usernames_are_unique,
    cases::blacklisting_is_once_only_and_logged,
    cases::pruning_deletes_only_what_has_expired,
    cases::update_user_bumps_version,
    cases::every_column_round_trips,
    cases::record_login_raises_the_revision_and_logs_nothing,
    cases::listing_pages_by_id,
    cases::sessions_beyond_the_newest_oldest_first,
    cases::a_family_stays_revoked_until_the_latest_expiry,
    cases::signing_keys_newest_first_and_rotation_retires,
    cases::a_key_published_ahead_retires_the_others_when_it_starts_signing,
    cases::the_database_clock_is_the_time_now,
    cases::latest_change_survives_pruning,
    cases::pruning_the_change_log_takes_only_its_oldest_entries,
    import::imported_users_keep_their_ids_and_signups_follow,
    import::a_second_import_changes_nothing_and_collisions_are_told,
    import::a_dry_run_writes_nothing,
    import::a_login_replaces_only_the_hash_it_checked,
    sessions::a_session_is_written_with_its_first_token_and_follows_refreshes,
    sessions::ended_expired_and_superseded_sessions_are_not_live,
    sessions::a_guarded_rotation_is_done_only_while_the_user_and_session_are_as_assumed,
    sessions::a_batch_of_mixed_writes_answers_each_as_applied_in_order,
    audit::audit_events_are_kept_in_order_filtered_and_pruned,
    clients::clients_have_unique_live_names_and_every_column_round_trips,
    clients::a_removed_client_is_logged_loaded_as_a_marker_and_pruned,
    mail::links_are_single_use_voided_by_newer_ones_and_expire,
    mail::requests_past_a_limit_are_counted_and_write_nothing,
    mail::concurrent_requests_for_one_address_honour_the_limit,
    mail::one_of_many_uses_of_a_link_wins,
    mail::requests_past_the_limits_leave_no_row,
    mail::the_outbox_leases_retries_gives_up_and_forgets_sent_text,
    mail::pending_requests_are_fulfilled_once_and_forget_the_address,
    mail::a_change_of_address_voids_the_links_mailed_to_another,
    mail::verification_links_stay_valid_until_one_is_used,
    mfa::a_totp_factor_is_pending_until_confirmed_and_never_replaced_once_confirmed,
    mfa::codes_and_recovery_codes_are_accepted_once_and_removal_takes_both,
    mfa::challenges_expire_are_bounded_per_user_and_pruned,
    mfa::one_of_many_uses_of_a_code_or_a_challenge_wins,
    mfa::a_reset_removes_factor_codes_and_challenges_of_one_user,
    passkeys::passkeys_are_added_bounded_unique_and_removed_with_the_last_codes,
    passkeys::a_passkeys_counter_is_accepted_only_upwards_once,
    passkeys::ceremonies_are_taken_once_bounded_and_pruned,
    concurrency::change_log_is_exact_under_concurrent_writers,
    concurrency::audit_followers_miss_no_event_of_concurrent_appends,
    concurrency::the_last_active_staff_user_stays_under_concurrent_demotions,
    concurrency::one_of_many_blacklistings_wins,
    concurrency::one_of_many_rotations_wins,
    concurrency::concurrent_key_rotations_leave_one_key_in_service,
    concurrency::concurrent_migrations_of_a_fresh_database,
    concurrency::one_of_many_first_keys_wins,
    notifications::commits_wake_followers_and_a_cut_listener_resumes,
];

/// Tests that run on PostgreSQL only.
const POSTGRES_ONLY: &[&str] = &["commits_wake_followers_and_a_cut_listener_resumes"];

/// A database engine to run a test on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A fresh file in a temporary directory per test.
    Sqlite,
    /// A fresh schema per test in this binary's scratch database (`url`).
    Postgres { url: String },
}

/// An empty database of one engine, and how to open it.
pub struct Db {
    pub engine: Engine,
    /// Opens exactly this database (for PostgreSQL: with `search_path` set
    /// to this test's schema).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres { .. } => "postgres",
        }
    }

    /// Whether the test named `test` runs on this engine.
    fn runs(&self, test: &str) -> bool {
        matches!(self, Engine::Postgres { .. }) || !POSTGRES_ONLY.contains(&test)
    }

    /// A new, empty database (nothing migrated).
    pub async fn blank(&self) -> Db {
        match self {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Db {
                    engine: self.clone(),
                    url,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres { url } => {
                static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
                let schema = format!("t{}", SCHEMAS.fetch_add(1, Ordering::Relaxed));
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let sep = if url.contains('?') { '&' } else { '?' };
                Db {
                    engine: self.clone(),
                    url: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
                    _dir: None,
                }
            }
        }
    }

    /// A new database with the schema in place, and a store on it.
    pub async fn store(&self) -> (Db, Arc<dyn Store>) {
        let db = self.blank().await;
        let store = db.open(24).await;
        store.migrate().await.unwrap();
        (db, store)
    }
}

impl Db {
    /// A store on this database, not migrated; PostgreSQL pools get
    /// `connections` connections (SQLite's is fixed).
    pub async fn open(&self, connections: u32) -> Arc<dyn Store> {
        match self.engine {
            Engine::Sqlite => Arc::new(SqliteStore::connect(&self.url).await.unwrap()),
            Engine::Postgres { .. } => {
                Arc::new(PgStore::connect(&self.url, connections).await.unwrap())
            }
        }
    }

    /// Runs `sql` outside the store (as another tool would).
    pub async fn execute(&self, sql: &str) {
        match self.engine {
            Engine::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Engine::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// `SELECT COUNT(*) FROM <table>`, outside the store.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.engine {
            Engine::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
            Engine::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

/// The engines to run on: SQLite, and PostgreSQL in a scratch database when
/// [`POSTGRES_URL_VAR`] is set (else one line on stderr says it was skipped).
async fn engines() -> (Vec<Engine>, Option<ScratchDatabase>) {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(admin) if !admin.is_empty() => {
            let scratch = ScratchDatabase::create(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot create a scratch database via {admin}: {e}"));
            let postgres = Engine::Postgres {
                url: scratch.url.clone(),
            };
            (vec![Engine::Sqlite, postgres], Some(scratch))
        }
        _ => {
            eprintln!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL part of these tests was skipped"
            );
            (vec![Engine::Sqlite], None)
        }
    }
}

#[derive(Default)]
struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    ignored: bool,
}

impl Args {
    fn parse() -> Self {
        let mut args = Args::default();
        let mut given = std::env::args().skip(1);
        while let Some(arg) = given.next() {
            match arg.as_str() {
                "--list" => args.list = true,
                "--exact" => args.exact = true,
                "--ignored" => args.ignored = true,
                "--skip" => args.skips.extend(given.next()),
                // libtest options with a value, accepted and ignored.
                "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                    given.next();
                }
                flag if flag.starts_with('-') => {}
                filter => args.filters.push(filter.to_owned()),
            }
        }
        args
    }

    fn selects(&self, name: &str) -> bool {
        let hit = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        !self.ignored
            && (self.filters.is_empty() || self.filters.iter().any(hit))
            && !self.skips.iter().any(|s| name.contains(s.as_str()))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for engine in [Engine::Sqlite, Engine::Postgres { url: String::new() }] {
            for (name, _) in TESTS.iter().filter(|(name, _)| engine.runs(name)) {
                println!("{}::{name}: test", engine.name());
            }
        }
        return ExitCode::SUCCESS;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let (engines, scratch) = engines().await;
    let selected: Vec<(String, TestFn, Engine)> = engines
        .iter()
        .flat_map(|engine| {
            TESTS
                .iter()
                .filter(|(name, _)| engine.runs(name))
                .map(move |(name, test)| {
                    (format!("{}::{name}", engine.name()), *test, engine.clone())
                })
        })
        .filter(|(name, _, _)| args.selects(name))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    // A few at a time: the tests mostly wait on fsync and on the database,
    // and PostgreSQL's connection limit bounds how many pools may be open.
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut running = Vec::new();
    for (name, test, engine) in selected.iter().cloned() {
        let slots = slots.clone();
        running.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let mut handle = tokio::spawn(test(engine));
            let verdict = match tokio::time::timeout(TIMEOUT, &mut handle).await {
                Ok(Ok(())) => "ok",
                Ok(Err(_)) => "FAILED",
                Err(_) => {
                    handle.abort();
                    "FAILED (timed out)"
                }
            };
            (name, verdict)
        }));
    }
    for finished in running {
        let (name, verdict) = finished.await.unwrap_or_else(|_| ("?".into(), "FAILED"));
        println!("test {name} ... {verdict}");
        if verdict != "ok" {
            failed.push(name);
        }
    }
    if let Some(scratch) = scratch {
        let name = scratch.name().to_owned();
        if let Err(e) = scratch.drop_now().await {
            eprintln!("could not drop the scratch database {name}: {e}");
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: String::new(),
        password_hash: "$argon2id$x".into(),
        is_staff: false,
        is_superuser: false,
        date_joined: 1,
        email_verified: false,
    }
}

pub fn refresh(jti: &str) -> RefreshRecord {
    RefreshRecord {
        jti: jti.into(),
        user_id: 1,
        family_id: "f".into(),
        issued_at: 1,
        expires_at: 100,
    }
}

pub fn key(kid: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        algorithm: "HS256".into(),
        private_key: kid.as_bytes().to_vec(),
        created_at,
        signs_from: None,
        retired_at: None,
    }
}

/// Runs `n` copies of `call` at once (released together by a barrier);
/// returns their results in task order.
pub async fn all_at_once<T, F, Fut>(n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let call = call(i);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}
