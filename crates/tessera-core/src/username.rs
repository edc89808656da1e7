//! Usernames as docs/API.md defines them: NFKC-normalised like Django's,
//! 1 to 150 characters, no control characters, not only whitespace.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// The longest username accepted, in characters (Django's limit).
pub const MAX_USERNAME_CHARS: usize = 150;

/// A valid, normalised username.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

/// Why a username is refused, with Django REST framework's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Empty or only whitespace.
    #[error("This field may not be blank.")]
    Blank,
    /// Over 150 characters.
    #[error("Ensure this field has no more than 150 characters.")]
    TooLong,
    /// Contains a control character (NUL included).
    #[error("Enter a valid username. This value may not contain control characters.")]
    ControlCharacter,
}

impl Username {
    /// Normalises `input` (NFKC) and checks it.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        // Bound the work before normalising: NFKC can only grow a string by a
        // small factor, and anything this long fails the length check anyway.
        if input.chars().count() > MAX_USERNAME_CHARS * 4 {
            return Err(UsernameError::TooLong);
        }
        let normalised: String = input.nfkc().collect();
        if normalised.chars().any(char::is_control) {
            return Err(UsernameError::ControlCharacter);
        }
        if normalised.trim().is_empty() {
            return Err(UsernameError::Blank);
        }
        if normalised.chars().count() > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        Ok(Self(normalised))
    }

    /// The normalised form, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised form, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_letters_normalise_to_ascii() {
        assert_eq!(Username::parse("ａｄｍｉｎ").unwrap().as_str(), "admin");
    }

    #[test]
    fn case_and_inner_spaces_are_kept() {
        assert_eq!(
            Username::parse("Alice Smith").unwrap().as_str(),
            "Alice Smith"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(Username::parse(""), Err(UsernameError::Blank));
        assert_eq!(
            Username::parse(" \t "),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(Username::parse("   "), Err(UsernameError::Blank));
        assert_eq!(
            Username::parse("a\0b"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(
            Username::parse(&"a".repeat(151)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            Username::parse(&"a".repeat(10_000)),
            Err(UsernameError::TooLong)
        );
        assert!(Username::parse(&"é".repeat(150)).is_ok());
    }
}
