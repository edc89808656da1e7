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
use tessera_store::{Letter, LinkKind, LinkRecord, OutgoingMail};

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

    /// One mail to `to[0]`'s address carrying a fresh link of `kind`
    /// for each account of `to`, made at `now`: for one account the
    /// template as it is; for several, the template filled for each in
    /// turn, one after the other, so that every account gets its own link
    /// and the address one mail. `None` when `to` is empty.
    pub fn compose(&self, kind: LinkKind, to: &[Addressee<'_>], now: i64) -> Option<Letter> {
        let first = to.first()?;
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(lifetime);
        let (parameter, template) = match kind {
            LinkKind::Reset => ("reset", &self.templates.reset),
            LinkKind::Verify => ("verify", &self.templates.verify),
        };
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at).unwrap_or(0));
        let expires_in = humantime::format_duration(self.lifetime).to_string();
        let expires_at_text = humantime::format_rfc3339_seconds(at).to_string();
        let mut subject = String::new();
        let mut bodies = Vec::with_capacity(to.len());
        let mut links = Vec::with_capacity(to.len());
        for addressee in to {
            let token = LinkToken::generate();
            let link = format!("{}/?{parameter}={}", self.public_url, token.token);
            let (this_subject, body) = template.render(Fill {
                link: &link,
                username: addressee.username,
                expires_in: &expires_in,
                expires_at: &expires_at_text,
            });
            if subject.is_empty() {
                subject = this_subject;
            }
            bodies.push(body);
            links.push(LinkRecord {
                token_hash: token.hash,
                user_id: addressee.user_id,
                kind,
                email: addressee.email.to_owned(),
                created_at: now,
                expires_at,
            });
        }
        let mail = OutgoingMail {
            recipient: first.email.to_owned(),
            subject,
            body: bodies.join(ACCOUNT_SEPARATOR),
            created_at: now,
            expires_at,
        };
        Some(Letter { links, mail })
    }
}

/// Between the parts of a mail for several accounts: a line that reads as
/// a break in plain text, whatever the template ends with.
const ACCOUNT_SEPARATOR: &str = "\n----------------------------------------\n\n";

/// An account a mail is for.
#[derive(Debug, Clone, Copy)]
pub struct Addressee<'a> {
    /// Its id: the link acts for this user only.
    pub user_id: i64,
    /// Its name, as the mail greets it.
    pub username: &'a str,
    /// Its address, where the mail goes (and which the link must still be
    /// the user's to verify it).
    pub email: &'a str,
}

impl<'a> From<&'a tessera_store::UserRecord> for Addressee<'a> {
    fn from(user: &'a tessera_store::UserRecord) -> Self {
        Addressee {
            user_id: user.id,
            username: &user.username,
            email: &user.email,
        }
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
        let alice = Addressee {
            user_id: 7,
            username: "alice",
            email: "a@example.com",
        };
        let Letter { links, mail } = letters
            .compose(LinkKind::Reset, &[alice], 1_800_000_000)
            .unwrap();
        let link = &links[0];
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
        assert!(letters.compose(LinkKind::Reset, &[], 1).is_none());

        // Several accounts at one address: one mail, a link for each.
        let bob = Addressee {
            user_id: 8,
            username: "bob",
            email: "A@example.com",
        };
        let Letter { links, mail } = letters
            .compose(LinkKind::Reset, &[alice, bob], 1_800_000_000)
            .unwrap();
        assert_eq!(mail.recipient, "a@example.com");
        assert_eq!(links.iter().map(|l| l.user_id).collect::<Vec<_>>(), [7, 8]);
        let tokens: Vec<_> = mail
            .body
            .split_whitespace()
            .filter_map(|w| w.split("?reset=").nth(1))
            .collect();
        assert_eq!(tokens.len(), 2, "{}", mail.body);
        for (token, link) in tokens.iter().zip(&links) {
            assert_eq!(
                tessera_core::link::stored_hash(token).as_ref(),
                Some(&link.token_hash)
            );
        }
        let (at_alice, at_bob) = (mail.body.find("Hello alice,"), mail.body.find("Hello bob,"));
        assert!(at_alice < at_bob && at_alice.is_some(), "{}", mail.body);

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
