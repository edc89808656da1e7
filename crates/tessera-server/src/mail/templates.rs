//! The texts of the two mails: built in, or read from `mail_templates` at
//! start. A template is a `Subject:` line, a blank line and the body, with
//! `{link}`, `{username}`, `{expires_in}` and `{expires_at}` replaced.

use std::path::Path;

const BUILT_IN_RESET: &str = include_str!("templates/reset.txt");
const BUILT_IN_VERIFY: &str = include_str!("templates/verify.txt");

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["{link}", "{username}", "{expires_in}", "{expires_at}"];

/// One mail's text, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    subject: String,
    body: String,
}

/// What fills a template's placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    /// The link, built from `public_url`.
    pub link: &'a str,
    /// The user's name.
    pub username: &'a str,
    /// The link's lifetime, as the setting reads (`1h`).
    pub expires_in: &'a str,
    /// When it expires, RFC 3339 in UTC.
    pub expires_at: &'a str,
}

impl Template {
    /// Reads `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let text = text.replace("\r\n", "\n");
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject:")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or("the first line must be `Subject: ...`")?;
        if subject.chars().any(char::is_control) {
            return Err("the subject holds a control character".into());
        }
        let body = rest
            .strip_prefix('\n')
            .ok_or("a blank line must follow the subject")?;
        if !body.contains("{link}") {
            return Err("the body must contain `{link}`".into());
        }
        if let Some(word) = unknown_placeholders(subject)
            .chain(unknown_placeholders(body))
            .next()
        {
            return Err(format!(
                "unknown placeholder `{word}`: the placeholders are {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        Ok(Template {
            subject: subject.to_owned(),
            body: body.to_owned(),
        })
    }

    /// The subject and body with the placeholders filled. The subject gets
    /// no link, and control characters of a value (a username cannot hold
    /// any, but a template is no place to rely on that) are dropped from it.
    pub fn render(&self, fill: Fill<'_>) -> (String, String) {
        let apply = |text: &str| {
            text.replace("{link}", fill.link)
                .replace("{username}", fill.username)
                .replace("{expires_in}", fill.expires_in)
                .replace("{expires_at}", fill.expires_at)
        };
        let subject = apply(&self.subject.replace("{link}", ""))
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        (subject, apply(&self.body))
    }
}

/// `{word}`s that are not placeholders.
fn unknown_placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('{').filter_map(move |(at, _)| {
        let end = text[at..].find('}')? + at + 1;
        let word = &text[at..end];
        let inner = &word[1..word.len() - 1];
        let is_word = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        (is_word && !PLACEHOLDERS.contains(&word)).then_some(word)
    })
}

/// The reset and verification texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// The password-reset mail.
    pub reset: Template,
    /// The verification mail.
    pub verify: Template,
}

impl Templates {
    /// The built-in texts (checked like any others: a test keeps them valid).
    pub fn built_in() -> Result<Templates, String> {
        let parse =
            |text, name| Template::parse(text).map_err(|e| format!("the built-in {name}: {e}"));
        Ok(Templates {
            reset: parse(BUILT_IN_RESET, "reset.txt")?,
            verify: parse(BUILT_IN_VERIFY, "verify.txt")?,
        })
    }

    /// `reset.txt` and `verify.txt` from `dir`, or one sentence saying
    /// which file is wrong and why.
    pub fn load(dir: &Path) -> Result<Templates, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("mail_templates: cannot read {}: {e}", path.display()))?;
            Template::parse(&text).map_err(|e| format!("mail_templates: {}: {e}", path.display()))
        };
        Ok(Templates {
            reset: read("reset.txt")?,
            verify: read("verify.txt")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILL: Fill<'static> = Fill {
        link: "https://auth.example.com/?reset=abc",
        username: "alice",
        expires_in: "1h",
        expires_at: "2026-12-03T11:00:00Z",
    };

    #[test]
    fn the_built_in_texts_name_the_link_the_product_and_the_expiry() {
        let templates = Templates::built_in().unwrap();
        for template in [&templates.reset, &templates.verify] {
            let (subject, body) = template.render(FILL);
            assert!(subject.contains("Tessera"), "{subject}");
            assert!(
                body.contains("https://auth.example.com/?reset=abc"),
                "{body}"
            );
            assert!(
                body.contains("expires in 1h (at 2026-12-03T11:00:00Z)"),
                "{body}"
            );
            assert!(body.contains("Hello alice,"), "{body}");
        }
    }

    #[test]
    fn malformed_templates_are_refused_saying_why() {
        for (text, why) in [
            ("Hello {link}", "first line"),
            ("Subject:\n\n{link}", "first line"),
            ("Subject: Hi\n{link}", "blank line"),
            ("Subject: Hi\n\nno link here", "{link}"),
            (
                "Subject: Hi {name}\n\n{link}",
                "unknown placeholder `{name}`",
            ),
            (
                "Subject: Hi\n\n{link} {token}",
                "unknown placeholder `{token}`",
            ),
            ("Subject: Hi\u{7}\n\n{link}", "control character"),
        ] {
            let e = Template::parse(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        // Braces that are not placeholders (JSON, say) are text.
        assert!(Template::parse("Subject: Hi\r\n\r\n{link} {\"a\": 1} {}").is_ok());
    }

    #[test]
    fn the_subject_never_carries_the_link_or_a_line_break() {
        let t = Template::parse("Subject: {username} {link}\n\n{link}").unwrap();
        let (subject, _) = t.render(Fill {
            username: "evil\r\nBcc: x@example.com",
            ..FILL
        });
        assert_eq!(subject, "evilBcc: x@example.com ");
    }

    #[test]
    fn docs_email_md_shows_the_built_in_texts() {
        let docs = include_str!("../../../../docs/EMAIL.md");
        for text in [BUILT_IN_RESET, BUILT_IN_VERIFY] {
            assert!(docs.contains(text), "docs/EMAIL.md lacks:\n{text}");
        }
    }

    #[test]
    fn templates_load_from_a_directory_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset.txt"), "Subject: R\n\nreset {link}").unwrap();
        let e = Templates::load(dir.path()).unwrap_err();
        assert!(e.contains("verify.txt"), "{e}");
        std::fs::write(dir.path().join("verify.txt"), "Subject: V\n\nverify {link}").unwrap();
        let loaded = Templates::load(dir.path()).unwrap();
        assert_eq!(
            loaded.reset.render(FILL).1,
            "reset https://auth.example.com/?reset=abc"
        );
    }
}
