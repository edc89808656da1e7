//! The clients part: service clients, the OAuth2 confidential clients that
//! other services authenticate as (the `client_credentials` grant) to read
//! the revocation feed or introspect tokens. Administration (add, list, a
//! new secret, removal) is here; authentication, the grant and the check
//! of a client's bearer token are in [`auth`].
//!
//! Promises: a secret is shown once, when it is made, and only its SHA-256
//! is stored (it is 256 random bits); a name is unique among clients not
//! removed; a removal refuses the client's tokens at once in this process,
//! in every other through the change log, and in any started later
//! (`Live` loads removed clients still within their tokens' lifetime).

mod auth;

pub use auth::{ClientCredentials, ClientGrant};

use super::common::Common;
use super::keys::Keys;
use super::live::Live;
use super::throttling::Throttle;
use super::{AuditKind, AuthError, field_error};
use serde_json::json;
use std::sync::Arc;
use tessera_core::client::{self as core, SCOPES};
use tessera_core::ids::UserId;
use tessera_store::ClientRecord;

/// The longest client name, in characters.
pub const MAX_NAME_CHARS: usize = 150;

/// Service clients: administration, authentication, tokens.
pub struct Clients {
    common: Arc<Common>,
    keys: Arc<Keys>,
    live: Arc<Live>,
    throttle: Arc<Throttle>,
}

/// A service client as administration shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its id (`tc_` and 24 hex characters).
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// The scopes it holds, as registered.
    pub scopes: Vec<String>,
    /// When it was added, Unix seconds.
    pub created: i64,
}

impl Client {
    /// Its scopes as OAuth2 writes them: space-separated.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    fn from_record(record: ClientRecord) -> Self {
        Self {
            client_id: record.client_id,
            name: record.name,
            // Stored by `add`, so always well formed.
            scopes: record.scope.split_whitespace().map(str::to_owned).collect(),
            created: record.created_at,
        }
    }
}

/// A client with the secret just made for it: the only time the secret
/// is known to anyone but the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// The client.
    pub client: Client,
    /// Its secret (43 characters of base64url).
    pub secret: String,
}

/// Who administered a client, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientActor {
    /// A staff user, by the admin API.
    Staff(UserId),
    /// The `tessera clients` command.
    Cli,
}

impl ClientActor {
    fn actor_id(self) -> Option<UserId> {
        match self {
            ClientActor::Staff(id) => Some(id),
            ClientActor::Cli => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ClientActor::Staff(_) => "admin",
            ClientActor::Cli => "cli",
        }
    }
}

/// The scopes of `scope` (space-separated), each known, without repeats,
/// in the order given; a message naming the fault otherwise.
pub fn parse_scopes(scope: &str) -> Result<Vec<String>, String> {
    let known = SCOPES.join(", ");
    let scopes = core::parse_scope(scope).ok_or_else(|| {
        format!("Scopes are separated by single spaces, without others around them; known scopes: {known}.")
    })?;
    let mut kept: Vec<String> = Vec::new();
    for scope in scopes {
        if !SCOPES.contains(&scope.as_str()) {
            let shown: String = scope.chars().take(64).collect();
            return Err(format!("Unknown scope \"{shown}\"; known scopes: {known}."));
        }
        if !kept.contains(&scope) {
            kept.push(scope);
        }
    }
    Ok(kept)
}

/// A client name as given, or the rule it breaks.
fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "Ensure this field has between 1 and {MAX_NAME_CHARS} characters."
        ));
    }
    // What a terminal would act on or hide cannot be told apart when listed.
    if matches!(
        crate::printable::escape_unprintable(name),
        std::borrow::Cow::Owned(_)
    ) || name.trim() != name
    {
        return Err("Use printable characters only, without spaces at either end.".to_owned());
    }
    Ok(())
}

impl Clients {
    pub(super) fn new(
        common: Arc<Common>,
        keys: Arc<Keys>,
        live: Arc<Live>,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            common,
            keys,
            live,
            throttle,
        }
    }

    /// Registers a client named `name` holding `scope` (space-separated,
    /// known scopes), with a new id and secret. [`AuthError::Fields`] under
    /// `name` (empty, too long, unprintable, or taken by a client not
    /// removed) or `scope`. Audited as `client_added`.
    pub async fn add(
        &self,
        name: &str,
        scope: &str,
        actor: ClientActor,
    ) -> Result<ClientSecret, AuthError> {
        check_name(name).map_err(|e| field_error("name", e))?;
        let scopes = parse_scopes(scope).map_err(|e| field_error("scope", e))?;
        let secret = core::new_client_secret();
        let record = ClientRecord {
            client_id: core::new_client_id(),
            name: name.to_owned(),
            secret_digest: core::secret_digest(&secret),
            scope: scopes.join(" "),
            created_at: self.common.now(),
        };
        if !self.common.store().insert_client(&record).await? {
            return Err(field_error(
                "name",
                "A client with this name already exists.",
            ));
        }
        let client = Client::from_record(record);
        self.audit(AuditKind::ClientAdded, &client, actor).await;
        Ok(ClientSecret { client, secret })
    }

    /// Every client not removed, oldest first.
    pub async fn list(&self) -> Result<Vec<Client>, AuthError> {
        let records = self.common.store().clients().await?;
        Ok(records.into_iter().map(Client::from_record).collect())
    }

    /// The client named `name`, unless removed.
    pub async fn by_name(&self, name: &str) -> Result<Option<Client>, AuthError> {
        let record = self.common.store().client_by_name(name).await?;
        Ok(record.map(Client::from_record))
    }

    /// Gives client `client_id` a new secret (the old one stops working at
    /// once; tokens already issued stay valid until they expire). `None`
    /// when there is no such client. Audited as `client_secret_rotated`.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        actor: ClientActor,
    ) -> Result<Option<ClientSecret>, AuthError> {
        let store = self.common.store();
        let Some(record) = store.client_by_id(client_id).await? else {
            return Ok(None);
        };
        let secret = core::new_client_secret();
        if !store
            .set_client_secret(client_id, &core::secret_digest(&secret))
            .await?
        {
            // Removed meanwhile.
            return Ok(None);
        }
        let client = Client::from_record(record);
        self.audit(AuditKind::ClientSecretRotated, &client, actor)
            .await;
        Ok(Some(ClientSecret { client, secret }))
    }

    /// Removes client `client_id`: its secret stops working and every token
    /// it was issued is refused, here at once and on every instance through
    /// the change log. False when there is no such client. Audited as
    /// `client_removed`.
    pub async fn remove(&self, client_id: &str, actor: ClientActor) -> Result<bool, AuthError> {
        let store = self.common.store();
        let Some(record) = store.client_by_id(client_id).await? else {
            return Ok(false);
        };
        let now = self.common.now();
        // No token of the client outlives this, leeway included.
        let until = now + self.lifetime() + self.common.policy().leeway;
        if !self.live.remove_client(client_id, now, until).await? {
            return Ok(false);
        }
        let client = Client::from_record(record);
        self.audit(AuditKind::ClientRemoved, &client, actor).await;
        Ok(true)
    }

    /// The lifetime of a client's token, seconds (`client_token_lifetime`).
    fn lifetime(&self) -> i64 {
        self.common.settings().client_token_seconds()
    }

    /// Writes an administration event, before returning: the CLI exits
    /// right after, and these are rare.
    async fn audit(&self, kind: AuditKind, client: &Client, actor: ClientActor) {
        let detail = json!({
            "client_id": client.client_id,
            "name": client.name,
            "scope": client.scope(),
            "by": actor.name(),
        });
        self.common
            .audit(kind, None, actor.actor_id(), None, detail);
        self.common.audit_log().flush().await;
    }
}
