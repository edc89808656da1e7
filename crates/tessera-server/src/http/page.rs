//! The web page at `/` and its static files, compiled into the binary.

use super::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The files under `/static/`, with their content types.
const FILES: [(&str, &str, &str); 4] = [
    (
        "tessera.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../static/tessera.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../static/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../../static/style.css"),
    ),
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../../../static/index.html"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => ApiError::NotFound.into_response(),
    }
}

/// The page: sign up, log in, see the decoded tokens, refresh, log out.
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "The web page",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String))
)]
pub async fn index() -> Response {
    file("index.html")
}

/// The page's files and the JS client module (`/static/tessera.js`).
#[utoipa::path(
    get,
    path = "/static/{file}",
    tag = "operations",
    summary = "The page's files and the browser client module",
    params(("file" = String, Path, description = "tessera.js, app.js, style.css or index.html")),
    responses(
        (status = 200, description = "The file", content_type = "text/plain", body = String),
        (status = 404, description = "No such file", body = super::openapi::ErrorDetail)
    )
)]
pub async fn static_file(Path(name): Path<String>) -> Response {
    file(&name)
}
