//! Usernames as docs/API.md defines them: NFKC-normalised like Django's,
//! 1 to 150 characters, no control characters, not only whitespace; a new
//! account's name also passes Django's `UnicodeUsernameValidator` and holds no
//! invisible (default-ignorable) character.

use regex::Regex;
use std::fmt;
use std::sync::LazyLock;
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
    /// A new account's name with something other than letters, digits and
    /// `@ . + - _`, or with an invisible character.
    #[error(
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
    )]
    NotAllowed,
}

/// Django's `UnicodeUsernameValidator`: Python's `\w` (letters and numbers of
/// every script, and `_`) and `.@+-`. Python's letters are the L categories
/// and its numbers the N ones: combining marks are not allowed, as in Django.
static DJANGO_USERNAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_.@+\-]+$").ok());

/// Letters that show as nothing (the Hangul fillers, for one): allowed by
/// Django's pattern, refused here, so that `admin` has no invisible twin.
static INVISIBLE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\p{Default_Ignorable_Code_Point}").ok());

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

    /// A name for a new account: [`Username::parse`], then Django's validator
    /// and no default-ignorable code point (zero-width characters, fillers,
    /// bidi controls). Names that already exist (imported ones) are looked up
    /// with [`Username::parse`] only.
    pub fn for_new_account(input: &str) -> Result<Self, UsernameError> {
        let name = Self::parse(input)?;
        let allowed = DJANGO_USERNAME
            .as_ref()
            .is_some_and(|pattern| pattern.is_match(&name.0))
            && INVISIBLE
                .as_ref()
                .is_some_and(|pattern| !pattern.is_match(&name.0));
        if allowed {
            Ok(name)
        } else {
            Err(UsernameError::NotAllowed)
        }
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
    fn new_accounts_follow_djangos_validator_and_show_no_invisible_character() {
        for name in [
            "admin\u{200b}",
            "ad\u{200d}min",
            "ad\u{00ad}min",
            "\u{202e}nimda",
            "\u{feff}admin",
            " admin",
            "Alice Smith",
            "\u{3164}",
            "a\u{2028}b",
            "a/b",
            "o'brien",
        ] {
            assert_eq!(
                Username::for_new_account(name),
                Err(UsernameError::NotAllowed),
                "{name:?}"
            );
        }
        for name in [
            "alice",
            "a.b@c+d-e_f",
            "Ωμέγα",
            "пётр",
            "山田",
            "x٣",
            "名前123",
        ] {
            assert_eq!(Username::for_new_account(name).unwrap().as_str(), name);
        }
        // The message is Django's.
        assert_eq!(
            UsernameError::NotAllowed.to_string(),
            "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
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
