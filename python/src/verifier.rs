//! `tessera_verify.Verifier`: checks Tessera's tokens with
//! `tessera_verify::Verifier`, one per process that verifies.

use crate::convert;
use crate::errors;
use crate::options::{Given, Options};
use crate::process;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde::de::IgnoredAny;
use std::sync::{Mutex, PoisonError};
use tessera_core::credentials::{self, Presented};
use tessera_verify::Refusal;
use tokio::runtime::Handle;

/// The verifier of one process, and the runtime its follower runs on.
#[derive(Clone)]
struct Built {
    pid: u32,
    verifier: tessera_verify::Verifier,
    runtime: Handle,
}

/// Verifies Tessera's tokens (see the Python docstrings in `_native.pyi`).
#[pyclass(frozen, module = "tessera_verify._native")]
pub struct Verifier {
    options: Options,
    /// Built by the first verification in each process.
    built: Mutex<Option<Built>>,
}

/// The token a Python value holds: `str`, or ASCII `bytes`; anything else
/// is refused as `invalid`, as a malformed token is.
fn token_text(py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = token.extract::<String>() {
        return Ok(text);
    }
    if let Ok(bytes) = token.cast::<PyBytes>()
        && let Ok(text) = std::str::from_utf8(bytes.as_bytes())
    {
        return Ok(text.to_owned());
    }
    Err(errors::refused(py, Refusal::Invalid))
}

impl Verifier {
    /// The token as text and this process's verifier: what each
    /// verification starts from.
    fn prepare(&self, py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<(String, Built)> {
        let token = token_text(py, token)?;
        let built = self.current().map_err(|e| errors::configuration(py, e))?;
        Ok((token, built))
    }

    /// This process's verifier, built now if this process has none (the
    /// first verification, or the first after a fork).
    fn current(&self) -> Result<Built, String> {
        let pid = std::process::id();
        let mut slot = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(built) = slot.as_ref()
            && built.pid == pid
        {
            return Ok(built.clone());
        }
        if let Some(inherited) = slot.take() {
            // The parent's follower task lives on a runtime whose threads
            // did not survive the fork: dropping it could wait on them.
            std::mem::forget(inherited);
        }
        let runtime = process::runtime()?;
        let verifier = {
            // The follower task is spawned on the runtime entered here.
            let _entered = runtime.enter();
            self.options
                .builder(true)
                .build()
                .map_err(|e| e.to_string())?
        };
        let built = Built {
            pid,
            verifier,
            runtime,
        };
        *slot = Some(built.clone());
        Ok(built)
    }
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (
        *,
        jwks_url = None,
        secret = None,
        public_key = None,
        algorithm = None,
        algorithms = None,
        issuer = None,
        audience = None,
        leeway = 0.0,
        token_type = "access".to_owned(),
        user_id_claim = None,
        subject = "user_id".to_owned(),
        claim_names = None,
        jwks_min_interval = 10.0,
        jwks_max_age = 300.0,
        introspection_url = None,
        introspection_ttl = 5.0,
        revocations = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        jwks_url: Option<String>,
        secret: Option<&Bound<'_, PyAny>>,
        public_key: Option<&Bound<'_, PyAny>>,
        algorithm: Option<String>,
        algorithms: Option<Vec<String>>,
        issuer: Option<String>,
        audience: Option<String>,
        leeway: f64,
        token_type: String,
        user_id_claim: Option<String>,
        subject: String,
        claim_names: Option<&Bound<'_, PyDict>>,
        jwks_min_interval: f64,
        jwks_max_age: f64,
        introspection_url: Option<String>,
        introspection_ttl: f64,
        revocations: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let options = Options::read(Given {
            jwks_url,
            secret,
            public_key,
            algorithm,
            algorithms,
            issuer,
            audience,
            leeway,
            token_type,
            user_id_claim,
            subject,
            claim_names,
            jwks_min_interval,
            jwks_max_age,
            introspection_url,
            introspection_ttl,
            revocations,
        })
        .map_err(|e| errors::configuration(py, e))?;
        // The keys are checked now (a PEM that does not parse is an error
        // here, not at the first request); no thread starts.
        options
            .builder(false)
            .build()
            .map_err(|e| errors::configuration(py, e.to_string()))?;
        Ok(Self {
            options,
            built: Mutex::new(None),
        })
    }

    /// Verifies a user's token and returns its claims as a dict.
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (token, built) = self.prepare(py, token)?;
        let verified = py.detach(|| {
            built
                .runtime
                .block_on(built.verifier.verify::<IgnoredAny>(&token))
        });
        match verified {
            Ok(claims) => convert::object(py, &claims.raw),
            Err(e) => Err(errors::verify_error(py, e)),
        }
    }

    /// Verifies a service client's token (`client_credentials`) and
    /// returns its claims as a dict.
    fn verify_client<'py>(
        &self,
        py: Python<'py>,
        token: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (token, built) = self.prepare(py, token)?;
        let verified = py.detach(|| built.runtime.block_on(built.verifier.verify_client(&token)));
        match verified {
            Ok(claims) => {
                let dict = PyDict::new(py);
                dict.set_item("client_id", &claims.client_id)?;
                dict.set_item("sub", &claims.client_id)?;
                dict.set_item("scopes", &claims.scopes)?;
                dict.set_item("jti", claims.jti.as_str())?;
                dict.set_item("iat", claims.iat)?;
                dict.set_item("exp", claims.exp)?;
                Ok(dict)
            }
            Err(e) => Err(errors::verify_error(py, e)),
        }
    }

    /// Starts following the revocation feed in this process now, instead of
    /// at the first verification (from a server's post-fork hook, say).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.current()
            .map(|_| ())
            .map_err(|e| errors::configuration(py, e))
    }

    /// Where the revocation feed's follower stands in this process; `None`
    /// without `revocations`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if !self.options.follows_feed() {
            return Ok(None);
        }
        let pid = std::process::id();
        let status = self
            .built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|built| built.pid == pid)
            .and_then(|built| built.verifier.feed_status());
        let dict = PyDict::new(py);
        match status {
            None => {
                dict.set_item("started", false)?;
                dict.set_item("connected", false)?;
                dict.set_item("current", false)?;
                dict.set_item("lag", py.None())?;
                dict.set_item("cursor", py.None())?;
                dict.set_item("markers", 0)?;
                dict.set_item("last_error", py.None())?;
            }
            Some(status) => {
                dict.set_item("started", true)?;
                dict.set_item("connected", status.connected)?;
                dict.set_item("current", status.current)?;
                dict.set_item("lag", status.lag.map(|lag| lag.as_secs_f64()))?;
                dict.set_item("cursor", status.cursor.map(|c| c.to_string()))?;
                dict.set_item("markers", status.markers)?;
                dict.set_item("last_error", status.last_error)?;
            }
        }
        Ok(Some(dict))
    }

    fn __repr__(&self) -> String {
        format!(
            "<tessera_verify.Verifier follows_feed={}>",
            if self.options.follows_feed() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// The bearer token of an `Authorization` header value, as Tessera reads
/// it: `None` when it holds no bearer credentials (another scheme, no
/// header), `TokenRefused("invalid")` when what follows `Bearer ` cannot be
/// a token.
#[pyfunction]
#[pyo3(signature = (value, schemes = None))]
pub fn bearer_token(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    schemes: Option<Vec<String>>,
) -> PyResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let bytes: Vec<u8> = if let Ok(bytes) = value.cast::<PyBytes>() {
        bytes.as_bytes().to_vec()
    } else if let Ok(text) = value.extract::<String>() {
        text.into_bytes()
    } else {
        return Ok(None);
    };
    let schemes = schemes.unwrap_or_else(|| vec!["Bearer".to_owned()]);
    match credentials::bearer(&bytes, &schemes) {
        Presented::Nothing => Ok(None),
        Presented::Unreadable => Err(errors::refused(py, Refusal::Invalid)),
        Presented::Token(token) => Ok(Some(token)),
    }
}

/// Tessera's 401 body for a refused token: `{"detail": ..., "code":
/// "token_not_valid", "reason": reason}`.
#[pyfunction]
pub fn refusal_body<'py>(py: Python<'py>, reason: &str) -> PyResult<Bound<'py, PyAny>> {
    convert::to_python(py, &credentials::token_not_valid_body(reason))
}
