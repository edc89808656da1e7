//! Cookie mode (docs/API.md): Flask-JWT-Extended's cookie names, set on a
//! cookie-transport login or refresh, cleared on logout.

use crate::config::{SameSite, Settings};
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::Cookie;
use tessera_core::token::IssuedToken;

/// The access token cookie (HttpOnly, Path=/).
pub const ACCESS: &str = "access_token_cookie";
/// The refresh token cookie (HttpOnly, Path=/api/token/refresh).
pub const REFRESH: &str = "refresh_token_cookie";
/// The access token's CSRF value, readable by the page (Path=/).
pub const CSRF_ACCESS: &str = "csrf_access_token";
/// The refresh token's CSRF value, readable by the page (Path=/).
pub const CSRF_REFRESH: &str = "csrf_refresh_token";
/// The header that must echo the CSRF value on unsafe cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The request header that asks for cookie transport at login.
pub const TRANSPORT_HEADER: &str = "x-token-transport";

const REFRESH_PATH: &str = "/api/token/refresh";

/// The value of cookie `name` in the request, if sent.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The value of header `name`, if present and text.
pub fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn build(
    settings: &Settings,
    name: &'static str,
    value: String,
    path: &'static str,
    http_only: bool,
) -> Cookie<'static> {
    let same_site = match settings.cookie_samesite {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    };
    Cookie::build((name, value))
        .path(path)
        .http_only(http_only)
        .secure(settings.cookie_secure)
        .same_site(same_site)
        .build()
}

fn append(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Sets the access cookie and its CSRF cookie.
pub fn set_access(headers: &mut HeaderMap, settings: &Settings, access: &IssuedToken) {
    append(
        headers,
        &build(settings, ACCESS, access.token.clone(), "/", true),
    );
    if let Some(csrf) = &access.csrf {
        append(
            headers,
            &build(settings, CSRF_ACCESS, csrf.clone(), "/", false),
        );
    }
}

/// Sets the refresh cookie and its CSRF cookie.
pub fn set_refresh(headers: &mut HeaderMap, settings: &Settings, refresh: &IssuedToken) {
    append(
        headers,
        &build(settings, REFRESH, refresh.token.clone(), REFRESH_PATH, true),
    );
    if let Some(csrf) = &refresh.csrf {
        append(
            headers,
            &build(settings, CSRF_REFRESH, csrf.clone(), "/", false),
        );
    }
}

/// Clears all four cookies: empty, `Max-Age=0`, on the paths they were set with.
pub fn clear_all(headers: &mut HeaderMap, settings: &Settings) {
    for (name, path, http_only) in [
        (ACCESS, "/", true),
        (REFRESH, REFRESH_PATH, true),
        (CSRF_ACCESS, "/", false),
        (CSRF_REFRESH, "/", false),
    ] {
        let mut cookie = build(settings, name, String::new(), path, http_only);
        cookie.set_max_age(cookie::time::Duration::ZERO);
        append(headers, &cookie);
    }
}
