//! The signing keys: the configured key, or the stored ones (the newest in
//! service signs; retired ones verify until every token they signed has
//! expired), generating and storing a key when none fits the settings.

use crate::config::Settings;
use tessera_core::Algorithm;
use tessera_core::keys::{
    Key, KeyError, KeyMaterial, KeyRing, algorithm_name, is_hmac, parse_algorithm,
};
use tessera_store::{KeyRecord, Store, StoreError};

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

/// The ring to start with. The configured `signing_key` alone when set;
/// otherwise the stored keys, putting a new key in service when none is, or
/// when an HMAC key is and an asymmetric algorithm is configured (the switch
/// to published keys, which retires every HMAC key for good). Any other
/// difference between the key in service and the configured algorithm stops
/// the start: an instance left with old settings must not switch the whole
/// deployment back (`tessera keys rotate` switches it on purpose).
pub async fn load_at_start(
    settings: &Settings,
    store: &dyn Store,
    now: i64,
) -> Result<KeyRing, KeyLoadError> {
    if let Some(ring) = configured_ring(settings)? {
        return Ok(ring);
    }
    match stored_ring(settings, store, now).await? {
        Some(ring)
            if ring
                .signing_key()
                .is_some_and(|k| k.algorithm() == settings.algorithm) =>
        {
            return Ok(ring);
        }
        Some(ring) => {
            let in_service = ring
                .signing_key()
                .map_or(settings.algorithm, |k| k.algorithm());
            // The one switch a start makes: from an HMAC key to published keys.
            let to_published = is_hmac(in_service) && !is_hmac(settings.algorithm);
            if !to_published {
                return Err(KeyLoadError::AlgorithmInService {
                    in_service: algorithm_name(in_service),
                    configured: algorithm_name(settings.algorithm),
                });
            }
            rotate(settings, store, settings.algorithm, now).await?;
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
            } else if stored_ring(settings, store, now).await?.is_none() {
                // A key is in service that this configuration cannot use (an
                // HMAC key, with an asymmetric algorithm configured): replace it.
                rotate(settings, store, settings.algorithm, now).await?;
            }
        }
    }
    // Read back: if another process generated one at the same moment, every
    // process settles on the same newest key and still accepts the other's.
    stored_ring(settings, store, now)
        .await?
        .ok_or(KeyLoadError::Missing)
}

/// The ring a command other than `serve` works with: the configured key, or
/// the stored keys as they are. It never puts a key in service (a command
/// run with other settings would switch the running server's key), and it
/// says so when the keys in service are not of the configured algorithm. An
/// empty ring when nothing is stored yet: such a command signs nothing.
pub async fn load_existing(
    settings: &Settings,
    store: &dyn Store,
    now: i64,
) -> Result<KeyRing, KeyLoadError> {
    if let Some(ring) = configured_ring(settings)? {
        return Ok(ring);
    }
    let ring = stored_ring(settings, store, now).await?;
    if let Some(key) = ring.as_ref().and_then(KeyRing::signing_key)
        && key.algorithm() != settings.algorithm
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
    store: &dyn Store,
    now: i64,
) -> Result<Option<KeyRing>, KeyLoadError> {
    if settings.signing_key.is_some() {
        return Ok(None);
    }
    stored_ring(settings, store, now).await
}

/// Generates a key for `alg` and makes it the one that signs, retiring the
/// others (they keep verifying the tokens they signed). Returns its kid.
pub async fn rotate(
    settings: &Settings,
    store: &dyn Store,
    alg: Algorithm,
    now: i64,
) -> Result<String, KeyLoadError> {
    if settings.signing_key.is_some() {
        return Err(KeyLoadError::Configured);
    }
    let (record, kid) = new_key_record(alg, now)?;
    store.rotate_signing_key(&record).await?;
    tracing::info!(
        kid,
        algorithm = algorithm_name(alg),
        "new signing key in service"
    );
    Ok(kid)
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

async fn stored_ring(
    settings: &Settings,
    store: &dyn Store,
    now: i64,
) -> Result<Option<KeyRing>, KeyLoadError> {
    let grace = verification_grace(settings);
    let mut signing: Option<Key> = None;
    let mut previous: Vec<(Key, Option<i64>)> = Vec::new();
    let records = store.signing_keys().await?;
    let hmac_refused = hmac_refused(&records);
    // Records come newest first; the newest key still in service signs.
    for record in records {
        let until = record.retired_at.map(|retired| retired + grace);
        if until.is_some_and(|u| u <= now) {
            continue;
        }
        let Some(alg) = parse_algorithm(&record.algorithm) else {
            tracing::warn!(kid = %record.kid, algorithm = %record.algorithm, "skipping a stored key of an unknown algorithm");
            continue;
        };
        if hmac_refused && is_hmac(alg) {
            continue;
        }
        let key = KeyMaterial::from_bytes(alg, record.private_key)?.into_key()?;
        if signing.is_none() && record.retired_at.is_none() {
            signing = Some(key);
        } else {
            previous.push((key, until));
        }
    }
    Ok(signing.map(|key| KeyRing::with_previous(key, previous)))
}

/// Whether HMAC keys are refused among `records` (newest first): once an
/// asymmetric key is in service, every HMAC token is refused (docs/API.md),
/// and an HMAC key left from before the switch retires at once, or its
/// secret would keep minting tokens that verify. The key in service decides
/// this, not the settings, so that every instance of a deployment applies
/// the same rule whatever its own configuration says, at once after a
/// `keys rotate` as after a restart.
fn hmac_refused(records: &[KeyRecord]) -> bool {
    records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .find_map(|r| parse_algorithm(&r.algorithm))
        .is_some_and(|alg| !is_hmac(alg))
}

/// A stored key as `tessera keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm name.
    pub algorithm: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// Until when it verifies, for a retired key.
    pub verifies_until: Option<i64>,
    /// Whether it verifies nothing any more, before that time: an HMAC key
    /// while an asymmetric key is in service.
    pub refused: bool,
}

/// Every stored key, newest first, without private material.
pub async fn list(settings: &Settings, store: &dyn Store) -> Result<Vec<KeyInfo>, KeyLoadError> {
    let grace = verification_grace(settings);
    let records = store.signing_keys().await?;
    let hmac_refused = hmac_refused(&records);
    Ok(records
        .into_iter()
        .map(|r| KeyInfo {
            refused: hmac_refused && parse_algorithm(&r.algorithm).is_some_and(is_hmac),
            kid: r.kid,
            algorithm: r.algorithm,
            created_at: r.created_at,
            retired_at: r.retired_at,
            verifies_until: r.retired_at.map(|t| t + grace),
        })
        .collect())
}
