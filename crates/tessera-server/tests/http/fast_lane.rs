//! The hot routes the edge answers itself (`GET /healthz`, `/api/auth/me`,
//! `/api/auth/check`) answer exactly as the router does: every case of a
//! token found, missing, malformed, forged, refused or expired, in a header,
//! a cookie, a query or a JSON body, sent to the application and to the same
//! application with every request routed (`http::routed_app`), gives the
//! same status, headers and body.

use super::app::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use serde_json::json;
use tessera_server::authority::Transport;
use tessera_server::http::listener::PeerAddr;
use tower::ServiceExt;

/// What a client sees of an answer: status, headers (in order), body.
type Seen = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// What `app` answers to `request`.
async fn seen(app: tessera_server::http::App, mut request: Request<Body>) -> Seen {
    request
        .extensions_mut()
        .insert(ConnectInfo(PeerAddr("127.0.0.1:50000".parse().unwrap())));
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// A request built by `build`, sent to both applications of `s`: the two
/// answers must be the same; the status is returned.
async fn same_answer(s: &App, build: impl Fn() -> Request<Body>) -> u16 {
    let fast = seen(tessera_server::http::app(s.authority.clone()), build()).await;
    let routed = seen(
        tessera_server::http::routed_app(s.authority.clone()),
        build(),
    )
    .await;
    let request = build();
    assert_eq!(
        fast,
        routed,
        "{} {}: the edge's answer differs from the router's",
        request.method(),
        request.uri()
    );
    fast.0
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

const HOT: [&str; 3] = ["/healthz", "/api/auth/me", "/api/auth/check"];

/// A request's headers, and the statuses `/api/auth/me` and
/// `/api/auth/check` answer it with.
type Case<'a> = (Vec<(&'a str, &'a str)>, [u16; 2]);

#[tokio::test]
async fn the_hot_routes_answer_as_the_router_does() {
    let s = App::start("").await;
    let (access, refresh) = s.user("alice").await;
    let bearer = format!("Bearer {access}");
    let jwt = format!("JWT {access}");
    let forged = format!("Bearer {}x", &access[..access.len() - 1]);
    let refresh = format!("Bearer {refresh}");
    let (cookie_access, _) = s.session("alice", Transport::Cookie).await;
    let cookie = format!("access_token_cookie={cookie_access}");
    let cases: Vec<Case> = vec![
        (vec![], [401, 401]),
        (vec![("authorization", &bearer)], [200, 204]),
        // Not a scheme by default.
        (vec![("authorization", &jwt)], [401, 401]),
        (vec![("authorization", "Bearer garbage")], [401, 401]),
        (vec![("authorization", "Bearer a b")], [401, 401]),
        (vec![("authorization", &forged)], [401, 401]),
        (vec![("authorization", &refresh)], [401, 401]),
        (vec![("authorization", "Basic YTpi")], [401, 401]),
        (
            vec![("authorization", &bearer), ("authorization", &bearer)],
            [400, 400],
        ),
        // Not a location by default: as if no credentials came.
        (vec![("cookie", &cookie)], [401, 401]),
        (
            vec![("authorization", &bearer), ("x-original-method", "POST")],
            [200, 204],
        ),
    ];
    for (headers, [me, check]) in &cases {
        for path in HOT {
            let status = same_answer(&s, || get(path, headers)).await;
            let expected = match path {
                "/healthz" => 200,
                "/api/auth/me" => *me,
                _ => *check,
            };
            assert_eq!(status, expected, "GET {path} with {headers:?}");
            let slashed = format!("{path}/");
            same_answer(&s, || get(&slashed, headers)).await;
        }
    }
    // The query string and a JSON body are not locations by default.
    let query = format!("/api/auth/me?access_token={access}");
    assert_eq!(same_answer(&s, || get(&query, &[])).await, 401);
    // Other methods and HEAD go through the router on both.
    for method in ["HEAD", "POST", "DELETE"] {
        for path in HOT {
            same_answer(&s, || {
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", &bearer)
                    .body(Body::empty())
                    .unwrap()
            })
            .await;
        }
    }
    // A refused token: revoked by a logout, then expired.
    let r = s
        .send(s.http.post(s.url("/api/auth/logout")).bearer_auth(&access))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        same_answer(&s, || get("/api/auth/me", &[("authorization", &bearer)])).await,
        401
    );
    let (fresh, _) = s.login("alice").await;
    let fresh = format!("Bearer {fresh}");
    s.advance(std::time::Duration::from_secs(24 * 3600));
    for path in HOT {
        same_answer(&s, || get(path, &[("authorization", &fresh)])).await;
    }
    s.assert_healthy().await;
}

#[tokio::test]
async fn with_cookies_the_query_and_json_as_locations_the_answers_are_the_same() {
    let s = App::start(r#"token_locations = ["headers", "cookies", "query_string", "json"]"#).await;
    let (access, _) = s.user("bob").await;
    s.create_user("alice", false).await;
    let (cookie_access, _) = s.session("alice", Transport::Cookie).await;
    let cookie = format!("access_token_cookie={cookie_access}");
    for path in HOT {
        // A cookie on a safe method needs no CSRF header; a proxy asking
        // on behalf of a POST makes it needed.
        same_answer(&s, || get(path, &[("cookie", &cookie)])).await;
        same_answer(&s, || {
            get(path, &[("cookie", &cookie), ("x-original-method", "POST")])
        })
        .await;
        let query = format!("{path}?access_token={access}");
        same_answer(&s, || get(&query, &[])).await;
        same_answer(&s, || {
            Request::get(path)
                .header("content-type", "application/json")
                .body(Body::from(json!({"access_token": access}).to_string()))
                .unwrap()
        })
        .await;
    }
    assert_eq!(
        same_answer(&s, || get("/api/auth/me", &[("cookie", &cookie)])).await,
        200
    );
    assert_eq!(
        same_answer(&s, || get(
            "/api/auth/check",
            &[("cookie", &cookie), ("x-original-method", "POST")]
        ))
        .await,
        401
    );
}

#[tokio::test]
async fn with_cors_on_the_hot_routes_carry_its_headers() {
    let s = App::start(r#"cors_allowed_origins = ["https://app.example"]"#).await;
    let (access, _) = s.user("alice").await;
    let bearer = format!("Bearer {access}");
    for path in HOT {
        same_answer(&s, || {
            get(
                path,
                &[
                    ("authorization", &bearer),
                    ("origin", "https://app.example"),
                ],
            )
        })
        .await;
    }
    let r = s
        .call(get(
            "/api/auth/me",
            &[
                ("authorization", &bearer),
                ("origin", "https://app.example"),
            ],
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
}
