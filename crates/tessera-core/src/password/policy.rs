//! [`PasswordPolicy`]: the rules a new password must pass, as Django's
//! validators word them.

use std::collections::HashMap;

/// The rules a new password must pass.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_length: usize,
}

/// Django's UserAttributeSimilarityValidator threshold.
const MAX_SIMILARITY: f64 = 0.7;

impl PasswordPolicy {
    /// Checks `password` for a user with this username and email, returning
    /// every failure in Django's wording, in Django's validator order.
    pub fn check(&self, password: &str, username: &str, email: &str) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let mut similar = false;
        for (value, label) in [(username, "username"), (email, "email address")] {
            if is_too_similar(password, value) {
                errors.push(format!("The password is too similar to the {label}."));
                similar = true;
                break;
            }
        }
        let length = password.chars().count();
        if length < self.min_length {
            let s = if self.min_length == 1 { "" } else { "s" };
            errors.push(format!(
                "This password is too short. It must contain at least {} character{s}.",
                self.min_length
            ));
        }
        let numeric = !password.is_empty() && password.chars().all(char::is_numeric);
        // zxcvbn's cost grows with length; past 256 characters the score is
        // high anyway, so spare the work (bodies are capped at 64 KiB upstream).
        let estimate = (length <= 256).then(|| {
            let inputs: Vec<&str> = [username, email]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            zxcvbn::zxcvbn(password, &inputs)
        });
        let common = estimate.as_ref().is_some_and(|e| {
            use zxcvbn::feedback::Warning;
            matches!(
                e.feedback().and_then(|f| f.warning()),
                Some(
                    Warning::ThisIsATop10Password
                        | Warning::ThisIsATop100Password
                        | Warning::ThisIsACommonPassword
                        | Warning::ThisIsSimilarToACommonlyUsedPassword
                )
            )
        });
        if common {
            errors.push("This password is too common.".to_owned());
        }
        if numeric {
            errors.push("This password is entirely numeric.".to_owned());
        }
        let weak = estimate.is_some_and(|e| (e.score() as u8) < 3);
        // Only say "too easy to guess" when no more specific reason was given.
        if weak && errors.is_empty() && !similar {
            errors.push("This password is too easy to guess. Add another word or two.".to_owned());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Django's similarity rule: the password resembles the value, or a part of
/// it between non-word characters, by `SequenceMatcher.quick_ratio() >= 0.7`.
fn is_too_similar(password: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let password = password.to_lowercase();
    let value = value.to_lowercase();
    let mut parts: Vec<&str> = value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(&value);
    parts.into_iter().any(|part| {
        !exceeds_maximum_length_ratio(&password, part)
            && quick_ratio(&password, part) >= MAX_SIMILARITY
    })
}

/// Django skips values much shorter than the password: they cannot make it guessable.
fn exceeds_maximum_length_ratio(password: &str, value: &str) -> bool {
    let pwd_len = password.chars().count() as f64;
    let value_len = value.chars().count() as f64;
    let length_bound_similarity = MAX_SIMILARITY / 2.0 * pwd_len;
    pwd_len >= 10.0 * value_len && value_len < length_bound_similarity
}

/// Python's `difflib.SequenceMatcher.quick_ratio`: twice the size of the
/// multiset intersection of characters over the total length.
fn quick_ratio(a: &str, b: &str) -> f64 {
    let mut counts: HashMap<char, i64> = HashMap::new();
    for c in b.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a.chars() {
        if let Some(n) = counts.get_mut(&c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_length: 8 }
    }

    #[test]
    fn a_strong_password_passes() {
        assert_eq!(policy().check("vivid-otter-canyon-42", "alice", ""), Ok(()));
    }

    #[test]
    fn django_messages() {
        let e = policy().check("1234567", "alice", "").unwrap_err();
        assert!(e.contains(
            &"This password is too short. It must contain at least 8 characters.".to_owned()
        ));
        assert!(e.contains(&"This password is entirely numeric.".to_owned()));
        let e = policy().check("password", "alice", "").unwrap_err();
        assert_eq!(e, vec!["This password is too common."]);
        let e = policy()
            .check("alice-smith1", "alicesmith", "")
            .unwrap_err();
        assert_eq!(e[0], "The password is too similar to the username.");
        let e = policy()
            .check("bobthebuilder", "zed", "bobthebuilder@example.com")
            .unwrap_err();
        assert_eq!(e[0], "The password is too similar to the email address.");
    }

    #[test]
    fn quick_ratio_matches_python() {
        // difflib.SequenceMatcher(None, "abcd", "bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("", "") - 1.0).abs() < 1e-9);
    }
}
