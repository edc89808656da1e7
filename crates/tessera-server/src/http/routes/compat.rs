//! Drop-in routes for the other stacks' clients (setting `compat`): the
//! login, refresh and logout a Flask-JWT-Extended app writes, and the token route
//! of FastAPI's OAuth2 tutorial. The same token machinery as every other
//! route; only the wire formats differ, each with its error type below.

use super::oauth::token_response;
use super::openapi::*;
use super::tokens::tokens;
use crate::authority::{AuthError, Authority, LoginMethod, Refusal, Transport};
use crate::config::{Settings, TokenLocation};
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::cookies;
use crate::http::extract::error::{ApiError, EMAIL_NOT_VERIFIED, no_store};
use crate::http::serving::body::{BodyFormat, Payload, body_format};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tessera_core::claims::TokenType;
use tessera_core::credentials::{self, Presented};

/// A string field of a body, if it is one.
fn string<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// `POST /login` (`flask_jwt_extended`): a JSON username and password.
#[utoipa::path(
    post,
    path = "/login",
    tag = "compat",
    summary = "Flask-JWT-Extended's login: an access and a refresh token",
    request_body(content((Credentials = "application/json"))),
    responses(
        (status = 200, description = "The tokens", body = FlaskTokens, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "Bad username or password; or `mfa_required` (with `mfa_token` and `methods`) for a user with a second factor, answered at /api/auth/mfa/verify; or `mfa_enrolment_required` (with `enrolment_token`) for a user the `mfa` setting requires a factor of who has none", body = FlaskMessage),
        (status = 400, description = "Not JSON, or not an object", body = FlaskMessage),
        (status = 415, description = "Not a JSON body", body = FlaskMessage),
        (status = 429, description = "Throttled: too many attempts", body = FlaskMessage, headers(("Retry-After" = u64))),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail)
    )
)]
pub async fn flask_login(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Result<Payload, ApiError>,
) -> Result<Response, FlaskError> {
    // Flask's `request.json` reads JSON only, whatever else a body may be.
    if !matches!(body_format(content_type(&headers)), Some(BodyFormat::Json)) {
        return Err(FlaskError::NotJson);
    }
    let Payload(body) = payload?;
    let (Some(username), Some(password)) = (string(&body, "username"), string(&body, "password"))
    else {
        return Err(FlaskError::Api(ApiError::NoActiveAccount));
    };
    let origin = origin(client, &headers, LoginMethod::FlaskJwtExtended);
    let (pair, _) = authority
        .sessions()
        .login(username, password, &origin, Transport::Header)
        .await?;
    Ok(tokens(FlaskTokens {
        access_token: pair.access.token,
        refresh_token: pair.refresh.token,
    }))
}

/// `POST /refresh` (`flask_jwt_extended`): the refresh token in
/// `Authorization: Bearer`, never in the body.
#[utoipa::path(
    post,
    path = "/refresh",
    tag = "compat",
    summary = "Flask-JWT-Extended's refresh: the refresh token in the Authorization header",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new access token (and refresh token, when rotating)", body = FlaskRefreshed, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "Missing Authorization Header, Token has expired, Token has been revoked", body = FlaskMessage),
        (status = 422, description = "A malformed or wrongly signed token, a bad header, or an access token", body = FlaskMessage)
    )
)]
pub async fn flask_refresh(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Result<Response, FlaskError> {
    let token = bearer_from(&headers, &authority.settings().auth_header_types)?;
    let origin = origin(client, &headers, LoginMethod::FlaskJwtExtended);
    let refreshed = authority
        .tokens()
        .refresh(&token, Transport::Header, None, &origin)
        .await?;
    Ok(tokens(FlaskRefreshed {
        access_token: refreshed.access.token,
        refresh_token: refreshed.refresh.map(|r| r.token),
    }))
}

/// `POST /logout` (`flask_jwt_extended`): what the logout of Flask-JWT-Extended's
/// documentation answers, `{"msg": "logout successful"}`, once the session of
/// the token presented has ended as `/api/auth/logout` ends it. The token is
/// an access token, or a refresh token (which is blacklisted too), as
/// `@jwt_required(verify_type=False)` takes it: in `Authorization: Bearer`,
/// or in the access cookie (with its CSRF header) when `cookies` is among the
/// token locations; the cookies are cleared, as `unset_jwt_cookies` does.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "compat",
    summary = "Flask-JWT-Extended's logout: ends the session of the token presented",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Logged out: every token of the session is refused; the cookies cleared", body = FlaskMessage),
        (status = 401, description = "Missing Authorization Header, Token has expired, Token has been revoked, CSRF double submit tokens do not match", body = FlaskMessage),
        (status = 422, description = "A malformed or wrongly signed token, or a bad header", body = FlaskMessage)
    )
)]
pub async fn flask_logout(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Result<Response, FlaskError> {
    let settings = authority.settings();
    let (token, from_cookie) = presented_token(&headers, settings)?;
    let (claims, _) = authority.tokens().check(&token, None).await?;
    // A browser sends the cookie to any request a page makes it send: a
    // logout through it must prove it comes from our page, as every unsafe
    // cookie-authenticated request must.
    if from_cookie {
        crate::authority::Tokens::check_csrf(
            &claims,
            cookies::header_value(&headers, cookies::CSRF_HEADER),
        )?;
    }
    let refresh = (claims.token_type == TokenType::Refresh).then_some(token.as_str());
    let origin = origin(client, &headers, LoginMethod::FlaskJwtExtended);
    authority
        .sessions()
        .logout(&claims, refresh, &origin)
        .await?;
    let mut response = msg(StatusCode::OK, "logout successful");
    cookies::clear_all(response.headers_mut(), settings);
    Ok(response)
}

/// The token of a Flask-JWT-Extended request, from the first of the header
/// and the access cookie (in the order of `token_locations`) that carries
/// one, and whether it came from the cookie.
fn presented_token(headers: &HeaderMap, settings: &Settings) -> Result<(String, bool), FlaskError> {
    for location in &settings.token_locations {
        match location {
            TokenLocation::Headers if headers.contains_key(header::AUTHORIZATION) => {
                return Ok((bearer_from(headers, &settings.auth_header_types)?, false));
            }
            TokenLocation::Cookies => {
                if let Some(token) = cookies::get(headers, cookies::ACCESS) {
                    // As an unreadable header is: not a token at all.
                    if token.is_empty() || !credentials::is_visible_ascii(token.as_bytes()) {
                        return Err(FlaskError::Api(ApiError::BadToken(Refusal::Invalid)));
                    }
                    return Ok((token, true));
                }
            }
            _ => {}
        }
    }
    Err(FlaskError::MissingHeader)
}

/// The one `Authorization: Bearer <JWT>` of a Flask-JWT-Extended request.
fn bearer_from(headers: &HeaderMap, types: &[String]) -> Result<String, FlaskError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(FlaskError::MissingHeader);
    };
    if values.next().is_some() {
        return Err(FlaskError::BadHeader);
    }
    match credentials::bearer(value.as_bytes(), types) {
        Presented::Token(token) => Ok(token),
        Presented::Nothing => Err(FlaskError::BadHeader),
        Presented::Unreadable => Err(FlaskError::Api(ApiError::BadToken(Refusal::Invalid))),
    }
}

/// The errors of the Flask-JWT-Extended routes, in its `{"msg": ...}` shape
/// and statuses.
#[derive(Debug)]
pub enum FlaskError {
    /// Anything the other routes also answer; mapped to Flask's bodies.
    Api(ApiError),
    /// No `Authorization` header.
    MissingHeader,
    /// Two headers, or another scheme than `Bearer`.
    BadHeader,
    /// A login body that is not JSON.
    NotJson,
}

impl From<ApiError> for FlaskError {
    fn from(e: ApiError) -> Self {
        FlaskError::Api(e)
    }
}

impl From<AuthError> for FlaskError {
    fn from(e: AuthError) -> Self {
        FlaskError::Api(e.into())
    }
}

fn msg(status: StatusCode, message: impl Into<String>) -> Response {
    let body = FlaskMessage {
        msg: message.into(),
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for FlaskError {
    fn into_response(self) -> Response {
        let e = match self {
            FlaskError::MissingHeader => {
                return msg(StatusCode::UNAUTHORIZED, "Missing Authorization Header");
            }
            FlaskError::BadHeader => {
                return msg(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'",
                );
            }
            FlaskError::NotJson => {
                return msg(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.",
                );
            }
            FlaskError::Api(e) => e,
        };
        match e {
            ApiError::NoActiveAccount => msg(StatusCode::UNAUTHORIZED, "Bad username or password"),
            ApiError::EmailNotVerified => msg(StatusCode::UNAUTHORIZED, EMAIL_NOT_VERIFIED),
            ApiError::MfaRequired(challenge) => {
                // Flask's `msg`, beside the fields every login route answers.
                let mut body = crate::http::extract::error::mfa_required_fields(&challenge);
                body.insert(
                    "msg".into(),
                    json!(crate::http::extract::error::MFA_REQUIRED),
                );
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                no_store(response.headers_mut());
                response
            }
            ApiError::MfaEnrolmentRequired(enrolment) => {
                let error = crate::http::extract::error::mfa_enrolment_required_fields;
                let mut body = error(&enrolment);
                body.insert(
                    "msg".into(),
                    json!(crate::http::extract::error::MFA_ENROLMENT_REQUIRED),
                );
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                no_store(response.headers_mut());
                response
            }
            ApiError::BadToken(Refusal::Expired) => {
                msg(StatusCode::UNAUTHORIZED, "Token has expired")
            }
            ApiError::BadToken(Refusal::Revoked) => {
                msg(StatusCode::UNAUTHORIZED, "Token has been revoked")
            }
            ApiError::BadToken(Refusal::WrongType) => msg(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Only refresh tokens are allowed",
            ),
            ApiError::BadToken(Refusal::Invalid) | ApiError::TokenNotValid => {
                msg(StatusCode::UNPROCESSABLE_ENTITY, "Invalid token")
            }
            ApiError::BadRequest(detail) => msg(StatusCode::BAD_REQUEST, detail),
            // Flask-JWT-Extended's CSRFError.
            ApiError::CsrfFailed => msg(
                StatusCode::UNAUTHORIZED,
                "CSRF double submit tokens do not match",
            ),
            ApiError::Throttled(seconds) => {
                let mut response = msg(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many attempts. Try again in {seconds} seconds."),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            // 413, 503, 500: as on every route.
            other => other.into_response(),
        }
    }
}

/// `POST /token` (`fastapi`): FastAPI's `OAuth2PasswordRequestForm`.
#[utoipa::path(
    post,
    path = "/token",
    tag = "compat",
    summary = "The FastAPI tutorial's token route: an OAuth2 password form",
    request_body(content((FastApiForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The tokens", body = OAuthToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "Incorrect username or password; or `mfa_required` (with `mfa_token` and `methods`) for a user with a second factor, answered at /api/auth/mfa/verify; or `mfa_enrolment_required` (with `enrolment_token`) for a user the `mfa` setting requires a factor of who has none", body = ErrorDetail, headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 422, description = "FastAPI's validation error: a field missing, or not a form", body = FastApiValidation),
        (status = 429, description = "Throttled: too many attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail)
    )
)]
pub async fn fastapi_token(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Result<Payload, ApiError>,
) -> Result<Response, FastApiError> {
    // FastAPI reads form fields only: a JSON body has none of them.
    let form = match body_format(content_type(&headers)) {
        Some(BodyFormat::Form) => payload?.0,
        _ => Map::new(),
    };
    let (username, password) = fastapi_credentials(&form).map_err(FastApiError::Invalid)?;
    let origin = origin(client, &headers, LoginMethod::Fastapi);
    let (pair, _) = authority
        .sessions()
        .login(username, password, &origin, Transport::Header)
        .await?;
    Ok(token_response(&pair.access, &pair.refresh.token))
}

/// The username and password of FastAPI's `OAuth2PasswordRequestForm`, or
/// pydantic's list of what is wrong with the form.
fn fastapi_credentials(form: &Map<String, Value>) -> Result<(&str, &str), Vec<Value>> {
    let mut problems = Vec::new();
    for name in ["username", "password"] {
        if string(form, name).is_none() {
            problems.push(json!({
                "type": "missing", "loc": ["body", name], "msg": "Field required", "input": null,
            }));
        }
    }
    if let Some(grant_type) = string(form, "grant_type")
        && grant_type != "password"
    {
        problems.push(json!({
            "type": "string_pattern_mismatch", "loc": ["body", "grant_type"],
            "msg": "String should match pattern '^password$'", "input": grant_type,
            "ctx": {"pattern": "^password$"},
        }));
    }
    let (Some(username), Some(password), true) = (
        string(form, "username"),
        string(form, "password"),
        problems.is_empty(),
    ) else {
        return Err(problems);
    };
    Ok((username, password))
}

/// The errors of the FastAPI route: FastAPI's 422 validation body, and the
/// tutorial's 401.
#[derive(Debug)]
pub enum FastApiError {
    /// Anything the other routes also answer.
    Api(ApiError),
    /// Fields missing or malformed: FastAPI's `detail` list.
    Invalid(Vec<Value>),
}

impl From<ApiError> for FastApiError {
    fn from(e: ApiError) -> Self {
        FastApiError::Api(e)
    }
}

impl From<AuthError> for FastApiError {
    fn from(e: AuthError) -> Self {
        FastApiError::Api(e.into())
    }
}

impl IntoResponse for FastApiError {
    fn into_response(self) -> Response {
        match self {
            FastApiError::Invalid(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": detail })),
            )
                .into_response(),
            FastApiError::Api(ApiError::NoActiveAccount) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"detail": "Incorrect username or password"})),
            )
                .into_response(),
            // A form FastAPI could not parse is a 422 there too.
            FastApiError::Api(ApiError::BadRequest(detail)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"detail": [{"type": "value_error", "loc": ["body"], "msg": detail, "input": null}]})),
            )
                .into_response(),
            FastApiError::Api(other) => other.into_response(),
        }
    }
}
