//! TOTP (RFC 6238) as authenticator apps expect it: HMAC-SHA-1, 6 digits,
//! 30-second steps, a code of the step before or after the current one
//! accepted (clock drift, typing time). Which step a code matched is what
//! the store accepts once; the secret never leaves this module but in the
//! one answer of enrolment.

use super::super::AuthError;
use totp_rs::{Algorithm, Builder, Totp};

/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// Digits of a code.
pub(super) const DIGITS: usize = 6;

/// Seconds a step lasts.
const STEP_SECONDS: u64 = 30;

/// A user's TOTP generator: their secret, with the issuer and account an
/// authenticator app shows beside it.
pub(super) struct TotpKey(Totp);

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(..)")
    }
}

impl TotpKey {
    /// A new random secret, from the operating system's random source.
    pub(super) fn generate_secret() -> Vec<u8> {
        rand::random::<[u8; SECRET_BYTES]>().to_vec()
    }

    /// The key of `secret`, for the account `account` at `issuer` (which
    /// the settings and the username rules keep free of `:`).
    pub(super) fn new(secret: &[u8], issuer: &str, account: &str) -> Result<Self, AuthError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(secret.to_vec())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map(TotpKey)
            .map_err(|e| AuthError::Internal(format!("a TOTP key could not be built: {e}")))
    }

    /// The time step whose code `code` is, among the step of `now` and the
    /// one on either side; `None` for a wrong code, and for one that is not
    /// [`is_code`].
    pub(super) fn step_of(&self, code: &str, now: i64) -> Option<i64> {
        let now = u64::try_from(now).ok()?;
        let step = self.0.check(code, now)?;
        i64::try_from(step).ok()
    }

    /// The code of the step of `now` (for tests of the domain).
    #[cfg(test)]
    pub(super) fn code_at(&self, now: i64) -> String {
        self.0.generate(u64::try_from(now).unwrap_or(0)).to_string()
    }

    /// The secret in base32 (RFC 4648, unpadded), as apps take it typed in.
    pub(super) fn secret_base32(&self) -> String {
        self.0.secret().to_base32()
    }

    /// The `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER` URI
    /// (Google Authenticator's Key URI format) apps scan.
    pub(super) fn otpauth_uri(&self) -> Result<String, AuthError> {
        self.0
            .to_url()
            .map_err(|e| AuthError::Internal(format!("an otpauth URI could not be made: {e}")))
    }
}

/// Whether `code` has the shape of a code: exactly [`DIGITS`] ASCII digits.
pub(super) fn is_code(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// `text` as a QR code: an SVG document, 200 pixels square at least.
pub(super) fn qr_svg(text: &str) -> Result<String, AuthError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| AuthError::Internal(format!("a QR code could not be made: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's appendix B, SHA-1, cut to 6 digits (the last six of the
    /// RFC's eight).
    #[test]
    fn codes_are_rfc_6238s_and_accepted_one_step_either_side() {
        let key = TotpKey::new(b"12345678901234567890", "Tessera", "alice").unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
        ] {
            assert_eq!(key.code_at(time), code);
            assert_eq!(key.step_of(code, time), Some(time / 30));
        }
        let code = key.code_at(1_111_111_109);
        assert_eq!(
            key.step_of(&code, 1_111_111_109 + 30),
            Some(1_111_111_109 / 30)
        );
        assert_eq!(
            key.step_of(&code, 1_111_111_109 - 30),
            Some(1_111_111_109 / 30)
        );
        assert_eq!(key.step_of(&code, 1_111_111_109 + 60), None);
        assert_eq!(key.step_of(&code, 1_111_111_109 - 300), None);
        for bad in [
            "08180", "0818045", "O81804", "+81804", " 81804", "", "081804\n",
        ] {
            assert!(!is_code(bad), "{bad:?}");
            assert_eq!(key.step_of(bad, 1_111_111_109), None, "{bad:?}");
        }
        assert!(is_code("081804"));
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret_and_nothing_else() {
        let secret = TotpKey::generate_secret();
        assert_eq!(secret.len(), 20);
        assert_ne!(secret, TotpKey::generate_secret());
        let key = TotpKey::new(&secret, "Example Corp", "alice@example.com").unwrap();
        let base32 = key.secret_base32();
        assert_eq!(base32.len(), 32);
        assert_eq!(
            key.otpauth_uri().unwrap(),
            format!(
                "otpauth://totp/Example%20Corp:alice%40example.com?secret={base32}&issuer=Example%20Corp"
            )
        );
        assert_eq!(format!("{key:?}"), "TotpKey(..)", "never printed");
        let svg = qr_svg(&key.otpauth_uri().unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    }
}
