//! The web page at `/` and its static files, compiled into the binary.

use crate::authority::Authority;
use crate::config::{CompatSet, Settings};
use crate::http::extract::error::ApiError;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::sync::Arc;

/// The files under `/static/`, with their content types. The JS client and its
/// declarations are the npm package's own files (`clients/js/`), so that the
/// module served here and the one a front-end build installs are one source.
const FILES: [(&str, &str, &str); 5] = [
    (
        "tessera.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../../clients/js/tessera.js"),
    ),
    (
        "tessera.d.ts",
        "application/typescript; charset=utf-8",
        include_str!("../../../../../clients/js/tessera.d.ts"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../../static/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../../../static/style.css"),
    ),
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../../../../static/index.html"),
    ),
];

/// Where index.html names the token locations the server accepts. Filled in
/// on the way out, so that the page offers only the transports that work
/// here (cookie transport needs `cookies` in `token_locations`) without a
/// request of its own and without an inline script.
const TOKEN_LOCATIONS: &str = "{{token_locations}}";

/// Where index.html lists the drop-in routes of the `compat` setting.
const COMPAT_ROUTES: &str = "{{compat_routes}}";

/// Where index.html says whether mail is configured (`on` or `off`): the
/// page offers "forgot password" only when it is.
const EMAIL: &str = "{{email}}";

/// index.html with the configured token locations filled in, comma-separated
/// (`headers,cookies`), and the drop-in routes: fixed words, so nothing
/// needs escaping.
fn page(html: &str, settings: &Settings) -> String {
    let names: Vec<&str> = settings.token_locations.iter().map(|l| l.name()).collect();
    let routes: Vec<&str> = settings
        .compat
        .iter()
        .map(|set| match set {
            CompatSet::FlaskJwtExtended => {
                "<code>POST /login</code>, <code>POST /refresh</code> and <code>POST /logout</code> for Flask-JWT-Extended clients"
            }
            CompatSet::Fastapi => "<code>POST /token</code> for FastAPI OAuth2 clients",
        })
        .collect();
    let compat = if routes.is_empty() {
        String::new()
    } else {
        format!(
            "<p id=\"compat-routes\">Drop-in routes on this server: {}.</p>",
            routes.join("; ")
        )
    };
    let email = if settings.smtp_url.is_some() && settings.public_url.is_some() {
        "on"
    } else {
        "off"
    };
    html.replace(TOKEN_LOCATIONS, &names.join(","))
        .replace(COMPAT_ROUTES, &compat)
        .replace(EMAIL, email)
}

fn file(name: &str, settings: &Settings) -> Response {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::NotFound.into_response();
    };
    let body: Cow<'static, str> = if name == "index.html" {
        Cow::Owned(page(body, settings))
    } else {
        Cow::Borrowed(body)
    };
    ([(header::CONTENT_TYPE, *content_type)], body).into_response()
}

/// The page: sign up, log in, see the decoded tokens, refresh, log out; with
/// mail configured, ask for a reset link, and follow one (`?reset=TOKEN`: a
/// new-password form) or a verification link (`?verify=TOKEN`). It offers
/// only the token transports this server's `token_locations` accept.
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "The web page",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String))
)]
pub async fn index(State(authority): State<Arc<Authority>>) -> Response {
    file("index.html", authority.settings())
}

/// The page's files, the JS client module (`/static/tessera.js`) and its
/// TypeScript declarations (`/static/tessera.d.ts`).
#[utoipa::path(
    get,
    path = "/static/{file}",
    tag = "operations",
    summary = "The page's files and the browser client module",
    params(("file" = String, Path, description = "tessera.js, tessera.d.ts, app.js, style.css or index.html")),
    responses(
        (status = 200, description = "The file", content_type = "text/plain", body = String),
        (status = 404, description = "No such file", body = super::openapi::ErrorDetail)
    )
)]
pub async fn static_file(
    State(authority): State<Arc<Authority>>,
    Path(name): Path<String>,
) -> Response {
    file(&name, authority.settings())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenLocation;

    #[test]
    fn the_page_names_the_configured_token_locations() {
        let html = FILES.iter().find(|(n, _, _)| *n == "index.html").unwrap().2;
        assert!(
            html.contains(TOKEN_LOCATIONS),
            "index.html lost its placeholder"
        );
        let settings = Settings {
            token_locations: vec![TokenLocation::Headers, TokenLocation::Cookies],
            ..Settings::default()
        };
        let filled = page(html, &settings);
        assert!(filled.contains(r#"data-token-locations="headers,cookies""#));
        assert!(!filled.contains(TOKEN_LOCATIONS));
        let filled = page(html, &Settings::default());
        assert!(filled.contains(r#"data-token-locations="headers""#));
    }
}
