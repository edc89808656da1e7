//! The public origin of this server, for absolute URLs in responses.

use crate::config::Settings;
use axum::http::{HeaderMap, header};

/// The configured issuer when set (it names the public base URL), otherwise
/// `http://` and the request's `Host`.
pub fn origin(settings: &Settings, headers: &HeaderMap) -> String {
    if let Some(issuer) = &settings.issuer {
        return issuer.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or(&settings.bind);
    format!("http://{host}")
}

/// The issuer: the configured one, else the origin.
pub fn issuer(settings: &Settings, headers: &HeaderMap) -> String {
    settings
        .issuer
        .clone()
        .unwrap_or_else(|| origin(settings, headers))
}
