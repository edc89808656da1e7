//! The `tessera` command: `serve`, `migrate`, `createsuperuser`, `config`,
//! `token`, `keys`, `users`, `import-users`, `audit`.

use crate::authority::{AuthError, NewAccount};
use crate::config::{LogFormat, Settings, reference};
use crate::keyring::{KeyStart, KeyState};
use crate::server;
use base64_free::decode_segment;
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_core::Refusal;
use users::{ImportSource, UsersCommand};

mod audit;
mod users;

/// Tessera: a JWT authentication server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// TOML configuration file; `TESSERA_<SETTING>` variables override it.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates and migrates the database, generates a key on first start).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Create a staff superuser, like Django's command of the same name.
    Createsuperuser {
        /// The username.
        #[arg(long)]
        username: String,
        /// The email address.
        #[arg(long, default_value = "")]
        email: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print the configuration in effect (secrets masked), or every setting's default.
    Config {
        /// Print a TOML file with every setting at its default, each explained.
        #[arg(long, conflicts_with = "reference")]
        defaults: bool,
        /// Print the reference of every setting (Markdown, docs/CONFIGURATION.md).
        #[arg(long)]
        reference: bool,
    },
    /// Token utilities.
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Signing keys.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Print the audit log, one line per event, oldest first.
    Audit(audit::AuditArgs),
    /// Import users with their ids and password hashes from Django or a JSON-lines file.
    ImportUsers {
        /// Where the users come from.
        #[command(flatten)]
        source: ImportSource,
        /// Read and check everything, report what would happen, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `tessera keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the stored keys: kid, algorithm, and whether each signs, is published to sign from a moment on, or only verifies (a configured signing_key is never stored).
    List,
    /// Generate a key and publish it at once; every instance signs with it once key_publish_lead has passed (on the database's clock), and the old ones verify until their tokens expire.
    Rotate {
        /// Algorithm of the new key (default: the configured one).
        #[arg(long)]
        algorithm: Option<String>,
        /// Sign with the new key at once (an emergency: a stolen key): verifiers holding the JWKS from before refuse its tokens until they fetch it again, up to 30 s for PyJWT's PyJWKClient and 5 minutes for caches.
        #[arg(long)]
        now: bool,
    },
}

/// `tessera token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token's header and claims, and whether it verifies with this shell's keys ("unknown" when none has its kid).
    Decode {
        /// The token.
        token: String,
    },
    /// Print a new access token for a user (service tokens, tests); logged as token_issued.
    Issue {
        /// The user.
        #[arg(long)]
        username: String,
        /// Lifetime, e.g. 10m, at most 30d (default: access_token_lifetime).
        #[arg(long)]
        lifetime: Option<String>,
    },
}

/// Parses the command line and runs it; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // What the defaults are does not depend on the configuration, so a broken
    // one does not stop anyone from reading them.
    match cli.command {
        Command::Config { defaults: true, .. } => {
            print!("{}", reference::defaults_toml());
            return ExitCode::SUCCESS;
        }
        Command::Config {
            reference: true, ..
        } => {
            print!("{}", reference::reference_markdown());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, settings));
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("tessera: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up logging to stderr in the configured format, written by a thread
/// of its own (`logging`). Lines still queued are written when the returned
/// guard is dropped, at the end of `main`.
fn init_logging(settings: &Settings) -> Option<crate::logging::LogGuard> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = crate::logging::start(settings.log_format)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match settings.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Some(guard)
}

async fn run(command: Command, settings: Settings) -> Result<ExitCode, String> {
    match command {
        Command::Serve => server::run(settings).await.map_err(|e| e.to_string())?,
        Command::Config { .. } => print!("{}", reference::effective_toml(&settings)),
        Command::Migrate => {
            server::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            println!("Migrations applied.");
        }
        Command::Createsuperuser {
            username,
            email,
            password_stdin,
        } => return create_superuser(settings, &username, &email, password_stdin).await,
        Command::Token {
            command: TokenCommand::Decode { token },
        } => return decode(settings, &token).await,
        Command::Token {
            command: TokenCommand::Issue { username, lifetime },
        } => issue(settings, &username, lifetime.as_deref()).await?,
        Command::Keys { command } => keys(settings, command).await?,
        Command::Users { command } => return users::run(settings, command).await,
        Command::Audit(args) => return audit::run(settings, args).await,
        Command::ImportUsers { source, dry_run } => {
            return users::import(settings, source.into(), dry_run).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tessera token issue`: prints an access token for `username`, whose
/// lifetime is `lifetime` (a duration as typed) or `access_token_lifetime`;
/// the authority bounds it and logs the issue.
async fn issue(settings: Settings, username: &str, lifetime: Option<&str>) -> Result<(), String> {
    let seconds = match lifetime {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            // Past i64 it is past any bound: the authority refuses it.
            Ok(d) if d.as_secs() >= 1 => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            _ => {
                return Err(format!(
                    "--lifetime: expected a duration such as 10m, got `{text}`"
                ));
            }
        },
    };
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    if authority.key_ring().signing_key(authority.now()).is_none() {
        return Err(
            "no signing key in service yet: `tessera serve` puts one in service \
                    when it starts, or run `tessera keys rotate`"
                .into(),
        );
    }
    let token = authority
        .issue_access_token(username, seconds)
        .await
        .map_err(|e| match e {
            AuthError::NoActiveAccount => format!("no active user `{username}`"),
            AuthError::Fields(errors) if errors.contains_key("lifetime") => format!(
                "--lifetime: at most {}d, got `{}`",
                crate::authority::MAX_ISSUED_LIFETIME / 86_400,
                lifetime.unwrap_or_default()
            ),
            other => other.to_string(),
        })?;
    println!("{}", token.token);
    Ok(())
}

/// Reads a password from standard input's first line, or prompts twice.
fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let second = rpassword::prompt_password("Password (again): ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    if first != second {
        return Err("Error: Your passwords didn't match.".into());
    }
    Ok(first)
}

async fn create_superuser(
    settings: Settings,
    username: &str,
    email: &str,
    stdin: bool,
) -> Result<ExitCode, String> {
    let password = read_password(stdin)?;
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    let account = NewAccount {
        username,
        password: &password,
        email,
        superuser: true,
        client: None,
    };
    match authority.signup(account).await {
        Ok(user) => {
            println!("Superuser created successfully (id {}).", user.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(AuthError::Fields(errors)) => {
            for (field, messages) in errors {
                for m in messages {
                    eprintln!("Error: {field}: {m}");
                }
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn decode(settings: Settings, token: &str) -> Result<ExitCode, String> {
    let mut segments = token.split('.');
    let header = segments.next().and_then(decode_segment);
    let claims = segments.next().and_then(decode_segment);
    let (Some(header), Some(claims)) = (header, claims) else {
        println!("not a JWT: expected three base64url segments holding JSON");
        return Ok(ExitCode::FAILURE);
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    println!("header:\n{}", pretty(&header));
    println!("claims:\n{}", pretty(&claims));
    let configured_here = settings.signing_key.is_some();
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    match authority.check(token, None).await {
        Ok(_) => {
            println!("verifies: yes");
            Ok(ExitCode::SUCCESS)
        }
        Err(AuthError::Token(Refusal::Invalid)) => {
            println!(
                "verifies: {}",
                unverified(&authority, token, configured_here)
            );
            Ok(ExitCode::FAILURE)
        }
        Err(AuthError::Token(reason)) => {
            println!("verifies: no ({})", reason.as_str());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What `token decode` says of a token refused as invalid. This shell's
/// keys are its settings' `signing_key` or the stored keys; a server whose
/// `signing_key` is set only where it runs signs with a key this shell does
/// not have, and the CLI cannot tell that key's tokens from forged ones. So
/// a token naming a kid of no key here verifies "unknown", saying why,
/// rather than "no": a valid token was reported invalid.
fn unverified(
    authority: &crate::authority::Authority,
    token: &str,
    configured_here: bool,
) -> String {
    let Some(kid) = tessera_core::token::peek_kid(token) else {
        // Tessera names a kid in every token it signs.
        return "no (invalid)".to_owned();
    };
    let now = tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock);
    if authority.key_ring().get(&kid, now).is_some() {
        return "no (invalid)".to_owned();
    }
    if configured_here {
        format!(
            "unknown (no key here has kid {kid}: the signing_key set in this shell is another key; \
             the token was signed by another key, or another deployment)"
        )
    } else {
        format!(
            "unknown (no key of this deployment in this shell has kid {kid}: \
             is signing_key set where the server runs? set TESSERA_SIGNING_KEY here too)"
        )
    }
}

mod base64_free {
    //! Reading a token segment for display, without trusting it.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The JSON inside one base64url segment, if it is that.
    pub fn decode_segment(segment: &str) -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

async fn keys(settings: Settings, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::List => {
            let store = server::open_store(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let keys = crate::keyring::list(&settings, store.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            if keys.is_empty() {
                // An empty table would read as "this deployment has no
                // keys", when the usual cause is a key in a configuration
                // this shell does not share.
                if settings.signing_key.is_some() {
                    println!(
                        "No keys stored: the signing_key of the configuration signs, and it is never stored."
                    );
                } else {
                    println!(
                        "No keys stored. A server started with signing_key set (TESSERA_SIGNING_KEY) signs with \
                         that key, which is never stored; one started without it stores a key on its first start."
                    );
                }
                return Ok(());
            }
            println!("{:<44} {:<6} {:<21} status", "kid", "alg", "created");
            for key in keys {
                println!(
                    "{:<44} {:<6} {:<21} {}",
                    key.kid,
                    key.algorithm,
                    timestamp(key.created_at),
                    key_status(key.state)
                );
            }
        }
        KeysCommand::Rotate { algorithm, now } => {
            let alg = match algorithm {
                None => settings.algorithm,
                Some(name) => tessera_core::keys::parse_algorithm(&name).ok_or_else(|| {
                    format!(
                        "--algorithm: expected one of {}, got `{name}`",
                        tessera_core::keys::ALGORITHM_NAMES.join(", ")
                    )
                })?,
            };
            let authority = server::open_authority(settings.clone())
                .await
                .map_err(|e| e.to_string())?;
            let start = if now {
                KeyStart::Now
            } else {
                KeyStart::AfterLead
            };
            let rotated = authority
                .rotate_keys(alg, start)
                .await
                .map_err(|e| e.to_string())?;
            let name = tessera_core::keys::algorithm_name(alg);
            if rotated.ahead {
                println!(
                    "New key {} ({name}) published; every instance signs with it from {} \
                     (key_publish_lead = \"{}\"), the key in service until then.",
                    rotated.kid,
                    timestamp(rotated.signs_from),
                    crate::config::format_duration(settings.key_publish_lead)
                );
            } else {
                println!("New signing key {} ({name}).", rotated.kid);
            }
            if alg != settings.algorithm {
                eprintln!(
                    "note: the configured algorithm is {}; set algorithm = \"{}\" too: once the new key signs, an instance started with the old setting refuses to start",
                    tessera_core::keys::algorithm_name(settings.algorithm),
                    name
                );
            }
        }
    }
    Ok(())
}

/// What `tessera keys list` says a key does.
fn key_status(state: KeyState) -> String {
    match state {
        KeyState::Signing { until: None } => "signing".to_owned(),
        KeyState::Signing { until: Some(t) } => format!("signing until {}", timestamp(t)),
        KeyState::Published { signs_from } => {
            format!("published, signs from {}", timestamp(signs_from))
        }
        KeyState::Verifying { until: Some(t) } => format!("verifying until {}", timestamp(t)),
        KeyState::Verifying { until: None } => "verifying".to_owned(),
        KeyState::Expired => "expired".to_owned(),
        KeyState::Refused => "refused (HMAC, with an asymmetric key in service)".to_owned(),
        KeyState::Unknown => "unknown algorithm (not used)".to_owned(),
    }
}

fn timestamp(seconds: i64) -> String {
    crate::http::accounts::timestamp(seconds)
}
