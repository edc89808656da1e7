//! The `tessera` command: `serve`, `migrate`, `createsuperuser`, `config`,
//! `token`, `keys`, `users`, `clients`, `import-users`, `audit`, `revocations`.

use crate::authority::keys::{KeyStart, KeyState};
use crate::authority::{AuthError, NewAccount};
use crate::config::{LogFormat, Settings, reference};
use crate::server;
use clap::{Parser, Subcommand};
use clients::ClientsCommand;
use revocations::RevocationsCommand;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_core::Refusal;
use users::{ImportSource, UsersCommand};

mod audit;
mod clients;
mod keys;
mod revocations;
mod token;
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
    /// Service clients (OAuth2 client credentials) of other services.
    Clients {
        /// What to do with service clients.
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Print the audit log, one line per event, oldest first.
    Audit(audit::AuditArgs),
    /// Import users with their ids, password hashes and groups (as roles) from Django or a JSON-lines file.
    ImportUsers {
        /// Where the users come from.
        #[command(flatten)]
        source: ImportSource,
        /// Read and check everything, report what would happen, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tessera's revocation feed, as a service client sees it.
    Revocations {
        /// What to do with the feed.
        #[command(subcommand)]
        command: RevocationsCommand,
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
    if !matches!(cli.command, Command::Serve) {
        quiet_on_closed_pipe();
    }
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
    // A follower of another Tessera's feed needs no configuration of its own.
    let command = match cli.command {
        Command::Revocations { command } => {
            return match tokio::runtime::Runtime::new() {
                Ok(runtime) => exit(runtime.block_on(revocations::run(command))),
                Err(e) => exit(Err(format!("cannot start the runtime: {e}"))),
            };
        }
        command => command,
    };
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
    exit(runtime.block_on(run(command, settings)))
}

/// The exit code of a command's result, its error printed.
fn exit(result: Result<ExitCode, String>) -> ExitCode {
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
    crate::logging::filter_installed();
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
        } => return token::decode(settings, &token).await,
        Command::Token {
            command: TokenCommand::Issue { username, lifetime },
        } => token::issue(settings, &username, lifetime.as_deref()).await?,
        Command::Keys { command } => keys::run(settings, command).await?,
        Command::Users { command } => return users::run(settings, command).await,
        Command::Clients { command } => return clients::run(settings, command).await,
        Command::Audit(args) => return audit::run(settings, args).await,
        Command::ImportUsers { source, dry_run } => {
            return users::import(settings, source.into(), dry_run).await;
        }
        Command::Revocations { command } => return revocations::run(command).await,
    }
    Ok(ExitCode::SUCCESS)
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
    match authority.accounts().signup(account).await {
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

/// A Unix time as the API writes it (RFC 3339, UTC), for the commands'
/// tables.
fn timestamp(seconds: i64) -> String {
    crate::http::routes::accounts::timestamp(seconds)
}

/// A command whose output goes to a pipe closed early (`tessera users list
/// | head -1`) ends quietly, as other Unix tools do, instead of panicking in
/// `println!` on the write error: SIGPIPE's default action is restored,
/// which Rust's runtime sets to be ignored. Not for `serve`, whose writes to
/// a client that went away must stay errors it handles.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default; called at the
    // start of main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
