//! Revocation-to-refusal latency: followers (each a `Verifier` with its own
//! feed stream), a token revoked at Tessera, and the moment each follower
//! first refuses it.
//!
//! One revocation at a time: a poller thread checks that every follower
//! accepts the token, the driver notes t0 and sends `POST /oauth/revoke`,
//! and the poller verifies the token on every follower that has not refused
//! it yet, every `POLL_EVERY`, noting when each first answers `Revoked`. The
//! poller is an OS thread, not a tokio task, because tokio's timer rounds
//! sleeps up to whole milliseconds; the verifiers' JWKS are fetched before
//! (a verification then completes without waiting on anything).

use crate::tessera::Tessera;
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tessera_verify::{Claims, Refusal, Verifier, VerifyError};
use tokio::sync::oneshot;

/// How often a follower that has not refused the token yet is asked again.
const POLL_EVERY: Duration = Duration::from_micros(500);

/// What the latency phase measured.
pub struct Latencies {
    /// Revocation-to-refusal, one sample per revocation and follower that
    /// refused within the deadline.
    pub samples: Vec<Duration>,
    /// Revocations a follower had not refused by the deadline.
    pub timeouts: usize,
    /// How long each `POST /oauth/revoke` took to answer.
    pub revoke_round_trips: Vec<Duration>,
}

/// Starts `count` followers of the feed and waits until every one is
/// current (snapshot loaded, stream open), at most `within`.
pub async fn start_followers(
    tessera: &Tessera,
    client_id: &str,
    secret: &str,
    count: usize,
    within: Duration,
) -> Result<Vec<Verifier>, String> {
    let mut followers = Vec::with_capacity(count);
    for _ in 0..count {
        followers.push(following_verifier(tessera, client_id, secret)?);
    }
    for follower in &followers {
        wait_current(follower, within).await?;
    }
    Ok(followers)
}

/// A verifier following Tessera's feed with its own stream.
pub fn following_verifier(
    tessera: &Tessera,
    client_id: &str,
    secret: &str,
) -> Result<Verifier, String> {
    Verifier::builder()
        .jwks_url(tessera.jwks_url())
        .revocations(tessera.origin(), client_id, secret)
        .build()
        .map_err(|e| format!("cannot build a following verifier: {e}"))
}

/// Waits until `verifier`'s follower is connected and current, at most `within`.
pub async fn wait_current(verifier: &Verifier, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    loop {
        let status = verifier.feed_status();
        if status.as_ref().is_some_and(|s| s.connected && s.current) {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!(
                "a follower was not current within {within:?}: {status:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One revocation for the poller: check the token is accepted everywhere,
/// say so on `ready`, then poll until each follower refuses it (or
/// `deadline` after `ready`) and send when each first did on `done`.
struct Job {
    token: String,
    deadline: Duration,
    ready: oneshot::Sender<Result<(), String>>,
    done: oneshot::Sender<Vec<Option<Instant>>>,
}

/// Revokes each of `tokens` in turn and measures how long each of
/// `followers` takes to refuse it; a follower gets `deadline` per token.
pub async fn measure(
    tessera: &Tessera,
    followers: Vec<Verifier>,
    tokens: &[String],
    deadline: Duration,
) -> Result<Latencies, String> {
    // Fetch each follower's keys now, from the runtime: the poller must not
    // be the one to fetch them.
    if let Some(token) = tokens.first() {
        for follower in &followers {
            let verified: Result<Claims, _> = follower.verify(token).await;
            verified.map_err(|e| format!("a follower refuses a fresh token: {e}"))?;
        }
    }
    let per_token = followers.len();
    let (jobs, queue) = mpsc::channel::<Job>();
    let runtime = tokio::runtime::Handle::current();
    let poller = std::thread::spawn(move || {
        // Inside the runtime's context should a verification need it.
        let _context = runtime.enter();
        for job in queue {
            poll_job(&followers, job);
        }
    });
    let mut result = Latencies {
        samples: Vec::with_capacity(tokens.len() * per_token),
        timeouts: 0,
        revoke_round_trips: Vec::with_capacity(tokens.len()),
    };
    for token in tokens {
        let (ready, is_ready) = oneshot::channel();
        let (done, is_done) = oneshot::channel();
        let job = Job {
            token: token.clone(),
            deadline,
            ready,
            done,
        };
        jobs.send(job)
            .map_err(|_| "the poller stopped".to_owned())?;
        is_ready
            .await
            .map_err(|_| "the poller stopped".to_owned())??;
        let t0 = Instant::now();
        tessera.revoke(token).await?;
        result.revoke_round_trips.push(t0.elapsed());
        let refused = is_done.await.map_err(|_| "the poller stopped".to_owned())?;
        for at in refused {
            match at {
                Some(at) => result.samples.push(at.saturating_duration_since(t0)),
                None => result.timeouts += 1,
            }
        }
    }
    drop(jobs);
    poller
        .join()
        .map_err(|_| "the poller panicked".to_owned())?;
    Ok(result)
}

/// Runs one job on the poller thread.
fn poll_job(followers: &[Verifier], job: Job) {
    for follower in followers {
        match verify_now(follower, &job.token) {
            Some(Ok(_)) => {}
            other => {
                let why = format!("a follower does not accept a fresh token: {other:?}");
                let _ = job.ready.send(Err(why));
                return;
            }
        }
    }
    let until = Instant::now() + job.deadline;
    if job.ready.send(Ok(())).is_err() {
        return;
    }
    let mut refused: Vec<Option<Instant>> = vec![None; followers.len()];
    while refused.iter().any(Option::is_none) && Instant::now() < until {
        for (follower, at) in followers.iter().zip(refused.iter_mut()) {
            if at.is_none()
                && let Some(Err(VerifyError::Refused(Refusal::Revoked))) =
                    verify_now(follower, &job.token)
            {
                *at = Some(Instant::now());
            }
        }
        std::thread::sleep(POLL_EVERY);
    }
    let _ = job.done.send(refused);
}

/// Verifies `token` if that completes without waiting (it does once the
/// verifier holds the keys); `None` if it would wait.
fn verify_now(verifier: &Verifier, token: &str) -> Option<Result<Claims, VerifyError>> {
    let mut future = pin!(verifier.verify(token));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}
