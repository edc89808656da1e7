//! Roles and `app_metadata` (docs/API.md, "Roles and metadata"): set by
//! staff, shown in `/me` and the admin user objects, copied into access
//! tokens by `extra_claims`, logged when changed; a change makes the user's
//! older access tokens `expired` (so clients refresh and get the new
//! claims) without ending any session.

use super::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CONFIG: &str = "extra_claims = [\"roles\", \"app_metadata\"]\nrotate_refresh_tokens = true\n\
                      blacklist_after_rotation = true\nlogin_rate_limit = \"off\"\n\
                      user_rate_limit = \"off\"\n";

async fn put_roles(s: &Server, staff: &str, id: &Value, body: Value) -> Reply {
    s.send(
        s.http
            .put(s.url(&format!("/api/admin/users/{id}/roles")))
            .bearer_auth(staff)
            .json(&body),
    )
    .await
}

async fn patch_user(s: &Server, staff: &str, id: &Value, body: Value) -> Reply {
    s.send(
        s.http
            .patch(s.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(staff)
            .json(&body),
    )
    .await
}

async fn refresh(s: &Server, token: &str) -> (String, String) {
    let r = s
        .post("/api/token/refresh/", json!({"refresh": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["access"].as_str().expect("access").to_owned(),
        r.body["refresh"].as_str().expect("refresh").to_owned(),
    )
}

async fn sessions(s: &Server, access: &str) -> usize {
    let r = s.get_with_token("/api/auth/sessions", access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["results"].as_array().expect("a list").len()
}

#[tokio::test]
async fn roles_and_metadata_travel_in_tokens_and_a_change_expires_older_access_tokens_only() {
    let s = Server::start(CONFIG).await;
    let (root, _) = s.superuser("root").await;
    let (access, refresh_token) = s.user("alice").await;
    let me = s.me(&access).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        (&me.body["roles"], &me.body["app_metadata"]),
        (&json!([]), &json!({}))
    );
    let claims = segment(&access, 1);
    assert_eq!(
        (&claims["roles"], &claims["app_metadata"], &claims["cver"]),
        (&json!([]), &json!({}), &json!(0))
    );
    let id = me.body["id"].clone();

    // Sorted, each once.
    let r = put_roles(
        &s,
        &root,
        &id,
        json!({"roles": ["editors", "billing", "editors"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["roles"], json!(["billing", "editors"]));
    assert_eq!(r.body["username"], "alice");
    // The token from before says nothing of them: expired, not revoked.
    assert_refused(&s.me(&access).await, "expired");
    let (access, refresh_token) = refresh(&s, &refresh_token).await;
    let claims = segment(&access, 1);
    assert_eq!(
        (&claims["roles"], &claims["cver"]),
        (&json!(["billing", "editors"]), &json!(1))
    );
    let me = s.me(&access).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["roles"], json!(["billing", "editors"]));

    let metadata = json!({"plan": "pro", "limits": {"seats": 5}, "tags": ["a", 1, null]});
    let r = patch_user(&s, &root, &id, json!({"app_metadata": metadata})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["app_metadata"], metadata);
    assert_refused(&s.me(&access).await, "expired");
    let (access, _) = refresh(&s, &refresh_token).await;
    let claims = segment(&access, 1);
    assert_eq!(
        (&claims["app_metadata"], &claims["cver"]),
        (&metadata, &json!(2))
    );
    // Nobody was logged out: the one session goes on, a flag change with
    // no claims change leaves the token alone.
    assert_eq!(sessions(&s, &access).await, 1);
    let r = patch_user(&s, &root, &id, json!({"email": "alice@example.com"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.me(&access).await.status, 200);

    // The admin list shows them too; staff change metadata back to nothing.
    let list = s.get_with_token("/api/admin/users", &root).await;
    let alice = &list.body["results"][1];
    assert_eq!(
        (&alice["roles"], &alice["app_metadata"]),
        (&json!(["billing", "editors"]), &metadata)
    );
    let r = patch_user(&s, &root, &id, json!({"app_metadata": {}})).await;
    assert_eq!(r.body["app_metadata"], json!({}));
    let r = put_roles(&s, &root, &id, json!({"roles": []})).await;
    assert_eq!(r.body["roles"], json!([]));
    s.assert_healthy().await;
}

#[tokio::test]
async fn without_extra_claims_the_token_carries_only_the_claims_version() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (access, refresh_token) = s.user("alice").await;
    let id = s.me(&access).await.body["id"].clone();
    assert_eq!(
        put_roles(&s, &root, &id, json!({"roles": ["x"]}))
            .await
            .status,
        200
    );
    assert_refused(&s.me(&access).await, "expired");
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh_token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = segment(r.body["access"].as_str().unwrap(), 1);
    assert_eq!(claims["cver"], 1);
    assert!(
        claims.get("roles").is_none() && claims.get("app_metadata").is_none(),
        "{claims}"
    );
    assert_eq!(
        s.me(r.body["access"].as_str().unwrap()).await.body["roles"],
        json!(["x"])
    );
}

#[tokio::test]
async fn bad_roles_and_metadata_are_400s_naming_the_field_and_change_nothing() {
    let s = Server::start(CONFIG).await;
    let (root, _) = s.superuser("root").await;
    let (access, _) = s.user("alice").await;
    let id = s.me(&access).await.body["id"].clone();
    let many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
    let cases = [
        (json!({}), json!({"roles": ["This field is required."]})),
        (
            json!({"roles": null}),
            json!({"roles": ["This field may not be null."]}),
        ),
        (
            json!({"roles": "editors"}),
            json!({"roles": ["Expected a list of items but got type \"str\"."]}),
        ),
        (
            json!({"roles": {"a": 1}}),
            json!({"roles": ["Expected a list of items but got type \"dict\"."]}),
        ),
        (
            json!({"roles": ["ok", 3]}),
            json!({"roles": ["Each item must be a string."]}),
        ),
        (
            json!({"roles": [""]}),
            json!({"roles": ["A role name may not be blank."]}),
        ),
        (
            json!({"roles": ["a".repeat(151)]}),
            json!({"roles": [format!("Role \"{}...\" is longer than 150 characters.", "a".repeat(40))]}),
        ),
        (
            json!({"roles": ["bad\u{7}role"]}),
            json!({"roles": ["Role \"bad\\u{7}role\" contains a control character."]}),
        ),
        (
            json!({"roles": many}),
            json!({"roles": ["A user has at most 100 roles."]}),
        ),
    ];
    for (body, errors) in cases {
        let r = put_roles(&s, &root, &id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body, errors, "{body}");
    }
    let big = json!({"k": "x".repeat(4096 - 7)});
    let cases = [
        (
            json!({"app_metadata": [1]}),
            json!({"app_metadata": ["Expected a JSON object."]}),
        ),
        (
            json!({"app_metadata": "x"}),
            json!({"app_metadata": ["Expected a JSON object."]}),
        ),
        (
            json!({"app_metadata": null}),
            json!({"app_metadata": ["Expected a JSON object."]}),
        ),
        (
            json!({"app_metadata": big}),
            json!({"app_metadata": ["At most 4096 bytes of JSON; this is 4097."]}),
        ),
        (
            json!({"app_metadata": 1, "is_staff": "x"}),
            json!({"app_metadata": ["Expected a JSON object."], "is_staff": ["Must be a valid boolean."]}),
        ),
    ];
    for (body, errors) in cases {
        let r = patch_user(&s, &root, &id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body, errors, "{body}");
    }
    // A form cannot carry a list.
    let r = s
        .send(
            s.http
                .put(s.url(&format!("/api/admin/users/{id}/roles")))
                .bearer_auth(&root)
                .form(&[("roles", "editors")]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"roles": ["Expected a list of items but got type \"str\"."]})
    );
    // Nothing was written, and the token from before is still good.
    let me = s.me(&access).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (&me.body["roles"], &me.body["app_metadata"]),
        (&json!([]), &json!({}))
    );
    // No such user; not staff; no token.
    let r = put_roles(&s, &root, &json!(999), json!({"roles": []})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = put_roles(&s, &access, &id, json!({"roles": ["admins"]})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .send(
            s.http
                .put(s.url(&format!("/api/admin/users/{id}/roles")))
                .json(&json!({"roles": []})),
        )
        .await;
    assert_not_authenticated(&r);
    s.assert_healthy().await;
}

#[tokio::test]
async fn only_a_superuser_sets_a_superusers_roles_and_changes_are_logged() {
    let s = Server::start(CONFIG).await;
    let (root, _) = s.superuser("root").await;
    let root_id = s.me(&root).await.body["id"].clone();
    let (staff, _) = s.user("staffer").await;
    let staff_id = s.me(&staff).await.body["id"].clone();
    let r = patch_user(&s, &root, &staff_id, json!({"is_staff": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = put_roles(&s, &staff, &root_id, json!({"roles": ["nobody"]})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(s.me(&root).await.body["roles"], json!([]));

    let r = put_roles(&s, &root, &staff_id, json!({"roles": ["b", "a"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = patch_user(
        &s,
        &root,
        &staff_id,
        json!({"app_metadata": {"secret": "not logged"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(20);
    let events = loop {
        let r = s
            .get_with_token("/api/admin/audit?event=user_updated&page_size=100", &root)
            .await;
        let results = r.body["results"].as_array().expect("results").clone();
        if results.len() >= 3 {
            break results;
        }
        assert!(Instant::now() < deadline, "{results:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let details: Vec<&Value> = events.iter().map(|e| &e["detail"]).collect();
    assert!(
        details.contains(&&json!({"fields": {"roles": {"before": [], "after": ["a", "b"]}}})),
        "{details:?}"
    );
    assert!(
        details.contains(&&json!({"fields": {"app_metadata": true}})),
        "{details:?}"
    );
    assert!(events.iter().all(|e| e["actor_id"] == root_id));
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("not logged")
    );
}

#[tokio::test]
async fn the_cli_shows_and_changes_roles() {
    let s = Server::start(CONFIG).await;
    let (access, refresh_token) = s.user("alice").await;
    let (code, out, err) = s.cli(&["users", "roles", "alice"], None).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, out, err) = s
        .cli(
            &[
                "users", "roles", "alice", "--add", "editors", "--add", "billing", "--remove",
                "none",
            ],
            None,
        )
        .await;
    assert_eq!((code, out.as_str()), (0, "billing\neditors\n"), "{err}");
    s.caught_up().await;
    assert_refused(&s.me(&access).await, "expired");
    let (access, _) = refresh(&s, &refresh_token).await;
    assert_eq!(segment(&access, 1)["roles"], json!(["billing", "editors"]));
    let (code, out, err) = s
        .cli(&["users", "roles", "alice", "--remove", "billing"], None)
        .await;
    assert_eq!((code, out.as_str()), (0, "editors\n"), "{err}");
    let (code, out, err) = s.cli(&["users", "roles", "alice", "--add", ""], None).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "Error: A role name may not be blank.\n")
    );
    let (code, _, err) = s
        .cli(&["users", "roles", "nobody", "--add", "x"], None)
        .await;
    assert_eq!((code, err.as_str()), (1, "tessera: no user `nobody`\n"));
    let (code, out, _) = s.cli(&["users", "roles", "alice"], None).await;
    assert_eq!((code, out.as_str()), (0, "editors\n"));
}
