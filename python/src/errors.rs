//! The package's exceptions, defined in Python (`tessera_verify._errors`,
//! where they can carry attributes and docstrings) and raised from here.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use tessera_verify::{Refusal, VerifyError};

static TOKEN_REFUSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FEED_UNAVAILABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIGURATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "tessera_verify._errors", name)
}

/// `TokenRefused(reason)`.
pub fn refused(py: Python<'_>, refusal: Refusal) -> PyErr {
    match class(py, &TOKEN_REFUSED, "TokenRefused").and_then(|c| c.call1((refusal.as_str(),))) {
        Ok(error) => PyErr::from_value(error),
        Err(e) => e,
    }
}

/// `FeedUnavailable(retry_after)`, in seconds.
pub fn unavailable(py: Python<'_>, retry_after: std::time::Duration) -> PyErr {
    match class(py, &FEED_UNAVAILABLE, "FeedUnavailable")
        .and_then(|c| c.call1((retry_after.as_secs_f64(),)))
    {
        Ok(error) => PyErr::from_value(error),
        Err(e) => e,
    }
}

/// What a failed verification raises.
pub fn verify_error(py: Python<'_>, error: VerifyError) -> PyErr {
    match error {
        VerifyError::Refused(refusal) => refused(py, refusal),
        VerifyError::Unavailable { retry_after } => unavailable(py, retry_after),
    }
}

/// `ConfigurationError(message)`: options that cannot make a verifier.
pub fn configuration(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match class(py, &CONFIGURATION_ERROR, "ConfigurationError").and_then(|c| c.call1((message,))) {
        Ok(error) => PyErr::from_value(error),
        Err(e) => e,
    }
}
