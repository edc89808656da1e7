//! `tessera revocations follow`: Tessera's revocation feed as one JSON line
//! per snapshot and event, followed as the library follows it (the same
//! [`Follower`]): resumed after every drop, the snapshot again after a
//! `reset`.

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tessera_verify::feed::{Follower, Update};

/// `tessera revocations ...`.
#[derive(Debug, Subcommand)]
pub enum RevocationsCommand {
    /// Follow a Tessera's revocation feed as a service client and print the snapshot, then each event, one JSON line each ({"id","event","data"}); errors go to stderr and following goes on until interrupted.
    Follow(FollowArgs),
}

/// Where to follow, as whom.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// Tessera's base URL, e.g. http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The service client's id; it must hold the `revocations` scope.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// A file whose first line is the client's secret; without it the secret is read from TESSERA_CLIENT_SECRET (never from the command line, which other users can see).
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
}

/// One printed line. A struct, so its keys come out in this order.
#[derive(Serialize)]
struct Line<'a, D> {
    id: String,
    event: &'a str,
    data: D,
}

/// The line an update prints, if it prints one.
fn line(update: &Update<'_>) -> Option<String> {
    match update {
        Update::Snapshot(snapshot) => serde_json::to_string(&Line {
            id: snapshot.cursor.to_string(),
            event: "snapshot",
            data: snapshot,
        }),
        Update::Event { id, event } => serde_json::to_string(&Line {
            id: id.to_string(),
            event: event.name(),
            data: serde_json::from_str::<Value>(&event.data()).ok()?,
        }),
        Update::Connected | Update::Heard | Update::Disconnected { .. } => return None,
    }
    .ok()
}

/// The client secret: the first line of `file`, else `from_env`.
fn secret(file: Option<&Path>, from_env: Option<String>) -> Result<String, String> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => from_env.ok_or("give --client-secret-file PATH or set TESSERA_CLIENT_SECRET")?,
    };
    if secret.is_empty() {
        return Err("the client secret is empty".into());
    }
    Ok(secret)
}

/// Runs the command until interrupted (or until standard output closes).
pub async fn run(command: RevocationsCommand) -> Result<ExitCode, String> {
    let RevocationsCommand::Follow(args) = command;
    let secret = secret(
        args.client_secret_file.as_deref(),
        std::env::var("TESSERA_CLIENT_SECRET").ok(),
    )?;
    let follower = Follower::new(&args.url, &args.client_id, &secret).map_err(|e| e.to_string())?;
    let closed = Arc::new(tokio::sync::Notify::new());
    let on_close = closed.clone();
    let follow = follower.run(move |update| {
        if let Update::Disconnected { error } = &update {
            eprintln!("tessera: revocation feed: {error}; trying again");
        }
        if let Some(line) = line(&update) {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the command.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                on_close.notify_one();
            }
        }
    });
    tokio::select! {
        _ = follow => {}
        () = closed.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_verify::feed::{Cursor, FeedEvent, Snapshot};

    #[test]
    fn lines_name_the_event_its_cursor_and_its_data() {
        let snapshot = Snapshot {
            cursor: Cursor::at(41),
            window: 900,
            families: vec![],
            users: vec![],
            tokens: vec![],
            clients: vec![],
        };
        assert_eq!(
            line(&Update::Snapshot(&snapshot)).unwrap(),
            r#"{"id":"41","event":"snapshot","data":{"cursor":"41","window":900,"families":[],"users":[],"tokens":[],"clients":[]}}"#
        );
        let event = FeedEvent::parse(
            "user_changed",
            r#"{"user_id":7,"ver":2,"active":false,"at":5}"#,
        )
        .unwrap();
        assert_eq!(
            line(&Update::Event {
                id: Cursor::at(42),
                event: &event
            })
            .unwrap(),
            r#"{"id":"42","event":"user_changed","data":{"active":false,"at":5,"cver":0,"user_id":7,"ver":2}}"#
        );
        assert_eq!(
            line(&Update::Event {
                id: Cursor::at(43),
                event: &FeedEvent::KeysChanged
            })
            .unwrap(),
            r#"{"id":"43","event":"keys_changed","data":{}}"#
        );
        assert_eq!(line(&Update::Heard), None);
        assert_eq!(line(&Update::Disconnected { error: "x" }), None);
    }

    #[test]
    fn the_secret_comes_from_a_file_or_the_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(secret(Some(&path), Some("env".into())).unwrap(), "s3cret");
        assert_eq!(secret(None, Some("env".into())).unwrap(), "env");
        assert!(secret(None, None).is_err());
        assert!(secret(None, Some(String::new())).is_err());
        assert!(secret(Some(&dir.path().join("missing")), None).is_err());
    }
}
