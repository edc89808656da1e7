//! The refresh grace period: a refresh token presented again shortly after
//! its rotation is answered with what it rotated into, not as a reuse.
//!
//! Several tabs, or a client that refreshes on every 401, refresh with the
//! same token at once; with rotation and blacklisting only one can win, and
//! reuse detection would end the session for the others. Within the period
//! every one of them gets the winner's successor (the same token each time),
//! which the rotation kept in the database sealed under a key derived from
//! the rotated token (`tessera_core::successor`), so the table never holds a
//! usable token. The database keeps one successor per rotated token: the
//! winner's, written in its rotation's transaction, so every instance
//! answers alike.

use tessera_core::ids::Jti;
use tessera_core::successor;
use tessera_core::token::IssuedToken;
use tessera_store::{SealedSuccessor, Store, StoreResult};

/// How many rotations after the presented one are followed to the session's
/// newest refresh token. Within one grace period a session is rotated only
/// as often as its clients refresh; past this many the one reached is
/// answered (at worst an older token, which its own grace period covers).
const MAX_HOPS: usize = 8;

/// The grace period in force and what it keeps.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grace {
    /// Milliseconds; 0: off.
    period_ms: i64,
}

impl Grace {
    /// A grace period of `period` (zero: none).
    pub(super) fn new(period: std::time::Duration) -> Self {
        Self {
            period_ms: i64::try_from(period.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// What a rotation of `rotated` (the token presented, in its compact
    /// form) into `successor` at `now_ms` keeps for the period: `None`
    /// without a period, or should sealing fail (no grace for that rotation
    /// then, never a successor kept in clear).
    pub(super) fn keep(
        &self,
        rotated: &str,
        successor: &IssuedToken,
        now_ms: i64,
    ) -> Option<SealedSuccessor> {
        if self.period_ms == 0 {
            return None;
        }
        Some(SealedSuccessor {
            sealed: successor::seal(rotated, successor)?,
            usable_until_ms: now_ms.saturating_add(self.period_ms),
        })
    }

    /// The refresh token to answer `presented` (already rotated, its `jti`
    /// given) with at `now_ms`: its successor if it was rotated less than the
    /// period ago, followed through later rotations to the session's newest
    /// token. `None` outside the period, without one, or if nothing was kept.
    pub(super) async fn successor(
        &self,
        store: &dyn Store,
        presented: &str,
        jti: &Jti,
        now_ms: i64,
    ) -> StoreResult<Option<IssuedToken>> {
        if self.period_ms == 0 {
            return Ok(None);
        }
        let Some(kept) = store.refresh_successor(jti.as_str()).await? else {
            return Ok(None);
        };
        if kept.usable_until_ms < now_ms {
            return Ok(None);
        }
        let Some(mut newest) = successor::open(presented, &kept.sealed) else {
            return Ok(None);
        };
        // A successor rotated in turn (the winning tab refreshed again) would
        // be a reuse when presented: answer with what it rotated into. Each
        // later rotation is newer than this one, so still kept.
        for _ in 0..MAX_HOPS {
            let Some(next) = store.refresh_successor(newest.jti.as_str()).await? else {
                break;
            };
            match successor::open(&newest.token, &next.sealed) {
                Some(opened) => newest = opened,
                None => break,
            }
        }
        Ok(Some(newest))
    }
}
