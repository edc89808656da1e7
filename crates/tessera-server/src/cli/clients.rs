//! `tessera clients ...`: service clients, by name. The commands write the
//! store; a removal reaches running servers through the change log.

use super::timestamp;
use crate::authority::AuthError;
use crate::authority::clients::{ClientActor, ClientSecret, Clients};
use crate::config::Settings;
use crate::printable::escape_unprintable;
use crate::server;
use clap::Subcommand;
use std::process::ExitCode;

/// `tessera clients ...`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a service client and print its client_id and client_secret (the secret is shown this once; only its SHA-256 is kept); logged as client_added.
    Add {
        /// A name for it, unique among clients (1 to 150 printable characters).
        name: String,
        /// A scope it holds: revocations (read the revocation feed) or introspect (call /oauth/introspect); repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// List the service clients: client_id, name, scopes, when added.
    List,
    /// Give a client a new secret and print it; the old one stops working at once (its tokens stay valid until they expire); logged as client_secret_rotated.
    RotateSecret {
        /// The client's name.
        name: String,
    },
    /// Remove a client: its secret and every token it was issued are refused at once, on every running server; logged as client_removed.
    Remove {
        /// The client's name.
        name: String,
    },
}

/// Runs a `clients` command.
pub(super) async fn run(settings: Settings, command: ClientsCommand) -> Result<ExitCode, String> {
    let authority = server::open_authority(settings)
        .await
        .map_err(|e| e.to_string())?;
    let clients = authority.clients();
    let actor = ClientActor::Cli;
    match command {
        ClientsCommand::Add { name, scopes } => {
            match clients.add(&name, &scopes.join(" "), actor).await {
                Ok(added) => print_secret(&added),
                Err(AuthError::Fields(errors)) => {
                    for (field, messages) in errors {
                        for m in messages {
                            eprintln!("Error: {field}: {m}");
                        }
                    }
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        ClientsCommand::List => {
            for client in clients.list().await.map_err(|e| e.to_string())? {
                println!(
                    "{}  {}  scope={}  added {}",
                    client.client_id,
                    escape_unprintable(&client.name),
                    client.scope(),
                    timestamp(client.created)
                );
            }
        }
        ClientsCommand::RotateSecret { name } => {
            let id = client_id(clients, &name).await?;
            match clients.rotate_secret(&id, actor).await {
                Ok(Some(rotated)) => print_secret(&rotated),
                Ok(None) => return Err(no_client(&name)),
                Err(e) => return Err(e.to_string()),
            }
        }
        ClientsCommand::Remove { name } => {
            let id = client_id(clients, &name).await?;
            match clients.remove(&id, actor).await {
                Ok(true) => println!("Client {id} removed: its tokens are refused from now on."),
                Ok(false) => return Err(no_client(&name)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The id of the client named `name`, or the message saying there is none.
async fn client_id(clients: &Clients, name: &str) -> Result<String, String> {
    match clients.by_name(name).await {
        Ok(Some(client)) => Ok(client.client_id),
        Ok(None) => Err(no_client(name)),
        Err(e) => Err(e.to_string()),
    }
}

fn no_client(name: &str) -> String {
    format!(
        "no client named `{}` (tessera clients list shows them)",
        escape_unprintable(name)
    )
}

/// The id and the secret on standard output, a line each, and the warning
/// that the secret cannot be shown again on standard error.
fn print_secret(shown: &ClientSecret) {
    println!("client_id: {}", shown.client.client_id);
    println!("client_secret: {}", shown.secret);
    eprintln!("Keep the secret now: it cannot be shown again (only its SHA-256 is kept).");
}
