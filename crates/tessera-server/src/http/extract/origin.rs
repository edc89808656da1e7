//! The public origin of this server, for the absolute URLs it gives out
//! (discovery, paging links). Never the request's `Host` header: a client
//! chooses that, and a cache in front would hand its choice to everyone.

use crate::authority::Authority;
use crate::config::Settings;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::sync::Arc;

/// `public_url` when set, else `http://` and the address the server is bound
/// to; fixed when the server starts ([`crate::authority::Serving::set_public_origin`]).
#[derive(Debug, Clone)]
pub struct PublicOrigin(Arc<str>);

impl FromRequestParts<Arc<Authority>> for PublicOrigin {
    type Rejection = Infallible;

    async fn from_request_parts(
        _: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, Infallible> {
        Ok(PublicOrigin(authority.serving().public_origin()))
    }
}

impl PublicOrigin {
    /// The base URL of the API, without a trailing slash: `issuer` when
    /// configured (it names the public base URL), else this origin.
    pub fn base(&self, settings: &Settings) -> String {
        match &settings.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => self.0.to_string(),
        }
    }

    /// The issuer discovery names: the configured one, else this origin.
    pub fn issuer(&self, settings: &Settings) -> String {
        settings
            .issuer
            .clone()
            .unwrap_or_else(|| self.0.to_string())
    }
}
