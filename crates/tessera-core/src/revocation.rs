//! The revocation markers of docs/API.md, held in memory so that checking a
//! token needs no database: blacklisted token ids, revoked families, and each
//! user's token version and active flag.

use crate::claims::VerifiedClaims;
use crate::refusal::Refusal;
use std::collections::HashMap;

/// What the verifier must know about a user to accept their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStanding {
    /// The user's current token version; tokens with an older `ver` are revoked.
    pub token_version: i64,
    /// Whether the user may use the service at all.
    pub is_active: bool,
}

/// Blacklisted `jti`s and revoked families, each remembered until no token it
/// could match is still unexpired.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    jtis: HashMap<String, i64>,
    families: HashMap<String, i64>,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the token `jti` from now on; `until` is its expiry, after which
    /// the marker may be forgotten.
    pub fn blacklist(&mut self, jti: &str, until: i64) {
        let entry = self.jtis.entry(jti.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Refuses every token of family `fid` from now on, until `until`.
    pub fn revoke_family(&mut self, fid: &str, until: i64) {
        let entry = self.families.entry(fid.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Adds every marker of `other`: markers only ever accumulate (until
    /// they expire), so merging a freshly loaded set loses nothing held here.
    pub fn merge(&mut self, other: RevocationSet) {
        for (jti, until) in other.jtis {
            self.blacklist(&jti, until);
        }
        for (fid, until) in other.families {
            self.revoke_family(&fid, until);
        }
    }

    /// Whether `jti` is blacklisted.
    pub fn is_blacklisted(&self, jti: &str) -> bool {
        self.jtis.contains_key(jti)
    }

    /// Whether family `fid` is revoked.
    pub fn is_family_revoked(&self, fid: &str) -> bool {
        self.families.contains_key(fid)
    }

    /// Forgets markers whose tokens have all expired by `now`, so the set
    /// stays as small as the tokens still alive.
    pub fn prune(&mut self, now: i64) {
        self.jtis.retain(|_, until| *until >= now);
        self.families.retain(|_, until| *until >= now);
    }

    /// How many markers the set holds (jtis, families).
    pub fn len(&self) -> (usize, usize) {
        (self.jtis.len(), self.families.len())
    }

    /// Whether the set holds no marker.
    pub fn is_empty(&self) -> bool {
        self.jtis.is_empty() && self.families.is_empty()
    }

    /// Refuses `claims` if its jti is blacklisted, its family revoked, its
    /// `ver` older than the user's, or the user inactive.
    pub fn check(&self, claims: &VerifiedClaims, user: UserStanding) -> Result<(), Refusal> {
        if !user.is_active
            || claims.ver < user.token_version
            || self.is_blacklisted(&claims.jti)
            || self.is_family_revoked(&claims.fid)
        {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::TokenType;

    fn claims(jti: &str, fid: &str, ver: i64) -> VerifiedClaims {
        VerifiedClaims {
            token_type: TokenType::Access,
            exp: 100,
            iat: 0,
            jti: jti.into(),
            user_id: 1,
            fid: fid.into(),
            ver,
            fresh: false,
            username: None,
            raw: Default::default(),
        }
    }

    const GOOD: UserStanding = UserStanding {
        token_version: 2,
        is_active: true,
    };

    #[test]
    fn each_marker_revokes() {
        let mut set = RevocationSet::new();
        assert!(set.check(&claims("j", "f", 2), GOOD).is_ok());
        assert!(set.check(&claims("j", "f", 1), GOOD).is_err(), "older ver");
        assert!(set.check(&claims("j", "f", 3), GOOD).is_ok(), "newer ver");
        let inactive = UserStanding {
            is_active: false,
            ..GOOD
        };
        assert!(set.check(&claims("j", "f", 2), inactive).is_err());
        set.blacklist("j", 100);
        assert!(set.check(&claims("j", "f", 2), GOOD).is_err());
        assert!(set.check(&claims("k", "f", 2), GOOD).is_ok());
        set.revoke_family("f", 100);
        assert!(set.check(&claims("k", "f", 2), GOOD).is_err());
        assert!(set.check(&claims("k", "g", 2), GOOD).is_ok());
    }

    #[test]
    fn pruning_forgets_only_expired_markers() {
        let mut set = RevocationSet::new();
        set.blacklist("old", 10);
        set.blacklist("new", 30);
        set.revoke_family("f", 20);
        set.prune(20);
        assert!(!set.is_blacklisted("old"));
        assert!(set.is_blacklisted("new"));
        assert!(set.is_family_revoked("f"));
        set.prune(31);
        assert!(set.is_empty());
    }
}
