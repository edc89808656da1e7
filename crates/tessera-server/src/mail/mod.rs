//! Account-recovery mail: where it goes (`smtp_url`), what it says (the
//! templates), and the background sender that delivers the outbox. The
//! domain only composes mail and writes it to the outbox with the request
//! ([`Letters`]); delivering, retrying and giving up belong to [`sender`].

pub mod sender;
pub mod templates;

use crate::config::Settings;
use std::time::{Duration, UNIX_EPOCH};
use templates::{Fill, Templates};
use tessera_core::link::LinkToken;
use tessera_store::{LinkKind, LinkRecord, OutgoingMail};

/// Where mail goes: the parts of `smtp_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS from the start (`smtps://`); otherwise STARTTLS when offered.
    pub implicit_tls: bool,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .finish_non_exhaustive()
    }
}

impl SmtpTarget {
    /// Reads `smtp://[USER:PASSWORD@]HOST[:PORT]` or `smtps://...`, or says
    /// in a few words what is wrong.
    pub fn parse(text: &str) -> Result<SmtpTarget, &'static str> {
        let url = url::Url::parse(text).map_err(|_| "not a URL")?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err("the scheme must be smtp or smtps"),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err("no host"),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("no path or query");
        }
        let decode = |s: &str| {
            percent_decoded(s).ok_or("the user or password is not UTF-8 once percent-decoded")
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        Ok(SmtpTarget {
            host,
            port: url.port().unwrap_or(if implicit_tls { 465 } else { 587 }),
            implicit_tls,
            credentials,
        })
    }
}

fn percent_decoded(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// Composes the mails the domain writes to the outbox: a fresh link (only
/// its hash kept), built from `public_url`, in the configured text.
#[derive(Debug, Clone)]
pub struct Letters {
    public_url: String,
    lifetime: Duration,
    templates: Templates,
}

impl Letters {
    /// The composer `settings` ask for: `None` unless both `smtp_url` and
    /// `public_url` are set; an error (one sentence) when the templates of
    /// `mail_templates` cannot be read.
    pub fn from_settings(settings: &Settings) -> Result<Option<Letters>, String> {
        let (Some(_), Some(public_url)) = (&settings.smtp_url, &settings.public_url) else {
            if settings.email_verification != crate::config::EmailVerification::Off {
                return Err(format!(
                    "email_verification = \"{}\" needs smtp_url and public_url: \
                     verification links are mailed, and built from public_url",
                    settings.email_verification.name()
                ));
            }
            return Ok(None);
        };
        let templates = match &settings.mail_templates {
            Some(dir) => Templates::load(std::path::Path::new(dir))?,
            None => Templates::built_in()?,
        };
        Ok(Some(Letters {
            public_url: public_url.trim_end_matches('/').to_owned(),
            lifetime: settings.reset_token_lifetime,
            templates,
        }))
    }

    /// How long links live.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new link of `kind` for the user `user_id` (named `username`, at
    /// `email`), made at `now`, and the mail that carries it.
    pub fn compose(
        &self,
        kind: LinkKind,
        user_id: i64,
        username: &str,
        email: &str,
        now: i64,
    ) -> (LinkRecord, OutgoingMail) {
        let token = LinkToken::generate();
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(lifetime);
        let (parameter, template) = match kind {
            LinkKind::Reset => ("reset", &self.templates.reset),
            LinkKind::Verify => ("verify", &self.templates.verify),
        };
        let link = format!("{}/?{parameter}={}", self.public_url, token.token);
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at).unwrap_or(0));
        let (subject, body) = template.render(Fill {
            link: &link,
            username,
            expires_in: &humantime::format_duration(self.lifetime).to_string(),
            expires_at: &humantime::format_rfc3339_seconds(at).to_string(),
        });
        let record = LinkRecord {
            token_hash: token.hash,
            user_id,
            kind,
            email: email.to_owned(),
            created_at: now,
            expires_at,
        };
        let mail = OutgoingMail {
            recipient: email.to_owned(),
            subject,
            body,
            expires_at,
        };
        (record, mail)
    }
}

/// Whether `address` is one mail can go to: one address (no name, no
/// second recipient, no line break), at most 254 characters.
pub fn is_deliverable(address: &str) -> bool {
    address.len() <= 254 && address.parse::<lettre::Address>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_read_with_their_defaults_and_credentials() {
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.implicit_tls),
            ("127.0.0.1", 2525, false)
        );
        assert!(t.credentials.is_none());
        let t = SmtpTarget::parse("smtps://mailer:p%40ss+w@mail.example.com").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.implicit_tls),
            ("mail.example.com", 465, true)
        );
        assert_eq!(t.credentials, Some(("mailer".into(), "p@ss+w".into())));
        assert_eq!(
            SmtpTarget::parse("smtp://mail.example.com").unwrap().port,
            587
        );
        assert_eq!(SmtpTarget::parse("smtp://[::1]:25").unwrap().host, "::1");
        for bad in [
            "mail.example.com:25",
            "http://mail.example.com",
            "smtp://",
            "smtp://mail.example.com/path",
            "smtp://mail.example.com?tls=off",
        ] {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad}");
        }
        assert!(
            !format!("{:?}", SmtpTarget::parse("smtp://u:secret@h").unwrap()).contains("secret")
        );
    }

    #[test]
    fn only_single_plain_addresses_are_deliverable() {
        assert!(is_deliverable("alice@example.com"));
        assert!(is_deliverable("j\u{f6}rg@b\u{fc}cher.example"));
        for bad in [
            "",
            "alice",
            "alice@example.com\r\nBcc: eve@example.com",
            "alice@example.com, eve@example.com",
            "Alice <alice@example.com>",
            "alice@example.com\n",
            " alice@example.com",
        ] {
            assert!(!is_deliverable(bad), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(10_000));
        assert!(!is_deliverable(&long));
    }

    #[test]
    fn a_composed_mail_links_to_public_url_and_keeps_only_the_hash() {
        let settings = Settings {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            public_url: Some("https://auth.example.com".into()),
            ..Settings::default()
        };
        let letters = Letters::from_settings(&settings).unwrap().unwrap();
        let (link, mail) =
            letters.compose(LinkKind::Reset, 7, "alice", "a@example.com", 1_800_000_000);
        let token = mail
            .body
            .split("https://auth.example.com/?reset=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        assert_eq!(
            tessera_core::link::stored_hash(token),
            Some(link.token_hash.clone())
        );
        assert!(!link.token_hash.contains(token));
        assert_eq!(link.expires_at, 1_800_003_600);
        assert_eq!(mail.recipient, "a@example.com");
        assert!(
            mail.body
                .contains("expires in 1h (at 2027-01-15T09:00:00Z)"),
            "{}",
            mail.body
        );
        // Without either setting there is no mail at all, and verification
        // cannot be asked for.
        let unset = Settings {
            public_url: None,
            ..settings.clone()
        };
        assert!(Letters::from_settings(&unset).unwrap().is_none());
        let required = Settings {
            email_verification: crate::config::EmailVerification::Required,
            ..unset
        };
        let e = Letters::from_settings(&required).unwrap_err();
        assert!(e.contains("smtp_url and public_url"), "{e}");
        // Templates that cannot be read stop the start, naming the file.
        let missing = Settings {
            mail_templates: Some("/nonexistent/mail".into()),
            ..settings
        };
        let e = Letters::from_settings(&missing).unwrap_err();
        assert!(e.contains("/nonexistent/mail/reset.txt"), "{e}");
    }
}
