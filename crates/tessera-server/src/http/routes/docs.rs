//! The API's own documentation: the OpenAPI document and Swagger UI, every
//! asset served from the binary (utoipa-swagger-ui's vendored build), with
//! no redirect so that `/docs` and `/docs/` both answer like every other path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa_swagger_ui::Config;

/// What the documentation handlers share: the document and the UI's configuration.
#[derive(Clone)]
pub struct Docs {
    /// The OpenAPI document, serialised once.
    pub openapi: Arc<serde_json::Value>,
    config: Arc<Config<'static>>,
}

impl Docs {
    /// Documentation for this document, with the UI reading it from `/openapi.json`.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        let config = Config::from("/openapi.json")
            .try_it_out_enabled(true)
            .persist_authorization(false);
        Self {
            openapi: Arc::new(serde_json::to_value(openapi).unwrap_or_default()),
            config: Arc::new(config),
        }
    }
}

/// The OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(State(docs): State<Docs>) -> Json<serde_json::Value> {
    Json(docs.openapi.as_ref().clone())
}

/// Swagger UI's page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    summary = "Swagger UI",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub async fn index(State(docs): State<Docs>) -> Response {
    match utoipa_swagger_ui::serve("", docs.config.clone()) {
        Ok(Some(file)) => {
            // The page links its assets relative to itself ("./swagger-ui.css");
            // served at /docs (no slash) those would miss the folder.
            let html = String::from_utf8_lossy(&file.bytes)
                .replace("\"./", "\"/docs/")
                .replace("href=\"index.css\"", "href=\"/docs/index.css\"");
            ([(header::CONTENT_TYPE, file.content_type)], html).into_response()
        }
        _ => crate::http::extract::error::ApiError::NotFound.into_response(),
    }
}

/// Swagger UI's scripts, styles and configuration.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "operations",
    summary = "Swagger UI assets",
    params(("file" = String, Path, description = "Asset name")),
    responses(
        (status = 200, description = "The asset", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such asset", body = super::openapi::ErrorDetail)
    )
)]
pub async fn asset(State(docs): State<Docs>, Path(file): Path<String>) -> Response {
    match utoipa_swagger_ui::serve(&file, docs.config.clone()) {
        Ok(Some(file)) => (
            [(header::CONTENT_TYPE, file.content_type)],
            file.bytes.into_owned(),
        )
            .into_response(),
        _ => crate::http::extract::error::ApiError::NotFound.into_response(),
    }
}
