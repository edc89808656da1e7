//! Who the client is, as far as rate limits are concerned: the socket's peer,
//! or the address a trusted proxy reports in `X-Forwarded-For`.

use super::error::ApiError;
use crate::authority::Authority;
use crate::http::serving::listener::PeerAddr;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<Authority>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<PeerAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.0.ip());
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &authority.settings().trusted_proxies,
        )))
    }
}

/// The peer itself, unless it is a trusted proxy: then the nearest address in
/// `X-Forwarded-For` that is not a trusted proxy (the rightmost such hop; the
/// ones left of it are whatever the client chose to send).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => nearest = ip,
            Ok(ip) => return ip,
            // A hop we cannot read ends what we can believe.
            Err(_) => return nearest,
        }
    }
    nearest
}

/// Where and how a session a request begins comes from: the client address
/// and the request's User-Agent.
pub fn origin(
    client: IpAddr,
    headers: &axum::http::HeaderMap,
    method: crate::authority::LoginMethod,
) -> crate::authority::SessionOrigin {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    crate::authority::SessionOrigin::new(client, &user_agent, method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word_only() {
        assert_eq!(
            client_ip(ip("10.0.0.9"), &xff("1.2.3.4"), &[]),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.9"), &xff("1.2.3.4"), &[ip("10.0.0.1")]),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff("203.0.113.7"), &trusted),
            ip("203.0.113.7")
        );
        // The client may prepend anything; the rightmost untrusted hop counts.
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &xff("6.6.6.6, 203.0.113.7, 10.0.0.2"),
                &trusted
            ),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff("garbage"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &xff("::1"), &trusted), ip("::1"));
    }
}
