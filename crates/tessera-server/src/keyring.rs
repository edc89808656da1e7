//! Loading the signing keys at start: the configured key, or the stored ones,
//! generating and storing a first key when there is none.

use crate::config::Settings;
use tessera_core::keys::{Key, KeyError, KeyMaterial, KeyRing, algorithm_name, is_hmac};
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
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key ring for `settings`: the configured `signing_key` alone when set,
/// otherwise every stored key of the configured algorithm (the newest signs),
/// generating and storing one if none exists yet.
pub async fn load(
    settings: &Settings,
    store: &dyn Store,
    now: i64,
) -> Result<KeyRing, KeyLoadError> {
    let alg = settings.algorithm;
    if let Some(configured) = &settings.signing_key {
        let bytes = if is_hmac(alg) {
            configured.as_bytes().to_vec()
        } else {
            std::fs::read(configured).map_err(|e| KeyLoadError::File {
                path: configured.clone(),
                reason: e.to_string(),
            })?
        };
        let key = KeyMaterial::from_bytes(alg, bytes)?.into_key()?;
        return Ok(KeyRing::single(key));
    }
    if let Some(ring) = stored_ring(settings, store).await? {
        return Ok(ring);
    }
    let material = KeyMaterial::generate(alg)?;
    let key = material.clone().into_key()?;
    store
        .insert_signing_key(&KeyRecord {
            kid: key.kid().to_owned(),
            algorithm: algorithm_name(alg).to_owned(),
            private_key: material.as_bytes().to_vec(),
            created_at: now,
            retired_at: None,
        })
        .await?;
    tracing::info!(
        kid = key.kid(),
        algorithm = algorithm_name(alg),
        "generated a new signing key"
    );
    // Read back: if another process generated one at the same moment, every
    // process settles on the same newest key and still accepts the other's.
    Ok(stored_ring(settings, store)
        .await?
        .unwrap_or_else(|| KeyRing::single(key)))
}

async fn stored_ring(
    settings: &Settings,
    store: &dyn Store,
) -> Result<Option<KeyRing>, KeyLoadError> {
    let alg = settings.algorithm;
    let name = algorithm_name(alg);
    let mut keys: Vec<(bool, Key)> = Vec::new();
    for record in store.signing_keys().await? {
        if record.algorithm != name {
            continue;
        }
        let key = KeyMaterial::from_bytes(alg, record.private_key)?.into_key()?;
        keys.push((record.retired_at.is_none(), key));
    }
    // Records come newest first; the newest key still in service signs.
    let Some(position) = keys.iter().position(|(active, _)| *active) else {
        return Ok(None);
    };
    let (_, signing) = keys.remove(position);
    Ok(Some(KeyRing::with_previous(
        signing,
        keys.into_iter().map(|(_, k)| k),
    )))
}
