//! The tokens of mailed links (password reset, email verification): 32
//! random bytes in base64url, of which the database keeps only the SHA-256,
//! so that a copy of the database opens no account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Characters of a link token: 32 bytes in unpadded base64url.
pub const TOKEN_CHARS: usize = 43;

/// A new link token and the hash to store for it.
pub struct LinkToken {
    /// What goes in the link; never stored, never logged.
    pub token: String,
    /// SHA-256 of the token, lowercase hex: what the database keeps.
    pub hash: String,
}

impl LinkToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = digest(&token);
        Self { token, hash }
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(..)")
    }
}

/// The stored hash of `token`, or `None` when `token` cannot be one Tessera
/// made (wrong length or alphabet): such a token is refused without a
/// database lookup.
pub fn stored_hash(token: &str) -> Option<String> {
    let decoded = URL_SAFE_NO_PAD.decode(token).ok()?;
    (token.len() == TOKEN_CHARS && decoded.len() == 32).then(|| digest(token))
}

/// SHA-256 (hex) of `value`: how an address asked for is counted by the
/// mail limits without being kept.
pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_accepted_and_hashes_to_its_hash() {
        let made = LinkToken::generate();
        assert_eq!(made.token.len(), TOKEN_CHARS);
        assert_eq!(
            stored_hash(&made.token).as_deref(),
            Some(made.hash.as_str())
        );
        assert_eq!(made.hash.len(), 64);
        assert_ne!(LinkToken::generate().token, made.token);
        assert_eq!(format!("{made:?}"), "LinkToken(..)", "never printed");
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_refused() {
        let good = LinkToken::generate().token;
        for bad in [
            String::new(),
            good[..42].to_owned(),
            format!("{good}A"),
            format!("{}=", &good[..42]),
            format!("{}+", &good[..42]),
            format!("{}/", &good[..42]),
            format!("{}\u{e9}", &good[..41]),
            "a".repeat(10_000),
            format!("{}\r\n", &good[..41]),
        ] {
            assert_eq!(stored_hash(&bad), None, "{bad:?}");
        }
    }
}
