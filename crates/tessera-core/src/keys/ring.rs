//! [`KeyRing`]: the keys a server holds, which one signs at each moment,
//! and until when each verifies.

use super::*;
use jsonwebtoken::jwk::Jwk;
use std::collections::HashMap;

/// The keys a server holds: the one that signs new tokens at each moment, and
/// every key whose tokens are still accepted, by kid. A retired key verifies
/// until the last token it could have signed has expired, then drops out
/// (JWKS included). A key can be published ahead of signing: it verifies and
/// is in the JWKS at once, and takes over signing at its moment, without the
/// ring being built again (every process of a deployment switches then).
#[derive(Debug)]
pub struct KeyRing {
    /// Who signs when: kids, each from its moment (seconds since the epoch)
    /// until the next one's, ordered by those moments.
    signers: Vec<(i64, String)>,
    keys: HashMap<String, (Key, Option<i64>)>,
    generation: u64,
}

/// One key of a ring built by [`KeyRing::scheduled`]: when it signs and
/// until when it verifies.
#[derive(Debug)]
pub struct RingEntry {
    /// The key.
    pub key: Key,
    /// From when it signs (seconds since the epoch; `i64::MIN` for "already
    /// signing"), until the moment of a key that signs after it; `None`: it
    /// signs nothing (it only verifies).
    pub signs_from: Option<i64>,
    /// Until when it verifies (exclusive); `None`: no limit.
    pub verifies_until: Option<i64>,
}

/// Tells rings apart: no two rings made by this process share a generation.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl KeyRing {
    /// A ring with one key that both signs and verifies, from any time on.
    pub fn single(key: Key) -> Self {
        Self::scheduled([RingEntry {
            key,
            signs_from: Some(i64::MIN),
            verifies_until: None,
        }])
    }

    /// A ring that only verifies (a service checking another's tokens).
    pub fn verifying(keys: impl IntoIterator<Item = Key>) -> Self {
        Self::scheduled(keys.into_iter().map(|key| RingEntry {
            key,
            signs_from: None,
            verifies_until: None,
        }))
    }

    /// A ring where `signing` signs and each of `previous` verifies until its
    /// time (seconds since the epoch; `None` for no limit).
    pub fn with_previous(
        signing: Key,
        previous: impl IntoIterator<Item = (Key, Option<i64>)>,
    ) -> Self {
        let signing = RingEntry {
            key: signing,
            signs_from: Some(i64::MIN),
            verifies_until: None,
        };
        Self::scheduled(
            std::iter::once(signing).chain(previous.into_iter().map(|(key, until)| RingEntry {
                key,
                signs_from: None,
                verifies_until: until,
            })),
        )
    }

    /// A ring of `entries`: each verifies until its time, and at any moment
    /// the entry with the latest `signs_from` not after it signs (of equal
    /// moments, the one that comes last). Of two entries with one kid the
    /// first counts.
    pub fn scheduled(entries: impl IntoIterator<Item = RingEntry>) -> Self {
        let mut signers = Vec::new();
        let mut keys = HashMap::new();
        for entry in entries {
            let kid = entry.key.kid.clone();
            if keys.contains_key(&kid) {
                continue;
            }
            if let Some(from) = entry.signs_from {
                signers.push((from, kid.clone()));
            }
            keys.insert(kid, (entry.key, entry.verifies_until));
        }
        // Stable: of equal moments, the later entry stays later, and signs.
        signers.sort_by_key(|(from, _)| *from);
        Self {
            signers,
            keys,
            generation: next_generation(),
        }
    }

    /// This ring's identity: different for every ring this process makes, so
    /// that what was verified against one ring is never taken as verified
    /// against another (see [`crate::verified`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The key that signs new tokens at `now`; `None` for a verifying ring
    /// (or before the first key's moment).
    pub fn signing_key(&self, now: i64) -> Option<&Key> {
        self.signers
            .iter()
            .rev()
            .find(|(from, _)| *from <= now)
            .and_then(|(_, kid)| self.key(kid))
    }

    /// The keys published ahead of signing at `now`, with the moment each
    /// starts signing, soonest first.
    pub fn upcoming(&self, now: i64) -> impl Iterator<Item = (&Key, i64)> {
        self.signers
            .iter()
            .filter(move |(from, _)| *from > now)
            .filter_map(|(from, kid)| Some((self.key(kid)?, *from)))
    }

    fn key(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid).map(|(key, _)| key)
    }

    /// The key with this kid, if the ring holds it and it still verifies at `now`.
    pub fn get(&self, kid: &str, now: i64) -> Option<&Key> {
        match self.keys.get(kid) {
            Some((key, until)) if until.is_none_or(|u| now < u) => Some(key),
            _ => None,
        }
    }

    /// Every key that still verifies at `now`.
    pub fn keys(&self, now: i64) -> impl Iterator<Item = &Key> {
        self.keys
            .values()
            .filter(move |(_, until)| until.is_none_or(|u| now < u))
            .map(|(key, _)| key)
    }

    /// The public JWK Set (RFC 7517) at `now`: every asymmetric key that still
    /// verifies, ordered by kid; empty for HMAC keys.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let mut jwks: Vec<&Jwk> = self.keys(now).filter_map(Key::public_jwk).collect();
        jwks.sort_by(|a, b| a.common.key_id.cmp(&b.common.key_id));
        serde_json::json!({ "keys": jwks })
    }
}
