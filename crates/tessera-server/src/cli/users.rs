//! `tessera users ...` and `tessera import-users`.

use super::{read_password, timestamp};
use crate::authority::AuthError;
use crate::config::Settings;
use crate::import::{self, Source};
use crate::server;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_core::username::Username;

/// `tessera users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user.
    List,
    /// Deactivate a user: Tessera refuses their logins and tokens at once, and so do services following its revocation feed (not the last active staff user).
    Deactivate {
        /// The username.
        username: String,
    },
    /// Set a user's password (one imported without a usable one, say): Tessera refuses their earlier tokens at once; logged as password_set.
    SetPassword {
        /// The username.
        username: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user's second factors (TOTP, recovery codes, logins waiting for a code), for a lost device: the password alone logs them in again (unless the `mfa` setting requires a factor of them: then their next login asks them to enrol); logged as mfa_reset.
    MfaReset {
        /// The username.
        username: String,
    },
    /// Show a user's roles, or change them: their access tokens issued before a change answer `expired` (at Tessera and at services following its revocation feed), so clients refresh and get the new roles; nobody is logged out.
    Roles {
        /// The username.
        username: String,
        /// A role to give (may be repeated).
        #[arg(long, value_name = "ROLE")]
        add: Vec<String>,
        /// A role to take away (may be repeated).
        #[arg(long, value_name = "ROLE")]
        remove: Vec<String>,
    },
}

/// The source of `tessera import-users`: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ImportSource {
    /// A Django database's auth_user table, each user's groups (auth_group,
    /// auth_user_groups) as their roles: sqlite://PATH or postgres://...
    #[arg(long, value_name = "URL")]
    django_db: Option<String>,
    /// The output of `manage.py dumpdata auth.group auth.user` (the groups
    /// name the users' group ids), or of `dumpdata auth.user
    /// --natural-foreign`: each user's groups become their roles.
    #[arg(long, value_name = "FILE")]
    django_json: Option<PathBuf>,
    /// One JSON object per line: username and password (a hash) required;
    /// id, email, is_staff, is_active, date_joined, last_login and roles (an
    /// array of names) optional.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
}

impl From<ImportSource> for Source {
    fn from(source: ImportSource) -> Self {
        match source {
            ImportSource {
                django_db: Some(url),
                ..
            } => Source::DjangoDb(url),
            ImportSource {
                django_json: Some(path),
                ..
            } => Source::DjangoJson(path),
            // clap makes one of the three required.
            ImportSource { jsonl, .. } => Source::Jsonl(jsonl.unwrap_or_default()),
        }
    }
}

/// Runs `tessera users ...`.
pub async fn run(settings: Settings, command: UsersCommand) -> Result<ExitCode, String> {
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    match command {
        UsersCommand::List => {
            let (_, users) = authority
                .accounts()
                .list_users(0, i64::MAX)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{:>6}  {:<24} {:<28} {:<5} {:<6} joined",
                "id", "username", "email", "staff", "active"
            );
            for u in users {
                println!(
                    "{:>6}  {:<24} {:<28} {:<5} {:<6} {}",
                    u.id,
                    u.username,
                    u.email,
                    u.is_staff,
                    u.is_active,
                    timestamp(u.date_joined)
                );
            }
        }
        UsersCommand::Deactivate { username } => {
            let Some(user) = authority
                .accounts()
                .user_by_username(&username)
                .await
                .map_err(|e| e.to_string())?
            else {
                eprintln!("tessera: no user `{username}`");
                return Ok(ExitCode::FAILURE);
            };
            authority
                .accounts()
                .set_user_flags(
                    user.id,
                    crate::authority::UserChange {
                        is_active: Some(false),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            // Services that verify tokens themselves learn of it through
            // the revocation feed when they follow it (tessera-verify with
            // `.revocations`); any other accepts an access token until it
            // expires.
            println!(
                "User {username} (id {}) deactivated: Tessera refuses their logins and tokens at once, \
                 and so do services following its revocation feed within a second; other services \
                 that verify tokens themselves accept their access tokens until these expire \
                 (access_token_lifetime, {}).",
                user.id,
                crate::config::format_duration(authority.settings().access_token_lifetime)
            );
        }
        UsersCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let record = match Username::parse(&username) {
                Ok(name) => authority
                    .store()
                    .user_by_username(name.as_str())
                    .await
                    .map_err(|e| e.to_string())?,
                Err(_) => None,
            };
            let Some(record) = record else {
                eprintln!("tessera: no user `{username}`");
                return Ok(ExitCode::FAILURE);
            };
            let password = read_password(password_stdin)?;
            match authority
                .accounts()
                .set_password_by_operator(&record, &password)
                .await
            {
                // As for `deactivate`.
                Ok(()) => println!(
                    "Password set for {} (id {}): Tessera refuses their earlier tokens at once, \
                     and so do services following its revocation feed within a second; other \
                     services that verify tokens themselves accept their earlier access tokens \
                     until these expire (access_token_lifetime, {}).",
                    record.username,
                    record.id,
                    crate::config::format_duration(authority.settings().access_token_lifetime)
                ),
                Err(AuthError::Fields(errors)) => {
                    for message in errors.into_values().flatten() {
                        eprintln!("Error: {message}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        UsersCommand::MfaReset { username } => {
            let accounts = authority.accounts();
            let user = accounts.user_by_username(&username).await;
            let Some(user) = user.map_err(|e| e.to_string())? else {
                eprintln!("tessera: no user `{username}`");
                return Ok(ExitCode::FAILURE);
            };
            let reset = accounts.reset_second_factors_by_operator(user.id).await;
            if reset.map_err(|e| e.to_string())?.is_none() {
                eprintln!("tessera: no user `{username}`");
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "Second factors of {} (id {}) removed: their password alone logs them in, \
                 unless the mfa setting requires a factor of them (their next login then asks \
                 them to enrol).",
                user.username, user.id
            );
        }
        UsersCommand::Roles {
            username,
            add,
            remove,
        } => {
            let accounts = authority.accounts();
            let Some(user) = accounts
                .user_by_username(&username)
                .await
                .map_err(|e| e.to_string())?
            else {
                eprintln!("tessera: no user `{username}`");
                return Ok(ExitCode::FAILURE);
            };
            let roles = if add.is_empty() && remove.is_empty() {
                user.roles
            } else {
                match accounts.change_roles(user.id, &add, &remove).await {
                    Ok(Some(changed)) => changed.roles.clone(),
                    Ok(None) => {
                        eprintln!("tessera: no user `{username}`");
                        return Ok(ExitCode::FAILURE);
                    }
                    Err(AuthError::Fields(errors)) => {
                        for message in errors.into_values().flatten() {
                            eprintln!("Error: {message}");
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                    Err(e) => return Err(e.to_string()),
                }
            };
            // One role a line, so that scripts can read them; none: no line.
            for role in roles.names() {
                println!("{}", crate::printable::escape_unprintable(role));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `tessera import-users`: remarks on standard output as they come
/// (above the progress bar, drawn on a terminal only), the summary last.
pub async fn import(settings: Settings, source: Source, dry_run: bool) -> Result<ExitCode, String> {
    let store = server::open_store(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} rows read ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let printer = bar.clone();
    // Whole, through the one escaping function: a remark may quote the
    // source beyond its values (a hash's scheme, say).
    let mut remark = move |remark: import::Remark| {
        let line = remark.to_string();
        printer.suspend(|| println!("{}", crate::printable::escape_unprintable(&line)));
    };
    let counter = bar.clone();
    let mut progress = move |rows: u64| counter.set_position(rows);
    let now = tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock);
    let summary = import::import(
        store.as_ref(),
        &source,
        dry_run,
        now,
        &mut remark,
        &mut progress,
    )
    .await;
    bar.finish_and_clear();
    let summary = summary.map_err(|e| e.to_string())?;
    if !dry_run {
        let event = tessera_store::AuditEvent {
            at: now,
            event: crate::authority::AuditKind::UsersImported.as_str().into(),
            user_id: None,
            actor_id: None,
            ip: String::new(),
            user_agent: String::new(),
            detail: serde_json::json!({
                "source": source.kind(),
                "imported": summary.imported,
                "already_present": summary.already_present,
                "skipped": summary.skipped,
                "without_password": summary.without_password,
            })
            .to_string(),
        };
        if let Err(e) = store.append_audit(&[event]).await {
            eprintln!("tessera: the import is done, but its audit event was not written: {e}");
        }
    }
    println!("{}", summary.line(dry_run));
    Ok(ExitCode::SUCCESS)
}
