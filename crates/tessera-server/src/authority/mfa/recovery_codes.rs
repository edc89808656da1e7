//! Recovery codes: ten at a time, each 10 characters of a 31-letter
//! alphabet without look-alikes (about 49.5 random bits), shown once as
//! `xxxxx-xxxxx` and kept only as their SHA-256. So many bits make a fast
//! hash as good as a slow one (no guessing a code from its hash), and a
//! code is found by its hash, so no comparison of secrets happens here.

use rand::Rng;
use tessera_core::link::digest;

/// Codes given at a time.
pub const COUNT: usize = 10;

/// Characters of a code (the hyphen shown in the middle aside).
const CHARS: usize = 10;

/// Lowercase letters and digits without 0, 1, i, l and o, which read alike.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A new set of codes: what the user is shown once, and what is stored.
pub(super) struct RecoveryCodes {
    shown: Vec<String>,
    hashes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes(..)")
    }
}

impl RecoveryCodes {
    /// [`COUNT`] new codes, from the operating system's random source.
    pub(super) fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut shown = Vec::with_capacity(COUNT);
        let mut hashes = Vec::with_capacity(COUNT);
        while shown.len() < COUNT {
            let code: String = (0..CHARS)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect();
            let hash = digest(&code);
            // Two alike in one set (about 1 in 10^13): draw again.
            if hashes.contains(&hash) {
                continue;
            }
            shown.push(format!("{}-{}", &code[..CHARS / 2], &code[CHARS / 2..]));
            hashes.push(hash);
        }
        Self { shown, hashes }
    }

    /// The codes as the user is shown them, once.
    pub(super) fn into_shown(self) -> Vec<String> {
        self.shown
    }

    /// Their SHA-256 (hex), what the store keeps.
    pub(super) fn hashes(&self) -> &[String] {
        &self.hashes
    }
}

/// The stored hash of a code as the user typed it (any case, with or
/// without its hyphen and spaces), or `None` when it cannot be a code:
/// refused without a lookup.
pub(super) fn hash_of(typed: &str) -> Option<String> {
    if typed.len() > 4 * CHARS {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let shaped = code.len() == CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
    shaped.then(|| digest(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_each_found_by_its_hash_however_typed() {
        let codes = RecoveryCodes::generate();
        let hashes = codes.hashes().to_vec();
        assert_eq!(format!("{codes:?}"), "RecoveryCodes(..)", "never printed");
        let shown = codes.into_shown();
        assert_eq!(shown.len(), COUNT);
        let distinct: std::collections::HashSet<_> = shown.iter().collect();
        assert_eq!(distinct.len(), COUNT);
        for (code, hash) in shown.iter().zip(&hashes) {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(code.as_bytes()[5], b'-', "{code}");
            assert_eq!(hash_of(code).as_ref(), Some(hash));
            assert_eq!(hash_of(&code.to_uppercase()).as_ref(), Some(hash));
            assert_eq!(hash_of(&code.replace('-', "")).as_ref(), Some(hash));
            assert_eq!(hash_of(&code.replace('-', " ")).as_ref(), Some(hash));
        }
        assert_ne!(RecoveryCodes::generate().into_shown(), shown);
    }

    #[test]
    fn what_cannot_be_a_code_has_no_hash() {
        for bad in [
            "",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcde-fghj1",
            "abcde-fghjo",
            "abcde-fghj\u{e9}",
            "abcde_fghjk",
        ] {
            assert_eq!(hash_of(bad), None, "{bad:?}");
        }
        assert_eq!(hash_of(&"a".repeat(100_000)), None);
        assert!(hash_of("abcde-fghjk").is_some());
    }
}
