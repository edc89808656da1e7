//! Administration endpoints (docs/API.md, "Administration").

use super::harness::*;
use serde_json::json;

async fn admin_get(s: &Server, token: &str, path: &str) -> Reply {
    s.get_with_token(path, token).await
}

async fn patch(s: &Server, token: &str, path: &str, body: serde_json::Value) -> Reply {
    s.send(s.http.patch(s.url(path)).bearer_auth(token).json(&body))
        .await
}

async fn revoke(s: &Server, token: &str, id: i64) -> Reply {
    s.send(
        s.http
            .post(s.url(&format!("/api/admin/users/{id}/revoke")))
            .bearer_auth(token),
    )
    .await
}

fn assert_forbidden(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "You do not have permission to perform this action.", "code": "permission_denied"})
    );
}

#[tokio::test]
async fn non_staff_users_get_403_everywhere() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    assert_forbidden(&admin_get(&s, &access, "/api/admin/users").await);
    assert_forbidden(&patch(&s, &access, "/api/admin/users/1", json!({"is_staff": true})).await);
    assert_forbidden(&revoke(&s, &access, 1).await);
    assert_not_authenticated(&s.get("/api/admin/users").await);
}

#[tokio::test]
async fn users_are_listed_in_pages_ordered_by_id() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    for i in 0..24 {
        s.create_user(&format!("user{i:02}"), false).await;
    }
    let r = admin_get(&s, &root, "/api/admin/users").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 25);
    assert_eq!(r.body["previous"], json!(null));
    let next = r.body["next"].as_str().unwrap();
    assert!(
        next.starts_with("http://") && next.ends_with("/api/admin/users?page=2&page_size=20"),
        "{next}"
    );
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    let ids: Vec<i64> = results.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    assert_eq!(results[0]["username"], "root");
    assert_eq!(results[0]["is_staff"], true);

    let r = admin_get(&s, &root, "/api/admin/users?page=2").await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["next"], json!(null));
    assert!(
        r.body["previous"]
            .as_str()
            .unwrap()
            .ends_with("page=1&page_size=20")
    );

    let r = admin_get(&s, &root, "/api/admin/users?page=2&page_size=10").await;
    let ids: Vec<i64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (11..=20).collect::<Vec<_>>());

    let r = admin_get(&s, &root, "/api/admin/users?page_size=1000").await;
    assert_eq!(
        r.body["results"].as_array().unwrap().len(),
        25,
        "page_size is capped at 100, not refused"
    );

    for bad in [
        "page=3",
        "page=0",
        "page=-1",
        "page=abc",
        "page=99999999999999999999",
    ] {
        let r = admin_get(&s, &root, &format!("/api/admin/users?{bad}")).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.body, json!({"detail": "Invalid page."}));
    }
}

#[tokio::test]
async fn deactivation_refuses_tokens_and_logins_at_once() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (access, refresh) = s.user("alice").await;
    let r = patch(&s, &root, "/api/admin/users/2", json!({"is_active": false})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["is_active"], false);
    assert_eq!(r.body["username"], "alice");
    // The very next request.
    assert_refused(&s.me(&access).await, "revoked");
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);

    let r = patch(&s, &root, "/api/admin/users/2/", json!({"is_active": true})).await;
    assert_eq!(r.body["is_active"], true);
    // Reactivation does not bring old tokens back.
    assert_refused(&s.me(&access).await, "revoked");
    let (access, _) = s.login("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
}

#[tokio::test]
async fn staff_flag_changes_apply_at_once() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (alice, _) = s.user("alice").await;
    assert_forbidden(&admin_get(&s, &alice, "/api/admin/users").await);
    let r = patch(&s, &root, "/api/admin/users/2", json!({"is_staff": true})).await;
    assert_eq!(r.body["is_staff"], true);
    assert_eq!(admin_get(&s, &alice, "/api/admin/users").await.status, 200);
    // Form bodies work too.
    let r = s
        .send(
            s.http
                .patch(s.url("/api/admin/users/2"))
                .bearer_auth(&root)
                .form(&[("is_staff", "false")]),
        )
        .await;
    assert_eq!(r.body["is_staff"], false);
    assert_forbidden(&admin_get(&s, &alice, "/api/admin/users").await);
}

#[tokio::test]
async fn admin_revoke_refuses_every_earlier_token() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (a1, r1) = s.user("alice").await;
    let (a2, _) = s.login("alice").await;
    let r = revoke(&s, &root, 2).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_refused(&s.me(&a1).await, "revoked");
    assert_refused(&s.me(&a2).await, "revoked");
    assert_token_not_valid(&s.post("/api/token/refresh/", json!({"refresh": r1})).await);
    let (fresh, _) = s.login("alice").await;
    assert_eq!(s.me(&fresh).await.status, 200);
    assert_eq!(s.me(&root).await.status, 200);
}

#[tokio::test]
async fn unknown_users_and_bad_bodies() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    for path in [
        "/api/admin/users/99",
        "/api/admin/users/abc",
        "/api/admin/users/1.5",
    ] {
        let r = patch(&s, &root, path, json!({"is_staff": true})).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (404, json!({"detail": "Not found."})),
            "{path}"
        );
    }
    let r = revoke(&s, &root, 99).await;
    assert_eq!(r.status, 404);
    let r = patch(
        &s,
        &root,
        "/api/admin/users/1",
        json!({"is_active": "maybe", "is_staff": 3}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"is_active": ["Must be a valid boolean."], "is_staff": ["Must be a valid boolean."]})
    );
}

/// A plain staff user (staff, not superuser), logged in: (access, id).
async fn plain_staff(s: &Server, root: &str, name: &str) -> (String, i64) {
    let (access, _) = s.user(name).await;
    let id = s.me(&access).await.body["id"].as_i64().unwrap();
    let r = patch(
        s,
        root,
        &format!("/api/admin/users/{id}"),
        json!({"is_staff": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (access, id)
}

#[tokio::test]
async fn only_a_superuser_may_change_a_superuser_or_end_its_sessions() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let root_id = s.me(&root).await.body["id"].as_i64().unwrap();
    let (moderator, _) = plain_staff(&s, &root, "moderator").await;
    let path = format!("/api/admin/users/{root_id}");
    for body in [
        json!({"is_active": false}),
        json!({"is_staff": false}),
        json!({"email": "mine@example.com"}),
    ] {
        assert_forbidden(&patch(&s, &moderator, &path, body).await);
    }
    assert_forbidden(&revoke(&s, &moderator, root_id).await);
    let fid = segment(&root, 1)["fid"].as_str().unwrap().to_owned();
    let end = s
        .send(
            s.http
                .delete(s.url(&format!("/api/admin/users/{root_id}/sessions/{fid}")))
                .bearer_auth(&moderator),
        )
        .await;
    assert_forbidden(&end);
    // The superuser is untouched, its session too.
    let me = s.me(&root).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (&me.body["is_active"], &me.body["email"]),
        (&json!(true), &json!(""))
    );
    // Plain staff still administer plain users; a superuser, superusers.
    let (alice_access, _) = s.user("alice").await;
    let alice = s.me(&alice_access).await.body["id"].as_i64().unwrap();
    let r = patch(
        &s,
        &moderator,
        &format!("/api/admin/users/{alice}"),
        json!({"is_active": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (other_root, _) = s.superuser("root2").await;
    let other_id = s.me(&other_root).await.body["id"].as_i64().unwrap();
    let r = patch(
        &s,
        &root,
        &format!("/api/admin/users/{other_id}"),
        json!({"is_active": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(revoke(&s, &root, other_id).await.status, 204);
}

#[tokio::test]
async fn the_last_active_staff_user_cannot_be_demoted_or_deactivated() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let root_id = s.me(&root).await.body["id"].as_i64().unwrap();
    let last = json!({
        "detail": "The last active staff user cannot be deactivated or lose staff status.",
        "code": "last_active_staff",
    });
    for body in [json!({"is_staff": false}), json!({"is_active": false})] {
        let r = patch(&s, &root, &format!("/api/admin/users/{root_id}"), body).await;
        assert_eq!((r.status, &r.body), (409, &last), "{}", r.text);
    }
    let (code, _, err) = s.cli(&["users", "deactivate", "root"], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the last active staff user"), "{err}");
    s.caught_up().await;
    let me = s.me(&root).await;
    assert_eq!(
        (me.status, &me.body["is_staff"]),
        (200, &json!(true)),
        "{}",
        me.text
    );
    // With another staff user, either may step down, but not both.
    let (moderator, moderator_id) = plain_staff(&s, &root, "moderator").await;
    let r = patch(
        &s,
        &root,
        &format!("/api/admin/users/{root_id}"),
        json!({"is_staff": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = patch(
        &s,
        &moderator,
        &format!("/api/admin/users/{moderator_id}"),
        json!({"is_active": false}),
    )
    .await;
    assert_eq!((r.status, &r.body), (409, &last), "{}", r.text);
    s.assert_healthy().await;
}
