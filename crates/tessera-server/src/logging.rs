//! Logging to stderr without slowing requests: every line goes through a
//! bounded queue to a thread of its own, which writes what has gathered in
//! one write. The request log, one line per answered request, is not even
//! formatted on the request's thread: the request hands over a few numbers
//! ([`RequestLine`]) and the log thread writes them in the configured
//! format. When the queue is full, lines are dropped and counted
//! ([`dropped`]), never waited for.
//!
//! The queue is a linked one (memory taken as lines arrive and given back as
//! they are written) with a count of the lines in it as its bound, rather
//! than a fixed array: an array of 64 Ki slots for a `RequestLine` each
//! would hold 11.5 MB from the start, a third of an idle server.

use crate::config::LogFormat;
use axum::http::{Method, Uri};
use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Lines the queue holds while stderr is slow; past it, new lines are dropped.
const QUEUE_LINES: usize = 64 * 1024;

/// How long the log thread lets lines gather after a write. While it waits,
/// no request wakes it: under load each write carries many lines, and the
/// cost of a line is its share of one write.
const GATHER: Duration = Duration::from_millis(5);

/// Bytes gathered before they are written even if more are queued.
const WRITE_CHUNK: usize = 256 * 1024;

/// The target the request log is filtered by (`TESSERA_LOG`), as it was
/// when tower-http's trace layer wrote it.
pub const REQUEST_TARGET: &str = "tessera_server::http";

/// One answered request, as the request log shows it.
#[derive(Debug)]
pub struct RequestLine {
    /// When the answer was ready.
    pub at: SystemTime,
    /// The request's method.
    pub method: Method,
    /// The request's path.
    pub path: RequestPath,
    /// The answer's status.
    pub status: u16,
    /// From the request's arrival to its answer.
    pub latency: Duration,
    /// The user the request authenticated, if any.
    pub user_id: Option<i64>,
}

/// The path of a request line: never its query, which may carry a token.
#[derive(Debug)]
pub struct RequestPath(Cow<'static, str>);

impl RequestPath {
    /// A route's own fixed path (the hot routes the edge answers itself):
    /// nothing to copy.
    pub fn fixed(path: &'static str) -> Self {
        Self(Cow::Borrowed(path))
    }

    /// The path of `uri`, copied. Not the URI itself: its bytes share hyper's
    /// read buffer, which a line waiting in the queue would keep hyper from
    /// reusing for the connection's next request.
    pub fn of(uri: &Uri) -> Self {
        Self(Cow::Owned(uri.path().to_owned()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

enum Entry {
    /// A line formatted by the event's own thread (every event but the
    /// request log), newline included.
    Formatted(Vec<u8>),
    Request(RequestLine),
    /// Write what is queued, then stop.
    Stop,
}

struct Sink {
    queue: Sender<Entry>,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines sent and not yet taken by the log thread: the queue's bound.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Lines dropped so far because the queue was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Whether request lines are written, as [`filter_installed`] decided.
static REQUEST_LOG: AtomicBool = AtomicBool::new(false);

/// Whether a request line would be written: the log thread runs and
/// `TESSERA_LOG` lets info events of [`REQUEST_TARGET`] through. Decided
/// once, when the filter is installed (it never changes after), rather than
/// asked of `tracing` on every request (about 150 instructions of each).
pub fn request_log_enabled() -> bool {
    REQUEST_LOG.load(Ordering::Relaxed)
}

/// Called once the `tracing` subscriber and its filter are in place:
/// decides [`request_log_enabled`].
pub fn filter_installed() {
    let enabled =
        SINK.get().is_some() && tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO);
    REQUEST_LOG.store(enabled, Ordering::Relaxed);
}

/// Queues one request line (see [`request_log_enabled`]).
pub fn request(line: RequestLine) {
    send(Entry::Request(line));
}

fn send(entry: Entry) {
    let Some(sink) = SINK.get() else { return };
    if QUEUED.fetch_add(1, Ordering::Relaxed) >= QUEUE_LINES {
        QUEUED.fetch_sub(1, Ordering::Relaxed);
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // An error means the log thread has stopped: the process is ending.
    let _ = sink.queue.send(entry);
}

/// Writes what is still queued and stops the log thread when dropped.
pub struct LogGuard {
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(sink) = SINK.get() {
            // Never refused for the bound: the lines before it must be written.
            let _ = sink.queue.send(Entry::Stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the log thread writing to stderr in `format`, and returns the
/// writer for the `tracing` subscriber's own lines. `None` when it already
/// runs (only one per process).
pub fn start(format: LogFormat) -> Option<(QueueWriter, LogGuard)> {
    let (queue, lines) = channel();
    if SINK.set(Sink { queue }).is_err() {
        return None;
    }
    let thread = std::thread::Builder::new()
        .name("tessera-log".into())
        .spawn(move || write_lines(lines, &QUEUED, format, &mut std::io::stderr()))
        .ok()?;
    Some((
        QueueWriter,
        LogGuard {
            thread: Some(thread),
        },
    ))
}

/// The log thread: waits for a line, sleeps a moment so that more gather
/// (while it sleeps rather than waits on the queue, a request that queues a
/// line wakes nobody), writes them all, until told to stop. Each line taken
/// is counted off `queued` (the lines sent, [`Entry::Stop`] aside).
fn write_lines(
    lines: Receiver<Entry>,
    queued: &AtomicUsize,
    format: LogFormat,
    out: &mut impl Write,
) {
    let mut buffer = Vec::with_capacity(WRITE_CHUNK);
    let mut stamps = Stamps::default();
    let mut take = |entry: Entry, buffer: &mut Vec<u8>| {
        if !matches!(entry, Entry::Stop) {
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        append(entry, format, buffer, &mut stamps)
    };
    while let Ok(first) = lines.recv() {
        let mut running = take(first, &mut buffer);
        if running {
            std::thread::sleep(GATHER);
        }
        while running {
            match lines.try_recv() {
                Ok(entry) => running = take(entry, &mut buffer),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => running = false,
            }
            if buffer.len() >= WRITE_CHUNK {
                let _ = out.write_all(&buffer);
                buffer.clear();
            }
        }
        let _ = out.write_all(&buffer);
        let _ = out.flush();
        buffer.clear();
        if !running {
            return;
        }
    }
}

/// Appends `entry`'s line to `buffer`; false for [`Entry::Stop`].
fn append(entry: Entry, format: LogFormat, buffer: &mut Vec<u8>, stamps: &mut Stamps) -> bool {
    match entry {
        Entry::Formatted(line) => buffer.extend_from_slice(&line),
        Entry::Request(line) => match format {
            LogFormat::Text => text_line(&line, buffer, stamps),
            LogFormat::Json => json_line(&line, buffer),
        },
        Entry::Stop => return false,
    }
    true
}

/// The request line as `tracing`'s text format writes an event in a span:
/// `TIME  INFO request{method=GET path=/x user_id=1}: TARGET: response status=200 latency_us=12`.
/// Written piece by piece rather than through `write!`: under load the log
/// thread writes a line per request, and formatting machinery was most of
/// its cost.
fn text_line(line: &RequestLine, buffer: &mut Vec<u8>, stamps: &mut Stamps) {
    let mut numbers = itoa::Buffer::new();
    stamps.write(line.at, buffer);
    buffer.extend_from_slice(b"  INFO request{method=");
    buffer.extend_from_slice(line.method.as_str().as_bytes());
    buffer.extend_from_slice(b" path=");
    buffer.extend_from_slice(line.path.as_str().as_bytes());
    if let Some(user_id) = line.user_id {
        buffer.extend_from_slice(b" user_id=");
        buffer.extend_from_slice(numbers.format(user_id).as_bytes());
    }
    buffer.extend_from_slice(b"}: ");
    buffer.extend_from_slice(REQUEST_TARGET.as_bytes());
    buffer.extend_from_slice(b": response status=");
    buffer.extend_from_slice(numbers.format(line.status).as_bytes());
    buffer.extend_from_slice(b" latency_us=");
    buffer.extend_from_slice(numbers.format(line.latency.as_micros()).as_bytes());
    buffer.push(b'\n');
}

/// RFC 3339 timestamps with microseconds, as `tracing` writes them, the
/// date and time of day formatted once a second.
#[derive(Default)]
struct Stamps {
    /// The second last formatted (Unix seconds) and its
    /// `YYYY-MM-DDTHH:MM:SS`.
    second: Option<(u64, String)>,
}

impl Stamps {
    /// Appends `at` as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
    fn write(&mut self, at: SystemTime, buffer: &mut Vec<u8>) {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = since.as_secs();
        let prefix = match &self.second {
            Some((second, prefix)) if *second == seconds => prefix,
            _ => {
                let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
                let mut prefix = humantime::format_rfc3339_seconds(whole).to_string();
                prefix.pop(); // its `Z`
                &self.second.insert((seconds, prefix)).1
            }
        };
        buffer.extend_from_slice(prefix.as_bytes());
        let micros = since.subsec_micros();
        buffer.push(b'.');
        let mut numbers = itoa::Buffer::new();
        let digits = numbers.format(micros);
        buffer.extend(std::iter::repeat_n(b'0', 6 - digits.len()));
        buffer.extend_from_slice(digits.as_bytes());
        buffer.push(b'Z');
    }
}

/// The request line as `tracing`'s JSON format writes an event in a span
/// (event fields flattened, the span under `span` and `spans`).
fn json_line(line: &RequestLine, buffer: &mut Vec<u8>) {
    let mut span = serde_json::json!({
        "method": line.method.as_str(),
        "path": line.path.as_str(),
        "name": "request",
    });
    if let Some(user_id) = line.user_id {
        span["user_id"] = user_id.into();
    }
    let event = serde_json::json!({
        "timestamp": humantime::format_rfc3339_micros(line.at).to_string(),
        "level": "INFO",
        "status": line.status,
        "latency_us": u64::try_from(line.latency.as_micros()).unwrap_or(u64::MAX),
        "message": "response",
        "target": REQUEST_TARGET,
        "span": span,
        "spans": [span],
    });
    if serde_json::to_writer(&mut *buffer, &event).is_ok() {
        buffer.push(b'\n');
    }
}

/// The `tracing` subscriber's writer: each event's formatted line goes to
/// the queue as one entry.
#[derive(Clone, Copy, Debug)]
pub struct QueueWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueueWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::new())
    }
}

/// One event's line, queued when dropped.
pub struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            send(Entry::Formatted(std::mem::take(&mut self.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(user_id: Option<i64>) -> RequestLine {
        RequestLine {
            at: SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_650_000_123_456),
            method: Method::GET,
            path: RequestPath::of(&"/api/auth/me?access_token=secret".parse().unwrap()),
            status: 200,
            latency: Duration::from_micros(42),
            user_id,
        }
    }

    #[test]
    fn a_text_request_line_reads_like_a_tracing_event_in_its_span() {
        let mut out = Vec::new();
        text_line(&line(Some(7)), &mut out, &mut Stamps::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-02T04:33:20.123456Z  INFO request{method=GET path=/api/auth/me user_id=7}: \
             tessera_server::http: response status=200 latency_us=42\n"
        );
        let mut out = Vec::new();
        text_line(&line(None), &mut out, &mut Stamps::default());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("request{method=GET path=/api/auth/me}: ")
        );
    }

    #[test]
    fn timestamps_are_those_humantime_writes_within_a_second_and_across_seconds() {
        let mut stamps = Stamps::default();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_650_000);
        for micros in [
            0,
            7,
            123_456,
            999_999,
            1_000_000,
            1_000_001,
            61_000_010,
            86_400_000_000,
        ] {
            let at = base + Duration::from_micros(micros);
            let mut out = Vec::new();
            stamps.write(at, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                humantime::format_rfc3339_micros(at).to_string(),
                "{micros}"
            );
        }
    }

    #[test]
    fn a_json_request_line_is_one_object_without_the_query() {
        let mut out = Vec::new();
        json_line(&line(Some(7)), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n') && !text.contains("secret"), "{text}");
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["timestamp"], "2025-12-02T04:33:20.123456Z");
        assert_eq!(event["message"], "response");
        assert_eq!(event["status"], 200);
        assert_eq!(event["latency_us"], 42);
        assert_eq!(event["span"]["path"], "/api/auth/me");
        assert_eq!(event["span"]["user_id"], 7);
    }

    #[test]
    fn the_log_thread_writes_every_queued_line_before_it_stops() {
        let (queue, lines) = channel();
        for _ in 0..3 {
            queue.send(Entry::Request(line(None))).unwrap();
        }
        queue.send(Entry::Formatted(b"other\n".to_vec())).unwrap();
        queue.send(Entry::Stop).unwrap();
        let queued = AtomicUsize::new(4);
        let mut out = Vec::new();
        write_lines(lines, &queued, LogFormat::Text, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.ends_with("other\n"), "{text}");
        assert_eq!(queued.load(Ordering::Relaxed), 0);
    }
}
