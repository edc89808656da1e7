//! The SQLite file itself: made ready before the pool opens it, and, when it
//! cannot be opened, one sentence saying why (SQLite's own "unable to open
//! database file" does not say whether the directory is missing, read-only,
//! or the file is something else).

use crate::StoreError;
use std::io::ErrorKind;
use std::path::Path;

/// Checks that `path` can be a database and creates it when missing,
/// readable by its owner only (SQLite gives its -wal and -shm files the
/// database's mode).
pub(crate) fn prepare(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(open(
            path,
            format!("the directory {} does not exist", dir.display()),
        ));
    }
    if path.is_dir() {
        return Err(open(
            path,
            format!("{} is a directory, not a file", path.display()),
        ));
    }
    if path.exists() {
        return check_mode(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it in between: it will be opened as it is.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(open(
                path,
                format!(
                    "cannot create {}: the directory {} is not writable",
                    path.display(),
                    dir.display()
                ),
            ))
        }
        Err(e) => Err(open(path, format!("cannot create {}: {e}", path.display()))),
    }
}

/// The database holds password hashes and signing keys: a file every user
/// may write is refused, one others may read is started with a warning.
#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o002 != 0 {
        return Err(open(
            path,
            format!(
                "{} is writable by every user (mode {mode:o}); chmod 600 it",
                path.display()
            ),
        ));
    }
    if mode & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{mode:o}"),
            "the database (password hashes, signing keys) is open to other users; chmod 600 it"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// `error` from opening or first using the database at `path`, said plainly
/// where SQLite's result code tells what is wrong.
pub(crate) fn explain(path: &Path, error: sqlx::Error) -> StoreError {
    let code = match &error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let shown = path.display();
    match code.as_deref() {
        // SQLITE_NOTADB
        Some("26") => open(path, format!("{shown} is not a SQLite database")),
        // SQLITE_CANTOPEN
        Some("14") => open(
            path,
            format!("cannot open {shown}: the file or its directory is not writable"),
        ),
        // SQLITE_READONLY
        Some("8") => open(
            path,
            format!("{shown} is read-only: the file or its directory is not writable"),
        ),
        _ => StoreError::Database(error),
    }
}

fn open(path: &Path, reason: String) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason,
    }
}
