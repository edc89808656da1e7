//! The bodies of service clients' endpoints: what the admin API reads and
//! answers, and the `client_credentials` grant's token (re-exported by
//! [`super::super::openapi`], where the other schemas are).
#![allow(missing_docs)]

use super::super::openapi::OAuthToken;
use crate::authority::clients::Client;
use crate::http::extract::requests::ReadBody;
use crate::http::serving::body::Fields;
use serde::Serialize;
use utoipa::ToSchema;

/// A service client to register: `POST /api/admin/clients`.
#[derive(ToSchema)]
pub struct ClientRequest {
    /// 1 to 150 printable characters, unique among clients.
    #[schema(example = "orders service", min_length = 1, max_length = 150)]
    pub name: String,
    /// Space-separated scopes among `revocations` and `introspect`; none when absent.
    #[schema(nullable = false, example = "revocations introspect")]
    pub scope: Option<String>,
}

impl ReadBody for ClientRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            name: f.string("name"),
            scope: f.optional_string("scope"),
        }
    }
}

/// A service client (never its secret).
#[derive(Serialize, ToSchema)]
pub struct ClientObject {
    #[schema(example = "tc_5f0c6d1e9a2b4c7d8e3f1a2b")]
    pub client_id: String,
    #[schema(format = DateTime)]
    pub created: String,
    pub name: String,
    /// Space-separated.
    #[schema(example = "revocations")]
    pub scope: String,
}

impl ClientObject {
    /// The object of `client`.
    pub fn of(client: &Client) -> Self {
        Self {
            client_id: client.client_id.clone(),
            created: crate::http::routes::accounts::timestamp(client.created),
            name: client.name.clone(),
            scope: client.scope(),
        }
    }
}

/// A client just registered, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewClientObject {
    pub client_id: String,
    /// 43 characters; only its SHA-256 is kept, so it cannot be shown again.
    #[schema(format = Password)]
    pub client_secret: String,
    #[schema(format = DateTime)]
    pub created: String,
    pub name: String,
    pub scope: String,
}

/// The `client_credentials` grant's answer (RFC 6749 4.4.3: no refresh token).
#[derive(Serialize, ToSchema)]
pub struct ClientToken {
    pub access_token: String,
    /// Seconds until the token expires (`client_token_lifetime`).
    pub expires_in: i64,
    /// The scopes granted, space-separated.
    pub scope: String,
    #[schema(example = "bearer")]
    pub token_type: String,
}

/// The token endpoint's 200: a user's tokens, or a service client's token.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TokenResponse {
    User(OAuthToken),
    Client(ClientToken),
}
