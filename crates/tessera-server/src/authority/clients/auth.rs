//! Service clients at work: authentication by id and secret (throttled
//! like logins, compared in constant time, audited when refused), the
//! `client_credentials` grant, and the check of a client's bearer token
//! that the endpoints for services make ([`Clients::authorize`]).
//!
//! Promises: an unknown client, a removed one and a wrong secret are one
//! refusal, [`AuthError::InvalidClient`], after the same work; a client's
//! token is accepted only while the keys verify it, the client is not
//! removed and the token not revoked, all decided in memory.

use super::{Client, Clients, parse_scopes};
use crate::authority::{AuditKind, AuthError, ClientAuthError, SessionOrigin};
use crate::telemetry;
use serde_json::{Map, Value, json};
use tessera_core::Refusal;
use tessera_core::claims::{TokenType, secrets_match};
use tessera_core::client::{self as core, ClientClaims, IssuedClientToken};

/// A client's id and secret as a request presented them (HTTP Basic or
/// the body's fields), not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The client id given.
    pub client_id: String,
    /// The secret given.
    pub secret: String,
}

/// A token granted to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGrant {
    /// The token.
    pub token: IssuedClientToken,
    /// The scopes it grants.
    pub scopes: Vec<String>,
}

/// What the digest of an unknown client's secret is compared with, so that
/// an unknown client costs what a wrong secret costs.
const NO_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Clients {
    /// Authenticates a client by its id and secret: throttled as logins are
    /// (per client id and per address, the login limits), the secret's
    /// SHA-256 compared with the stored one in constant time. An unknown
    /// or removed client and a wrong secret are all
    /// [`AuthError::InvalidClient`], audited as `client_auth_failed`.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        origin: &SessionOrigin,
    ) -> Result<Client, AuthError> {
        // Cut short: an attacker's input. The prefix keeps client ids apart
        // from usernames in the shared failure logs.
        let given: String = credentials.client_id.chars().take(64).collect();
        let client_key = format!("client {given}");
        let address_key = origin.ip.to_string();
        let now_ms = self.common.now_ms();
        let attempt = self
            .throttle
            .reserve_login(&client_key, &address_key, now_ms)
            .await?;
        // A storage failure leaves the attempt counted, as a login's does:
        // whoever can make lookups fail gains no free guesses.
        let record = self
            .common
            .store()
            .client_by_id(&credentials.client_id)
            .await?;
        let digest = core::secret_digest(&credentials.secret);
        let stored = record
            .as_ref()
            .map_or(NO_DIGEST, |r| r.secret_digest.as_str());
        let matches = secrets_match(&digest, stored);
        match record {
            Some(record) if matches => {
                self.throttle
                    .login_succeeded(&client_key, &address_key, attempt)
                    .await;
                Ok(Client::from_record(record))
            }
            _ => {
                self.throttle
                    .login_failed(&client_key, &address_key, attempt)
                    .await;
                let detail = json!({"client_id": given});
                self.common.audit(
                    AuditKind::ClientAuthFailed,
                    None,
                    None,
                    Some(origin),
                    detail,
                );
                Err(AuthError::InvalidClient)
            }
        }
    }

    /// The `client_credentials` grant: authenticates the client (see
    /// [`Clients::authenticate`]) and issues it a token for `scope`
    /// (space-separated; every scope it holds when `None` or empty),
    /// valid for `client_token_lifetime`. A scope it does not hold, or not
    /// a scope, is [`AuthError::InvalidScope`].
    pub async fn grant(
        &self,
        credentials: &ClientCredentials,
        scope: Option<&str>,
        origin: &SessionOrigin,
    ) -> Result<ClientGrant, AuthError> {
        let client = self.authenticate(credentials, origin).await?;
        let scopes = match scope.filter(|s| !s.is_empty()) {
            None => client.scopes.clone(),
            Some(asked) => {
                let scopes = parse_scopes(asked).map_err(AuthError::InvalidScope)?;
                if let Some(missing) = scopes.iter().find(|s| !client.scopes.contains(s)) {
                    return Err(AuthError::InvalidScope(format!(
                        "The client does not hold the scope \"{missing}\"."
                    )));
                }
                scopes
            }
        };
        let now = self.common.now();
        let ring = self.keys.ring();
        let token = core::issue_client(
            self.common.policy(),
            &ring,
            &client.client_id,
            &scopes,
            self.lifetime(),
            now,
        )
        .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        telemetry::issued(TokenType::Access);
        Ok(ClientGrant { token, scopes })
    }

    /// Whether `bearer_token` is a valid token of a service client holding
    /// `scope`: verified by the keys (reloaded once for an unknown kid, as
    /// for users' tokens), its client not removed and the token not
    /// revoked, and the scope granted. Decided in memory.
    pub async fn authorize(
        &self,
        bearer_token: &str,
        scope: &str,
    ) -> Result<ClientClaims, ClientAuthError> {
        let claims = self
            .check(bearer_token)
            .await
            .map_err(ClientAuthError::NotValid)?;
        if !claims.has_scope(scope) {
            return Err(ClientAuthError::InsufficientScope(scope.to_owned()));
        }
        Ok(claims)
    }

    /// RFC 7662 introspection of a client's token: its claims when active,
    /// `None` when it is not a valid client token.
    pub async fn introspect(&self, token: &str) -> Option<Map<String, Value>> {
        let claims = self.check(token).await.ok()?;
        let policy = self.common.policy();
        let mut map = Map::new();
        map.insert("token_type".into(), json!(TokenType::Access.as_str()));
        map.insert("exp".into(), json!(claims.exp));
        map.insert("iat".into(), json!(claims.iat));
        map.insert("nbf".into(), json!(claims.iat));
        map.insert("jti".into(), json!(claims.jti));
        map.insert("sub".into(), json!(claims.client_id));
        map.insert("client_id".into(), json!(claims.client_id));
        map.insert("scope".into(), json!(claims.scopes.join(" ")));
        if let Some(iss) = &policy.issuer {
            map.insert("iss".into(), json!(iss));
        }
        if let Some(aud) = &policy.audience {
            map.insert("aud".into(), json!(aud));
        }
        Some(map)
    }

    /// A client token checked completely: the keys, then the markers.
    async fn check(&self, token: &str) -> Result<ClientClaims, Refusal> {
        let now = self.common.now();
        let claims = self.keys.validate_client(token, now).await?;
        self.live.check_client(&claims)?;
        Ok(claims)
    }
}
