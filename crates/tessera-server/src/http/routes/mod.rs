//! The routes: one module per area of docs/API.md, each handler documented
//! with `#[utoipa::path]` beside it, and the table that registers them.
//!
//! - [`tokens`]: simplejwt's token endpoints (obtain, refresh, verify, blacklist).
//! - [`oauth`]: the OAuth2 token, revocation and introspection endpoints.
//! - [`accounts`]: signup, the current user, password change, logout, the nginx check.
//! - [`recovery`]: password reset and email verification by mailed links.
//! - [`mfa`]: second factors (TOTP, recovery codes) and a login's second step.
//! - [`passkeys`]: passkeys (WebAuthn): registration, a login's second step, passwordless login.
//! - [`sessions`]: the caller's sessions, and any user's for staff.
//! - [`admin`]: the users, for staff.
//! - [`clients`]: service clients, for staff.
//! - [`audit`]: the audit log, for staff.
//! - [`revocations`]: the revocation feed other services follow.
//! - [`compat`]: the drop-in routes of the `compat` sets.
//! - [`meta`]: health, readiness, metrics, keys and discovery.
//! - [`page`]: the built-in page and its static files.
//! - [`docs`]: the OpenAPI document and Swagger UI.
//! - [`openapi`]: the document's frame and the schemas of the bodies the
//!   handlers answer with (the same structs).

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod clients;
pub mod compat;
pub mod docs;
pub mod meta;
pub mod mfa;
pub mod oauth;
pub mod openapi;
pub mod page;
pub mod passkeys;
pub mod recovery;
pub mod revocations;
pub mod sessions;
pub mod tokens;

use crate::authority::Authority;
use crate::config::CompatSet;
use axum::Router;
use axum::routing::get;
use openapi::ApiDoc;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its OpenAPI document, the drop-in routes of the sets
/// in `compat` among them: a route is registered only through its
/// documented handler, so none can go undocumented, and one that is not
/// served is not documented.
pub fn table(compat: &[CompatSet]) -> (Router<Arc<Authority>>, utoipa::openapi::OpenApi) {
    let mut routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tokens::obtain))
        .routes(routes!(tokens::refresh))
        .routes(routes!(tokens::verify))
        .routes(routes!(tokens::blacklist))
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::check))
        .routes(routes!(mfa::begin_totp, mfa::remove_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::regenerate_recovery_codes))
        .routes(routes!(mfa::verify))
        .routes(routes!(passkeys::begin_second_factor))
        .routes(routes!(passkeys::finish_second_factor))
        .routes(routes!(passkeys::begin_registration))
        .routes(routes!(passkeys::finish_registration))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::remove))
        .routes(routes!(passkeys::begin_login))
        .routes(routes!(passkeys::finish_login))
        .routes(routes!(recovery::request_reset))
        .routes(routes!(recovery::confirm_reset))
        .routes(routes!(recovery::request_verification))
        .routes(routes!(recovery::verify_email))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::revoke_user))
        .routes(routes!(admin::set_roles))
        .routes(routes!(admin::reset_mfa))
        .routes(routes!(clients::list, clients::add))
        .routes(routes!(clients::remove))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::end))
        .routes(routes!(sessions::end_others))
        .routes(routes!(sessions::admin_list))
        .routes(routes!(sessions::admin_end))
        .routes(routes!(audit::list))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(revocations::snapshot))
        .routes(routes!(revocations::stream))
        .routes(routes!(meta::healthz))
        .routes(routes!(meta::readyz))
        .routes(routes!(meta::metrics))
        .routes(routes!(meta::jwks))
        .routes(routes!(meta::openid_configuration))
        .routes(routes!(page::index))
        .routes(routes!(page::static_file));
    if compat.contains(&CompatSet::FlaskJwtExtended) {
        routes = routes
            .routes(routes!(compat::flask_login))
            .routes(routes!(compat::flask_refresh))
            .routes(routes!(compat::flask_logout));
    }
    if compat.contains(&CompatSet::Fastapi) {
        routes = routes.routes(routes!(compat::fastapi_token));
    }
    routes.split_for_parts()
}

/// The documentation's own routes, documented in the same document (which
/// they serve).
pub fn documentation(openapi: &mut utoipa::openapi::OpenApi) -> Router {
    let (router, docs_api) = OpenApiRouter::<docs::Docs>::new()
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::index))
        .split_for_parts();
    openapi.merge(docs_api);
    // The assets route is axum's catch-all `{*file}`, which OpenAPI cannot
    // name: document it as `{file}` and route it by hand.
    openapi.merge(
        OpenApiRouter::<docs::Docs>::new()
            .routes(routes!(docs::asset))
            .into_openapi(),
    );
    let state = docs::Docs::new(openapi);
    router
        .route("/docs/{*file}", get(docs::asset))
        .with_state(state)
}
