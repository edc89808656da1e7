//! A bounded cache of verified tokens, as API gateways keep one: a client
//! presents the same access token on every request for the token's
//! lifetime, and checking its signature again each time (hundreds of
//! microseconds for ES256) is the largest cost of verification.
//!
//! What is cached is only what [`token::validate`] proves from the token
//! itself: its signature, its header and its parsed claims. The checks that
//! depend on the moment are made again on every hit: the token must not have
//! expired, must be of the expected type, and the key that signed it must
//! still be in the same key ring and still verify. Revocation (jti, family,
//! token version, the user's standing) is never cached here: callers check
//! it on every request after this.
//!
//! Entries are keyed by the whole token, so a token differing in any byte
//! (another signature, another payload) is a different entry and is verified
//! in full; an attacker cannot make a forged token hit a genuine one's entry.
//! Only tokens that passed are stored, so the cache cannot be filled with
//! garbage, and it never holds more than its capacity.

use crate::claims::{TokenType, VerifiedClaims};
use crate::keys::KeyRing;
use crate::refusal::Refusal;
use crate::token::{self, TokenPolicy};
use std::sync::Arc;

/// How many tokens a cache holds by default: a busy service's live access
/// tokens, at a few hundred bytes to a kilobyte each.
pub const DEFAULT_CAPACITY: usize = 16_384;

/// What a hit hands out is a pointer to it (no copy of the kid).
struct Entry {
    claims: Arc<VerifiedClaims>,
    /// The ring it was verified against ([`KeyRing::generation`]).
    ring: u64,
    kid: String,
}

/// Verified tokens, bounded in number. Shared by all requests of a process.
pub struct VerifiedTokens {
    entries: quick_cache::sync::Cache<String, Arc<Entry>>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// [`token::validate`], answered from the cache when `token` was
    /// verified before against this very `ring` and its key still verifies
    /// at `now`; the expiry and the type are checked again either way.
    pub fn validate(
        &self,
        policy: &TokenPolicy,
        ring: &KeyRing,
        token: &str,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<Arc<VerifiedClaims>, Refusal> {
        if let Some(entry) = self.entries.get(token)
            && entry.ring == ring.generation()
            && ring.get(&entry.kid, now).is_some()
        {
            return still_valid(entry.claims.clone(), policy, expected, now);
        }
        // Verified whatever the type, so that one entry serves every caller.
        let claims = Arc::new(token::validate(policy, ring, token, None, now)?);
        if let Some(kid) = token::peek_kid(token) {
            self.entries.insert(
                token.to_owned(),
                Arc::new(Entry {
                    claims: claims.clone(),
                    ring: ring.generation(),
                    kid,
                }),
            );
        }
        still_valid(claims, policy, expected, now)
    }

    /// Forgets every token (the key ring changed).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most tokens it holds.
    pub fn capacity(&self) -> u64 {
        self.entries.capacity()
    }
}

/// [`token::check_moment`], passing the claims on.
fn still_valid(
    claims: Arc<VerifiedClaims>,
    policy: &TokenPolicy,
    expected: Option<TokenType>,
    now: i64,
) -> Result<Arc<VerifiedClaims>, Refusal> {
    token::check_moment(&claims, policy, expected, now)?;
    Ok(claims)
}

#[cfg(test)]
mod tests;
