//! `tessera audit`: the audit log, one line per event, oldest first, and
//! with `--follow` every event that comes after, each once, in order.

use super::timestamp;
use crate::config::Settings;
use crate::server;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;
use tessera_core::username::Username;
use tessera_store::{AuditFilter, AuditRecord, Store};

/// The most recent events printed (before following, with `--follow`).
const BACKLOG: i64 = 1000;
/// Events `--follow` reads at a time, from its cursor (the id of the last
/// event printed), oldest first: it reads page after page until one is not
/// full, so a flood is printed whole, only later.
const PAGE: i64 = 1000;
/// How often `--follow` looks for new events once it has read them all.
const POLL: Duration = Duration::from_millis(500);

/// `tessera audit`'s options.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this user's events.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Only events of this name (login_failed, session_ended, ...).
    #[arg(long, value_name = "EVENT")]
    event: Option<String>,
    /// Only events of the last DURATION (e.g. 1h, 7d).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Keep printing events as they come, until interrupted.
    #[arg(long)]
    follow: bool,
}

/// One event as a line. The User-Agent is a JSON string and `detail` its
/// JSON, and the whole line then goes through
/// [`escape_unprintable`](crate::printable::escape_unprintable), so that no
/// field (what a client sent: a username in `detail`, the User-Agent; or
/// whatever the database holds) prints a character a terminal acts on or
/// hides.
fn line(e: &AuditRecord) -> String {
    let id = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    let line = format!(
        "{} {} user={} actor={} ip={} ua={} {}",
        timestamp(e.at),
        e.event,
        id(e.user_id),
        id(e.actor_id),
        if e.ip.is_empty() { "-" } else { &e.ip },
        serde_json::Value::from(e.user_agent.as_str()),
        serde_json::from_str::<serde_json::Value>(&e.detail)
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
    crate::printable::escape_unprintable(&line).into_owned()
}

/// Runs `tessera audit`.
pub async fn run(settings: Settings, args: AuditArgs) -> Result<ExitCode, String> {
    let store = server::open_store(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let mut filter = AuditFilter::default();
    if let Some(name) = &args.user {
        let found = match Username::parse(name) {
            Ok(n) => store
                .user_by_username(n.as_str())
                .await
                .map_err(|e| e.to_string())?,
            Err(_) => None,
        };
        let Some(user) = found else {
            eprintln!("tessera: no user `{name}`");
            return Ok(ExitCode::FAILURE);
        };
        filter.user_id = Some(user.id);
    }
    if let Some(event) = &args.event {
        if crate::authority::AuditKind::parse(event).is_none() {
            let names: Vec<&str> = crate::authority::AuditKind::names().collect();
            return Err(format!(
                "--event: expected one of {}, got `{event}`",
                names.join(", ")
            ));
        }
        filter.event = Some(event.clone());
    }
    if let Some(text) = &args.since {
        let ago = humantime::parse_duration(text)
            .map_err(|_| format!("--since: expected a duration such as 1h or 7d, got `{text}`"))?;
        let now = tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock);
        filter.since = Some(now.saturating_sub(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX)));
    }
    let Some(mut cursor) = print_backlog(store.as_ref(), &filter).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let page = store
            .audit_after(&filter, cursor, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        if !print(&page)? {
            return Ok(ExitCode::SUCCESS);
        }
        cursor = page.last().map_or(cursor, |e| e.id);
        // A full page means more may be waiting: read on at once.
        if (page.len() as i64) < PAGE {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Prints the newest [`BACKLOG`] events matching `filter`, oldest first;
/// the id to follow from (the newest printed, or 0 when none matched), or
/// `None` when the reader of the output is gone.
async fn print_backlog(store: &dyn Store, filter: &AuditFilter) -> Result<Option<i64>, String> {
    let (_, mut events) = store
        .audit_page(filter, 0, BACKLOG)
        .await
        .map_err(|e| e.to_string())?;
    events.reverse();
    let printed = print(&events)?;
    Ok(printed.then(|| events.last().map_or(0, |e| e.id)))
}

/// Prints `events`, one line each; false when the reader of the output is
/// gone (`tessera audit --follow | head`), which ends the command quietly.
fn print(events: &[AuditRecord]) -> Result<bool, String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = events
        .iter()
        .try_for_each(|e| writeln!(out, "{}", line(e)))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("cannot print the events: {e}")),
    }
}
