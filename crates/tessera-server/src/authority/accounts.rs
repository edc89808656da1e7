//! The accounts part: signup, password changes, and what administrators
//! do to users (flags, revocation, the user list, the audit log's pages).
//! Owns no state of its own: users live in the live state, passwords are
//! the hashing's, limits the throttle's.
//!
//! Promises: every account obeys the username and password rules; a
//! password change refuses every token issued before it; only a superuser
//! changes a superuser; the last active staff user stays; each change is
//! audited.

use super::audit_trail::{self, AuditKind, AuditPage};
use super::common::Common;
use super::hashing::{Hashing, Strength};
use super::live::Live;
use super::recovery::Recovery;
use super::throttling::Throttle;
use super::user_claims::Roles;
use super::{
    AuthError, DEFAULT_PAGE_SIZE, FieldErrors, LoginMethod, MAX_PAGE_SIZE, NewAccount,
    SessionOrigin, User, UserChange, UsersPage, field_error,
};
use crate::telemetry;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_core::Refusal;
use tessera_core::claims::VerifiedClaims;
use tessera_core::ids::UserId;
use tessera_core::username::Username;
use tessera_store::{AuditFilter, NewUser, StoreError, UserRecord, UserUpdate};

/// Signup, password changes and administration.
pub struct Accounts {
    common: Arc<Common>,
    hashing: Arc<Hashing>,
    live: Arc<Live>,
    throttle: Arc<Throttle>,
    recovery: Arc<Recovery>,
}

impl Accounts {
    pub(super) fn new(
        common: Arc<Common>,
        hashing: Arc<Hashing>,
        live: Arc<Live>,
        throttle: Arc<Throttle>,
        recovery: Arc<Recovery>,
    ) -> Self {
        Self {
            common,
            hashing,
            live,
            throttle,
            recovery,
        }
    }

    /// The user with this id: from memory, or from the store on a miss (a
    /// user created by another process a moment ago).
    pub async fn user(&self, id: UserId) -> Result<Option<Arc<User>>, AuthError> {
        self.live.user(id).await
    }

    /// Page `page` (from 1) of the audit events matching `filter`,
    /// `page_size` a page; a page past the last is
    /// [`AuthError::InvalidPage`], except page 1 of nothing.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        page: i64,
        page_size: i64,
    ) -> Result<AuditPage, AuthError> {
        audit_trail::page(self.common.store(), filter, page, page_size).await
    }

    /// Creates an account after checking the username and password rules.
    pub async fn signup(&self, account: NewAccount<'_>) -> Result<Arc<User>, AuthError> {
        // With signup closed, accounts come from the CLI only (no client address).
        if !self.common.settings().signup_enabled && account.client.is_some() {
            return Err(AuthError::SignupClosed);
        }
        self.throttle.check_signup(account.client).await?;
        let mut errors = FieldErrors::new();
        let username = match Username::for_new_account(account.username) {
            Ok(u) => Some(u),
            Err(e) => {
                errors.insert("username".into(), vec![e.to_string()]);
                None
            }
        };
        if let Some(u) = &username
            && self
                .common
                .store()
                .user_by_username(u.as_str())
                .await?
                .is_some()
        {
            errors.insert("username".into(), vec![USERNAME_TAKEN.into()]);
        }
        let checked_name = username.as_ref().map_or(account.username, Username::as_str);
        let strength = self
            .hashing
            .strength(account.password, checked_name, account.email);
        if let Strength::Weak(messages) = strength.await? {
            errors.insert("password".into(), messages);
        }
        if !account.email.is_empty() && !crate::mail::is_deliverable(account.email) {
            errors.insert("email".into(), vec!["Enter a valid email address.".into()]);
        }
        let Some(username) = username.filter(|_| errors.is_empty()) else {
            return Err(AuthError::Fields(errors));
        };
        let hash = self.hashing.hash(account.password).await?;
        let created = self
            .common
            .store()
            .create_user(NewUser {
                username: username.into_string(),
                email: account.email.to_owned(),
                password_hash: hash,
                is_staff: account.superuser,
                is_superuser: account.superuser,
                date_joined: self.common.now(),
                // An account an operator makes (the CLI) needs no proof.
                email_verified: account.client.is_none() && !account.email.is_empty(),
            })
            .await;
        match created {
            Ok(record) => {
                let origin = account
                    .client
                    .map(|ip| SessionOrigin::new(ip, "", LoginMethod::Password));
                let detail = serde_json::json!({"superuser": account.superuser});
                let (kind, id) = (AuditKind::Signup, Some(UserId::new(record.id)));
                self.common.audit(kind, id, None, origin.as_ref(), detail);
                self.recovery.welcome(&record, account.client).await;
                Ok(self.live.remember(record))
            }
            Err(StoreError::UsernameTaken) => Err(field_error("username", USERNAME_TAKEN)),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the caller's password. Needs a fresh token (from a password
    /// login; for a user with a confirmed second factor, from a login that
    /// used it) and the old password; every token issued before is refused after.
    pub async fn change_password(
        &self,
        claims: &VerifiedClaims,
        old: &str,
        new: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        if !claims.fresh {
            return Err(AuthError::FreshTokenRequired);
        }
        let record = self
            .common
            .store()
            .user_by_id(claims.user_id.get())
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        // Step-up: a password and a stolen fresh token must not be enough
        // to take over an account that a second factor guards.
        let factor = self.common.store().totp_factor(record.id).await?;
        let has_factor = factor.is_some_and(|f| f.confirmed_at.is_some());
        super::mfa::require_fresh(claims, has_factor)?;
        // A wrong old password is a failed login of this user: throttled
        // alike, counted before the hash, so a stolen fresh token cannot
        // be used to guess the password at hashing speed.
        let address_key = client.to_string();
        let attempt = self
            .throttle
            .reserve_login(&record.username, &address_key, self.common.now_ms())
            .await?;
        if !self.hashing.verify(old, &record.password_hash).await? {
            self.throttle
                .login_failed(&record.username, &address_key, attempt)
                .await;
            return Err(field_error(
                "old_password",
                "Your old password was entered incorrectly. Please enter it again.",
            ));
        }
        self.throttle
            .login_succeeded(&record.username, &address_key, attempt)
            .await;
        self.set_password(&record, new, "new_password").await?;
        let origin = SessionOrigin::new(client, "", LoginMethod::Password);
        let (kind, id) = (AuditKind::PasswordChanged, Some(UserId::new(record.id)));
        self.common
            .audit(kind, id, None, Some(&origin), serde_json::json!({}));
        Ok(())
    }

    /// An operator's setting of `record`'s password (`tessera users
    /// set-password`, for instance for an imported user who came without a
    /// usable hash): the policy's verdict as [`AuthError::Fields`] under
    /// `password`, else the password set, every earlier token refused, and
    /// a `password_set` event written before this returns (the CLI, its
    /// caller, exits right after).
    pub async fn set_password_by_operator(
        &self,
        record: &UserRecord,
        new: &str,
    ) -> Result<(), AuthError> {
        self.set_password(record, new, "password").await?;
        let (kind, id) = (AuditKind::PasswordSet, Some(UserId::new(record.id)));
        self.common
            .audit(kind, id, None, None, serde_json::json!({}));
        self.common.audit_log().flush().await;
        Ok(())
    }

    /// Gives `record`'s user the password `new` if it passes the policy
    /// (else [`AuthError::Fields`] under `field`), refusing every token
    /// issued before. Its callers write the audit event (a change by the
    /// user, or an operator's): none of them may go unlogged.
    async fn set_password(
        &self,
        record: &UserRecord,
        new: &str,
        field: &str,
    ) -> Result<(), AuthError> {
        let hashing = &self.hashing;
        hashing
            .require_strong(new, &record.username, &record.email, field)
            .await?;
        let hash = hashing.hash(new).await?;
        let update = UserUpdate {
            password_hash: Some(hash),
            bump_token_version: true,
            ..Default::default()
        };
        self.update_user(UserId::new(record.id), update).await?;
        Ok(())
    }

    /// One page of users, ordered by id, and the total count.
    pub async fn list_users(&self, offset: i64, limit: i64) -> Result<(i64, Vec<User>), AuthError> {
        let store = self.common.store();
        let count = store.count_users().await?;
        let users = store.list_users(offset, limit).await?;
        Ok((count, users.into_iter().map(User::from).collect()))
    }

    /// Page `page` (from 1) of the users ordered by id, `page_size` a page
    /// (at most [`MAX_PAGE_SIZE`]; 0 or less means the default), as Django
    /// REST framework's page-number pagination pages them: a page past the
    /// last is [`AuthError::InvalidPage`], except page 1 of nothing.
    pub async fn users_page(&self, page: i64, page_size: i64) -> Result<UsersPage, AuthError> {
        let page_size = if page_size > 0 {
            page_size.min(MAX_PAGE_SIZE)
        } else {
            DEFAULT_PAGE_SIZE
        };
        let offset = page
            .checked_sub(1)
            .filter(|p| *p >= 0)
            .and_then(|p| p.checked_mul(page_size))
            .ok_or(AuthError::InvalidPage)?;
        let (count, users) = self.list_users(offset, page_size).await?;
        let pages = ((count + page_size - 1) / page_size).max(1);
        if page > pages {
            return Err(AuthError::InvalidPage);
        }
        Ok(UsersPage {
            count,
            page_size,
            next: (page < pages).then_some(page + 1),
            previous: (page > 1).then_some(page - 1),
            users,
        })
    }

    /// An administrator's change of a user's flags (and address).
    /// Deactivation also raises the token version, so the user's tokens stop
    /// working at once; a new address is unverified unless the change says
    /// otherwise. `actor` is the staff user who does it (`None`: the CLI):
    /// only a superuser may change a superuser ([`AuthError::NotSuperuser`]),
    /// and no one may demote or deactivate the last active staff user
    /// ([`AuthError::LastActiveStaff`]).
    pub async fn set_user_flags(
        &self,
        id: UserId,
        change: UserChange,
        actor: Option<UserId>,
    ) -> Result<Option<Arc<User>>, AuthError> {
        if let Some(email) = &change.email
            && !email.is_empty()
            && !crate::mail::is_deliverable(email)
        {
            return Err(field_error("email", "Enter a valid email address."));
        }
        only_superusers_touch_superusers(&self.live, id, actor).await?;
        let mut fields = serde_json::Map::new();
        if let Some(active) = change.is_active {
            fields.insert("is_active".into(), active.into());
        }
        if let Some(staff) = change.is_staff {
            fields.insert("is_staff".into(), staff.into());
        }
        if change.email.is_some() {
            // Not the address itself: the audit log is no address book.
            fields.insert("email".into(), true.into());
        }
        if let Some(verified) = change.email_verified {
            fields.insert("email_verified".into(), verified.into());
        }
        if change.app_metadata.is_some() {
            // Not the object: it may hold what the audit log should not.
            fields.insert("app_metadata".into(), true.into());
        }
        let update = UserUpdate {
            is_active: change.is_active,
            is_staff: change.is_staff,
            bump_token_version: change.is_active == Some(false),
            email: change.email,
            email_verified: change.email_verified,
            app_metadata: change.app_metadata.map(|m| m.to_stored()),
            ..Default::default()
        };
        let updated = self.update_user(id, update).await?;
        if updated.is_some() {
            let detail = serde_json::json!({ "fields": fields });
            let kind = AuditKind::UserUpdated;
            self.common.audit(kind, Some(id), actor, None, detail);
        }
        Ok(updated)
    }

    /// Gives user `id` exactly `roles`; `actor` is the staff user who does
    /// it (`None`: the CLI), who must be a superuser to change a
    /// superuser's. The user's access tokens issued before are refused as
    /// expired from now on (their claims are stale), so clients refresh and
    /// get the new roles; refresh tokens and sessions go on. A `user_updated`
    /// event names the roles before and after.
    pub async fn set_roles(
        &self,
        id: UserId,
        roles: Roles,
        actor: Option<UserId>,
    ) -> Result<Option<Arc<User>>, AuthError> {
        only_superusers_touch_superusers(&self.live, id, actor).await?;
        let Some(before) = self.live.user(id).await? else {
            return Ok(None);
        };
        let update = UserUpdate {
            roles: Some(roles.to_stored()),
            ..Default::default()
        };
        let updated = self.update_user(id, update).await?;
        if updated.is_some() {
            let detail = serde_json::json!({ "fields": {
                "roles": { "before": before.roles.names(), "after": roles.names() }
            }});
            let kind = AuditKind::UserUpdated;
            self.common.audit(kind, Some(id), actor, None, detail);
        }
        Ok(updated)
    }

    /// An operator's change (`tessera users roles`): [`Accounts::set_roles`]
    /// with the user's roles plus `add` and minus `remove`, the refusal
    /// under `roles` when the result is not a valid set of roles, and the
    /// audit event written before this returns (the CLI exits right after).
    pub async fn change_roles(
        &self,
        id: UserId,
        add: &[String],
        remove: &[String],
    ) -> Result<Option<Arc<User>>, AuthError> {
        let Some(user) = self.live.user(id).await? else {
            return Ok(None);
        };
        let roles = user
            .roles
            .changed(add, remove)
            .map_err(|message| field_error("roles", message))?;
        let changed = self.set_roles(id, roles, None).await?;
        self.common.audit_log().flush().await;
        Ok(changed)
    }

    /// Refuses every token of the user issued until now; `actor` is the
    /// staff user who does it (a superuser's tokens: a superuser only).
    pub async fn revoke_user(
        &self,
        id: UserId,
        actor: Option<UserId>,
    ) -> Result<Option<Arc<User>>, AuthError> {
        only_superusers_touch_superusers(&self.live, id, actor).await?;
        let update = UserUpdate {
            bump_token_version: true,
            ..Default::default()
        };
        let revoked = self.update_user(id, update).await?;
        if revoked.is_some() {
            let kind = AuditKind::UserRevoked;
            self.common
                .audit(kind, Some(id), actor, None, serde_json::json!({}));
        }
        Ok(revoked)
    }

    /// Removes user `id`'s second factors (a staff user's answer to a lost
    /// device): the TOTP factor, pending or confirmed, its recovery codes
    /// and the challenges of logins waiting for it, so that the password
    /// alone logs in (while the `mfa` setting lets it). Only a superuser
    /// resets a superuser's; audited as `mfa_reset` with the actor (also
    /// when there was nothing to remove). `None` when there is no such user.
    pub async fn reset_second_factors(
        &self,
        id: UserId,
        actor: Option<UserId>,
    ) -> Result<Option<()>, AuthError> {
        only_superusers_touch_superusers(&self.live, id, actor).await?;
        if self.live.user(id).await?.is_none() {
            return Ok(None);
        }
        let removed = self.common.store().reset_factors(id.get()).await?;
        let detail = serde_json::json!({"removed": removed});
        let kind = AuditKind::MfaReset;
        self.common.audit(kind, Some(id), actor, None, detail);
        Ok(Some(()))
    }

    /// [`Accounts::reset_second_factors`] by an operator (`tessera users
    /// mfa-reset`): no actor, and the `mfa_reset` event written before this
    /// returns (the CLI, its caller, exits right after).
    pub async fn reset_second_factors_by_operator(
        &self,
        id: UserId,
    ) -> Result<Option<()>, AuthError> {
        let reset = self.reset_second_factors(id, None).await?;
        self.common.audit_log().flush().await;
        Ok(reset)
    }

    /// The user with this username, from the store.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, AuthError> {
        let Ok(name) = Username::parse(username) else {
            return Ok(None);
        };
        Ok(self
            .common
            .store()
            .user_by_username(name.as_str())
            .await?
            .map(User::from))
    }

    /// Changes a user's flags or password hash (and raises the token version
    /// when asked), applying the change to this process at once.
    pub async fn update_user(
        &self,
        id: UserId,
        update: UserUpdate,
    ) -> Result<Option<Arc<User>>, AuthError> {
        if update.bump_token_version {
            telemetry::revoked("user");
        }
        let now = self.common.now();
        let record = match self.common.store().update_user(id.get(), update, now).await {
            Err(StoreError::LastActiveStaff) => return Err(AuthError::LastActiveStaff),
            other => other?,
        };
        self.common.announce();
        Ok(record.map(|r| self.live.remember(r)))
    }
}

/// Refuses ([`AuthError::NotSuperuser`]) what staff user `actor` would
/// do to user `target` when the target is a superuser and the actor is
/// not: a plain staff user could otherwise deactivate, demote or log out
/// every superuser. `None` (the CLI: an operator) may do anything; a
/// target that does not exist is left to the action to answer.
pub(super) async fn only_superusers_touch_superusers(
    live: &Live,
    target: UserId,
    actor: Option<UserId>,
) -> Result<(), AuthError> {
    let Some(actor) = actor else {
        return Ok(());
    };
    if !live.user(target).await?.is_some_and(|t| t.is_superuser) {
        return Ok(());
    }
    // The actor's flags now, not its token's: as the Staff check reads them.
    match live.user(actor).await? {
        Some(a) if a.is_superuser && a.is_staff && a.is_active => Ok(()),
        _ => Err(AuthError::NotSuperuser),
    }
}

const USERNAME_TAKEN: &str = "A user with that username already exists.";
