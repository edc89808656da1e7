//! The background sender: takes due mail from the outbox, delivers it over
//! SMTP, and records what happened. A failed try is retried with backoff
//! (1 s, doubling, at most 5 min) until the mail's link expires; then the
//! mail is given up on and logged. Mail survives restarts because it lives
//! in the database until it is sent; one taken by a sender that dies is
//! taken again once its lease ends, so delivery is at least once.

use super::SmtpTarget;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::collections::HashSet;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;
use tessera_core::clock::Clock;
use tessera_store::{QueuedMail, Store};

/// How long a taken mail is the taker's alone: far longer than one try.
const LEASE_SECONDS: i64 = 120;

/// How often the outbox is looked at without a wake-up (mail written by
/// another instance, a retry coming due).
pub const POLL: Duration = Duration::from_secs(1);

/// Mails taken at once.
pub const BATCH: i64 = 20;

/// The longest wait between two tries of one mail.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// Why the sender cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// `smtp_url` or `mail_from` cannot be used.
    #[error("{0}")]
    Settings(String),
}

/// Delivers the outbox of one store.
pub struct MailSender {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
    /// The mails taken and not yet recorded as sent or failed: given back
    /// by [`MailSender::release_taken`] when the sender stops mid-try.
    taken: std::sync::Mutex<HashSet<i64>>,
}

impl MailSender {
    /// A sender through `smtp_url` as `mail_from`. Each try gives up after
    /// `timeout`.
    pub fn new(
        smtp_url: &str,
        mail_from: &str,
        timeout: Duration,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SenderError> {
        let target = SmtpTarget::parse(smtp_url)
            .map_err(|why| SenderError::Settings(format!("smtp_url: {why}")))?;
        let from: Mailbox = mail_from
            .parse()
            .map_err(|e| SenderError::Settings(format!("mail_from: {e}")))?;
        let tls = TlsParameters::new(target.host.clone())
            .map_err(|e| SenderError::Settings(format!("smtp_url: TLS: {e}")))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
            .port(target.port)
            .timeout(Some(timeout))
            .tls(if target.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if let Some((user, password)) = target.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            store,
            clock,
            transport: builder.build(),
            from,
            timeout,
            taken: Default::default(),
        })
    }

    fn taken(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the mails this sender took and did not finish due again at
    /// once, for any sender: called once it has stopped (a try cut short
    /// at shutdown would otherwise wait out its lease, two minutes).
    pub async fn release_taken(&self) -> Result<(), tessera_store::StoreError> {
        let ids: Vec<i64> = self.taken().drain().collect();
        if ids.is_empty() {
            return Ok(());
        }
        tracing::info!(mails = ids.len(), "mail taken but not sent is given back");
        self.store.release_mail(&ids, self.clock.now()).await
    }

    /// Takes the mail due now and tries each once; how many were taken.
    pub async fn deliver_due(&self) -> Result<usize, tessera_store::StoreError> {
        let now = self.clock.now();
        let due = self
            .store
            .take_mail(now, now + LEASE_SECONDS, BATCH)
            .await?;
        self.taken().extend(due.iter().map(|mail| mail.id));
        for mail in &due {
            self.try_once(mail).await?;
            self.taken().remove(&mail.id);
        }
        Ok(due.len())
    }

    async fn try_once(&self, mail: &QueuedMail) -> Result<(), tessera_store::StoreError> {
        let result = if self.clock.now() >= mail.expires_at {
            Err(Failure::permanent(
                "its link expired before it could be sent",
            ))
        } else {
            self.send(mail).await
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                crate::telemetry::mail("sent");
                tracing::info!(mail = mail.id, attempts = mail.attempts, "mail sent");
                self.store.mail_sent(mail.id, now).await
            }
            Err(failure) => {
                let retry_at = now + backoff(mail.attempts);
                if failure.permanent || retry_at >= mail.expires_at {
                    crate::telemetry::mail("abandoned");
                    tracing::error!(mail = mail.id, attempts = mail.attempts, error = %failure.reason,
                        "mail given up on");
                    self.store
                        .mail_failed(mail.id, None, &failure.reason, now)
                        .await
                } else {
                    crate::telemetry::mail("retried");
                    tracing::warn!(mail = mail.id, attempts = mail.attempts, error = %failure.reason,
                        retry_in_seconds = retry_at - now, "mail not sent; will try again");
                    self.store
                        .mail_failed(mail.id, Some(retry_at), &failure.reason, now)
                        .await
                }
            }
        }
    }

    async fn send(&self, mail: &QueuedMail) -> Result<(), Failure> {
        // Checked when the mail was written; a row that does not parse now
        // (an address edited in the database) can never be sent.
        let to: Address = mail
            .recipient
            .parse()
            .map_err(|_| Failure::permanent("the recipient is not an address"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| Failure::permanent(format!("the mail cannot be built: {e}")))?;
        // lettre's timeout bounds each step; this bounds the whole try.
        match tokio::time::timeout(self.timeout * 3, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Failure::transient(e.to_string())),
            Err(_) => Err(Failure::transient("the mail server did not answer in time")),
        }
    }
}

/// Why a try failed, and whether trying again could help. A refusal by
/// the mail server (even a 5xx) is retried: it may be a passing
/// misconfiguration, and the link's lifetime bounds the tries anyway.
struct Failure {
    reason: String,
    permanent: bool,
}

impl Failure {
    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }

    fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }
}

/// Seconds to wait after the `attempts`-th failed try: 1, 2, 4, ... at most
/// five minutes.
fn backoff(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    2i64.pow(exponent).min(MAX_BACKOFF_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<i64> = (1..=11).map(backoff).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(0), 1);
        assert_eq!(backoff(i64::MAX), 300);
    }
}
