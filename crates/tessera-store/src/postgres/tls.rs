//! The TLS parameters of a PostgreSQL URL, and connection failures told in
//! their words.
//!
//! Managed PostgreSQL (RDS, Cloud SQL, Supabase, Neon) documents its URLs
//! for libpq, PostgreSQL's own client library, which psql and most drivers
//! use. sqlx reads a few TLS parameters otherwise, each time more weakly
//! than the operator asked for; [`connect_options`] reads them as libpq
//! does, or refuses what it cannot honour, rather than connect with less
//! protection than the URL says.

use crate::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::str::FromStr;

/// The names sqlx accepts for the CA file parameter (libpq's is the first).
const ROOT_CERT_KEYS: [&str; 3] = ["sslrootcert", "ssl-root-cert", "ssl-ca"];
/// The names sqlx accepts for the TLS mode parameter (libpq's is the first).
const MODE_KEYS: [&str; 2] = ["sslmode", "ssl-mode"];

/// How a PostgreSQL URL asks Tessera to connect: sqlx's reading of it
/// (host, user, `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, ...), with
/// its TLS parameters read as libpq reads them where sqlx would read them
/// otherwise:
///
/// * `sslmode=require` with `sslrootcert=FILE` verifies that the server's
///   certificate is signed by that CA (libpq's `verify-ca`), where sqlx
///   would verify nothing (sqlx 0.8's `verify-ca` checks the host as well:
///   stricter than libpq, never weaker);
/// * `sslrootcert=system` trusts the Mozilla roots built into Tessera (the
///   system's roots in libpq), where sqlx would look for a file named
///   `system`, and, as in libpq, needs `sslmode=verify-full` (the default
///   with it);
/// * `channel_binding=require` is refused: sqlx cannot bind the password
///   exchange to the TLS channel, and would ignore the parameter.
///
/// The CA file of a mode that verifies is read now, so that a missing or
/// unreadable one is named, not reported as a bare "No such file".
pub fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    // A URL the url crate cannot read, sqlx cannot either: its own error
    // names what is wrong ("invalid port number").
    let Ok(mut parsed) = url::Url::parse(url) else {
        return Ok(PgConnectOptions::from_str(url)?);
    };
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    // sqlx applies the parameters in order: the last of each wins.
    let last = |keys: &[&str]| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    };
    if last(&["channel_binding"]).as_deref() == Some("require") {
        return Err(StoreError::Tls(
            "channel_binding=require in database_url cannot be honoured: Tessera's PostgreSQL \
             client does not implement channel binding; remove it, and use \
             sslmode=verify-full (with sslrootcert=system or the provider's CA file), which \
             verifies the server's certificate and so guards against the same \
             man-in-the-middle"
                .into(),
        ));
    }
    let mode = last(&MODE_KEYS);
    let root = last(&ROOT_CERT_KEYS);
    if root.as_deref() == Some("system") {
        if mode.as_deref().is_some_and(|m| m != "verify-full") {
            return Err(StoreError::Tls(format!(
                "sslrootcert=system needs sslmode=verify-full in database_url (as in libpq), \
                 got sslmode={}",
                mode.unwrap_or_default()
            )));
        }
        // sqlx verifies against the Mozilla roots when no CA file is named.
        let kept: Vec<_> = pairs
            .iter()
            .filter(|(k, _)| !ROOT_CERT_KEYS.contains(&k.as_str()))
            .collect();
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        let options = PgConnectOptions::from_str(parsed.as_str())?;
        return Ok(options.ssl_mode(PgSslMode::VerifyFull));
    }
    let mut options = PgConnectOptions::from_str(url)?;
    // sqlx takes a value that looks like PEM as the certificates themselves.
    let file = root.filter(|r| !r.trim_start().starts_with("-----BEGIN"));
    let Some(file) = file else {
        return Ok(options);
    };
    if matches!(options.get_ssl_mode(), PgSslMode::Require) {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    if matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyCa | PgSslMode::VerifyFull
    ) {
        check_ca_file(&file)?;
    }
    Ok(options)
}

/// That `path`, a `sslrootcert`, can be read and holds a PEM certificate.
/// sqlx reads it again at each connection, so a renewed bundle is taken up
/// without a restart; this is only so that a wrong path stops the start
/// with its name.
fn check_ca_file(path: &str) -> StoreResult<()> {
    let text = std::fs::read(path).map_err(|e| {
        StoreError::Tls(format!(
            "sslrootcert {path} in database_url cannot be read: {e} (a relative path is taken \
             from the working directory)"
        ))
    })?;
    let needle = b"-----BEGIN CERTIFICATE-----";
    if !text.windows(needle.len()).any(|w| w == needle) {
        return Err(StoreError::Tls(format!(
            "sslrootcert {path} in database_url holds no PEM certificate (no line \
             -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(())
}

/// `error`, from connecting as `options` says, told in the words of the URL
/// parameters that would mend it where it is about TLS: a certificate not
/// trusted, one for another name, a server without TLS, or one that takes
/// only TLS connections while the URL asked for none. Anything else is
/// returned as it is.
pub fn explain_connect_error(error: sqlx::Error, options: &PgConnectOptions) -> StoreError {
    let mode = mode_name(options.get_ssl_mode());
    let host = options.get_host();
    let tls = match &error {
        sqlx::Error::Tls(e) if e.to_string().contains("server does not support TLS") => {
            format!(
                "the database server does not accept TLS connections, and sslmode={mode} in \
                 database_url requires TLS: turn ssl on in the server (managed PostgreSQL has \
                 it on)"
            )
        }
        sqlx::Error::Tls(e) => format!("TLS with the database server failed: {e}"),
        sqlx::Error::Io(e) => match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(reason)) => certificate(reason, host, mode),
            Some(other) => format!("TLS with the database server failed: {other}"),
            None => return StoreError::Database(error),
        },
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("28000") && db.message().contains("no encryption") =>
        {
            format!(
                "{}: the server takes only TLS connections from here, and database_url has \
                 sslmode={mode}; set sslmode=verify-full (or sslmode=require, which encrypts \
                 without checking whom it talks to)",
                db.message()
            )
        }
        _ => return StoreError::Database(error),
    };
    StoreError::Tls(tls)
}

/// Why the server's certificate was refused, and what to change.
fn certificate(reason: &rustls::CertificateError, host: &str, mode: &str) -> String {
    use rustls::CertificateError as E;
    match reason {
        E::UnknownIssuer | E::BadSignature => format!(
            "the database server's certificate is not signed by a CA Tessera trusts \
             (sslmode={mode} trusts the CA file named by sslrootcert, and the Mozilla roots): \
             set sslrootcert=PATH in database_url to the file of the CA that signed it (managed \
             PostgreSQL publishes its CA bundle) ({reason})"
        ),
        // sqlx 0.8 skips the host check of verify-ca only for an error
        // variant rustls no longer returns (sqlx issue 3793, fixed in 0.9):
        // verify-ca checks the host too, unlike libpq's.
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "the database server's certificate is not valid for {host}, the host in \
             database_url ({reason}): connect by a name the certificate carries (sslmode=\
             {mode} checks it{})",
            if mode == "verify-full" {
                ""
            } else {
                "; Tessera checks the host under verify-ca too, unlike libpq"
            }
        ),
        _ => format!("the database server's certificate was refused: {reason}"),
    }
}

/// The `sslmode` value naming `mode`.
fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        file
    }

    #[test]
    fn require_with_a_ca_file_verifies_the_ca_as_libpq_does() {
        let ca = ca_file();
        let path = ca.path().display();
        let url = format!("postgres://u@h/db?sslmode=require&sslrootcert={path}");
        let options = connect_options(&url).expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));
        // Without a CA file, require encrypts and verifies nothing.
        let options = connect_options("postgres://u@h/db?sslmode=require").expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Require));
        let url = format!("postgres://u@h/db?sslmode=verify-full&sslrootcert={path}");
        let options = connect_options(&url).expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn system_roots_mean_verify_full_without_a_file() {
        for url in [
            "postgres://u@h/db?sslrootcert=system",
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=system&application_name=a",
        ] {
            let options = connect_options(url).expect(url);
            assert!(
                matches!(options.get_ssl_mode(), PgSslMode::VerifyFull),
                "{url}"
            );
            assert_eq!(options.get_database(), Some("db"));
        }
        let options = connect_options("postgres://u@h/db?sslrootcert=system&application_name=a")
            .expect("options");
        assert_eq!(options.get_application_name(), Some("a"));
        let err = connect_options("postgres://u@h/db?sslmode=require&sslrootcert=system")
            .expect_err("a weaker mode");
        assert!(
            err.to_string().contains("needs sslmode=verify-full"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let url = "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
        let err = connect_options(url).expect_err("no such file");
        assert!(matches!(err, StoreError::Tls(_)));
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let url = format!(
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert={}",
            empty.path().display()
        );
        let err = connect_options(&url).expect_err("no certificate");
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        // A mode that verifies nothing does not read it (as sqlx does not).
        let url = "postgres://u@h/db?sslmode=prefer&sslrootcert=/nonexistent/ca.pem";
        assert!(connect_options(url).is_ok());
    }

    #[test]
    fn channel_binding_required_is_refused_not_ignored() {
        let err = connect_options("postgres://u@h/db?sslmode=require&channel_binding=require")
            .expect_err("refused");
        assert!(err.to_string().contains("channel_binding=require"), "{err}");
        assert!(connect_options("postgres://u@h/db?channel_binding=prefer").is_ok());
    }

    #[test]
    fn a_malformed_url_keeps_sqlx_s_words() {
        let err = connect_options("postgres://u@h:notaport/db").expect_err("malformed");
        assert!(err.to_string().contains("invalid port number"), "{err}");
    }
}
