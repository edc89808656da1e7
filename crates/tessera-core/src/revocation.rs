//! The revocation markers of docs/API.md, held in memory so that checking a
//! token needs no database: blacklisted token ids, revoked families, removed
//! service clients, and each user's token version and active flag. Tessera's
//! instances and every service following the revocation feed
//! ([`crate::feed`]) decide with this one set.

use crate::claims::{TokenType, VerifiedClaims};
use crate::client::ClientClaims;
use crate::ids::{FamilyId, Jti};
use crate::refusal::Refusal;
use foldhash::HashMap;

/// What the verifier must know about a user to accept their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStanding {
    /// The user's current token version; tokens with an older `ver` are revoked.
    pub token_version: i64,
    /// Whether the user may use the service at all.
    pub is_active: bool,
    /// The version of the user's claims (roles, metadata): access tokens
    /// with an older `cver` are refused as expired, not revoked, so that
    /// clients refresh and get the new claims.
    pub claims_version: i64,
}

/// Ids with the time until which each is remembered. Token and family ids
/// are 32 lowercase hex characters ([`Jti`], [`FamilyId`]): those are kept
/// as the 128-bit number they spell, 16 bytes in the table instead of a
/// string of its own on the heap (a million blacklisted tokens is a
/// realistic day). Any other string (a client id) is kept as it is.
#[derive(Debug, Default, Clone)]
struct Markers {
    compact: HashMap<u128, i64>,
    other: HashMap<Box<str>, i64>,
}

/// `id` as a number when it is 32 lowercase hex digits; `None` otherwise
/// (uppercase too, so that two different strings never share a number).
fn compact(id: &str) -> Option<u128> {
    let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| u128::from_str_radix(id, 16).ok()).flatten()
}

impl Markers {
    fn insert(&mut self, id: &str, until: i64) {
        match compact(id) {
            Some(n) => self.insert_number(n, until),
            None => {
                let entry = self.other.entry(id.into()).or_insert(until);
                *entry = (*entry).max(until);
            }
        }
    }

    fn insert_number(&mut self, id: u128, until: i64) {
        let entry = self.compact.entry(id).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn contains(&self, id: &str) -> bool {
        match compact(id) {
            Some(n) => self.compact.contains_key(&n),
            None => self.other.contains_key(id),
        }
    }

    fn merge(&mut self, other: Markers) {
        for (n, until) in other.compact {
            let entry = self.compact.entry(n).or_insert(until);
            *entry = (*entry).max(until);
        }
        for (id, until) in other.other {
            let entry = self.other.entry(id).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    fn prune(&mut self, now: i64) {
        self.compact.retain(|_, until| *until >= now);
        self.other.retain(|_, until| *until >= now);
    }

    fn len(&self) -> usize {
        self.compact.len() + self.other.len()
    }
}

/// Blacklisted `jti`s, revoked families and removed clients, each
/// remembered until no token it could match is still unexpired.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    jtis: Markers,
    families: Markers,
    clients: Markers,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the token `jti` from now on; `until` is its expiry, after which
    /// the marker may be forgotten.
    pub fn blacklist(&mut self, jti: &Jti, until: i64) {
        self.jtis.insert_number(jti.to_u128(), until);
    }

    /// Refuses every token of family `fid` from now on, until `until`.
    pub fn revoke_family(&mut self, fid: &FamilyId, until: i64) {
        self.families.insert_number(fid.to_u128(), until);
    }

    /// Refuses every token of client `client_id` from now on, until `until`.
    pub fn remove_client(&mut self, client_id: &str, until: i64) {
        self.clients.insert(client_id, until);
    }

    /// Adds every marker of `other`: markers only ever accumulate (until
    /// they expire), so merging a freshly loaded set loses nothing held here.
    pub fn merge(&mut self, other: RevocationSet) {
        self.jtis.merge(other.jtis);
        self.families.merge(other.families);
        self.clients.merge(other.clients);
    }

    /// Whether client `client_id` was removed.
    pub fn is_client_removed(&self, client_id: &str) -> bool {
        self.clients.contains(client_id)
    }

    /// Whether `jti` is blacklisted.
    pub fn is_blacklisted(&self, jti: &Jti) -> bool {
        self.jtis.compact.contains_key(&jti.to_u128())
    }

    /// Whether family `fid` is revoked.
    pub fn is_family_revoked(&self, fid: &FamilyId) -> bool {
        self.families.compact.contains_key(&fid.to_u128())
    }

    /// Forgets markers whose tokens have all expired by `now`, so the set
    /// stays as small as the tokens still alive.
    pub fn prune(&mut self, now: i64) {
        self.jtis.prune(now);
        self.families.prune(now);
        self.clients.prune(now);
    }

    /// How many markers the set holds (jtis, families).
    pub fn len(&self) -> (usize, usize) {
        (self.jtis.len(), self.families.len())
    }

    /// How many removed clients the set remembers.
    pub fn clients_len(&self) -> usize {
        self.clients.len()
    }

    /// Whether the set holds no marker.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0) && self.clients.len() == 0
    }

    /// Refuses a client's token if the client was removed or the token's
    /// jti blacklisted.
    pub fn check_client(&self, claims: &ClientClaims) -> Result<(), Refusal> {
        if self.is_client_removed(&claims.client_id) || self.is_blacklisted(&claims.jti) {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }

    /// Refuses `claims` as revoked if its jti is blacklisted, its family
    /// revoked, its `ver` older than the user's, or the user inactive; an
    /// access token whose claims are older than the user's (`cver`) as
    /// expired: nothing ended, but what it says of the user is out of date.
    pub fn check(&self, claims: &VerifiedClaims, user: UserStanding) -> Result<(), Refusal> {
        if self.is_blacklisted(&claims.jti) {
            return Err(Refusal::Revoked);
        }
        self.check_session(claims, user)?;
        if claims.token_type == TokenType::Access && claims.claims_version < user.claims_version {
            return Err(Refusal::Expired);
        }
        Ok(())
    }

    /// [`Self::check`] but for the token's own blacklisting: refuses
    /// `claims` if its family (its session) was revoked, its `ver` is older
    /// than the user's, or the user is inactive. For a refresh token already
    /// rotated, whose session may still go on (the refresh grace period).
    pub fn check_session(
        &self,
        claims: &VerifiedClaims,
        user: UserStanding,
    ) -> Result<(), Refusal> {
        if !user.is_active || claims.ver < user.token_version || self.is_family_revoked(&claims.fid)
        {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    /// The token id `n` as 32 hex digits.
    fn jti(n: u128) -> Jti {
        Jti::parse(&format!("{n:032x}")).unwrap()
    }

    fn fid(n: u128) -> FamilyId {
        FamilyId::parse(&format!("{n:032x}")).unwrap()
    }

    fn claims(jti: Jti, fid: FamilyId, ver: i64) -> VerifiedClaims {
        VerifiedClaims {
            token_type: TokenType::Access,
            exp: 100,
            iat: 0,
            jti,
            user_id: UserId::new(1),
            fid,
            ver,
            claims_version: 1,
            fresh: false,
            username: None,
            amr: Vec::new(),
            raw: Default::default(),
        }
    }

    const GOOD: UserStanding = UserStanding {
        token_version: 2,
        is_active: true,
        claims_version: 1,
    };

    #[test]
    fn hex_ids_and_other_strings_are_told_apart() {
        let mut set = RevocationSet::new();
        let id = "0123456789abcdef0123456789abcdef";
        let (j, f) = (Jti::parse(id).unwrap(), FamilyId::parse(id).unwrap());
        set.blacklist(&j, 100);
        assert!(set.is_blacklisted(&j));
        assert!(!set.is_family_revoked(&f), "a token id is not a family id");
        assert!(!set.is_blacklisted(&jti(0x0123456789abcdef0123456789abcdee)));
        // Client ids are any string; hex digits in uppercase are another one.
        set.remove_client("not-hex", 100);
        set.remove_client(&id.to_uppercase(), 50);
        assert!(set.is_client_removed("not-hex"));
        assert!(set.is_client_removed(&id.to_uppercase()) && !set.is_client_removed(id));
        assert_eq!((set.len(), set.clients_len()), ((1, 0), 2));
        // A later expiry wins, an earlier one does not shorten it.
        set.blacklist(&j, 200);
        set.blacklist(&j, 150);
        set.prune(199);
        assert!(set.is_blacklisted(&j) && !set.is_client_removed("not-hex"));
        assert!(!set.is_client_removed(&id.to_uppercase()));
    }

    #[test]
    fn each_marker_revokes() {
        let mut set = RevocationSet::new();
        let (j, k, f, g) = (jti(1), jti(2), fid(1), fid(2));
        assert!(set.check(&claims(j, f, 2), GOOD).is_ok());
        assert!(set.check(&claims(j, f, 1), GOOD).is_err(), "older ver");
        assert!(set.check(&claims(j, f, 3), GOOD).is_ok(), "newer ver");
        let inactive = UserStanding {
            is_active: false,
            ..GOOD
        };
        assert!(set.check(&claims(j, f, 2), inactive).is_err());
        set.blacklist(&j, 100);
        assert!(set.check(&claims(j, f, 2), GOOD).is_err());
        assert!(set.check(&claims(k, f, 2), GOOD).is_ok());
        set.revoke_family(&f, 100);
        assert!(set.check(&claims(k, f, 2), GOOD).is_err());
        assert!(set.check(&claims(k, g, 2), GOOD).is_ok());
    }

    #[test]
    fn claims_changed_since_an_access_token_make_it_expired_not_revoked() {
        let set = RevocationSet::new();
        let (j, f) = (jti(1), fid(1));
        let changed = UserStanding {
            claims_version: 2,
            ..GOOD
        };
        assert_eq!(set.check(&claims(j, f, 2), changed), Err(Refusal::Expired));
        let mut newer = claims(j, f, 2);
        newer.claims_version = 2;
        assert_eq!(set.check(&newer, changed), Ok(()));
        // A refresh token carries no claims of the user: it stays good.
        let mut refresh = claims(j, f, 2);
        refresh.token_type = TokenType::Refresh;
        assert_eq!(set.check(&refresh, changed), Ok(()));
        // Revoked wins over stale: logging in again is what it needs.
        assert_eq!(set.check(&claims(j, f, 1), changed), Err(Refusal::Revoked));
    }

    #[test]
    fn pruning_forgets_only_expired_markers() {
        let mut set = RevocationSet::new();
        let (old, new) = (jti(1), jti(2));
        set.blacklist(&old, 10);
        set.blacklist(&new, 30);
        set.revoke_family(&fid(1), 20);
        set.prune(20);
        assert!(!set.is_blacklisted(&old));
        assert!(set.is_blacklisted(&new));
        assert!(set.is_family_revoked(&fid(1)));
        set.prune(31);
        assert!(set.is_empty());
    }
}
