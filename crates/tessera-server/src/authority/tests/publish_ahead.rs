//! A rotated key published ahead of signing: every instance switches to it
//! at one moment of the database's clock, whatever its own clock says, and
//! without another change to tell it to.

use super::*;
use crate::authority::keys::KeyStart;
use tessera_core::clock::SystemClock;

const LEAD: i64 = 60;

/// Two instances (as two processes would, on one SQLite file) whose clocks
/// are 1000 s ahead of the database's and 1000 s behind it.
async fn two_instances() -> (tempfile::TempDir, [(Authority, Arc<FixedClock>); 2]) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let settings = Settings {
        database_url: url.clone(),
        algorithm: tessera_core::Algorithm::ES256,
        key_publish_lead: std::time::Duration::from_secs(LEAD as u64),
        login_rate_limit: None,
        signup_rate_limit: None,
        ..Settings::default()
    };
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let database_now = SystemClock.now();
    let mut instances = Vec::new();
    for skew in [1000, -1000] {
        let clock = Arc::new(FixedClock::new(database_now + skew));
        let store = SqliteStore::connect(&url).await.unwrap();
        let authority = Authority::open(settings.clone(), Arc::new(store), clock.clone())
            .await
            .unwrap();
        instances.push((authority, clock));
    }
    let b = instances.pop().unwrap();
    let a = instances.pop().unwrap();
    (dir, [a, b])
}

async fn signs_with(authority: &Authority, user: &User) -> String {
    let pair = authority
        .sessions()
        .begin_session(user, Transport::Header, &test_origin())
        .await
        .unwrap();
    authority
        .tokens()
        .check(&pair.access.token, None)
        .await
        .unwrap();
    tessera_core::token::peek_kid(&pair.access.token).unwrap()
}

#[tokio::test]
async fn instances_with_different_clocks_switch_at_the_same_moment_of_the_database_clock() {
    let (_dir, [(a, a_clock), (b, b_clock)]) = two_instances().await;
    let alice = sign_up(&a, "alice").await;
    let old = signs_with(&a, &alice).await;
    assert_eq!(signs_with(&b, &alice).await, old, "one key in service");
    b.sync().await.unwrap();

    let rotated = a
        .keys()
        .rotate(tessera_core::Algorithm::ES256, KeyStart::AfterLead)
        .await
        .unwrap();
    assert!(rotated.ahead);
    // The moment is the database's: 60 s after the rotation on its clock.
    let database_now = SystemClock.now();
    assert!(
        (database_now + LEAD - 1..=database_now + LEAD + 1).contains(&rotated.signs_from),
        "{} {database_now}",
        rotated.signs_from
    );
    // B learns of the rotation from the change log, once.
    assert_eq!(b.sync().await.unwrap(), 1);

    let mut leads = Vec::new();
    for (instance, clock) in [(&a, &a_clock), (&b, &b_clock)] {
        let now = instance.now();
        let ring = instance.keys().ring();
        let upcoming: Vec<_> = ring.upcoming(now).collect();
        assert_eq!(upcoming.len(), 1);
        let (key, signs_from) = upcoming[0];
        assert_eq!(key.kid(), rotated.kid);
        // Published at once: in the JWKS, beside the key that signs.
        let jwks = instance.keys().jwks();
        let mut kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        kids.sort_unstable();
        let mut expected = [old.as_str(), rotated.kid.as_str()];
        expected.sort_unstable();
        assert_eq!(kids, expected);
        // On this instance's clock, 60 s from now (give or take the second
        // the test takes): not 60 s from what its own clock reads the
        // database's moment as, which is 1000 s off either way.
        let lead = signs_from - now;
        assert!((LEAD - 1..=LEAD + 1).contains(&lead), "{lead}");
        leads.push(lead);

        // The old key signs until then, the new one from then on: the
        // instance switches by itself, no change arrives meanwhile.
        clock.advance(lead - 1);
        assert_eq!(signs_with(instance, &alice).await, old);
        clock.advance(1);
        assert_eq!(signs_with(instance, &alice).await, rotated.kid);
        assert!(
            instance
                .keys()
                .ring()
                .upcoming(instance.now())
                .next()
                .is_none()
        );
    }
    // The same moment on both, to the second, though their clocks are
    // 2000 s apart.
    assert!((leads[0] - leads[1]).abs() <= 1, "{leads:?}");
}

#[tokio::test]
async fn a_rotation_now_signs_at_once_on_every_instance() {
    let (_dir, [(a, _), (b, _)]) = two_instances().await;
    let alice = sign_up(&a, "alice").await;
    let old = signs_with(&a, &alice).await;
    let rotated = a
        .keys()
        .rotate(tessera_core::Algorithm::ES256, KeyStart::Now)
        .await
        .unwrap();
    assert!(!rotated.ahead);
    assert_ne!(rotated.kid, old);
    assert_eq!(signs_with(&a, &alice).await, rotated.kid);
    b.sync().await.unwrap();
    assert_eq!(signs_with(&b, &alice).await, rotated.kid);
    assert!(a.keys().ring().upcoming(a.now()).next().is_none());
    // The old key verifies on: tokens it signed stay valid.
    assert!(a.keys().ring().get(&old, a.now()).is_some());
}

#[tokio::test]
async fn a_new_hmac_key_signs_at_once_since_it_is_never_published() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    let rotated = w
        .authority
        .keys()
        .rotate(tessera_core::Algorithm::HS256, KeyStart::AfterLead)
        .await
        .unwrap();
    assert!(!rotated.ahead);
    assert_eq!(signs_with(&w.authority, &alice).await, rotated.kid);
}
