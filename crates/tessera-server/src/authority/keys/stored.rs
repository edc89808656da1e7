//! The stored keys' roles on the database's clock: which one signs, which
//! are published ahead, which still verify, and the ring they make (or the
//! list `tessera keys list` shows).

use super::ring::{KeyLoadError, seconds_up, verification_grace};
use crate::config::Settings;
use tessera_core::clock::Clock;
use tessera_core::keys::{KeyMaterial, KeyRing, RingEntry, is_hmac, parse_algorithm};
use tessera_store::{KeyRecord, KeyStore, StoreError};

/// The database's clock as this process reads it: the moments keys start
/// signing are on it, and each process turns them into moments of its own
/// clock, so that every instance switches at once however their clocks
/// differ.
#[derive(Debug, Clone, Copy)]
struct DatabaseClock {
    /// The database's time when read, milliseconds.
    now_ms: i64,
    /// How far the database's clock is ahead of this process's, milliseconds.
    ahead_ms: i64,
}

impl DatabaseClock {
    async fn read(store: &dyn KeyStore, clock: &dyn Clock) -> Result<Self, StoreError> {
        let before = clock.now_ms();
        let now_ms = store.database_time_ms().await?;
        let after = clock.now_ms();
        // Read somewhere between the two: the middle errs least.
        let here = before + (after - before) / 2;
        Ok(Self {
            now_ms,
            ahead_ms: now_ms - here,
        })
    }

    /// The first second of this process's clock at which the database's
    /// clock has reached `moment` (seconds): never sooner.
    fn here(&self, moment: i64) -> i64 {
        seconds_up(moment.saturating_mul(1000).saturating_sub(self.ahead_ms))
    }
}

/// What a stored key does at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It signs now.
    Signing,
    /// Published, it signs from its `signs_from`, still ahead.
    Published,
    /// It verifies only: retired, or retired before it ever signed.
    Verifying,
    /// It verifies nothing: past its time.
    Expired,
    /// It verifies nothing: an HMAC key while an asymmetric key signs.
    Refused,
    /// Of an algorithm this version does not know.
    Unknown,
}

/// The stored keys' roles at a moment of the database's clock.
struct Roles {
    /// By record, in the records' order.
    roles: Vec<Role>,
    /// When an asymmetric key published ahead starts signing, if one is
    /// and the key signing now is HMAC: every HMAC key stops verifying then
    /// (database seconds).
    hmac_until: Option<i64>,
}

impl Roles {
    /// The roles of `records` (newest first) at `now_ms` on the database's
    /// clock. Each key signs from its `signs_from` (from the start, when
    /// unset) until its retirement; rotation retires the others when the new
    /// key starts, so these periods do not overlap (of two that did, the
    /// newer key's would count). Once an asymmetric key signs, every HMAC key
    /// is refused (docs/API.md), and an HMAC key left from before the switch
    /// retires at once, or its secret would keep minting tokens that verify.
    /// The keys in service decide this, not the settings, so that every
    /// instance of a deployment applies the same rule whatever its own
    /// configuration says, at once after the switch as after a restart.
    fn at(records: &[KeyRecord], now_ms: i64, grace: i64) -> Self {
        let at_ms = |seconds: i64| seconds.saturating_mul(1000);
        let mut roles: Vec<Role> = records
            .iter()
            .map(|r| {
                let ahead = r.signs_from.is_some_and(|f| at_ms(f) > now_ms);
                let retired = r.retired_at.is_some_and(|t| at_ms(t) <= now_ms);
                let never_signs =
                    matches!((r.signs_from, r.retired_at), (Some(f), Some(t)) if t <= f);
                if parse_algorithm(&r.algorithm).is_none() {
                    Role::Unknown
                } else if r
                    .retired_at
                    .is_some_and(|t| at_ms(t.saturating_add(grace)) <= now_ms)
                {
                    Role::Expired
                } else if never_signs || retired {
                    Role::Verifying
                } else if ahead {
                    Role::Published
                } else {
                    Role::Signing
                }
            })
            .collect();
        // One key signs: the newest of those whose period holds now.
        let mut signing = None;
        for (i, role) in roles.iter_mut().enumerate() {
            if *role == Role::Signing {
                if signing.is_some() {
                    *role = Role::Verifying;
                } else {
                    signing = Some(i);
                }
            }
        }
        let asymmetric = |r: &KeyRecord| parse_algorithm(&r.algorithm).is_some_and(|a| !is_hmac(a));
        let hmac_refused = signing.is_some_and(|i| asymmetric(&records[i]));
        let hmac_until = (!hmac_refused)
            .then(|| {
                records
                    .iter()
                    .zip(&roles)
                    .filter(|(r, role)| **role == Role::Published && asymmetric(r))
                    .filter_map(|(r, _)| r.signs_from)
                    .min()
            })
            .flatten();
        if hmac_refused {
            for (record, role) in records.iter().zip(roles.iter_mut()) {
                let hmac = parse_algorithm(&record.algorithm).is_some_and(is_hmac);
                if hmac && matches!(role, Role::Verifying | Role::Published) {
                    *role = Role::Refused;
                }
            }
        }
        Self { roles, hmac_until }
    }

    /// Until when `record` (of role `role`) verifies, on the database's
    /// clock: its retirement and the grace, or sooner for an HMAC key when
    /// an asymmetric key takes over; `None` for no limit.
    fn verifies_until(&self, record: &KeyRecord, grace: i64) -> Option<i64> {
        let until = record.retired_at.map(|t| t.saturating_add(grace));
        let hmac = parse_algorithm(&record.algorithm).is_some_and(is_hmac);
        match self.hmac_until {
            Some(cut) if hmac => Some(until.map_or(cut, |u| u.min(cut))),
            _ => until,
        }
    }

    fn signing(&self) -> bool {
        self.roles.contains(&Role::Signing)
    }
}

pub(super) async fn stored_ring(
    settings: &Settings,
    store: &dyn KeyStore,
    clock: &dyn Clock,
) -> Result<Option<KeyRing>, KeyLoadError> {
    let grace = verification_grace(settings);
    let records = store.signing_keys().await?;
    let database = DatabaseClock::read(store, clock).await?;
    let roles = Roles::at(&records, database.now_ms, grace);
    if !roles.signing() {
        return Ok(None);
    }
    let mut entries = Vec::new();
    for (record, role) in records.iter().zip(&roles.roles) {
        let signs_from = match role {
            // Whatever came before now no longer matters.
            Role::Signing => Some(i64::MIN),
            Role::Published => record.signs_from.map(|f| database.here(f)),
            Role::Verifying => None,
            Role::Unknown => {
                tracing::warn!(kid = %record.kid, algorithm = %record.algorithm, "skipping a stored key of an unknown algorithm");
                continue;
            }
            Role::Expired | Role::Refused => continue,
        };
        let Some(alg) = parse_algorithm(&record.algorithm) else {
            continue;
        };
        let key = KeyMaterial::from_bytes(alg, record.private_key.clone())?.into_key()?;
        entries.push(RingEntry {
            key,
            signs_from,
            verifies_until: roles
                .verifies_until(record, grace)
                .map(|t| database.here(t)),
        });
    }
    Ok(Some(KeyRing::scheduled(entries)))
}

/// What a stored key does now, as `tessera keys list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// It signs new tokens; until a key published ahead takes over, if one is.
    Signing {
        /// When it stops signing (Unix seconds, the database's clock).
        until: Option<i64>,
    },
    /// Published (in the JWKS, verifying), it signs from this moment on.
    Published {
        /// Unix seconds, the database's clock.
        signs_from: i64,
    },
    /// It verifies the tokens it signed, until this moment (none: no limit).
    Verifying {
        /// Unix seconds, the database's clock.
        until: Option<i64>,
    },
    /// It verifies nothing any more: every token it signed has expired.
    Expired,
    /// It verifies nothing, before its time: an HMAC key while an
    /// asymmetric key signs.
    Refused,
    /// Of an algorithm this version does not know: not used.
    Unknown,
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
    /// What it does now.
    pub state: KeyState,
}

/// Every stored key, newest first, without private material, with what
/// each does at the database's time now.
pub async fn list(settings: &Settings, store: &dyn KeyStore) -> Result<Vec<KeyInfo>, KeyLoadError> {
    let grace = verification_grace(settings);
    let records = store.signing_keys().await?;
    let now_ms = store.database_time_ms().await?;
    let roles = Roles::at(&records, now_ms, grace);
    Ok(records
        .iter()
        .zip(&roles.roles)
        .map(|(r, role)| KeyInfo {
            kid: r.kid.clone(),
            algorithm: r.algorithm.clone(),
            created_at: r.created_at,
            state: match role {
                Role::Signing => KeyState::Signing {
                    until: r.retired_at.or(roles
                        .hmac_until
                        .filter(|_| parse_algorithm(&r.algorithm).is_some_and(is_hmac))),
                },
                Role::Published => KeyState::Published {
                    signs_from: r.signs_from.unwrap_or_default(),
                },
                Role::Verifying => KeyState::Verifying {
                    until: roles.verifies_until(r, grace),
                },
                Role::Expired => KeyState::Expired,
                Role::Refused => KeyState::Refused,
                Role::Unknown => KeyState::Unknown,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests;
