//! Text from the database or a client, made safe to print on a terminal:
//! what the `tessera` command prints of what others wrote (`tessera audit`,
//! `tessera import-users`'s report) goes through [`escape_unprintable`], and
//! a report quotes a value as an [`excerpt`], cut short.
//!
//! A terminal acts on more than C0 controls: C1 controls (U+009B is a CSI
//! on many emulators, so `\u{9b}1A\u{9b}2K` moves the cursor up and erases
//! a line), DEL, bidirectional overrides and isolates that reorder what
//! follows, line and paragraph separators, zero-width and other invisible
//! characters. Each of them is printed as a JSON escape instead.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Every character that is not printed as itself: controls (C0, DEL, C1),
/// format characters (bidi controls U+200E/F, U+202A-202E, U+2066-2069,
/// zero-width U+200B-200D, U+2060, U+FEFF, tags), line and paragraph
/// separators, private-use and unassigned code points, every other
/// default-ignorable code point (fillers, variation selectors), and every
/// space but U+0020 (which could pass for a field separator).
static UNPRINTABLE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}[\p{Zs}--\x20]]",
    )
    .ok()
});

/// `text` with every character of [`UNPRINTABLE`] written as a JSON escape
/// (`\u009b`; a pair of them for a character beyond U+FFFF), everything
/// else as it is: inside a JSON string the result is still that string's
/// JSON. Borrowed when there is nothing to escape.
pub fn escape_unprintable(text: &str) -> Cow<'_, str> {
    let Some(pattern) = UNPRINTABLE.as_ref() else {
        // The pattern is a constant that compiles; should it ever not, every
        // character that is not plain printable ASCII is escaped.
        return escape_all_but_ascii(text);
    };
    pattern.replace_all(text, |found: &regex::Captures<'_>| {
        found[0].chars().map(json_escape).collect::<String>()
    })
}

/// The most characters of one value a report quotes ([`excerpt`]).
pub const EXCERPT_CHARS: usize = 64;

/// `text` as a JSON string for a report, cut to its first
/// [`EXCERPT_CHARS`] characters and `…` when longer, and escaped as
/// [`escape_unprintable`] escapes: a value from a file or a client (a
/// 5,000-character username, say) quoted without flooding the report or
/// acting on the terminal.
pub fn excerpt(text: &str) -> String {
    let quoted = serde_json::Value::from(cut(text)).to_string();
    escape_unprintable(&quoted).into_owned()
}

/// [`excerpt`] of any JSON value: a string is quoted as [`excerpt`] quotes
/// it, anything else is its JSON text, cut and escaped alike.
pub fn excerpt_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => excerpt(text),
        other => escape_unprintable(&cut(&other.to_string())).into_owned(),
    }
}

/// `text`'s first [`EXCERPT_CHARS`] characters, and `…` when there were more.
fn cut(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The fallback of [`escape_unprintable`]: everything but ASCII from space
/// to `~` escaped.
fn escape_all_but_ascii(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| matches!(c, ' '..='~')) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if matches!(c, ' '..='~') {
                    c.to_string()
                } else {
                    json_escape(c)
                }
            })
            .collect(),
    )
}

/// `c` as JSON writes a character by its code: `\u` and four lowercase hex
/// digits per UTF-16 unit.
fn json_escape(c: char) -> String {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units)
        .iter()
        .map(|unit| format!("\\u{unit:04x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_a_terminal_acts_on_or_hides_is_escaped() {
        for (c, escaped) in [
            ('\u{7}', r"\u0007"),
            ('\u{1b}', r"\u001b"),
            ('\n', r"\u000a"),
            ('\u{7f}', r"\u007f"),
            ('\u{85}', r"\u0085"),
            ('\u{9b}', r"\u009b"),
            ('\u{ad}', r"\u00ad"),
            ('\u{200b}', r"\u200b"),
            ('\u{200d}', r"\u200d"),
            ('\u{200e}', r"\u200e"),
            ('\u{202a}', r"\u202a"),
            ('\u{202e}', r"\u202e"),
            ('\u{2028}', r"\u2028"),
            ('\u{2029}', r"\u2029"),
            ('\u{2066}', r"\u2066"),
            ('\u{2069}', r"\u2069"),
            ('\u{feff}', r"\ufeff"),
            ('\u{3164}', r"\u3164"),
            ('\u{a0}', r"\u00a0"),
            ('\u{3000}', r"\u3000"),
            ('\u{e000}', r"\ue000"),
            ('\u{e0041}', r"\udb40\udc41"),
        ] {
            let text = format!("a{c}b");
            assert_eq!(
                escape_unprintable(&text),
                format!("a{escaped}b"),
                "U+{:04X}",
                c as u32
            );
            assert_eq!(escape_all_but_ascii(&text), format!("a{escaped}b"));
        }
    }

    #[test]
    fn printable_text_of_any_script_is_left_as_it_is() {
        for text in [
            "plain ascii {\"json\": [1, 2]} \\ ~",
            "zoë ünïcode",
            "日本語",
            "مرحبا",
            "emoji 🦀",
        ] {
            assert!(
                matches!(escape_unprintable(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn excerpts_are_quoted_cut_and_escaped() {
        assert_eq!(excerpt("bob"), r#""bob""#);
        assert_eq!(excerpt("a\u{0}\u{202e}"), r#""a\u0000\u202e""#);
        let long = "é".repeat(5000);
        assert_eq!(
            excerpt(&long),
            format!("\"{}…\"", "é".repeat(EXCERPT_CHARS))
        );
        assert_eq!(excerpt(&"x".repeat(EXCERPT_CHARS)).len(), EXCERPT_CHARS + 2);
        assert_eq!(excerpt_json(&serde_json::json!("seven")), r#""seven""#);
        assert_eq!(excerpt_json(&serde_json::json!(1.5)), "1.5");
        let array = serde_json::json!((0..1000).collect::<Vec<_>>());
        let shown = excerpt_json(&array);
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 1);
        assert!(
            shown.starts_with("[0,1,2,") && shown.ends_with('…'),
            "{shown}"
        );
    }

    #[test]
    fn an_escaped_json_string_is_still_the_same_json() {
        let original = "x\u{9b}1A\u{9b}2K\u{202e}\u{1f980}\u{e0041}";
        let json = serde_json::to_string(original).unwrap();
        let escaped = escape_unprintable(&json);
        assert!(escaped.is_ascii() || escaped.contains('\u{1f980}'));
        let back: String = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, original);
    }
}
