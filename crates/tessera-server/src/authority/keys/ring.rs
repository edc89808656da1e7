//! The signing keys: the configured key, or the stored ones (the one in
//! service signs; a rotated key is published first and signs from a moment
//! on the database's clock; retired ones verify until every token they
//! signed has expired), generating and storing a key when none fits the
//! settings.

use super::stored::stored_ring;
use crate::config::Settings;
use tessera_core::Algorithm;
use tessera_core::clock::Clock;
use tessera_core::keys::{Key, KeyError, KeyMaterial, KeyRing, algorithm_name, is_hmac};
use tessera_store::{KeyRecord, KeyStore, StoreError};

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// The configured or stored key is unusable.
    #[error("signing_key: {0}")]
    Key(#[from] KeyError),
    /// The configured PEM file could not be read.
    #[error("signing_key: cannot read {path}: {reason}")]
    File {
        /// The path from the setting.
        path: String,
        /// Why.
        reason: String,
    },
    /// Keys come from the configuration, so the store's keys are not used.
    #[error("signing_key is set in the configuration: change it there to rotate")]
    Configured,
    /// A key was stored but cannot be read back.
    #[error("no signing key in service after storing one")]
    Missing,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deployment signs with another algorithm than this instance is
    /// configured for, and starting would switch it back.
    #[error(
        "algorithm: the key in service is {in_service}, this instance is configured for \
         {configured}; set algorithm = \"{in_service}\" (as the other instances are), or \
         switch the whole deployment with `TESSERA_ALGORITHM={configured} tessera keys rotate`"
    )]
    AlgorithmInService {
        /// The algorithm of the key in service.
        in_service: &'static str,
        /// The algorithm of this instance's settings.
        configured: &'static str,
    },
}

/// When a key put in service by [`rotate`] starts signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStart {
    /// `key_publish_lead` after it is published, so that verifiers that
    /// cache the JWKS have it before its first token. An HMAC key, which is
    /// never published, signs at once.
    AfterLead,
    /// At once (`tessera keys rotate --now`): a verifier holding the JWKS
    /// from before refuses its tokens until it fetches the set again.
    Now,
}

/// A key [`rotate`] put in service.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// Its kid.
    pub kid: String,
    /// When it starts signing, on the database's clock (Unix seconds); the
    /// key it replaces signs until then.
    pub signs_from: i64,
    /// Whether it was published ahead of signing (`false`: it signs at once).
    pub ahead: bool,
}

/// The ring to start with. The configured `signing_key` alone when set;
/// otherwise the stored keys, putting a new key in service when none is, or
/// when an HMAC key is and an asymmetric algorithm is configured (the switch
/// to published keys, which retires every HMAC key for good when the new key
/// starts signing). Any other difference between the keys in service (the
/// one signing and the ones published to sign next) and the configured
/// algorithm stops the start: an instance left with old settings must not
/// switch the whole deployment back (`tessera keys rotate` switches it on
/// purpose).
pub async fn load_at_start(
    settings: &Settings,
    store: &dyn KeyStore,
    clock: &dyn Clock,
) -> Result<KeyRing, KeyLoadError> {
    if let Some(ring) = configured_ring(settings)? {
        return Ok(ring);
    }
    let now = clock.now();
    match stored_ring(settings, store, clock).await? {
        Some(ring) if in_service(&ring, now).any(|alg| alg == settings.algorithm) => {
            return Ok(ring);
        }
        Some(ring) => {
            let in_service = ring
                .signing_key(now)
                .map_or(settings.algorithm, |k| k.algorithm());
            // The one switch a start makes: from an HMAC key to published keys.
            let to_published = is_hmac(in_service) && !is_hmac(settings.algorithm);
            if !to_published {
                return Err(KeyLoadError::AlgorithmInService {
                    in_service: algorithm_name(in_service),
                    configured: algorithm_name(settings.algorithm),
                });
            }
            rotate(
                settings,
                store,
                settings.algorithm,
                clock,
                KeyStart::AfterLead,
            )
            .await?;
        }
        // No usable key in service: the first one. Of several instances
        // starting on an empty database at once, one puts its key in service;
        // the others find it on the read below.
        None => {
            let (record, kid) = new_key_record(settings.algorithm, now)?;
            if store.put_first_signing_key(&record).await? {
                tracing::info!(
                    kid,
                    algorithm = algorithm_name(settings.algorithm),
                    "first signing key in service"
                );
            } else if stored_ring(settings, store, clock).await?.is_none() {
                // A key is in service that no process of this version can
                // use (of an unknown algorithm): replace it at once, since
                // nothing signs meanwhile.
                rotate(settings, store, settings.algorithm, clock, KeyStart::Now).await?;
            }
        }
    }
    // Read back: if another process generated one at the same moment, every
    // process settles on the same newest key and still accepts the other's.
    stored_ring(settings, store, clock)
        .await?
        .ok_or(KeyLoadError::Missing)
}

/// The algorithms of the key signing at `now` and of the keys published to
/// sign after it.
fn in_service(ring: &KeyRing, now: i64) -> impl Iterator<Item = Algorithm> {
    ring.signing_key(now)
        .into_iter()
        .chain(ring.upcoming(now).map(|(key, _)| key))
        .map(Key::algorithm)
}

/// The ring a command other than `serve` works with: the configured key, or
/// the stored keys as they are. It never puts a key in service (a command
/// run with other settings would switch the running server's key), and it
/// says so when the keys in service are not of the configured algorithm. An
/// empty ring when nothing is stored yet: such a command signs nothing.
pub async fn load_existing(
    settings: &Settings,
    store: &dyn KeyStore,
    clock: &dyn Clock,
) -> Result<KeyRing, KeyLoadError> {
    if let Some(ring) = configured_ring(settings)? {
        return Ok(ring);
    }
    let ring = stored_ring(settings, store, clock).await?;
    let now = clock.now();
    if let Some(ring) = &ring
        && let Some(key) = ring.signing_key(now)
        && !in_service(ring, now).any(|alg| alg == settings.algorithm)
    {
        eprintln!(
            "note: the key in service is {}, not the configured {}; only `tessera serve` (at \
             start) and `tessera keys rotate` change keys",
            algorithm_name(key.algorithm()),
            algorithm_name(settings.algorithm)
        );
    }
    Ok(ring.unwrap_or_else(|| KeyRing::verifying([])))
}

/// The ring after the stored keys changed (another process rotated them);
/// `None` when keys come from the configuration. Never generates a key, so
/// that two processes with different settings cannot rotate back and forth.
pub async fn reload(
    settings: &Settings,
    store: &dyn KeyStore,
    clock: &dyn Clock,
) -> Result<Option<KeyRing>, KeyLoadError> {
    if settings.signing_key.is_some() {
        return Ok(None);
    }
    stored_ring(settings, store, clock).await
}

/// Generates a key for `alg` and puts it in service: published at once, it
/// signs from the moment `start` says (on the database's clock), when the
/// keys in service retire (they keep verifying the tokens they signed).
pub async fn rotate(
    settings: &Settings,
    store: &dyn KeyStore,
    alg: Algorithm,
    clock: &dyn Clock,
    start: KeyStart,
) -> Result<Rotated, KeyLoadError> {
    if settings.signing_key.is_some() {
        return Err(KeyLoadError::Configured);
    }
    // An HMAC key is never published: nothing would learn of it sooner.
    let lead_ms = match start {
        KeyStart::AfterLead if !is_hmac(alg) => {
            i64::try_from(settings.key_publish_lead.as_millis()).unwrap_or(i64::MAX)
        }
        _ => 0,
    };
    let (mut record, kid) = new_key_record(alg, clock.now())?;
    // The database's clock, not this process's: an operator's shell whose
    // clock is off must not move the moment every instance switches.
    let now_ms = store.database_time_ms().await?;
    let signs_from = if lead_ms == 0 {
        now_ms.div_euclid(1000)
    } else {
        // Rounded up: never sooner than the lead.
        seconds_up(now_ms.saturating_add(lead_ms))
    };
    record.signs_from = Some(signs_from);
    store.rotate_signing_key(&record).await?;
    tracing::info!(
        kid,
        algorithm = algorithm_name(alg),
        signs_from,
        "new signing key in service"
    );
    Ok(Rotated {
        kid,
        signs_from,
        ahead: lead_ms > 0,
    })
}

/// Milliseconds as whole seconds, rounded up.
pub(super) fn seconds_up(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// A freshly generated key of `alg`, as stored, and its kid.
fn new_key_record(alg: Algorithm, now: i64) -> Result<(KeyRecord, String), KeyLoadError> {
    let material = KeyMaterial::generate(alg)?;
    let kid = material.clone().into_key()?.kid().to_owned();
    Ok((
        KeyRecord {
            kid: kid.clone(),
            algorithm: algorithm_name(alg).to_owned(),
            private_key: material.as_bytes().to_vec(),
            created_at: now,
            signs_from: None,
            retired_at: None,
        },
        kid,
    ))
}

/// How long after retirement a key must still verify: the longest a token
/// it signed can live.
pub fn verification_grace(settings: &Settings) -> i64 {
    settings.token_policy().longest_validity()
}

fn configured_ring(settings: &Settings) -> Result<Option<KeyRing>, KeyLoadError> {
    let Some(configured) = &settings.signing_key else {
        return Ok(None);
    };
    let alg = settings.algorithm;
    let bytes = if is_hmac(alg) {
        configured.as_bytes().to_vec()
    } else {
        std::fs::read(configured).map_err(|e| KeyLoadError::File {
            path: configured.clone(),
            reason: e.to_string(),
        })?
    };
    let key = KeyMaterial::from_bytes(alg, bytes)?.into_key()?;
    Ok(Some(KeyRing::single(key)))
}
