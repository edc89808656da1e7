//! Account recovery: password reset and email verification by mailed
//! links. A verification request writes its link (the token's hash) and its
//! mail to the outbox in one transaction and answers. A reset request only
//! records the address asked for, the same work whether or not anybody has
//! it, and answers alike past the limits; the server's mail task then looks
//! the address up and writes the links ([`Recovery::dispatch_mail_requests`]).
//! The mail sender delivers the outbox.
//!
//! The recovery part owns the letters (how mail is composed; none without
//! `smtp_url` and `public_url`) and the wake-up of the mail sender. It
//! promises: a reset request answers alike whoever has the address; links
//! and mail are limited per address (or account) and per client; a link
//! works once; a reset refuses every token issued before it.

use super::common::Common;
use super::hashing::Hashing;
use super::live::Live;
use super::{AuditKind, AuthError, LoginMethod, SessionOrigin, field_error};
use crate::config::EmailVerification;
use crate::mail::{self, Letters};
use crate::telemetry;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_core::Refusal;
use tessera_core::ids::UserId;
use tessera_core::link;
use tessera_store::UserRecord;
use tessera_store::{LinkKind, MailRequest};

/// Link requests honoured per address (reset) or per account and its
/// address (verification), and per client address, in [`LIMIT_WINDOW`]
/// seconds.
const PER_KEY: i64 = 5;
const PER_CLIENT: i64 = 20;
const LIMIT_WINDOW: i64 = 3600;

/// Reset requests turned into mail at a time.
const DISPATCH_BATCH: i64 = 20;

/// The most accounts one reset mail carries links for: anybody can sign up
/// with any address, so an address may have any number of accounts, and a
/// mail is bounded whatever their number. Accounts whose address is
/// verified come first (the address's owner proved it), then the oldest.
const ACCOUNTS_PER_MAIL: usize = 20;

/// The answer to a bad, used, voided or expired link.
const INVALID_LINK: &str = "Invalid or expired token.";

/// Whether `user` logs in without proving an address under
/// `email_verification = required`: one who followed a link, and staff and
/// superusers whatever their address. These are made by an operator
/// (`tessera createsuperuser`) or by staff, who vouch for them, and
/// refusing them would lock out the people who mend accounts: one without
/// an address could never verify, nor one made before the setting was on.
fn counts_as_verified(user: &UserRecord) -> bool {
    user.email_verified || user.is_staff || user.is_superuser
}

fn invalid_link() -> AuthError {
    field_error("token", INVALID_LINK)
}

/// Password reset and email verification by mailed links.
pub struct Recovery {
    common: Arc<Common>,
    hashing: Arc<Hashing>,
    live: Arc<Live>,
    /// Composes recovery mail; `None` without `smtp_url` and `public_url`.
    letters: Option<Letters>,
    /// Woken when mail is written to the outbox (the sender waits on it).
    mail_written: Arc<tokio::sync::Notify>,
}

impl Recovery {
    pub(super) fn new(
        common: Arc<Common>,
        hashing: Arc<Hashing>,
        live: Arc<Live>,
        letters: Option<Letters>,
    ) -> Self {
        Self {
            common,
            hashing,
            live,
            letters,
            mail_written: Arc::default(),
        }
    }

    fn letters(&self) -> Result<&Letters, AuthError> {
        self.letters.as_ref().ok_or(AuthError::EmailUnavailable)
    }

    /// The sender that delivers this authority's outbox, when mail is configured.
    pub fn mail_sender(
        &self,
    ) -> Option<Result<mail::sender::MailSender, mail::sender::SenderError>> {
        let settings = self.common.settings();
        let url = settings.smtp_url.as_deref()?;
        self.letters.as_ref()?;
        Some(mail::sender::MailSender::new(
            url,
            &settings.mail_from,
            settings.smtp_timeout,
            self.common.store().clone(),
            self.common.clock().clone(),
        ))
    }

    /// Asks for one mail to `email` carrying a reset link for each active
    /// user whose address it is (ignoring case; at most
    /// [`ACCOUNTS_PER_MAIL`]), unless the address or `client` is past its
    /// limit: an address receives at most one mail per honoured request.
    /// The request is recorded and answered without looking the address
    /// up, so that it does the same work, and answers alike, whoever has
    /// the address; [`Recovery::dispatch_mail_requests`] writes the mail.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        self.letters()?;
        if !mail::is_deliverable(email) {
            return Err(field_error("email", "Enter a valid email address."));
        }
        let key = link::digest(&email.to_lowercase());
        let request = MailRequest {
            address: email.to_owned(),
            ..self.mail_request(LinkKind::Reset, key, Some(client), self.common.now())
        };
        if self.common.store().request_links(&request, None).await? {
            self.mail_written.notify_one();
        } else {
            tracing::info!("a password-reset request past its limit was answered and not mailed");
        }
        Ok(())
    }

    /// Writes the mail of each reset request waiting for it (this
    /// process's or another's): one mail, with a link for each active user
    /// with the address asked for (verified addresses first, then the
    /// oldest accounts, at most [`ACCOUNTS_PER_MAIL`]); none when nobody
    /// has it. How many requests it handled.
    pub async fn dispatch_mail_requests(&self) -> Result<usize, AuthError> {
        let Some(letters) = &self.letters else {
            return Ok(0);
        };
        let store = self.common.store();
        let pending = store.pending_mail_requests(DISPATCH_BATCH).await?;
        for request in &pending {
            let now = self.common.now();
            let mut users = store.users_by_email(&request.address).await?;
            users.retain(|u| u.is_active && mail::is_deliverable(&u.email));
            // By id already; a stable sort keeps that order within each part.
            users.sort_by_key(|u| !u.email_verified);
            users.truncate(ACCOUNTS_PER_MAIL);
            let to: Vec<mail::Addressee<'_>> = users.iter().map(Into::into).collect();
            let letter = letters.compose(LinkKind::Reset, &to, now);
            if !store
                .fulfil_mail_request(request.id, letter.as_ref())
                .await?
            {
                continue;
            }
            let links = letter.map(|l| l.links).unwrap_or_default();
            let origin = request
                .client
                .parse()
                .ok()
                .map(|ip| SessionOrigin::new(ip, "", LoginMethod::Password));
            if links.is_empty() {
                let detail = json!({"mailed": false});
                let kind = AuditKind::PasswordResetRequested;
                self.common.audit(kind, None, None, origin.as_ref(), detail);
            }
            for link in &links {
                let detail = json!({"mailed": true});
                let (kind, id) = (
                    AuditKind::PasswordResetRequested,
                    Some(UserId::new(link.user_id)),
                );
                self.common.audit(kind, id, None, origin.as_ref(), detail);
            }
        }
        Ok(pending.len())
    }

    /// Woken when mail or a mail request is written (what the sender waits on).
    pub fn mail_wake(&self) -> Arc<tokio::sync::Notify> {
        self.mail_written.clone()
    }

    /// Sets a new password with a reset link: every token of the user
    /// issued before is refused, as after a password change, and the
    /// address counts as verified (the link was read there).
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        self.letters()?;
        let hash = link::stored_hash(token).ok_or_else(invalid_link)?;
        let now = self.common.now();
        let store = self.common.store();
        let found = store.link(&hash, LinkKind::Reset, now).await?;
        let user = match found {
            Some(found) => store.user_by_id(found.user_id).await?,
            None => None,
        };
        let user = user.filter(|u| u.is_active).ok_or_else(invalid_link)?;
        // The policy's verdict before the link is used: a weak password
        // leaves the link working for a better one.
        let (name, email) = (&user.username, &user.email);
        let hashing = &self.hashing;
        hashing
            .require_strong(new_password, name, email, "new_password")
            .await?;
        let password_hash = hashing.hash(new_password).await?;
        telemetry::revoked("user");
        let record = store
            .reset_password(&hash, &password_hash, self.common.now())
            .await?
            .ok_or_else(invalid_link)?;
        self.common.announce();
        let id = Some(UserId::new(record.id));
        self.live.remember(record);
        let origin = SessionOrigin::new(client, "", LoginMethod::Password);
        let kind = AuditKind::PasswordReset;
        self.common.audit(kind, id, None, Some(&origin), json!({}));
        Ok(())
    }

    /// Mails the user `user_id` a verification link (within the limits).
    pub async fn request_verification(
        &self,
        user_id: UserId,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        self.letters()?;
        let user = self
            .common
            .store()
            .user_by_id(user_id.get())
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        if !mail::is_deliverable(&user.email) {
            return Err(field_error(
                "email",
                "The account has no email address that mail can be sent to.",
            ));
        }
        self.send_verification(&user, Some(client)).await?;
        Ok(())
    }

    /// Writes a verification mail for `user` to the outbox unless the
    /// account or `client` is past its limit; true when it did.
    async fn send_verification(
        &self,
        user: &UserRecord,
        client: Option<IpAddr>,
    ) -> Result<bool, AuthError> {
        let letters = self.letters()?;
        if !mail::is_deliverable(&user.email) {
            return Ok(false);
        }
        let now = self.common.now();
        let letter = letters.compose(LinkKind::Verify, &[user.into()], now);
        // Counted per account (at its address), not per address alone:
        // anybody may sign up with any address, and other accounts' links
        // to it must not use up this one's (each signup is one link, and
        // signups are limited).
        let key = link::digest(&format!("{} {}", user.id, user.email.to_lowercase()));
        let request = self.mail_request(LinkKind::Verify, key, client, now);
        let store = self.common.store();
        let written = store.request_links(&request, letter.as_ref()).await?;
        if written {
            self.mail_written.notify_one();
            let origin = client.map(|ip| SessionOrigin::new(ip, "", LoginMethod::Password));
            let (kind, id) = (
                AuditKind::EmailVerificationRequested,
                Some(UserId::new(user.id)),
            );
            self.common
                .audit(kind, id, None, origin.as_ref(), json!({}));
        }
        Ok(written)
    }

    /// After signup: the verification mail `email_verification` asks for.
    /// A failure is logged, not the signup's: the user can ask again.
    pub(super) async fn welcome(&self, user: &UserRecord, client: Option<IpAddr>) {
        if self.common.settings().email_verification == EmailVerification::Off
            || user.email_verified
            || user.email.is_empty()
        {
            return;
        }
        if let Err(e) = self.send_verification(user, client).await {
            tracing::warn!(error = %e, user_id = user.id, "the verification mail was not written");
        }
    }

    /// Whether a login of `user` (whose password was right) must be
    /// refused for an unverified address; if so, a new link is mailed.
    /// Decided at each login on the account as it is now, so that it holds
    /// for accounts made before the setting was switched on too.
    pub(super) async fn refuse_unverified(&self, user: &UserRecord, client: IpAddr) -> bool {
        if self.common.settings().email_verification != EmailVerification::Required
            || counts_as_verified(user)
        {
            return false;
        }
        if let Err(e) = self.send_verification(user, Some(client)).await {
            tracing::warn!(error = %e, user_id = user.id, "the verification mail was not written");
        }
        true
    }

    /// Verifies the address a verification link was mailed to.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        self.letters()?;
        let hash = link::stored_hash(token).ok_or_else(invalid_link)?;
        let record = self
            .common
            .store()
            .verify_email(&hash, self.common.now())
            .await?
            .ok_or_else(invalid_link)?;
        self.common.announce();
        let id = Some(UserId::new(record.id));
        self.live.remember(record);
        let kind = AuditKind::EmailVerified;
        self.common.audit(kind, id, None, None, json!({}));
        Ok(())
    }

    /// A request of `kind` counted against `limit_key`'s limit and
    /// `client`'s.
    fn mail_request(
        &self,
        kind: LinkKind,
        limit_key: String,
        client: Option<IpAddr>,
        now: i64,
    ) -> MailRequest {
        MailRequest {
            kind,
            limit_key,
            client: client.map(|c| c.to_string()).unwrap_or_default(),
            at: now,
            window: LIMIT_WINDOW,
            per_key: PER_KEY,
            per_client: PER_CLIENT,
            address: String::new(),
        }
    }
}
