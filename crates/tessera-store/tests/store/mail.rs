//! Mailed links, the mail limits and the outbox: single use, voiding,
//! expiry, the limits exact under concurrency, leases and retries.

use crate::{Engine, all_at_once, new_user};
use tessera_store::*;

fn with_email(name: &str, email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        ..new_user(name)
    }
}

fn request(kind: LinkKind, address: &str, client: &str, at: i64) -> MailRequest {
    MailRequest {
        kind,
        limit_key: format!("hash-of-{address}"),
        client: client.into(),
        at,
        window: 3600,
        per_key: 5,
        per_client: 20,
        address: String::new(),
    }
}

fn link(token: &str, user: &UserRecord, kind: LinkKind, at: i64) -> Letter {
    Letter {
        links: vec![LinkRecord {
            token_hash: token.into(),
            user_id: user.id,
            kind,
            email: user.email.clone(),
            created_at: at,
            expires_at: at + 600,
        }],
        mail: OutgoingMail {
            recipient: user.email.clone(),
            subject: "Reset".into(),
            body: format!("link {token}"),
            created_at: at,
            expires_at: at + 600,
        },
    }
}

pub async fn links_are_single_use_voided_by_newer_ones_and_expire(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("alice", "Alice@Example.com"))
        .await
        .unwrap();
    let found = s.users_by_email("alice@EXAMPLE.com").await.unwrap();
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), [u.id]);
    assert!(s.users_by_email("").await.unwrap().is_empty());
    assert!(!u.email_verified);

    let first = link("t1", &u, LinkKind::Reset, 100);
    assert!(
        s.request_links(
            &request(LinkKind::Reset, "a", "192.0.2.1", 100),
            Some(&first)
        )
        .await
        .unwrap()
    );
    assert!(s.link("t1", LinkKind::Reset, 101).await.unwrap().is_some());
    assert!(s.link("t1", LinkKind::Verify, 101).await.unwrap().is_none());
    // A newer link voids the first.
    let second = link("t2", &u, LinkKind::Reset, 110);
    assert!(
        s.request_links(
            &request(LinkKind::Reset, "a", "192.0.2.1", 110),
            Some(&second)
        )
        .await
        .unwrap()
    );
    assert!(s.link("t1", LinkKind::Reset, 111).await.unwrap().is_none());
    assert!(
        s.reset_password("t1", "$new1", 111)
            .await
            .unwrap()
            .is_none()
    );
    let before = s.latest_change().await.unwrap();
    let reset = s.reset_password("t2", "$new2", 112).await.unwrap().unwrap();
    assert_eq!(reset.password_hash, "$new2");
    assert_eq!(reset.token_version, u.token_version + 1);
    assert!(reset.email_verified, "the reset link proves the address");
    assert!(s.latest_change().await.unwrap() > before, "logged");
    // Used once.
    assert!(
        s.reset_password("t2", "$new3", 113)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.user_by_id(u.id).await.unwrap().unwrap().password_hash,
        "$new2"
    );

    // Expiry: a link is refused from its expiry on.
    let third = link("t3", &u, LinkKind::Reset, 200);
    s.request_links(
        &request(LinkKind::Reset, "a", "192.0.2.1", 200),
        Some(&third),
    )
    .await
    .unwrap();
    assert!(s.link("t3", LinkKind::Reset, 800).await.unwrap().is_none());
    assert!(
        s.reset_password("t3", "$late", 800)
            .await
            .unwrap()
            .is_none()
    );

    // A verification holds only for the address it was mailed to.
    let changed = UserUpdate {
        email: Some("new@example.com".into()),
        ..Default::default()
    };
    let u = s.update_user(u.id, changed, 300).await.unwrap().unwrap();
    assert!(!u.email_verified, "a new address is not verified");
    let old_address = link("v1", &reset, LinkKind::Verify, 300);
    s.request_links(
        &request(LinkKind::Verify, "a", "192.0.2.1", 300),
        Some(&old_address),
    )
    .await
    .unwrap();
    assert!(s.verify_email("v1", 301).await.unwrap().is_none());
    let new_address = link("v2", &u, LinkKind::Verify, 302);
    s.request_links(
        &request(LinkKind::Verify, "b", "192.0.2.1", 302),
        Some(&new_address),
    )
    .await
    .unwrap();
    let verified = s.verify_email("v2", 303).await.unwrap().unwrap();
    assert!(verified.email_verified);
    assert!(s.verify_email("v2", 304).await.unwrap().is_none());
    // The same address again keeps the flag; an admin may clear it.
    let same = UserUpdate {
        email: Some("new@example.com".into()),
        ..Default::default()
    };
    assert!(
        s.update_user(u.id, same, 305)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    let cleared = UserUpdate {
        email_verified: Some(false),
        ..Default::default()
    };
    assert!(
        !s.update_user(u.id, cleared, 306)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );

    // An inactive user's link changes nothing and stays unused.
    let u = s.user_by_id(u.id).await.unwrap().unwrap();
    let fourth = link("t4", &u, LinkKind::Reset, 400);
    s.request_links(
        &request(LinkKind::Reset, "b", "192.0.2.1", 400),
        Some(&fourth),
    )
    .await
    .unwrap();
    let off = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    s.update_user(u.id, off, 401).await.unwrap();
    assert!(s.reset_password("t4", "$x", 402).await.unwrap().is_none());
    assert!(s.link("t4", LinkKind::Reset, 403).await.unwrap().is_some());
}

pub async fn requests_past_a_limit_are_counted_and_write_nothing(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("bob", "bob@example.com"))
        .await
        .unwrap();
    let mut written = Vec::new();
    for i in 0..7 {
        let links = link(&format!("b{i}"), &u, LinkKind::Reset, 100 + i);
        let client = format!("192.0.2.{i}");
        let req = request(LinkKind::Reset, "bob", &client, 100 + i);
        written.push(s.request_links(&req, Some(&links)).await.unwrap());
    }
    assert_eq!(written, [true, true, true, true, true, false, false]);
    assert_eq!(s.outbox_counts().await.unwrap().pending, 5);
    // The limit is per kind, and the window slides.
    let verify = link("bv", &u, LinkKind::Verify, 110);
    assert!(
        s.request_links(
            &request(LinkKind::Verify, "bob", "192.0.2.9", 110),
            Some(&verify)
        )
        .await
        .unwrap()
    );
    let later = link("b-later", &u, LinkKind::Reset, 3_800);
    assert!(
        s.request_links(
            &request(LinkKind::Reset, "bob", "192.0.2.9", 3_800),
            Some(&later)
        )
        .await
        .unwrap()
    );
    // 20 from one client, whatever the addresses.
    let mut from_client = Vec::new();
    for i in 0..22 {
        let req = request(LinkKind::Reset, &format!("x{i}"), "198.51.100.1", 5_000);
        from_client.push(s.request_links(&req, None).await.unwrap());
    }
    assert_eq!(from_client.iter().filter(|w| **w).count(), 20);
    assert!(!from_client[20] && !from_client[21]);
    // Requests without a client (the CLI) count only per address.
    for i in 0..3 {
        let req = request(LinkKind::Reset, &format!("y{i}"), "", 5_000);
        assert!(s.request_links(&req, None).await.unwrap());
    }
}

pub async fn concurrent_requests_for_one_address_honour_the_limit(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("carol", "carol@example.com"))
        .await
        .unwrap();
    for trial in 0..3 {
        let at = 10_000 * (trial + 1);
        let results = all_at_once(12, |i| {
            let s = s.clone();
            let u = u.clone();
            async move {
                let links = link(&format!("c{trial}-{i}"), &u, LinkKind::Reset, at);
                let client = format!("203.0.113.{i}");
                let req = request(LinkKind::Reset, "carol", &client, at);
                s.request_links(&req, Some(&links)).await.unwrap()
            }
        })
        .await;
        assert_eq!(results.iter().filter(|w| **w).count(), 5, "trial {trial}");
    }
    assert_eq!(s.outbox_counts().await.unwrap().pending, 15);
}

pub async fn requests_past_the_limits_leave_no_row(e: Engine) {
    let (db, s) = e.store().await;
    // One client asking for 200 addresses, and 200 clients for one address:
    // past each limit the request is refused, and nothing of it is kept.
    let mut written = 0;
    for i in 0..200 {
        let req = request(
            LinkKind::Reset,
            &format!("a{i}@example.com"),
            "198.51.100.1",
            100,
        );
        written += usize::from(s.request_links(&req, None).await.unwrap());
    }
    for i in 0..200 {
        let req = request(
            LinkKind::Reset,
            "one@example.com",
            &format!("203.0.113.{i}"),
            100,
        );
        written += usize::from(s.request_links(&req, None).await.unwrap());
    }
    assert_eq!(written, 20 + 5);
    assert_eq!(db.count("mail_requests").await, 25);
}

pub async fn one_of_many_uses_of_a_link_wins(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("dave", "dave@example.com"))
        .await
        .unwrap();
    for trial in 0..3 {
        let token = format!("d{trial}");
        let links = link(&token, &u, LinkKind::Reset, 100);
        s.request_links(&request(LinkKind::Reset, "dave", "", 100), Some(&links))
            .await
            .unwrap();
        let results = all_at_once(8, |i| {
            let (s, token) = (s.clone(), token.clone());
            async move {
                s.reset_password(&token, &format!("$h{i}"), 101)
                    .await
                    .unwrap()
            }
        })
        .await;
        let winners: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "trial {trial}");
        let stored = s.user_by_id(u.id).await.unwrap().unwrap();
        assert_eq!(stored.password_hash, winners[0].password_hash);
        assert_eq!(stored.token_version, trial + 1);
    }
}

pub async fn the_outbox_leases_retries_gives_up_and_forgets_sent_text(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("erin", "erin@example.com"))
        .await
        .unwrap();
    let links = link("e1", &u, LinkKind::Reset, 100);
    s.request_links(&request(LinkKind::Reset, "erin", "", 100), Some(&links))
        .await
        .unwrap();
    assert!(
        s.take_mail(99, 160, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let taken = s.take_mail(100, 160, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    let mail = &taken[0];
    assert_eq!(
        (mail.recipient.as_str(), mail.attempts),
        ("erin@example.com", 1)
    );
    assert_eq!(mail.body, "link e1");
    // Leased: nobody else takes it meanwhile, even when the sender is slow.
    assert!(s.take_mail(120, 180, 10).await.unwrap().is_empty());
    // A failure sets the next try.
    s.mail_failed(mail.id, Some(130), "refused", 121)
        .await
        .unwrap();
    assert!(s.take_mail(129, 190, 10).await.unwrap().is_empty());
    let again = s.take_mail(130, 190, 10).await.unwrap();
    assert_eq!(again[0].attempts, 2);
    s.mail_sent(mail.id, 131).await.unwrap();
    assert!(s.take_mail(500, 600, 10).await.unwrap().is_empty());
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 0));

    // Given up on: never taken again.
    let links = link("e2", &u, LinkKind::Reset, 200);
    s.request_links(&request(LinkKind::Reset, "erin", "", 200), Some(&links))
        .await
        .unwrap();
    let taken = s.take_mail(200, 260, 10).await.unwrap();
    s.mail_failed(taken[0].id, None, "expired", 201)
        .await
        .unwrap();
    assert!(s.take_mail(10_000, 10_060, 10).await.unwrap().is_empty());
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 1));

    // Pruning forgets links past expiry and mail a week after it was done.
    s.prune(201 + 7 * 24 * 3600 + 1, 0).await.unwrap();
    let counts = s.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 0, 0));
}

pub async fn pending_requests_are_fulfilled_once_and_forget_the_address(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("fred", "fred@example.com"))
        .await
        .unwrap();
    let asked = |at: i64| MailRequest {
        address: "FRED@example.com".into(),
        ..request(LinkKind::Reset, "fred", "192.0.2.8", at)
    };
    for at in 100..107 {
        s.request_links(&asked(at), None).await.unwrap();
    }
    // Within the limit: five pending, in order; the others forgot the address.
    let pending = s.pending_mail_requests(10).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.at).collect::<Vec<_>>(),
        [100, 101, 102, 103, 104]
    );
    assert_eq!(pending[0].address, "FRED@example.com");
    assert_eq!(pending[0].client, "192.0.2.8");
    assert_eq!(s.pending_mail_requests(2).await.unwrap().len(), 2);
    // Fulfilled once, of several at once.
    let first = pending[0].id;
    let results = all_at_once(6, |i| {
        let (s, u) = (s.clone(), u.clone());
        async move {
            let links = link(&format!("p{i}"), &u, LinkKind::Reset, 200);
            s.fulfil_mail_request(first, Some(&links)).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|done| **done).count(), 1);
    assert_eq!(s.outbox_counts().await.unwrap().pending, 1);
    // A request nobody's address matches is fulfilled with no links.
    assert!(s.fulfil_mail_request(pending[1].id, None).await.unwrap());
    assert_eq!(s.pending_mail_requests(10).await.unwrap().len(), 3);
    for p in &pending[2..] {
        s.fulfil_mail_request(p.id, None).await.unwrap();
    }
    assert!(s.pending_mail_requests(10).await.unwrap().is_empty());
    assert_eq!(s.outbox_counts().await.unwrap().pending, 1);
}

pub async fn a_change_of_address_voids_the_links_mailed_to_another(e: Engine) {
    let (db, s) = e.store().await;
    let u = s
        .create_user(with_email("gus", "gus@example.com"))
        .await
        .unwrap();
    let reset = link("g-reset", &u, LinkKind::Reset, 100);
    s.request_links(&request(LinkKind::Reset, "gus", "", 100), Some(&reset))
        .await
        .unwrap();
    let verify = link("g-verify", &u, LinkKind::Verify, 100);
    s.request_links(&request(LinkKind::Verify, "gus", "", 100), Some(&verify))
        .await
        .unwrap();
    // Flags only: the links stay.
    let staff = UserUpdate {
        is_staff: Some(true),
        ..Default::default()
    };
    s.update_user(u.id, staff, 101).await.unwrap();
    assert!(
        s.link("g-reset", LinkKind::Reset, 102)
            .await
            .unwrap()
            .is_some()
    );
    // Another address, then the first again: both links are gone for good.
    for (at, address) in [(103, "gus@example.net"), (104, "gus@example.com")] {
        let moved = UserUpdate {
            email: Some(address.into()),
            ..Default::default()
        };
        s.update_user(u.id, moved, at).await.unwrap();
    }
    assert!(
        s.link("g-reset", LinkKind::Reset, 105)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.link("g-verify", LinkKind::Verify, 105)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.reset_password("g-reset", "$x", 105)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.verify_email("g-verify", 105).await.unwrap().is_none());
    // A reset link whose user's address changed behind the store's back
    // (no update_user: another tool, an older instance) resets nothing.
    let again = link("g-reset-2", &u, LinkKind::Reset, 200);
    s.request_links(&request(LinkKind::Reset, "gus", "", 200), Some(&again))
        .await
        .unwrap();
    db.execute(&format!(
        "UPDATE users SET email = 'gus@example.org' WHERE id = {}",
        u.id
    ))
    .await;
    assert!(
        s.reset_password("g-reset-2", "$y", 201)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn verification_links_stay_valid_until_one_is_used(e: Engine) {
    let (_db, s) = e.store().await;
    let u = s
        .create_user(with_email("hedy", "hedy@example.com"))
        .await
        .unwrap();
    for (token, at) in [("h1", 100), ("h2", 110), ("h3", 120)] {
        let letter = link(token, &u, LinkKind::Verify, at);
        s.request_links(&request(LinkKind::Verify, "hedy", "", at), Some(&letter))
            .await
            .unwrap();
    }
    // A newer verification link leaves the older ones working ...
    for token in ["h1", "h2", "h3"] {
        assert!(
            s.link(token, LinkKind::Verify, 121)
                .await
                .unwrap()
                .is_some()
        );
    }
    // ... until one is used: the others have done their work.
    let verified = s.verify_email("h1", 122).await.unwrap().unwrap();
    assert!(verified.email_verified);
    for token in ["h1", "h2", "h3"] {
        assert!(
            s.verify_email(token, 123).await.unwrap().is_none(),
            "{token}"
        );
    }
}
