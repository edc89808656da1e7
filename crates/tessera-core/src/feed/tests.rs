use super::*;
use crate::claims::{TokenType, VerifiedClaims};
use crate::client::ClientClaims;
use crate::ids::{FamilyId, Jti, UserId};
use crate::refusal::Refusal;

const JTI: &str = "0123456789abcdef0123456789abcdef";
const FID: &str = "fedcba9876543210fedcba9876543210";

fn claims(user_id: i64, ver: i64) -> VerifiedClaims {
    VerifiedClaims {
        token_type: TokenType::Access,
        exp: 1_000,
        iat: 700,
        jti: Jti::parse(JTI).unwrap(),
        user_id: UserId::new(user_id),
        fid: FamilyId::parse(FID).unwrap(),
        ver,
        claims_version: 0,
        fresh: false,
        username: None,
        amr: Vec::new(),
        raw: Default::default(),
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        cursor: Cursor::at(42),
        window: 360,
        families: vec![],
        users: vec![UserEntry {
            user_id: 7,
            ver: 2,
            active: true,
            cver: 0,
            at: 900,
        }],
        tokens: vec![],
        clients: vec![ClientEntry {
            client_id: "tc_0123456789abcdef01234567".into(),
            at: 900,
        }],
    }
}

#[test]
fn cursors_are_digits_only() {
    assert_eq!(Cursor::parse("0"), Some(Cursor::at(0)));
    assert_eq!(
        Cursor::parse("9223372036854775807").map(Cursor::position),
        Some(i64::MAX)
    );
    for bad in [
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1e3",
        "abc",
        "9223372036854775808",
        "00000000000000000001",
    ] {
        assert_eq!(Cursor::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Cursor::at(17).to_string(), "17");
    let json = serde_json::to_string(&snapshot()).unwrap();
    assert!(json.starts_with(r#"{"cursor":"42","window":360,"families":[],"users":[{"user_id":7,"ver":2,"active":true,"cver":0,"at":900}]"#), "{json}");
    assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), snapshot());
    assert!(serde_json::from_str::<Snapshot>(&json.replace("\"42\"", "\"x\"")).is_err());
}

#[test]
fn events_read_back_as_written() {
    let events = [
        FeedEvent::FamilyRevoked(FamilyEntry {
            fid: FID.into(),
            user_id: 7,
            at: 5,
        }),
        FeedEvent::UserChanged(UserEntry {
            user_id: 7,
            ver: 3,
            active: false,
            cver: 0,
            at: 6,
        }),
        FeedEvent::TokenRevoked(TokenEntry {
            jti: JTI.into(),
            exp: 9,
        }),
        FeedEvent::ClientRemoved(ClientEntry {
            client_id: "tc_0123456789abcdef01234567".into(),
            at: 8,
        }),
        FeedEvent::KeysChanged,
        FeedEvent::Reset,
    ];
    for event in events {
        assert_eq!(FeedEvent::parse(event.name(), &event.data()), Ok(event));
    }
    assert_eq!(FeedEvent::KeysChanged.data(), "{}");
    assert_eq!(
        FeedEvent::parse("token_revoked", "{\"jti\":1}"),
        Err(FeedError::Malformed("token_revoked"))
    );
    assert_eq!(
        FeedEvent::parse("later", "{}"),
        Err(FeedError::UnknownEvent("later".into()))
    );
}

#[test]
fn the_state_refuses_what_the_feed_says() {
    let mut state = FeedState::from_snapshot(&snapshot());
    assert_eq!(
        state.check(&claims(7, 1)),
        Err(Refusal::Revoked),
        "older ver"
    );
    assert_eq!(state.check(&claims(7, 2)), Ok(()));
    assert_eq!(state.check(&claims(8, 0)), Ok(()), "a user never named");
    state.apply(&FeedEvent::UserChanged(UserEntry {
        user_id: 8,
        ver: 0,
        active: false,
        cver: 0,
        at: 950,
    }));
    assert_eq!(
        state.check(&claims(8, 0)),
        Err(Refusal::Revoked),
        "deactivated"
    );
    state.apply(&FeedEvent::FamilyRevoked(FamilyEntry {
        fid: FID.into(),
        user_id: 7,
        at: 950,
    }));
    assert_eq!(state.check(&claims(7, 2)), Err(Refusal::Revoked), "family");
    let mut other = FeedState::from_snapshot(&snapshot());
    other.apply(&FeedEvent::TokenRevoked(TokenEntry {
        jti: JTI.into(),
        exp: 1_000,
    }));
    assert_eq!(other.check(&claims(7, 2)), Err(Refusal::Revoked), "jti");

    let client = ClientClaims {
        client_id: "tc_0123456789abcdef01234567".into(),
        scopes: vec![],
        jti: Jti::parse("11111111111111111111111111111111").unwrap(),
        iat: 0,
        exp: 10,
    };
    assert_eq!(state.check_client(&client), Err(Refusal::Revoked));
    let kept = ClientClaims {
        client_id: "tc_1123456789abcdef01234567".into(),
        ..client
    };
    assert_eq!(state.check_client(&kept), Ok(()));

    // Markers last their window past `at`, then go.
    assert_eq!(state.len(), 4);
    state.prune(900 + 361);
    assert_eq!(state.len(), 2, "the two from 950 remain");
    state.prune(950 + 361);
    assert!(state.is_empty());
    assert_eq!(state.check(&claims(7, 1)), Ok(()));
}

#[test]
fn a_change_of_claims_makes_older_access_tokens_expired_and_older_servers_send_none() {
    let mut state = FeedState::from_snapshot(&snapshot());
    state.apply(&FeedEvent::UserChanged(UserEntry {
        user_id: 9,
        ver: 0,
        active: true,
        cver: 2,
        at: 950,
    }));
    assert_eq!(state.check(&claims(9, 0)), Err(Refusal::Expired));
    let mut fresh = claims(9, 0);
    fresh.claims_version = 2;
    assert_eq!(state.check(&fresh), Ok(()));
    // A server from before `cver` sends user entries without it: never changed.
    let old = FeedEvent::parse(
        "user_changed",
        r#"{"user_id":9,"ver":0,"active":true,"at":960}"#,
    );
    state.apply(&old.unwrap());
    assert_eq!(state.check(&claims(9, 0)), Ok(()));
}
