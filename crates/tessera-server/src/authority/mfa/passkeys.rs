//! Passkeys: a user's registration, list and removal of theirs, and the
//! beginning and check of the ceremonies that use one (a login's second
//! factor, a passwordless login), whose state waits in the database for
//! whichever instance the browser's answer reaches.
//!
//! Promises: a ceremony is finished at most once (taken by deleting it),
//! within [`CEREMONY_LIFETIME`], only by the user or `mfa_token` it began
//! for; an assertion is accepted only with a signature counter above the
//! last one accepted (or zero after zero), decided by the database; a
//! user has at most [`MAX_PASSKEYS`]; a user's first factor comes with ten
//! recovery codes, and their last factor's removal takes the codes with
//! it; every change and use is audited, with the passkey's id and never
//! its key.

use super::super::common::Common;
use super::super::error::field_error;
use super::super::{AuditKind, AuthError, PasskeyError, SessionOrigin, User, client_key};
use super::factors::Factors;
use super::recovery_codes::RecoveryCodes;
use super::webauthn::{RelyingParty, challenge_of};
use super::{FactorCaller, require_fresh};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use tessera_core::claims::{AuthMethod, VerifiedClaims};
use tessera_store::{CeremonyLimits, CeremonyRecord, PasskeyAdded, PasskeyRecord};
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

/// How long a ceremony can be finished, seconds: time to find the
/// authenticator and touch it.
pub const CEREMONY_LIFETIME: i64 = 300;

/// The most passkeys one user has.
pub const MAX_PASSKEYS: i64 = 10;

/// The most passwordless logins under way at once (no user is known until
/// they finish, so the bound is global); a start beyond it is throttled.
pub const MAX_LOGIN_CEREMONIES: i64 = 10_000;

/// The most passwordless logins under way at once from one client address
/// (an IPv6 client: its /64), so that one client cannot hold the
/// [`MAX_LOGIN_CEREMONIES`] everyone shares.
pub const MAX_LOGIN_CEREMONIES_PER_ADDRESS: i64 = 10;

/// The limits the store applies to a passwordless login's ceremony (and
/// ignores for the others, which are bounded per user or per `mfa_token`).
const LIMITS: CeremonyLimits = CeremonyLimits {
    per_address: MAX_LOGIN_CEREMONIES_PER_ADDRESS,
    in_all: MAX_LOGIN_CEREMONIES,
};

/// The longest name a passkey can have, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A ceremony registering a passkey.
const REGISTER: &str = "register";
/// A ceremony answering a login's second factor.
pub(super) const SECOND_FACTOR: &str = "second_factor";
/// A passwordless login's ceremony.
const LOGIN: &str = "login";

/// One of a user's passkeys, as they see it.
#[derive(Debug, Clone)]
pub struct PasskeyView {
    /// The server's name for it, for its removal.
    pub id: String,
    /// The label its user gave it.
    pub name: String,
    /// When it was registered, Unix seconds.
    pub created_at: i64,
    /// When it last logged in, Unix seconds.
    pub last_used_at: Option<i64>,
}

impl From<PasskeyRecord> for PasskeyView {
    fn from(r: PasskeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A passkey just registered, and when it is the user's first factor,
/// their recovery codes (shown only in this answer).
#[derive(Debug)]
pub struct NewPasskey {
    /// The passkey.
    pub passkey: PasskeyView,
    /// The user's new recovery codes, when it is their first factor.
    pub recovery_codes: Option<Vec<String>>,
}

/// An assertion checked against a stored passkey: what the store's
/// conditional write then accepts once.
#[derive(Debug)]
pub(in crate::authority) struct PasskeyUse {
    /// The passkey's id.
    pub id: String,
    /// The assertion's signature counter.
    pub sign_count: i64,
    /// The credential after the assertion (the library's JSON).
    pub passkey: String,
    /// `hwk`, or `swk` for a passkey its authenticator may copy to other
    /// devices (backup eligible).
    pub key: AuthMethod,
}

/// A user's passkeys and the ceremonies that register and use them.
pub struct Passkeys {
    common: Arc<Common>,
    factors: Arc<Factors>,
    rp: Arc<RelyingParty>,
}

impl Passkeys {
    pub(in crate::authority) fn new(
        common: Arc<Common>,
        factors: Arc<Factors>,
        rp: Arc<RelyingParty>,
    ) -> Self {
        Self {
            common,
            factors,
            rp,
        }
    }

    /// Begins the registration of a passkey for the caller (a fresh token,
    /// or an enrolment token): the creation options for the browser.
    pub async fn begin_registration(&self, caller: FactorCaller<'_>) -> Result<Value, AuthError> {
        let user = caller.user();
        caller.require_fresh(self.factors.methods_of(user).await?.is_some())?;
        let store = self.common.store();
        let existing = store.passkeys(user.id.get()).await?;
        if i64::try_from(existing.len()).unwrap_or(i64::MAX) >= MAX_PASSKEYS {
            return Err(AuthError::Passkey(PasskeyError::TooMany));
        }
        // One handle per user (the authenticator files its passkeys under
        // it); random, so that it says nothing about the user.
        let handle = existing
            .iter()
            .find_map(|p| Uuid::parse_str(&p.user_handle).ok())
            .unwrap_or_else(Uuid::new_v4);
        let exclude = existing
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let started = self
            .rp
            .start_registration(handle, &user.username, exclude)?;
        let now = self.common.now();
        let ceremony = CeremonyRecord {
            challenge: started.challenge,
            purpose: REGISTER.into(),
            user_id: Some(user.id.get()),
            mfa_token_hash: None,
            state: started.state,
            ip: String::new(),
            created_at: now,
            expires_at: now.saturating_add(CEREMONY_LIFETIME),
        };
        store.create_ceremony(&ceremony, LIMITS).await?;
        Ok(started.options)
    }

    /// Finishes the caller's registration with the browser's answer: the
    /// passkey, named `name` (or "Passkey"), and the recovery codes when
    /// it is the caller's first factor. An answer not of the caller's
    /// registration under way (another challenge, origin or relying party,
    /// a signature that fails) is a 400 under `credential`.
    pub async fn finish_registration(
        &self,
        caller: FactorCaller<'_>,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
        origin: &SessionOrigin,
    ) -> Result<NewPasskey, AuthError> {
        let user = caller.user();
        caller.require_fresh(self.factors.methods_of(user).await?.is_some())?;
        let name = passkey_name(name)?;
        let refused = || {
            let detail =
                json!({"factor": "passkey", "reason": "refused", "purpose": "registration"});
            let kind = AuditKind::MfaFailed;
            self.common
                .audit(kind, Some(user.id), None, Some(origin), detail);
            field_error(
                "credential",
                "This is not the answer to your passkey registration under way (it expired, \
                 was finished, or is of another site): start it again.",
            )
        };
        let Some(challenge) = challenge_of(&credential.response.client_data_json) else {
            return Err(refused());
        };
        let store = self.common.store();
        let now = self.common.now();
        let ceremony = store.take_ceremony(&challenge, REGISTER, now).await?;
        let Some(ceremony) = ceremony.filter(|c| c.user_id == Some(user.id.get())) else {
            return Err(refused());
        };
        let Some((passkey, handle)) = self.rp.finish_registration(credential, &ceremony.state)?
        else {
            return Err(refused());
        };
        let record = PasskeyRecord {
            id: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            user_id: user.id.get(),
            credential_id: URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref()),
            user_handle: handle.to_string(),
            name,
            passkey: serde_json::to_string(&passkey)
                .map_err(|e| AuthError::Internal(format!("passkey: {e}")))?,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        };
        let codes = RecoveryCodes::generate();
        let added = store
            .add_passkey(&record, MAX_PASSKEYS, codes.hashes())
            .await?;
        let first_factor = match added {
            PasskeyAdded::Added { first_factor } => first_factor,
            PasskeyAdded::Duplicate => return Err(AuthError::Passkey(PasskeyError::Duplicate)),
            PasskeyAdded::TooMany => return Err(AuthError::Passkey(PasskeyError::TooMany)),
        };
        let detail = json!({"passkey": record.id, "first_factor": first_factor});
        let kind = AuditKind::PasskeyRegistered;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), detail);
        Ok(NewPasskey {
            passkey: record.into(),
            recovery_codes: first_factor.then(|| codes.into_shown()),
        })
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user: &User) -> Result<Vec<PasskeyView>, AuthError> {
        let passkeys = self.common.store().passkeys(user.id.get()).await?;
        Ok(passkeys.into_iter().map(PasskeyView::from).collect())
    }

    /// Removes the user's passkey `id` (and their recovery codes when it
    /// was their last factor), with a fresh token from a login that used a
    /// second factor. [`PasskeyError::NotFound`] when they have none of
    /// that id.
    pub async fn remove(
        &self,
        claims: &VerifiedClaims,
        user: &User,
        id: &str,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        require_fresh(claims, true)?;
        let store = self.common.store();
        if !store.remove_passkey(user.id.get(), id).await? {
            return Err(AuthError::Passkey(PasskeyError::NotFound));
        }
        let kind = AuditKind::PasskeyRemoved;
        self.common.audit(
            kind,
            Some(user.id),
            None,
            Some(origin),
            json!({"passkey": id}),
        );
        Ok(())
    }

    /// Begins the passkey ceremony answering the login challenge
    /// `mfa_token` names (one at a time per token: a new one replaces it):
    /// the request options for the browser.
    pub async fn begin_second_factor(&self, mfa_token: &str) -> Result<Value, AuthError> {
        let Some(challenge) = self.factors.live_challenge(mfa_token).await? else {
            return Err(AuthError::MfaTokenInvalid);
        };
        let store = self.common.store();
        let passkeys: Vec<Passkey> = store
            .passkeys(challenge.user_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.passkey).ok())
            .collect();
        if passkeys.is_empty() {
            return Err(AuthError::Passkey(PasskeyError::NoPasskey));
        }
        let started = self.rp.start_authentication(&passkeys)?;
        let now = self.common.now();
        let ceremony = CeremonyRecord {
            challenge: started.challenge,
            purpose: SECOND_FACTOR.into(),
            user_id: Some(challenge.user_id),
            mfa_token_hash: Some(challenge.token_hash),
            state: started.state,
            ip: String::new(),
            created_at: now,
            expires_at: now.saturating_add(CEREMONY_LIFETIME),
        };
        store.create_ceremony(&ceremony, LIMITS).await?;
        Ok(started.options)
    }

    /// The browser's answer to the second-factor ceremony of the login
    /// challenge of hash `mfa_token_hash`, checked against `user`'s
    /// passkeys: the use to record, or `None` when it is not an answer to
    /// that ceremony by one of them. The ceremony is used up either way.
    pub(in crate::authority) async fn check_second_factor(
        &self,
        user: &User,
        credential: &PublicKeyCredential,
        mfa_token_hash: &str,
    ) -> Result<Option<PasskeyUse>, AuthError> {
        let Some(challenge) = challenge_of(&credential.response.client_data_json) else {
            return Ok(None);
        };
        let store = self.common.store();
        let now = self.common.now();
        let ceremony = store.take_ceremony(&challenge, SECOND_FACTOR, now).await?;
        let Some(ceremony) = ceremony.filter(|c| {
            c.user_id == Some(user.id.get()) && c.mfa_token_hash.as_deref() == Some(mfa_token_hash)
        }) else {
            return Ok(None);
        };
        let Some(record) = self.stored(credential).await? else {
            return Ok(None);
        };
        if record.user_id != user.id.get() {
            return Ok(None);
        }
        let result = self.rp.finish_authentication(credential, &ceremony.state)?;
        Ok(result.and_then(|result| used(&record, &result)))
    }

    /// Begins a passwordless login for the client at `client`: the request
    /// options for the browser, which offers the user's discoverable
    /// passkeys. Refused while `passkey_login` is off, and throttled while
    /// [`MAX_LOGIN_CEREMONIES_PER_ADDRESS`] of the client's address, or
    /// [`MAX_LOGIN_CEREMONIES`] in all, are under way.
    pub async fn begin_login(&self, client: IpAddr) -> Result<Value, AuthError> {
        if !self.common.settings().passkey_login {
            return Err(AuthError::Passkey(PasskeyError::LoginDisabled));
        }
        let started = self.rp.start_discoverable()?;
        let now = self.common.now();
        let ceremony = CeremonyRecord {
            challenge: started.challenge,
            purpose: LOGIN.into(),
            user_id: None,
            mfa_token_hash: None,
            state: started.state,
            ip: client_key(client).to_string(),
            created_at: now,
            expires_at: now.saturating_add(CEREMONY_LIFETIME),
        };
        let store = self.common.store();
        if !store.create_ceremony(&ceremony, LIMITS).await? {
            return Err(AuthError::Throttled(60));
        }
        Ok(started.options)
    }

    /// The browser's answer to a passwordless login's ceremony: the user
    /// whose passkey answered and its use, recorded (the counter raised);
    /// else why not (`reason` for the audit, and the user when known).
    /// The ceremony is used up either way.
    pub(in crate::authority) async fn check_login(
        &self,
        credential: &PublicKeyCredential,
    ) -> Result<Result<(i64, PasskeyUse), (&'static str, Option<i64>)>, AuthError> {
        let Some(challenge) = challenge_of(&credential.response.client_data_json) else {
            return Ok(Err(("malformed", None)));
        };
        let store = self.common.store();
        let now = self.common.now();
        let Some(ceremony) = store.take_ceremony(&challenge, LOGIN, now).await? else {
            return Ok(Err(("ceremony", None)));
        };
        let Some(handle) = self.rp.user_handle_of(credential)? else {
            return Ok(Err(("user_handle", None)));
        };
        let record = self.stored(credential).await?;
        let Some(record) = record.filter(|r| r.user_handle == handle.to_string()) else {
            return Ok(Err(("unknown_passkey", None)));
        };
        let user_id = record.user_id;
        let Ok(passkey) = serde_json::from_str::<Passkey>(&record.passkey) else {
            return Ok(Err(("unknown_passkey", Some(user_id))));
        };
        let result = self
            .rp
            .finish_discoverable(credential, &ceremony.state, &passkey)?;
        let Some(used) = result.and_then(|result| used(&record, &result)) else {
            return Ok(Err(("refused", Some(user_id))));
        };
        if !store
            .use_passkey(user_id, &used.id, used.sign_count, &used.passkey, now)
            .await?
        {
            return Ok(Err(("replayed", Some(user_id))));
        }
        Ok(Ok((user_id, used)))
    }

    /// The stored passkey the answer names by its credential id.
    async fn stored(
        &self,
        credential: &PublicKeyCredential,
    ) -> Result<Option<PasskeyRecord>, AuthError> {
        let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        Ok(self.common.store().passkey_by_credential(&id).await?)
    }
}

/// The use of `record` an accepted assertion `result` makes: the
/// credential with its counter raised.
fn used(record: &PasskeyRecord, result: &AuthenticationResult) -> Option<PasskeyUse> {
    let mut passkey: Passkey = serde_json::from_str(&record.passkey).ok()?;
    passkey.update_credential(result);
    let key = match result.backup_eligible() {
        true => AuthMethod::SoftwareKey,
        false => AuthMethod::HardwareKey,
    };
    Some(PasskeyUse {
        id: record.id.clone(),
        sign_count: i64::from(result.counter()),
        passkey: serde_json::to_string(&passkey).ok()?,
        key,
    })
}

/// A passkey's name as given: "Passkey" when none, refused (400 under
/// `name`) when too long or with control characters.
fn passkey_name(name: Option<&str>) -> Result<String, AuthError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok("Passkey".into());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(field_error(
            "name",
            "A passkey's name is at most 100 characters, without control characters.",
        ));
    }
    Ok(name.to_owned())
}
