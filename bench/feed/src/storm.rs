//! A storm of revocations: access tokens revoked at Tessera at a fixed
//! rate (RFC 7009), paced by a schedule (the i-th at start + i / rate), with
//! a bounded number in flight, until stopped or out of tokens.

use crate::tessera::Tessera;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Requests in flight at most: at 1,000/s each may take up to this many
/// milliseconds before the schedule slips.
const IN_FLIGHT: usize = 64;

/// A running storm.
pub struct Storm {
    counts: Arc<Counts>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    stop: AtomicBool,
    next: AtomicUsize,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What a storm did.
#[derive(Debug, Clone, Copy)]
pub struct StormCounts {
    /// Revocations answered 200.
    pub ok: u64,
    /// Revocations that failed.
    pub failed: u64,
}

impl Storm {
    /// Starts revoking `tokens` at `rate` per second, from a thread and
    /// runtime of its own so that the measurements beside it (which keep
    /// the driver's runtime busy) do not delay its schedule.
    pub fn start(origin: &str, tokens: Vec<String>, rate: u32) -> Result<Storm, String> {
        let tessera = Tessera::new(origin, IN_FLIGHT)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the storm's runtime: {e}"))?;
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let thread =
            std::thread::spawn(move || runtime.block_on(storm(tessera, tokens, rate, shared)));
        Ok(Storm { counts, thread })
    }

    /// The counts so far.
    pub fn counts(&self) -> StormCounts {
        StormCounts {
            ok: self.counts.ok.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }

    /// Whether tokens remain to revoke (a storm out of tokens has ended).
    pub fn has_tokens_left(&self, total: usize) -> bool {
        self.counts.next.load(Ordering::Relaxed) < total
    }

    /// Stops the storm, letting the requests in flight finish (each is
    /// bounded by the client's timeout).
    pub fn stop(self) -> StormCounts {
        let Storm { counts, thread } = self;
        counts.stop.store(true, Ordering::Relaxed);
        if thread.join().is_err() {
            eprintln!("the storm's thread panicked");
        }
        StormCounts {
            ok: counts.ok.load(Ordering::Relaxed),
            failed: counts.failed.load(Ordering::Relaxed),
        }
    }
}

/// The storm's workers: the i-th token is revoked at start + i / rate.
async fn storm(tessera: Tessera, tokens: Vec<String>, rate: u32, counts: Arc<Counts>) {
    let tokens = Arc::new(tokens);
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs(1) / rate.max(1);
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (tessera, tokens, counts) = (tessera.clone(), tokens.clone(), counts.clone());
            tokio::spawn(async move {
                while !counts.stop.load(Ordering::Relaxed) {
                    let i = counts.next.fetch_add(1, Ordering::Relaxed);
                    let Some(token) = tokens.get(i) else { break };
                    let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
                    // Sleeps in steps, so a stop is seen within 100 ms.
                    while tokio::time::Instant::now() < due && !counts.stop.load(Ordering::Relaxed)
                    {
                        tokio::time::sleep_until(
                            due.min(tokio::time::Instant::now() + Duration::from_millis(100)),
                        )
                        .await;
                    }
                    if counts.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match tessera.revoke(token).await {
                        Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

/// A storm's rate over a window: revocations answered between two counts.
pub fn rate_between(before: StormCounts, after: StormCounts, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        (after.ok - before.ok) as f64 / seconds
    } else {
        0.0
    }
}

/// When a storm's schedule needs its tokens: enough for `seconds` at `rate`.
pub fn tokens_needed(rate: u32, seconds: f64) -> usize {
    (f64::from(rate) * seconds).ceil() as usize
}
