//! `tessera_verify._native`: the Rust half of the Python package. Python
//! verifies Tessera's tokens with `tessera-verify`, the library Rust
//! services use, which validates with the server's own core: one
//! implementation of the rules. The Python half (`python/tessera_verify/`)
//! holds the exceptions and the framework integrations.

mod convert;
mod errors;
mod options;
mod process;
mod verifier;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<verifier::Verifier>()?;
    m.add_function(wrap_pyfunction!(verifier::bearer_token, m)?)?;
    m.add_function(wrap_pyfunction!(verifier::refusal_body, m)?)?;
    m.add(
        "NOT_AUTHENTICATED_BODY",
        convert::to_python(m.py(), &tessera_core::credentials::not_authenticated_body())?,
    )?;
    m.add("CHALLENGE", tessera_core::credentials::CHALLENGE)?;
    m.add(
        "CHALLENGE_INVALID",
        tessera_core::credentials::CHALLENGE_INVALID,
    )?;
    Ok(())
}
