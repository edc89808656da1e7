//! The WebAuthn relying party, with webauthn-rs: the options each
//! ceremony sends to the browser, its state as the database keeps it
//! (JSON), and the check of what the browser answers.
//!
//! Promises: the relying party id is the host of `public_url` and the
//! origins accepted are `public_url`'s and those of
//! `cors_allowed_origins` (an application on another origin of the same
//! site); without `public_url` every ceremony is refused with
//! [`PasskeyError::Unavailable`]. Every passkey is asked to be discoverable
//! (so that turning `passkey_login` on later finds it) and to verify its
//! user (a PIN or biometric: the passkey is two factors in one).

use super::super::{AuthError, PasskeyError};
use crate::config::Settings;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

/// A ceremony's options for the browser (`{"publicKey": {...}}`), the
/// challenge they carry (base64url, the ceremony's key in the database),
/// and its state (JSON) to finish it with.
pub(in crate::authority) struct Started {
    /// What the browser passes to `navigator.credentials`.
    pub options: Value,
    /// The challenge, as the options carry it.
    pub challenge: String,
    /// The state to finish with.
    pub state: String,
}

/// A registration's state as stored: the library's, and the user handle
/// the new passkey will be known by.
#[derive(Serialize, Deserialize)]
struct Registration {
    user_handle: Uuid,
    state: PasskeyRegistration,
}

/// The only field of the client data read before the library checks all
/// of it: the challenge, which names the ceremony.
#[derive(Deserialize)]
struct ClientData {
    challenge: String,
}

/// The relying party, or `None` without `public_url`.
pub(in crate::authority) struct RelyingParty {
    webauthn: Option<Webauthn>,
}

impl RelyingParty {
    /// The relying party `settings` describe; `None` inside without
    /// `public_url`, an error for a `public_url` WebAuthn cannot use (an
    /// IP address: browsers refuse them as relying party ids).
    pub(in crate::authority) fn new(settings: &Settings) -> Result<Self, String> {
        let Some(public_url) = &settings.public_url else {
            return Ok(Self { webauthn: None });
        };
        let origin = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
        let Some(url::Host::Domain(rp_id)) = origin.host() else {
            // Passkeys cannot work on an address: say so at their first use,
            // not by refusing to start a server that works without them.
            return Ok(Self { webauthn: None });
        };
        let mut builder = WebauthnBuilder::new(rp_id, &origin)
            .map_err(|e| format!("passkeys cannot use public_url {public_url}: {e}"))?
            .rp_name(&settings.totp_issuer);
        for other in &settings.cors_allowed_origins {
            if let Ok(url) = Url::parse(other) {
                builder = builder.append_allowed_origin(&url);
            }
        }
        let webauthn = builder
            .build()
            .map_err(|e| format!("passkeys cannot use public_url {public_url}: {e}"))?;
        Ok(Self {
            webauthn: Some(webauthn),
        })
    }

    fn webauthn(&self) -> Result<&Webauthn, AuthError> {
        self.webauthn
            .as_ref()
            .ok_or(AuthError::Passkey(PasskeyError::Unavailable))
    }

    /// Begins a registration for the user of handle `user_handle` and name
    /// `username`, excluding the credentials they have.
    pub(in crate::authority) fn start_registration(
        &self,
        user_handle: Uuid,
        username: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<Started, AuthError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_passkey_registration(user_handle, username, username, Some(exclude))
            .map_err(internal)?;
        let mut options = serde_json::to_value(options).map_err(internal)?;
        // A passkey is a discoverable credential: asked for, not required
        // (a security key without room for one still registers).
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "preferred".into());
        }
        let state = Registration { user_handle, state };
        started(options, &state)
    }

    /// Finishes a registration begun with `state`: the new passkey and its
    /// user handle, or `None` when the browser's answer is not of this
    /// ceremony (challenge, origin, relying party) or not valid.
    pub(in crate::authority) fn finish_registration(
        &self,
        credential: &RegisterPublicKeyCredential,
        state: &str,
    ) -> Result<Option<(Passkey, Uuid)>, AuthError> {
        let webauthn = self.webauthn()?;
        let Ok(state) = serde_json::from_str::<Registration>(state) else {
            return Ok(None);
        };
        Ok(webauthn
            .finish_passkey_registration(credential, &state.state)
            .ok()
            .map(|passkey| (passkey, state.user_handle)))
    }

    /// Begins an authentication with one of `passkeys` (a second factor).
    pub(in crate::authority) fn start_authentication(
        &self,
        passkeys: &[Passkey],
    ) -> Result<Started, AuthError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_passkey_authentication(passkeys)
            .map_err(internal)?;
        let options = serde_json::to_value(options).map_err(internal)?;
        started(options, &state)
    }

    /// Finishes an authentication begun with `state`, or `None`.
    pub(in crate::authority) fn finish_authentication(
        &self,
        credential: &PublicKeyCredential,
        state: &str,
    ) -> Result<Option<AuthenticationResult>, AuthError> {
        let webauthn = self.webauthn()?;
        let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(state) else {
            return Ok(None);
        };
        Ok(webauthn
            .finish_passkey_authentication(credential, &state)
            .ok())
    }

    /// Begins a passwordless login with whatever discoverable passkey the
    /// browser offers.
    pub(in crate::authority) fn start_discoverable(&self) -> Result<Started, AuthError> {
        let webauthn = self.webauthn()?;
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(internal)?;
        // A button's modal prompt, not the autofill of conditional UI.
        options.mediation = None;
        let options = serde_json::to_value(options).map_err(internal)?;
        started(options, &state)
    }

    /// The user handle a passwordless login's answer names, or `None`.
    pub(in crate::authority) fn user_handle_of(
        &self,
        credential: &PublicKeyCredential,
    ) -> Result<Option<Uuid>, AuthError> {
        let webauthn = self.webauthn()?;
        Ok(webauthn
            .identify_discoverable_authentication(credential)
            .ok()
            .map(|(handle, _)| handle))
    }

    /// Finishes a passwordless login begun with `state`, with `passkey`
    /// (the one its answer names), or `None`.
    pub(in crate::authority) fn finish_discoverable(
        &self,
        credential: &PublicKeyCredential,
        state: &str,
        passkey: &Passkey,
    ) -> Result<Option<AuthenticationResult>, AuthError> {
        let webauthn = self.webauthn()?;
        let Ok(state) = serde_json::from_str::<DiscoverableAuthentication>(state) else {
            return Ok(None);
        };
        Ok(webauthn
            .finish_discoverable_authentication_v2(credential, state, passkey)
            .ok())
    }
}

/// The challenge a browser's answer carries in its client data (which the
/// library checks whole later), or `None` when it is unreadable.
pub(in crate::authority) fn challenge_of(client_data_json: &[u8]) -> Option<String> {
    serde_json::from_slice::<ClientData>(client_data_json)
        .ok()
        .map(|data| data.challenge)
        .filter(|c| !c.is_empty() && c.len() <= 128)
}

/// The options, their challenge and `state` as stored.
fn started(options: Value, state: &impl Serialize) -> Result<Started, AuthError> {
    let challenge = options
        .pointer("/publicKey/challenge")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::Internal("WebAuthn options without a challenge".into()))?
        .to_owned();
    let state = serde_json::to_string(state).map_err(internal)?;
    Ok(Started {
        options,
        challenge,
        state,
    })
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("WebAuthn: {e}"))
}
