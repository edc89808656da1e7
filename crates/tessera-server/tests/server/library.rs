//! The verification library and the microservice examples, end to end:
//! Tessera, the resource server (checking tokens against Tessera's JWKS) and
//! the frontend (forwarding the caller's token), each on a random port.

use super::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_verify::Verifier;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

struct Services {
    tessera: Server,
    resource: String,
    frontend: String,
    http: reqwest::Client,
    /// The resource server's clock: tests move it instead of waiting.
    clock: Arc<TestClock>,
}

const CONFIG: &str = "algorithm = \"ES256\"\nextra_claims = [\"is_staff\"]";

/// Tessera (`tessera`), with the resource server and the frontend in front of it.
async fn services(tessera: Server, min_interval: Duration) -> Services {
    let clock = Arc::new(TestClock::default());
    let verifier = Verifier::builder()
        .jwks_url(tessera.url("/.well-known/jwks.json"))
        .jwks_min_interval(min_interval)
        .clock(clock.clone())
        .build()
        .unwrap();
    let resource = serve(resource_server::app(verifier)).await;
    let frontend = serve(frontend::app(resource.clone())).await;
    Services {
        tessera,
        resource,
        frontend,
        http: reqwest::Client::new(),
        clock,
    }
}

impl Services {
    async fn get(&self, url: String, token: Option<&str>) -> (u16, Value, Option<String>) {
        let mut req = self.http.get(url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, res.json().await.unwrap_or(Value::Null), challenge)
    }

    /// Asserts both services refuse `token` with this reason, as Tessera would.
    async fn assert_refused_everywhere(&self, token: &str, reason: &str) {
        for url in [
            format!("{}/orders", self.resource),
            format!("{}/dashboard", self.frontend),
        ] {
            let (status, body, challenge) = self.get(url.clone(), Some(token)).await;
            assert_eq!(status, 401, "{url}: {body}");
            assert_eq!(
                body,
                json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": reason}),
                "{url}"
            );
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer realm=\"api\", error=\"invalid_token\"")
            );
        }
    }

    async fn jwks_fetches(&self) -> u64 {
        let text = self.tessera.get("/metrics").await.text;
        text.lines()
            .find_map(|l| {
                l.strip_prefix("tessera_http_requests_total{method=\"GET\",route=\"/.well-known/jwks.json\",status=\"200\"} ")
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn the_frontend_gets_orders_with_a_valid_token_and_every_bad_token_is_refused_at_both() {
    let s = services(Server::start(CONFIG).await, Duration::from_secs(10)).await;
    let (access, refresh) = s.tessera.user("alice").await;
    let (status, body, _) = s
        .get(format!("{}/dashboard", s.frontend), Some(&access))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], 1);
    assert_eq!(body["orders"].as_array().unwrap().len(), 2);
    assert_eq!(body["orders"][0]["owner"], 1);

    // No token at all.
    for url in [
        format!("{}/orders", s.resource),
        format!("{}/dashboard", s.frontend),
    ] {
        let (status, body, challenge) = s.get(url, None).await;
        assert_eq!(status, 401);
        assert_eq!(body["code"], "not_authenticated");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"api\""));
    }
    // Tampered payload.
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims = segment(&access, 1);
    claims["user_id"] = json!(2);
    claims["sub"] = json!("2");
    s.assert_refused_everywhere(
        &format!("{}.{}.{}", parts[0], b64(&claims), parts[2]),
        "invalid",
    )
    .await;
    // alg none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    s.assert_refused_everywhere(&none, "invalid").await;
    // A refresh token where an access token is needed.
    s.assert_refused_everywhere(&refresh, "wrong_type").await;
    // An expired token.
    let (code, out, err) = s
        .tessera
        .cli(
            &["token", "issue", "--username", "alice", "--lifetime", "1s"],
            None,
        )
        .await;
    assert_eq!(code, 0, "{err}");
    s.clock.advance(Duration::from_secs(2));
    s.assert_refused_everywhere(out.trim(), "expired").await;
}

#[tokio::test]
async fn admin_orders_need_a_staff_user() {
    let s = services(Server::start(CONFIG).await, Duration::from_secs(10)).await;
    let (alice, _) = s.tessera.user("alice").await;
    let (root, _) = s.tessera.superuser("root").await;
    let (status, body, _) = s
        .get(format!("{}/admin/orders", s.resource), Some(&alice))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "permission_denied");
    let (status, body, _) = s
        .get(format!("{}/admin/orders", s.resource), Some(&root))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_after_one_refetch_and_forged_kids_cannot_hammer_tessera() {
    let interval = Duration::from_secs(60);
    // A process of its own: the JWKS fetches are counted in its metrics.
    let s = services(Server::start_process(CONFIG).await, interval).await;
    let (old, _) = s.tessera.user("alice").await;
    assert_eq!(
        s.get(format!("{}/orders", s.resource), Some(&old)).await.0,
        200
    );
    assert_eq!(s.jwks_fetches().await, 1);

    // At once: this test is about the library's refetch, not the lead.
    let (code, _, err) = s.tessera.cli(&["keys", "rotate", "--now"], None).await;
    assert_eq!(code, 0, "{err}");
    // Once Tessera has picked the rotation up and the verifier's rate limit
    // lets a fetch through again.
    s.tessera.caught_up().await;
    s.clock.advance(interval);
    let (new, _) = s.tessera.login("alice").await;
    assert_ne!(segment(&new, 0)["kid"], segment(&old, 0)["kid"]);
    let (status, body, _) = s.get(format!("{}/orders", s.resource), Some(&new)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.jwks_fetches().await,
        2,
        "exactly one refetch for the new kid"
    );
    assert_eq!(
        s.get(format!("{}/orders", s.resource), Some(&old)).await.0,
        200,
        "the old key still verifies"
    );

    // A burst of 1,000 tokens naming random kids, once the rate limit would
    // allow a fetch again: one fetch, not a thousand.
    s.clock.advance(interval);
    let before = s.jwks_fetches().await;
    let started = Instant::now();
    let parts: Vec<String> = new.split('.').map(str::to_owned).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(50));
    for i in 0..1000 {
        let header = b64(
            &json!({"alg": "ES256", "typ": "JWT", "kid": format!("forged-{i}-{}", started.elapsed().as_nanos())}),
        );
        let token = format!("{header}.{}.{}", parts[1], parts[2]);
        let (http, url, gate) = (
            s.http.clone(),
            format!("{}/orders", s.resource),
            gate.clone(),
        );
        tasks.spawn(async move {
            let _slot = gate.acquire().await.unwrap();
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    let elapsed = started.elapsed();
    let fetched = s.jwks_fetches().await - before;
    eprintln!("1000 forged kids in {elapsed:?}: {fetched} JWKS fetches");
    assert!(elapsed < interval, "the burst outlasted the interval");
    assert_eq!(
        fetched, 1,
        "an unknown kid makes the verifier look once, not once per token"
    );
}
