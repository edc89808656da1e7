//! Verification throughput of one verifier: raw `verify()` calls, and the
//! resource-server example (`GET /orders`) served in process over loopback
//! and loaded with keep-alive connections. Every loop runs for a fixed time
//! and stops at a count too.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_verify::{Claims, Verifier};

/// No loop runs more iterations than this, whatever the duration.
const MAX_ITERATIONS: u64 = 100_000_000;

/// What one load run counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    /// Answers (or calls) that succeeded.
    pub ok: u64,
    /// Answers that were not 200 (calls that did not verify), and errors.
    pub failed: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Rate {
    /// Adds `other`'s counts and time to these (runs taken in turns).
    pub fn add(&mut self, other: Rate) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
    }

    /// Successes per second.
    pub fn per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Calls `verifier.verify()` from `tasks` tasks for `duration`, cycling
/// through `tokens` (each verified once before, as a service sees its
/// users' tokens again and again).
pub async fn raw_verify(
    verifier: &Verifier,
    tokens: &Arc<Vec<String>>,
    tasks: usize,
    duration: Duration,
) -> Result<Rate, String> {
    for token in tokens.iter() {
        let warm: Result<Claims, _> = verifier.verify(token).await;
        warm.map_err(|e| format!("the verifier refuses a load token: {e}"))?;
    }
    let start = Instant::now();
    let until = start + duration;
    let mut workers = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let (verifier, tokens) = (verifier.clone(), tokens.clone());
        workers.push(tokio::spawn(async move {
            let mut rate = Rate::default();
            let mut i = task;
            while rate.ok + rate.failed < MAX_ITERATIONS {
                // The clock is read once per 64 calls: a call takes about a microsecond.
                if i % 64 == 0 && Instant::now() >= until {
                    break;
                }
                let verified: Result<Claims, _> = verifier.verify(&tokens[i % tokens.len()]).await;
                match verified {
                    Ok(_) => rate.ok += 1,
                    Err(_) => rate.failed += 1,
                }
                i += 1;
                // Let the follower task and the rest of the runtime in.
                if i % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            rate
        }));
    }
    collect(workers, start).await
}

/// Serves `resource_server::app(verifier)` on 127.0.0.1 and loads
/// `GET /orders` from `connections` keep-alive connections, each with one of
/// `tokens`, for `warmup` and then `duration` (what is counted).
pub async fn http_orders(
    verifier: &Verifier,
    tokens: &Arc<Vec<String>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Rate, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let app = resource_server::app(verifier.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{address}/orders");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(connections)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    load(&client, &url, tokens, connections, warmup).await?;
    let rate = load(&client, &url, tokens, connections, duration).await;
    server.abort();
    rate
}

/// One bounded run of the HTTP load.
async fn load(
    client: &reqwest::Client,
    url: &str,
    tokens: &Arc<Vec<String>>,
    connections: usize,
    duration: Duration,
) -> Result<Rate, String> {
    let start = Instant::now();
    let until = start + duration;
    let mut workers = Vec::with_capacity(connections);
    for task in 0..connections {
        let (client, url) = (client.clone(), url.to_owned());
        let token = tokens[task % tokens.len()].clone();
        workers.push(tokio::spawn(async move {
            let mut rate = Rate::default();
            while rate.ok + rate.failed < MAX_ITERATIONS && Instant::now() < until {
                let answer = client.get(&url).bearer_auth(&token).send().await;
                match answer {
                    Ok(answer) if answer.status() == reqwest::StatusCode::OK => {
                        // Read the body so the connection is reused.
                        match answer.bytes().await {
                            Ok(_) => rate.ok += 1,
                            Err(_) => rate.failed += 1,
                        }
                    }
                    _ => rate.failed += 1,
                }
            }
            rate
        }));
    }
    collect(workers, start).await
}

/// Adds up the workers' counts; the run's time is until the last one ended.
async fn collect(
    workers: Vec<tokio::task::JoinHandle<Rate>>,
    start: Instant,
) -> Result<Rate, String> {
    let mut total = Rate::default();
    for worker in workers {
        let rate = worker.await.map_err(|e| format!("load task: {e}"))?;
        total.ok += rate.ok;
        total.failed += rate.failed;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}
