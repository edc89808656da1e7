//! A throwaway PostgreSQL database, for tests (this crate's and the
//! server's): created under a random name from an administrator's URL, and
//! dropped again. Not for production use.

use crate::StoreResult;
use sqlx::{Connection, Executor, PgConnection};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty PostgreSQL database named `tessera_test_<16 hex digits>`,
/// whose commits do not wait for the disk (`synchronous_commit = off`: a
/// crash of PostgreSQL could lose the last ones, never a crash of a client).
///
/// Test helper. Drop it with [`ScratchDatabase::drop_now`]; if it is dropped
/// without that (a test panicked), `Drop` tries once, on a thread of its own,
/// to drop the database and ignores failure.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// URL of the new database: the administrator's URL with the database
    /// name in its path replaced (and any `dbname` parameter removed).
    pub url: String,
    name: String,
    admin_url: String,
    dropped: bool,
}

impl ScratchDatabase {
    /// Creates the database through `admin_url` (a `postgres://` URL of a
    /// role allowed to `CREATE DATABASE`, e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`). The new database is
    /// owned by that role.
    pub async fn create(admin_url: &str) -> StoreResult<Self> {
        let name = format!("tessera_test_{}", random_hex());
        let mut conn = connect(admin_url).await?;
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await?;
        // Tests kill Tessera, never PostgreSQL: a commit is as final for
        // them without waiting for the disk, which most of their time would
        // otherwise be.
        conn.execute(format!("ALTER DATABASE \"{name}\" SET synchronous_commit = off").as_str())
            .await?;
        conn.close().await?;
        Ok(Self {
            url: with_database(admin_url, &name),
            name,
            admin_url: admin_url.to_owned(),
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, ending any session still connected to it
    /// (`DROP DATABASE … WITH (FORCE)`, PostgreSQL 13 or later).
    pub async fn drop_now(mut self) -> StoreResult<()> {
        drop_database(&self.admin_url, &self.name).await?;
        self.dropped = true;
        Ok(())
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // A runtime of its own on a thread of its own: this may run inside
        // an async context, or after the test's runtime is gone.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(drop_database(&admin_url, &name)).ok()
        });
        if cleanup.join().ok().flatten().is_none() {
            eprintln!("could not drop the scratch database {}", self.name);
        }
    }
}

/// A connection through `url`, its TLS parameters read as the store reads
/// them (a test cluster may take only TLS connections).
async fn connect(url: &str) -> StoreResult<PgConnection> {
    let options = crate::postgres::tls::connect_options(url)?;
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| crate::postgres::tls::explain_connect_error(e, &options))
}

async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
    let mut conn = connect(admin_url).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await?;
    conn.close().await?;
    Ok(())
}

/// 64 random bits in hex, from the standard library's randomly keyed hasher
/// (different in every process), the time and a counter.
fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// `url` naming database `name` instead: the path replaced, `dbname` dropped
/// from the query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty() && !pair.starts_with("dbname="))
        .collect();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced() {
        let cases = [
            ("postgres://u@h:5432/postgres", "postgres://u@h:5432/x"),
            ("postgres://u@h:5432", "postgres://u@h:5432/x"),
            ("postgres://u@h/", "postgres://u@h/x"),
            (
                "postgresql://u:p@h/db?sslmode=disable&dbname=db",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
        ];
        for (admin, expected) in cases {
            assert_eq!(with_database(admin, "x"), expected, "{admin}");
        }
    }

    #[test]
    fn names_differ() {
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 16);
    }
}
