//! CORS (docs/API.md, section 10): exactly the listed origins, with
//! credentials; other origins' preflights refused; none without a list.

use super::app::*;
use serde_json::json;

/// A preflight from `origin` for a POST to the token endpoint asking for
/// `headers`, as Swagger UI's password flow ("Authorize") sends it.
fn preflight(s: &App, origin: Option<&str>, headers: &str) -> reqwest::RequestBuilder {
    let request = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", headers);
    match origin {
        Some(origin) => request.header("Origin", origin),
        None => request,
    }
}

#[tokio::test]
async fn cors_allows_exactly_the_listed_origins_with_credentials() {
    let s = App::start("cors_allowed_origins = [\"http://app.example\"]").await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-csrf-token",
            )
    };
    let r = s.send(preflight("http://app.example")).await;
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-csrf-token") && allowed.contains("content-type"),
        "{allowed}"
    );
    let r = s.send(preflight("http://evil.example")).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example"),
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example.evil"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn no_cors_at_all_when_no_origin_is_listed() {
    let s = App::start("").await;
    let r = s
        .send(
            s.http
                .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
                .header("Origin", "http://app.example")
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_preflight_allows_x_requested_with() {
    let s = App::start("cors_allowed_origins = [\"http://app.example\"]").await;
    let r = s
        .send(preflight(
            &s,
            Some("http://app.example"),
            "x-requested-with, content-type",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization,content-type,x-csrf-token,x-token-transport,x-requested-with")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,HEAD,POST,PATCH,DELETE")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
}

#[tokio::test]
async fn options_from_an_unlisted_origin_is_refused_without_cors_headers() {
    let s = App::start("cors_allowed_origins = [\"http://app.example\"]").await;
    for origin in ["http://evil.example", "http://app.example.evil", "null"] {
        let r = s
            .send(preflight(
                &s,
                Some(origin),
                "x-requested-with, content-type",
            ))
            .await;
        assert_eq!(r.status, 403, "{origin}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"detail": "Cross-origin requests from this origin are not allowed."})
        );
        let cors: Vec<_> = r
            .headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{origin}: {cors:?}");
        assert_eq!(r.header("vary"), Some("origin"));
    }
    // An OPTIONS without an Origin is no CORS request: the routes answer it
    // as they do with CORS off, a 405 naming the methods they allow.
    let r = s.send(preflight(&s, None, "content-type")).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.body, json!({"detail": "Method \"OPTIONS\" not allowed."}));
    let unknown = s
        .send(
            s.http
                .request(reqwest::Method::OPTIONS, s.url("/no/such/path")),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.header("access-control-allow-origin"), None);
    let off = App::start("").await;
    let r_off = off.send(preflight(&off, None, "content-type")).await;
    assert_eq!((r_off.status, r_off.body), (r.status, r.body));
}

const LISTED: &str = "cors_allowed_origins = [\"http://app.example\"]";

#[tokio::test]
async fn a_listed_origin_reads_answers_and_their_retry_and_challenge_headers() {
    let s = App::start(LISTED).await;
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Origin", "http://app.example"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("retry-after,www-authenticate")
    );
    assert_eq!(
        r.header("vary"),
        Some("origin, access-control-request-method, access-control-request-headers")
    );
}

#[tokio::test]
async fn a_preflight_of_a_listed_origin_is_answered_before_the_routes() {
    let s = App::start(LISTED).await;
    // Even for a path no route has: the browser asks before it knows.
    for path in ["/api/token", "/api/auth/me/", "/no/such/path"] {
        let r = s
            .send(
                s.http
                    .request(reqwest::Method::OPTIONS, s.url(path))
                    .header("Origin", "http://app.example")
                    .header("Access-Control-Request-Method", "POST"),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.text, "", "{path}");
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET,HEAD,POST,PATCH,DELETE"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_origin_differing_in_scheme_or_port_is_another_origin() {
    let s = App::start(LISTED).await;
    for origin in [
        "https://app.example",
        "http://app.example:8080",
        "http://APP.example",
        "http://app.example/",
    ] {
        let r = s
            .send(s.http.get(s.url("/healthz")).header("Origin", origin))
            .await;
        assert_eq!(r.status, 200, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
        let r = s.send(preflight(&s, Some(origin), "content-type")).await;
        assert_eq!(r.status, 403, "{origin}");
    }
}

/// The requests-total line of `method`, `route` and `status` in `/metrics`
/// (other tests share the process's metrics: the count itself is theirs too).
fn counted(metrics: &str, method: &str, route: &str, status: u16) -> bool {
    let series = format!(
        "tessera_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} "
    );
    metrics.lines().any(|l| l.starts_with(&series))
}

#[tokio::test]
async fn the_gates_answers_are_counted_unmatched_and_a_rerouted_options_under_its_route() {
    tessera_server::telemetry::install();
    let s = App::start(LISTED).await;
    let jwks = "/.well-known/jwks.json";
    let options = |origin: Option<&str>| {
        let request = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(jwks))
            .header("Access-Control-Request-Method", "GET");
        match origin {
            Some(origin) => request.header("Origin", origin),
            None => request,
        }
    };
    assert_eq!(
        s.send(options(Some("http://app.example"))).await.status,
        200
    );
    assert_eq!(
        s.send(options(Some("http://evil.example"))).await.status,
        403
    );
    assert_eq!(s.send(options(None)).await.status, 405);
    let metrics = s.get("/metrics").await.text;
    // The preflight (answered by the CORS layer) and the refusal (by the
    // gate) are answered in front of the route.
    assert!(counted(&metrics, "OPTIONS", "unmatched", 200), "{metrics}");
    assert!(counted(&metrics, "OPTIONS", "unmatched", 403), "{metrics}");
    assert!(!counted(&metrics, "OPTIONS", jwks, 200), "{metrics}");
    assert!(!counted(&metrics, "OPTIONS", jwks, 403), "{metrics}");
    // Routed twice (without CORS the second time), counted once, under its
    // own pattern.
    let once = format!(
        "tessera_http_requests_total{{method=\"OPTIONS\",route=\"{jwks}\",status=\"405\"}} 1"
    );
    assert!(metrics.lines().any(|l| l == once), "{metrics}");
    assert!(
        !metrics.contains(&format!("route=\"{jwks}{jwks}\"")),
        "{metrics}"
    );
}
