//! Validating a token whose key may be newer than the ring in hand: the one
//! rule the server and the verification library share for an unknown `kid`.
//!
//! A token signed by a key rotated in a moment ago names a `kid` the ring
//! does not hold yet. [`validate_with_reload`] validates; when the token is
//! refused as invalid and its `kid` is not in the ring, it asks the caller
//! for a newer ring (the caller decides whether a reload is allowed now:
//! one rate limiter per caller, so that made-up kids cannot each cost a
//! database query or a fetch) and validates once more against it. Any
//! other refusal, a token without a `kid`, or a kid the ring holds is
//! answered at once: nothing is reloaded for them.

use crate::Refusal;
use crate::keys::KeyRing;
use crate::token;
use std::future::Future;
use std::sync::Arc;

/// `validate(ring)`; when that says [`Refusal::Invalid`] and the token's
/// `kid` is unknown to `ring` at `now`, `reload(kid)` and, if it gives a
/// ring, `validate` against that ring. `reload` answers `None` when it may
/// not or could not reload (the first refusal stands).
pub async fn validate_with_reload<T, F>(
    ring: Arc<KeyRing>,
    token: &str,
    now: i64,
    validate: impl Fn(&KeyRing) -> Result<T, Refusal>,
    reload: impl FnOnce(String) -> F,
) -> Result<T, Refusal>
where
    F: Future<Output = Option<Arc<KeyRing>>>,
{
    match validate(&ring) {
        Err(Refusal::Invalid) => {}
        decided => return decided,
    }
    let Some(kid) = token::peek_kid(token) else {
        return Err(Refusal::Invalid);
    };
    if ring.get(&kid, now).is_some() {
        return Err(Refusal::Invalid);
    }
    match reload(kid).await {
        Some(newer) => validate(&newer),
        None => Err(Refusal::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{Subject, TokenType};
    use crate::ids::{FamilyId, UserId};
    use crate::keys::KeyMaterial;
    use crate::token::{Grant, TokenPolicy};
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    const NOW: i64 = 1_800_000_000;

    /// Runs a future that never waits (the reloads here answer at once).
    fn ready<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the future waited"),
        }
    }

    fn ring() -> Arc<KeyRing> {
        let material = KeyMaterial::generate(crate::Algorithm::ES256).unwrap();
        Arc::new(KeyRing::single(material.into_key().unwrap()))
    }

    fn token_of(ring: &KeyRing) -> String {
        let subject = Subject {
            user_id: UserId::new(1),
            username: "alice".into(),
            email: String::new(),
            is_staff: false,
            is_superuser: false,
            token_version: 0,
            roles: Vec::new(),
            app_metadata: Default::default(),
            claims_version: 0,
        };
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &FamilyId::random(),
            fresh: false,
            extra: None,
            csrf: None,
            amr: &[],
        };
        token::issue(&TokenPolicy::new(), ring, &subject, &grant, NOW)
            .unwrap()
            .token
    }

    fn check(ring: &KeyRing, token: &str) -> Result<i64, Refusal> {
        token::validate(&TokenPolicy::new(), ring, token, None, NOW).map(|c| c.user_id.get())
    }

    #[test]
    fn a_known_kid_is_validated_without_a_reload() {
        let ring = ring();
        let token = token_of(&ring);
        let reloads = Cell::new(0);
        let answer = ready(validate_with_reload(
            ring.clone(),
            &token,
            NOW,
            |r| check(r, &token),
            |_| async {
                reloads.set(reloads.get() + 1);
                None
            },
        ));
        assert_eq!(answer, Ok(1));
        // A bad signature under a known kid: refused, nothing reloaded.
        let mut forged = token.clone().into_bytes();
        let at = forged.len() - 10;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let answer = ready(validate_with_reload(
            ring,
            &forged,
            NOW,
            |r| check(r, &forged),
            |_| async {
                reloads.set(reloads.get() + 1);
                None
            },
        ));
        assert_eq!(answer, Err(Refusal::Invalid));
        assert_eq!(reloads.get(), 0);
    }

    #[test]
    fn an_unknown_kid_is_validated_again_against_the_reloaded_ring() {
        let (old, new) = (ring(), ring());
        let token = token_of(&new);
        let asked = std::cell::RefCell::new(None);
        let answer = ready(validate_with_reload(
            old.clone(),
            &token,
            NOW,
            |r| check(r, &token),
            |kid| {
                *asked.borrow_mut() = Some(kid);
                let new = new.clone();
                async move { Some(new) }
            },
        ));
        assert_eq!(answer, Ok(1));
        assert_eq!(asked.take(), token::peek_kid(&token));
        // A reload refused (the caller's limiter): the first answer stands.
        let answer = ready(validate_with_reload(
            old,
            &token,
            NOW,
            |r| check(r, &token),
            |_| async { None },
        ));
        assert_eq!(answer, Err(Refusal::Invalid));
    }
}
