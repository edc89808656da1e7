//! What can go wrong in storage, and which failures pass (the database
//! unreachable or busy) as opposed to those that retrying does not mend.

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The (normalised) username is already taken.
    #[error("a user with that username already exists")]
    UsernameTaken,
    /// No id is left for a new user: the users' id sequence is at its
    /// largest value, 2^63 - 1 (an import before ids were bounded could
    /// leave it there).
    #[error(
        "no user id is left for a new account: the users' id sequence is at its largest value, \
         9223372036854775807"
    )]
    UserIdsExhausted,
    /// The update would leave no active staff user: it demotes or
    /// deactivates the last one.
    #[error("the last active staff user cannot be deactivated or lose staff status")]
    LastActiveStaff,
    /// The database file cannot be opened or created; `reason` says why in
    /// one sentence.
    #[error("{reason}")]
    Open {
        /// The file.
        path: String,
        /// Why, naming the file or directory at fault.
        reason: String,
    },
    /// The database URL is not one this store understands (each store's
    /// `connect` takes only its own scheme).
    #[error("unsupported database_url `{0}`: expected sqlite://PATH or postgres://HOST/DATABASE")]
    UnsupportedUrl(String),
    /// PostgreSQL over TLS cannot be used as the URL asks: a TLS parameter
    /// that cannot be honoured, a CA file that cannot be read, a server
    /// certificate that is not trusted, or a server without TLS (or with
    /// TLS only, for a URL without it). Says what to change in the URL.
    #[error("{0}")]
    Tls(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Running migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database could not be reached or was too busy to answer
    /// (a refused or lost connection, a pool that timed out, a server that
    /// is shutting down or takes no connections, a SQLite file locked past
    /// the busy timeout): a failure that passes, which a client may retry,
    /// as opposed to one that retrying does not mend.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                db.code()
                    .is_some_and(|code| unavailable_code(&code, sqlite))
            }
            _ => false,
        }
    }
}

/// SQLSTATE classes and codes of a server that cannot serve now: 08
/// (connection exception), 53 (insufficient resources: disk full, out of
/// memory, too many connections), 57P01-57P05 (shutdown, cannot connect
/// now, idle-session timeout), 55000 (the database takes no connections),
/// 3D000 (no such database, as while it is being restored). For SQLite,
/// whose codes are numbers: BUSY (5), LOCKED (6), IOERR (10: a read or
/// write the disk refused) and FULL (13), in their extended forms too.
fn unavailable_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        return code
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || ["55000", "3D000"].contains(&code)
}

/// Result of storage calls.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::unavailable_code;

    #[test]
    fn codes_of_a_database_that_cannot_serve_now() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "55000", "3D000", "53100", "53200",
        ] {
            assert!(unavailable_code(code, false), "{code}");
        }
        // A unique violation, a syntax error, a serialisation failure: not so.
        for code in ["23505", "42601", "40001"] {
            assert!(!unavailable_code(code, false), "{code}");
        }
        // SQLite: BUSY, LOCKED, BUSY_SNAPSHOT (517), FULL, IOERR and
        // IOERR_WRITE (778); not CONSTRAINT_UNIQUE (2067).
        for code in ["5", "6", "517", "13", "10", "778"] {
            assert!(unavailable_code(code, true), "{code}");
        }
        assert!(!unavailable_code("2067", true));
    }
}
