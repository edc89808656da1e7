//! `feed_bench`, the driver of `bench/feed.sh`: measures Tessera's revocation
//! feed against a running Tessera on 127.0.0.1 and prints a table.
//!
//! Usage: `feed_bench ORIGIN [REVOCATIONS] [FOLLOWERS] [SECONDS] [STORM_RATE]`
//! with `FEED_USERNAME`, `FEED_PASSWORD` (a user of that Tessera, which runs
//! with `rotate_refresh_tokens = false` and `user_rate_limit = "off"`),
//! `TESSERA_CLIENT_ID` and `TESSERA_CLIENT_SECRET` (a client with the
//! `revocations` scope) in the environment: secrets never on the command line.
//!
//! 1. latency: FOLLOWERS (20) verifiers each follow the feed; REVOCATIONS
//!    (500) access tokens are revoked one at a time (`POST /oauth/revoke`),
//!    and for each the time from sending the revocation to each follower's
//!    first `Revoked` is taken: p50, p99, max over REVOCATIONS x FOLLOWERS;
//! 2. throughput, feed off and on in turns (5 rounds each, counts added up,
//!    as the machine's speed drifts): `verify()` calls/s for 1 s, and
//!    `GET /orders` req/s of the resource-server example served in process
//!    for SECONDS (2) after a 0.5 s warm-up;
//! 3. the same beside a storm of STORM_RATE (1,000) revocations a second,
//!    after 2 s of the storm alone; feed on is compared with feed off
//!    beside the same storm (and, for information, with the quiet run).
//!
//! Exits 0 once it has measured (targets are reported, not enforced), 1 when
//! it cannot (Tessera unreachable, login refused, a follower never current).

mod latency;
mod report;
mod storm;
mod tessera;
mod throughput;

use report::{Table, ms, per_second, percentile, ratio};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storm::{Storm, rate_between, tokens_needed};
use tessera::Tessera;
use tessera_verify::Verifier;
use throughput::{Rate, http_orders, raw_verify};

/// Feed off and feed on are measured in turns, this many times each, and
/// each one's counts added up: the machine's speed drifts (2 shared cores).
const ROUNDS: u32 = 5;
/// Raw `verify()` runs this long (a call takes about a microsecond).
const RAW_SECONDS: Duration = Duration::from_secs(1);
/// HTTP load warms up this long before it counts.
const WARMUP: Duration = Duration::from_millis(500);
/// Keep-alive connections of the HTTP load.
const CONNECTIONS: usize = 32;
/// Distinct valid tokens the throughput runs present.
const LOAD_TOKENS: usize = 64;
/// The storm runs alone this long before the measurements beside it
/// start: its rate then is Tessera's, the driver idle.
const STORM_ALONE: Duration = Duration::from_secs(2);
/// How long a follower may take to refuse one revoked token.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(5);
/// How long the followers may take to load the snapshot and connect.
const CURRENT_WITHIN: Duration = Duration::from_secs(30);

/// The command line and environment.
struct Options {
    origin: String,
    revocations: usize,
    followers: usize,
    seconds: Duration,
    storm_rate: u32,
    username: String,
    password: String,
    client_id: String,
    secret: String,
}

fn options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: feed_bench ORIGIN [REVOCATIONS] [FOLLOWERS] [SECONDS] [STORM_RATE]";
    let origin = args.first().ok_or(usage)?.clone();
    let number = |i: usize, default: u64| -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{usage}: `{text}` is not a positive number")),
        }
    };
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    Ok(Options {
        origin,
        revocations: usize::try_from(number(1, 500)?).map_err(|e| e.to_string())?,
        followers: usize::try_from(number(2, 20)?).map_err(|e| e.to_string())?,
        seconds: Duration::from_secs(number(3, 2)?),
        storm_rate: u32::try_from(number(4, 1000)?).map_err(|e| e.to_string())?,
        username: env("FEED_USERNAME")?,
        password: env("FEED_PASSWORD")?,
        client_id: env("TESSERA_CLIENT_ID")?,
        secret: env("TESSERA_CLIENT_SECRET")?,
    })
}

/// Progress, on stderr, with the time since the start.
fn say(start: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", start.elapsed().as_secs_f64());
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(table) => {
            print!("{}", table.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("feed_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Throughput of one verifier, raw calls and HTTP, added to `into`.
async fn both(
    verifier: &Verifier,
    tokens: &Arc<Vec<String>>,
    seconds: Duration,
    into: &mut (Rate, Rate),
) -> Result<(), String> {
    let tasks = std::thread::available_parallelism().map_or(2, |n| n.get());
    into.0
        .add(raw_verify(verifier, tokens, tasks, RAW_SECONDS).await?);
    into.1
        .add(http_orders(verifier, tokens, CONNECTIONS, WARMUP, seconds).await?);
    Ok(())
}

async fn run() -> Result<Table, String> {
    let o = options()?;
    let start = Instant::now();
    let tessera = Tessera::new(&o.origin, 128)?;
    let refresh = tessera.login(&o.username, &o.password).await?;

    // Every token is minted before anything is measured.
    let per_verifier = RAW_SECONDS + WARMUP + o.seconds;
    let storm_seconds = (STORM_ALONE + per_verifier * 2 * ROUNDS).as_secs_f64() + 3.0;
    let storm_count = tokens_needed(o.storm_rate, storm_seconds);
    let total = LOAD_TOKENS + o.revocations + storm_count;
    say(start, &format!("minting {total} access tokens"));
    let mut tokens = tessera
        .mint(&refresh, total, 8, Duration::from_secs(300))
        .await?;
    let storm_tokens = tokens.split_off(LOAD_TOKENS + o.revocations);
    let revoked = tokens.split_off(LOAD_TOKENS);
    let load_tokens = Arc::new(tokens);

    let mut table = Table::default();
    say(start, &format!("starting {} followers", o.followers));
    let followers = latency::start_followers(
        &tessera,
        &o.client_id,
        &o.secret,
        o.followers,
        CURRENT_WITHIN,
    )
    .await?;
    say(
        start,
        &format!("revoking {} tokens one at a time", revoked.len()),
    );
    let mut lat = latency::measure(&tessera, followers, &revoked, REFUSAL_DEADLINE).await?;
    let samples = lat.samples.len();
    let p99 = percentile(&mut lat.samples, 0.99);
    table.info(
        &format!(
            "revocation->refusal samples ({} revocations x {} followers)",
            o.revocations, o.followers
        ),
        samples.to_string(),
    );
    table.info(
        "revocation->refusal p50",
        ms(percentile(&mut lat.samples, 0.50)),
    );
    table.target(
        "revocation->refusal p99",
        ms(p99),
        "< 100 ms",
        p99 < Duration::from_millis(100) && lat.timeouts == 0,
    );
    table.info(
        "revocation->refusal max",
        ms(percentile(&mut lat.samples, 1.0)),
    );
    table.info(
        &format!("followers that missed the {REFUSAL_DEADLINE:?} deadline"),
        lat.timeouts.to_string(),
    );
    table.info(
        "POST /oauth/revoke round trip p50",
        ms(percentile(&mut lat.revoke_round_trips, 0.50)),
    );

    say(
        start,
        &format!("throughput, feed off and on in turns, {ROUNDS} rounds"),
    );
    let off = Verifier::builder()
        .jwks_url(tessera.jwks_url())
        .build()
        .map_err(|e| format!("cannot build the verifier: {e}"))?;
    let on = latency::following_verifier(&tessera, &o.client_id, &o.secret)?;
    latency::wait_current(&on, CURRENT_WITHIN).await?;
    let (mut quiet_off, mut quiet_on) = (
        (Rate::default(), Rate::default()),
        (Rate::default(), Rate::default()),
    );
    for _ in 0..ROUNDS {
        both(&off, &load_tokens, o.seconds, &mut quiet_off).await?;
        both(&on, &load_tokens, o.seconds, &mut quiet_on).await?;
    }
    let ((raw_off, http_off), (raw_on, http_on)) = (quiet_off, quiet_on);

    say(
        start,
        &format!(
            "storm of {} revocations/s; feed on and off in turns",
            o.storm_rate
        ),
    );
    let storm_total = storm_tokens.len();
    let markers_before = on.feed_status().map_or(0, |s| s.markers);
    let storm = Storm::start(tessera.origin(), storm_tokens, o.storm_rate)?;
    // The first half second is the storm's ramp; the rest is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alone_from = (Instant::now(), storm.counts());
    tokio::time::sleep(STORM_ALONE - Duration::from_millis(500)).await;
    let (window, before) = (Instant::now(), storm.counts());
    let alone_rate = rate_between(alone_from.1, before, window - alone_from.0);
    let (mut storm_on, mut storm_off) = (
        (Rate::default(), Rate::default()),
        (Rate::default(), Rate::default()),
    );
    for _ in 0..ROUNDS {
        both(&on, &load_tokens, o.seconds, &mut storm_on).await?;
        both(&off, &load_tokens, o.seconds, &mut storm_off).await?;
    }
    let ((raw_storm_on, http_storm_on), (raw_storm_off, http_storm_off)) = (storm_on, storm_off);
    let (after, elapsed) = (storm.counts(), window.elapsed());
    let ran_out = !storm.has_tokens_left(storm_total);
    let storm_end = storm.stop();
    let on_status = on.feed_status();
    let markers_after = on_status.as_ref().map_or(0, |s| s.markers);
    say(start, "done");

    let storm_rate = rate_between(before, after, elapsed);
    let rows = [
        (
            "verify() calls, feed off",
            raw_off,
            raw_on,
            raw_storm_on,
            raw_storm_off,
        ),
        (
            "GET /orders, feed off",
            http_off,
            http_on,
            http_storm_on,
            http_storm_off,
        ),
    ];
    // The targets are the service's (`GET /orders`, what a client of the
    // service sees); the library call alone is shown beside them. Beside
    // the storm, feed on is compared with feed off beside the same storm:
    // on 2 shared cores the storm's own CPU (Tessera answering it, the
    // database writing it) slows both alike, which is not the feed's cost.
    for (what, off_rate, on_rate, storm_on, storm_off) in rows {
        let targeted = what.starts_with("GET");
        let off_s = off_rate.per_second();
        let (on_s, storm_on_s) = (on_rate.per_second(), storm_on.per_second());
        let storm_off_s = storm_off.per_second();
        let name = what.trim_end_matches(", feed off");
        table.info(what, per_second(off_s));
        table.info(&format!("{name}, feed on"), per_second(on_s));
        let on_ratio = ratio(on_s, off_s);
        let on_row = format!("{name}, on / off");
        if targeted {
            table.target(
                &on_row,
                format!("{on_ratio:.3}"),
                ">= 0.95",
                on_ratio >= 0.95,
            );
        } else {
            table.info(&on_row, format!("{on_ratio:.3}"));
        }
        table.info(&format!("{name}, feed off, storm"), per_second(storm_off_s));
        table.info(&format!("{name}, feed on, storm"), per_second(storm_on_s));
        let storm_ratio = ratio(storm_on_s, storm_off_s);
        let storm_row = format!("{name}, on + storm / off + storm");
        if targeted {
            table.target(
                &storm_row,
                format!("{storm_ratio:.3}"),
                ">= 0.8",
                storm_ratio >= 0.8,
            );
        } else {
            table.info(&storm_row, format!("{storm_ratio:.3}"));
        }
        table.info(
            &format!("{name}, on + storm / off (quiet)"),
            format!("{:.3}", ratio(storm_on_s, off_s)),
        );
        let failed = off_rate.failed + on_rate.failed + storm_on.failed + storm_off.failed;
        table.info(&format!("{name}, failed (all runs)"), failed.to_string());
    }
    table.info(
        &format!(
            "storm: revocations answered during the measurements (offered {}/s)",
            o.storm_rate
        ),
        per_second(storm_rate),
    );
    if ran_out {
        table.info("storm: ran out of tokens before the end", "yes".to_owned());
    }
    table.info(
        "storm: revocations answered with the driver idle",
        per_second(alone_rate),
    );
    table.info("storm: revocations failed", storm_end.failed.to_string());
    table.info(
        "storm: markers the feed-on follower gained",
        markers_after.saturating_sub(markers_before).to_string(),
    );
    table.info(
        "storm: feed-on follower current at the end",
        on_status.map_or("no feed".to_owned(), |s| s.current.to_string()),
    );
    Ok(table)
}
