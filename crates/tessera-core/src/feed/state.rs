//! What a follower of the feed holds: the markers of the last snapshot and
//! the events after it, in the [`RevocationSet`] Tessera's instances use,
//! and the standing of each user the feed named.

use super::{FeedEvent, Snapshot};
use crate::claims::VerifiedClaims;
use crate::client::ClientClaims;
use crate::ids::{FamilyId, Jti, UserId};
use crate::refusal::Refusal;
use crate::revocation::{RevocationSet, UserStanding};
use foldhash::HashMap;

/// A user's standing as the feed last gave it, and until when it matters.
#[derive(Debug, Clone, Copy)]
struct Held {
    standing: UserStanding,
    until: i64,
}

/// The revocation state a follower keeps (see the module documentation).
///
/// Promises: after [`FeedState::from_snapshot`] and [`FeedState::apply`] of
/// every later event in order, [`FeedState::check`] refuses exactly the
/// tokens Tessera refuses for revocation; a user the feed never named is
/// taken as standing (a change older than the window concerns no valid
/// token).
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    set: RevocationSet,
    users: HashMap<UserId, Held>,
    /// The snapshot's window: how long a family, user or client marker
    /// matters after its `at`.
    window: i64,
}

impl FeedState {
    /// The state a snapshot describes (a follower replaces its state with
    /// it: the snapshot is complete).
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut state = Self {
            window: snapshot.window.max(0),
            ..Self::default()
        };
        for family in &snapshot.families {
            state.apply(&FeedEvent::FamilyRevoked(family.clone()));
        }
        for user in &snapshot.users {
            state.apply(&FeedEvent::UserChanged(*user));
        }
        for token in &snapshot.tokens {
            state.apply(&FeedEvent::TokenRevoked(token.clone()));
        }
        for client in &snapshot.clients {
            state.apply(&FeedEvent::ClientRemoved(client.clone()));
        }
        state
    }

    /// Applies one event of the stream. Events arrive in change-log order
    /// and each carries the standing as it was when sent, so the last one
    /// about a user is the one to keep. `keys_changed` and `reset` change
    /// no marker (the follower acts on them).
    pub fn apply(&mut self, event: &FeedEvent) {
        match event {
            // An id not of the token-id shape names no token that could
            // validate: nothing to remember.
            FeedEvent::FamilyRevoked(e) => {
                if let Some(fid) = FamilyId::parse(&e.fid) {
                    self.set.revoke_family(&fid, self.until(e.at));
                }
            }
            FeedEvent::TokenRevoked(e) => {
                // The token's own leeway is the verifier's; the window
                // outlasts any.
                if let Some(jti) = Jti::parse(&e.jti) {
                    self.set.blacklist(&jti, e.exp.saturating_add(self.window));
                }
            }
            FeedEvent::ClientRemoved(e) => self.set.remove_client(&e.client_id, self.until(e.at)),
            FeedEvent::UserChanged(e) => {
                let held = Held {
                    standing: UserStanding {
                        token_version: e.ver,
                        is_active: e.active,
                        claims_version: e.cver,
                    },
                    until: self.until(e.at),
                };
                self.users.insert(UserId::new(e.user_id), held);
            }
            FeedEvent::KeysChanged | FeedEvent::Reset => {}
        }
    }

    fn until(&self, at: i64) -> i64 {
        at.saturating_add(self.window)
    }

    /// Refuses a user's token that Tessera would refuse as revoked.
    pub fn check(&self, claims: &VerifiedClaims) -> Result<(), Refusal> {
        let standing = self
            .users
            .get(&claims.user_id)
            .map_or(UNNAMED, |held| held.standing);
        self.set.check(claims, standing)
    }

    /// Refuses a client's token whose client was removed or whose jti was
    /// revoked.
    pub fn check_client(&self, claims: &ClientClaims) -> Result<(), Refusal> {
        self.set.check_client(claims)
    }

    /// Forgets what no token still valid at `now` can concern.
    pub fn prune(&mut self, now: i64) {
        self.set.prune(now);
        self.users.retain(|_, held| held.until >= now);
    }

    /// How many markers are held: token ids, families, clients and users.
    pub fn len(&self) -> usize {
        let (jtis, families) = self.set.len();
        jtis + families + self.set.clients_len() + self.users.len()
    }

    /// Whether no marker is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The standing of a user the feed never named: every version accepted.
const UNNAMED: UserStanding = UserStanding {
    token_version: i64::MIN,
    is_active: true,
    claims_version: i64::MIN,
};
