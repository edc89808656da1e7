//! The axum side: an extractor for handlers and a tower layer for whole
//! routers, answering refusals exactly as Tessera does.

use crate::Refusal;
use crate::verifier::{Claims, Verifier, VerifyError};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeOwned, IgnoredAny};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tessera_core::client::ClientClaims;
use tessera_core::credentials::{
    self, CHALLENGE, CHALLENGE_INVALID, Presented, not_authenticated_body, token_not_valid_body,
};

/// A request with a valid access token; `T` are the application's claims.
#[derive(Debug, Clone)]
pub struct Authenticated<T = IgnoredAny>(pub Claims<T>);

/// A request with a valid token of a Tessera service client (another
/// service calling this one): checked by [`Verifier::verify_client`], so a
/// removed client's token is refused once the feed says so. A user's token
/// is refused as `invalid`.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient(pub ClientClaims);

/// Why a request was refused, answered as Tessera answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials: 401 `not_authenticated`.
    NotAuthenticated,
    /// A refused token: 401 `token_not_valid` with the reason.
    Refused(Refusal),
    /// Two Authorization headers: 400.
    Ambiguous,
    /// Revocations cannot be checked now ([`VerifyError::Unavailable`]):
    /// 503 `{"detail": "Service temporarily unavailable, try again later."}`
    /// with `Retry-After` in whole seconds (at least 1).
    Unavailable {
        /// When to try again.
        retry_after: std::time::Duration,
    },
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Refused(refusal) => Rejection::Refused(refusal),
            VerifyError::Unavailable { retry_after } => Rejection::Unavailable { retry_after },
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, body, header) = match self {
            Rejection::NotAuthenticated => (
                StatusCode::UNAUTHORIZED,
                not_authenticated_body(),
                Some((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                )),
            ),
            Rejection::Refused(e) => (
                StatusCode::UNAUTHORIZED,
                token_not_valid_body(e.as_str()),
                Some((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE_INVALID),
                )),
            ),
            Rejection::Ambiguous => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"detail": "Multiple Authorization headers are not allowed."}),
                None,
            ),
            Rejection::Unavailable { retry_after } => {
                // Whole seconds, rounded up: never "0", which means "now".
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"detail": "Service temporarily unavailable, try again later."}),
                    Some((header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))),
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Reads the bearer token and verifies it.
async fn authenticate<T: DeserializeOwned>(
    verifier: &Verifier,
    headers: &HeaderMap,
) -> Result<Claims<T>, Rejection> {
    let token = bearer(headers)?;
    verifier.verify(&token).await.map_err(Rejection::from)
}

/// The one bearer token of `headers`, or the rejection Tessera answers.
fn bearer(headers: &HeaderMap) -> Result<String, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Rejection::NotAuthenticated)?;
    if values.next().is_some() {
        return Err(Rejection::Ambiguous);
    }
    match credentials::bearer(value.as_bytes(), &["Bearer".to_owned()]) {
        Presented::Nothing => Err(Rejection::NotAuthenticated),
        Presented::Unreadable => Err(Rejection::Refused(Refusal::Invalid)),
        Presented::Token(token) => Ok(token),
    }
}

impl<S> FromRequestParts<S> for AuthenticatedClient
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let token = bearer(&parts.headers)?;
        let verifier = Verifier::from_ref(state);
        let claims = verifier.verify_client(&token).await?;
        Ok(AuthenticatedClient(claims))
    }
}

impl<S, T> FromRequestParts<S> for Authenticated<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: DeserializeOwned + Send + Sync + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        // A router under VerifyLayer has verified already.
        if let Some(claims) = parts
            .extensions
            .get::<Claims<serde_json::Map<String, serde_json::Value>>>()
        {
            let custom =
                T::deserialize(serde::de::IntoDeserializer::into_deserializer(&claims.raw))
                    .map_err(|_| Rejection::Refused(Refusal::Invalid))?;
            return Ok(Authenticated(Claims {
                user_id: claims.user_id,
                username: claims.username.clone(),
                jti: claims.jti,
                fid: claims.fid,
                iat: claims.iat,
                exp: claims.exp,
                fresh: claims.fresh,
                raw: claims.raw.clone(),
                custom,
            }));
        }
        let verifier = Verifier::from_ref(state);
        authenticate(&verifier, &parts.headers)
            .await
            .map(Authenticated)
    }
}

/// A tower layer that lets through only requests with a valid access token,
/// putting its `Claims<Map<String, Value>>` in the request's extensions.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> VerifyService<S> {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S> tower::Service<Request<Body>> for VerifyService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match authenticate::<serde_json::Map<String, serde_json::Value>>(
                &verifier,
                request.headers(),
            )
            .await
            {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
