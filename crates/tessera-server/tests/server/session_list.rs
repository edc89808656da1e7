//! The sessions a user sees and ends (`/api/auth/sessions`), and staff's
//! view of a user's (`/api/admin/users/{id}/sessions`).

use super::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Logs `username` in over HTTP with this User-Agent: (access, refresh).
async fn log_in_as(s: &Server, username: &str, user_agent: &str) -> (String, String) {
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("User-Agent", user_agent)
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["access"].as_str().unwrap().to_owned(),
        r.body["refresh"].as_str().unwrap().to_owned(),
    )
}

async fn sessions(s: &Server, access: &str) -> Vec<Value> {
    let r = s.get_with_token("/api/auth/sessions", access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["results"].as_array().unwrap().clone()
}

async fn delete(s: &Server, path: &str, access: &str) -> Reply {
    s.send(s.http.delete(s.url(path)).bearer_auth(access)).await
}

async fn refresh_status(s: &Server, refresh: &str) -> u16 {
    s.post("/api/token/refresh/", json!({"refresh": refresh}))
        .await
        .status
}

fn fid(token: &str) -> String {
    segment(token, 1)["fid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_sees_each_login_and_ends_one_of_them() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    let (phone, phone_refresh) = log_in_as(&s, "alice", "Phone/1.0").await;
    s.advance(Duration::from_secs(5));
    let long_agent = "L".repeat(300);
    let (laptop, laptop_refresh) = log_in_as(&s, "alice", &long_agent).await;
    let listed = sessions(&s, &laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Most recently used first; the caller's own marked.
    assert_eq!(listed[0]["id"], fid(&laptop));
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[0]["user_agent"], "L".repeat(256));
    assert_eq!(listed[1]["id"], fid(&phone));
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[1]["user_agent"], "Phone/1.0");
    assert_eq!(listed[1]["ip"], "127.0.0.1");
    let created = listed[1]["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    assert_eq!(listed[1]["created"], listed[1]["last_used"]);
    let mut keys: Vec<&str> = listed[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created", "current", "id", "ip", "last_used", "user_agent"]
    );

    // Ending the phone's session: its refresh token at once, its access
    // token too (this process holds the revocation), the laptop's unharmed.
    let path = format!("/api/auth/sessions/{}", fid(&phone));
    let r = delete(&s, &path, &laptop).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(refresh_status(&s, &phone_refresh).await, 401);
    assert_eq!(s.me(&phone).await.status, 401);
    assert_eq!(s.me(&laptop).await.status, 200);
    assert_eq!(refresh_status(&s, &laptop_refresh).await, 200);
    assert_eq!(sessions(&s, &laptop).await.len(), 1);
    // Ended already, not an id, another user's: 404, nothing ended.
    assert_eq!(delete(&s, &path, &laptop).await.status, 404);
    for bad in ["xyz", "ABCDEF0123456789ABCDEF0123456789", &"0".repeat(33)] {
        let r = delete(&s, &format!("/api/auth/sessions/{bad}"), &laptop).await;
        assert_eq!(
            (r.status, &r.body),
            (404, &json!({"detail": "Not found."})),
            "{bad}"
        );
    }
    let (bob, _) = s.user("bob").await;
    let r = delete(&s, &format!("/api/auth/sessions/{}", fid(&laptop)), &bob).await;
    assert_eq!(r.status, 404);
    assert_eq!(s.me(&laptop).await.status, 200);
    // Without a token: 401.
    assert_eq!(s.get("/api/auth/sessions").await.status, 401);
    s.assert_healthy().await;
}

#[tokio::test]
async fn ending_the_other_sessions_keeps_the_current_one() {
    let s = Server::start("").await;
    let (first, first_refresh) = s.user("alice").await;
    let (second, second_refresh) = s.login("alice").await;
    let (third, third_refresh) = s.login("alice").await;
    assert_eq!(sessions(&s, &third).await.len(), 3);
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/sessions/end-others"))
                .bearer_auth(&third),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let left = sessions(&s, &third).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], fid(&third));
    for (access, refresh) in [(&first, &first_refresh), (&second, &second_refresh)] {
        assert_eq!(refresh_status(&s, refresh).await, 401);
        assert_eq!(s.me(access).await.status, 401);
    }
    assert_eq!(refresh_status(&s, &third_refresh).await, 200);
}

#[tokio::test]
async fn a_refresh_moves_last_used() {
    for config in [
        "",
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true",
    ] {
        let s = Server::start(config).await;
        let (access, refresh) = s.user("alice").await;
        let before = sessions(&s, &access).await[0]["last_used"].clone();
        s.advance(Duration::from_secs(90));
        assert_eq!(refresh_status(&s, &refresh).await, 200);
        // Without rotation the refresh does not wait for this write: poll.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = sessions(&s, &access).await;
            if now[0]["last_used"] != before {
                assert_eq!(now[0]["created"], before, "{config}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{config}: last_used stayed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn staff_see_and_end_a_users_sessions() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (alice, alice_refresh) = s.user("alice").await;
    let id = s.me(&alice).await.body["id"].as_i64().unwrap();
    let r = s
        .get_with_token(&format!("/api/admin/users/{id}/sessions"), &root)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = r.body["results"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], fid(&alice));
    assert!(listed[0].get("current").is_none(), "{listed:?}");
    // Not staff, no such user, not a session of theirs.
    let forbidden = s
        .get_with_token(&format!("/api/admin/users/{id}/sessions"), &alice)
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        s.get_with_token("/api/admin/users/999/sessions", &root)
            .await
            .status,
        404
    );
    assert_eq!(
        s.get_with_token("/api/admin/users/x/sessions", &root)
            .await
            .status,
        404
    );
    let root_fid = fid(&root);
    let theirs = format!("/api/admin/users/{id}/sessions/{root_fid}");
    assert_eq!(delete(&s, &theirs, &root).await.status, 404);
    assert_eq!(s.me(&root).await.status, 200);
    let path = format!("/api/admin/users/{id}/sessions/{}", fid(&alice));
    assert_eq!(delete(&s, &path, &alice).await.status, 403);
    let r = delete(&s, &path, &root).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(refresh_status(&s, &alice_refresh).await, 401);
    assert_eq!(s.me(&alice).await.status, 401);
    assert_eq!(delete(&s, &path, &root).await.status, 404);
}

#[tokio::test]
async fn a_password_change_or_deactivation_ends_every_listed_session() {
    let s = Server::start("").await;
    let (root, _) = s.superuser("root").await;
    let (alice, _) = s.user("alice").await;
    let id = s.me(&alice).await.body["id"].as_i64().unwrap();
    s.login("alice").await;
    let r = s
        .get_with_token(&format!("/api/admin/users/{id}/sessions"), &root)
        .await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    let revoke = s
        .send(
            s.http
                .post(s.url(&format!("/api/admin/users/{id}/revoke")))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!(revoke.status, 204);
    let r = s
        .get_with_token(&format!("/api/admin/users/{id}/sessions"), &root)
        .await;
    assert_eq!(r.body["results"], json!([]));
}
