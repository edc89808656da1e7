//! The revocation feed's endpoints: who may read them, the snapshot's exact
//! body, the stream's headers and events, and each bad request's answer.

use super::app::*;
use axum::body::Body;
use axum::http::Request;
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

/// The feed's 401 for a token that is not a valid client token.
fn assert_client_token_refused(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "The client token is invalid, expired or revoked.", "code": "token_not_valid"})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
}

impl App {
    /// A token of a client holding `scope`.
    async fn feed_token(&self, name: &str, scope: &str) -> String {
        let client = self.client(name, scope).await;
        self.client_token(&client).await
    }

    /// The stream's response with `token` and `headers`, its body unread.
    async fn open_stream(
        &self,
        token: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> axum::response::Response {
        let mut request = Request::get(format!("/api/revocations/stream{query}"))
            .header("authorization", format!("Bearer {token}"))
            .header("host", ORIGIN);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.respond(request.body(Body::empty()).expect("a request"))
            .await
    }
}

/// The next event of a stream's body: its `id`, `event` and `data` lines.
async fn next_event(body: &mut axum::body::BodyDataStream) -> Option<(String, String, String)> {
    let mut text = String::new();
    loop {
        if let Some(end) = text.find("\n\n") {
            let block = &text[..end];
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            return Some((field("id"), field("event"), field("data")));
        }
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
            .await
            .expect("an event within two seconds")?
            .expect("a readable body");
        text.push_str(std::str::from_utf8(&chunk).expect("text"));
    }
}

#[tokio::test]
async fn only_a_client_with_the_revocations_scope_reads_the_feed() {
    let app = App::start("").await;
    let (access, _) = app.user("alice").await;
    for path in ["/api/revocations", "/api/revocations/stream"] {
        assert_not_authenticated(&app.get(path).await);
        // A user's token is not a client's.
        assert_client_token_refused(&app.get_with_token(path, &access).await);
        assert_client_token_refused(&app.get_with_token(path, "not.a.token").await);
    }
    let introspector = app.feed_token("introspector", "introspect").await;
    for path in ["/api/revocations", "/api/revocations/stream"] {
        let r = app.get_with_token(path, &introspector).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"detail": "The client token does not grant the scope \"revocations\".", "code": "insufficient_scope"})
        );
    }
    // A removed client's token is refused at once.
    let client = app.client("gone", "revocations").await;
    let token = app.client_token(&client).await;
    assert_eq!(
        app.get_with_token("/api/revocations", &token).await.status,
        200
    );
    app.authority
        .clients()
        .remove(
            &client.client.client_id,
            tessera_server::authority::clients::ClientActor::Cli,
        )
        .await
        .expect("removed")
        .then_some(())
        .expect("a client to remove");
    assert_client_token_refused(&app.get_with_token("/api/revocations", &token).await);
    app.assert_healthy().await;
}

#[tokio::test]
async fn the_snapshot_lists_what_can_still_refuse_a_token() {
    let app = App::start("").await;
    let token = app.feed_token("orders", "revocations").await;
    let (access, refresh) = app.user("alice").await;
    let claims = segment(&access, 1);
    let r = app
        .send(
            app.http
                .post(app.url("/api/auth/logout"))
                .bearer_auth(&access)
                .json(&json!({"refresh": refresh})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app.get_with_token("/api/revocations", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cursor = r.body["cursor"].as_str().expect("a cursor").to_owned();
    assert!(cursor.parse::<i64>().is_ok(), "{cursor}");
    // The window: the longer of the access-token lifetime (5 min) and the
    // client-token lifetime (1 h), no leeway.
    assert_eq!(
        r.body,
        json!({
            "cursor": cursor,
            "window": 3600,
            "families": [{"fid": claims["fid"], "user_id": claims["user_id"], "at": NOW}],
            "users": [],
            "tokens": [],
            "clients": [],
        })
    );
}

#[tokio::test]
async fn a_stream_sends_events_after_its_cursor() {
    let app = App::start("").await;
    let token = app.feed_token("orders", "revocations").await;
    let (access, _) = app.user("alice").await;
    let snapshot = app.get_with_token("/api/revocations", &token).await;
    let cursor = snapshot.body["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    // RFC 7009 revocation of the access token after the snapshot: the
    // stream reads it back from the change log (here no sync task runs;
    // what a running sync publishes is the authority's tests' and the
    // server suite's).
    let r = app
        .post_form("/oauth/revoke", &[("token", access.as_str())])
        .await;
    assert_eq!(r.status, 200);

    let response = app
        .open_stream(&token, "", &[("last-event-id", cursor.as_str())])
        .await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(header("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    let mut body = response.into_body().into_data_stream();
    let claims = segment(&access, 1);
    let (id, event, data) = next_event(&mut body).await.expect("an event");
    assert!(id.parse::<i64>().unwrap() > cursor.parse::<i64>().unwrap());
    assert_eq!(event, "token_revoked");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&data).unwrap(),
        json!({"jti": claims["jti"], "exp": claims["exp"]})
    );
    // Nothing more: the stream waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), body.next())
            .await
            .is_err()
    );

    // The same from ?after=, read back from the database.
    let again = app
        .open_stream(&token, &format!("?after={cursor}"), &[])
        .await;
    let mut again = again.into_body().into_data_stream();
    assert_eq!(next_event(&mut again).await.expect("an event").0, id);
}

#[tokio::test]
async fn bad_cursors_and_too_many_streams_are_refused() {
    let app = App::start("feed_streams_per_client = 1").await;
    let token = app.feed_token("orders", "revocations").await;
    let invalid = json!({
        "detail": "The cursor is not one of this feed's: resume with an event's id or a snapshot's cursor.",
        "code": "invalid_cursor",
    });
    for (query, header) in [
        ("?after=abc", None),
        ("?after=-1", None),
        ("?after=", None),
        ("", Some("1e3")),
        ("", Some(" 5")),
        ("?after=99999999999999999999", None),
    ] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("last-event-id", h)).into_iter().collect();
        let response = app.open_stream(&token, query, &headers).await;
        assert_eq!(response.status(), 400, "{query} {header:?}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            invalid
        );
    }
    let response = app.open_stream(&token, "?after=999999", &[]).await;
    assert_eq!(response.status(), 400);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        json!({"detail": "The cursor is ahead of the change log.", "code": "invalid_cursor"})
    );
    let open = app.open_stream(&token, "", &[]).await;
    assert_eq!(open.status(), 200);
    let refused = app.open_stream(&token, "", &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    drop(open);
    assert_eq!(app.open_stream(&token, "", &[]).await.status(), 200);
    app.assert_healthy().await;
}
