//! Serving connections: HTTP/1.1 through hyper, up to 200 headers a request,
//! and a watch on each connection so that one that does not send a whole
//! request head within `header_read_timeout` (from when it opens, or from the
//! first byte of a later request), or sits idle between requests for
//! `idle_timeout`, is closed. Without it, silent connections hold every slot
//! of the connection cap for ever.
//!
//! The timers are ours rather than hyper's: hyper's header-read timer also
//! runs while a kept-alive connection waits for its next request, so it
//! cannot tell the two timeouts apart.
//!
//! A connection found waiting (between requests, or silent since it opened)
//! with its answers written and its last request's body read is parked: hyper's connection is taken apart
//! and only the socket kept until it is readable again, when a new one
//! takes over. hyper holds a read buffer and a write buffer of 8 KiB each,
//! and the last answer's header map, for as long as a connection lives;
//! parked, an idle keep-alive connection holds a few hundred bytes besides
//! its socket. The watch looks at least every [`PARK_AFTER`], so a
//! connection is parked within that of going idle, and a busy one is taken
//! apart and rebuilt at most that often.
//!
//! hyper parses a request head into two arrays of header slots: 100 of them
//! on the stack by default, or as many as `max_headers` on the heap, two
//! blocks allocated and filled for every request (about a tenth of a
//! `/healthz`). A connection therefore starts on hyper's default, and its
//! stream counts the lines it hands over since the last empty one: a head
//! has no empty line, so that count bounds the header lines of any head
//! hyper can see. Bytes that would take it past 100 are held back, and the
//! connection is taken apart (as for parking) and served on by a parser of
//! [`MAX_HEADERS`] slots, the held bytes read first; parked, it starts on
//! the default again.

use super::admission::{Admission, Probe, Slot, Waiting};
use super::listener;
use futures_util::future::Either;
use hyper::body::{Body as _, Buf, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// Headers a request may carry (hyper's default is 100).
const MAX_HEADERS: usize = 200;

/// Lines since the last empty one that hyper's default parser may be given:
/// it has room for 100 headers and the request line, less one to spare.
const LINES_ON_STACK: usize = 100;

/// The longest a connection's watch sleeps while hyper serves it: how soon
/// a connection that has gone idle is parked (see the module's comment).
const PARK_AFTER: Duration = Duration::from_millis(100);

/// The two connection timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a connection's start, or a later request's first byte, to its whole head.
    pub header_read: Duration,
    /// Between the end of one exchange and the first byte of the next.
    pub idle: Duration,
}

/// What a connection is doing, as far as closing it goes.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request head is awaited or arriving, since this instant.
    Head(Instant),
    /// At least one request is being answered.
    Busy(u32),
    /// Between requests, since this instant.
    Idle(Instant),
}

/// The state one connection's reads, writes and requests report to its watch.
struct Activity {
    phase: Phase,
    last_write: Instant,
    /// Whether the client has sent anything at all.
    heard: bool,
    /// Bytes handed to the socket since its last flush: hyper flushes only
    /// once its write buffer is empty, so while this is false it holds
    /// nothing unwritten.
    unflushed: bool,
    /// Answers whose body hyper has not finished (dropped): a streamed body
    /// outlives its request's [`Phase::Busy`].
    bodies: u32,
    /// The last request came with a body not yet seen to its end: hyper may
    /// still have to read (or drain) the rest of it after the answer.
    request_body: bool,
}

impl Activity {
    /// Nothing of an exchange is left in hyper's hands: no answer's body
    /// unfinished, nothing unwritten, no request body still to read.
    fn settled(&self) -> bool {
        self.bodies == 0 && !self.unflushed && !self.request_body
    }
}

/// One connection's activity, shared by its stream, its requests and its
/// watcher. Nothing here wakes the watcher: it sleeps at most the shorter
/// of the two timeouts at a time and reads the state when it wakes (see
/// [`Watch::next_check`]), so that a request costs a few uncontended locks
/// rather than two wake-ups of the connection's task.
#[derive(Clone)]
struct Watch(Arc<Shared>);

/// What a [`Watch`] shares.
struct Shared {
    activity: Mutex<Activity>,
    /// The stream held bytes back: a head may have more headers than the
    /// parser in use has room for (see the module's comment).
    wants_more_headers: AtomicBool,
}

impl Watch {
    fn new(now: Instant) -> Self {
        Self(Arc::new(Shared {
            activity: Mutex::new(Activity {
                phase: Phase::Head(now),
                last_write: now,
                heard: false,
                unflushed: false,
                bodies: 0,
                request_body: false,
            }),
            wants_more_headers: AtomicBool::new(false),
        }))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Activity) -> T) -> T {
        f(&mut self
            .0
            .activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// The stream held bytes back for a parser with more header slots.
    fn want_more_headers(&self) {
        self.0.wants_more_headers.store(true, Ordering::Release);
    }

    /// Whether the stream wants a parser with more header slots.
    fn wants_more_headers(&self) -> bool {
        self.0.wants_more_headers.load(Ordering::Acquire)
    }

    /// The connection parked: its next request starts on the default parser.
    fn back_to_few_headers(&self) {
        self.0.wants_more_headers.store(false, Ordering::Release);
    }

    /// Resolves once the stream wants a parser with more header slots (the
    /// stream wakes the connection's task when it does).
    fn more_headers_wanted(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|_| {
            if self.wants_more_headers() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Whether hyper's connection can be taken apart to be served on by
    /// another parser: no request being answered, nothing left to write.
    fn switchable(&self) -> bool {
        self.with(|a| !matches!(a.phase, Phase::Busy(_)) && a.settled())
    }

    fn read(&self) {
        self.with(|a| {
            a.heard = true;
            if matches!(a.phase, Phase::Idle(_)) {
                a.phase = Phase::Head(Instant::now());
            }
        });
    }

    fn wrote(&self) {
        self.with(|a| {
            a.last_write = Instant::now();
            a.unflushed = true;
        });
    }

    fn flushed(&self) {
        self.with(|a| a.unflushed = false);
    }

    /// A request begins; `with_body` when it has a body to arrive. hyper
    /// reads a connection's requests one after another, so a new request
    /// means the last one's body was read or drained.
    fn request_started(&self, with_body: bool) {
        self.with(|a| {
            a.phase = match a.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            };
            a.bodies += 1;
            a.request_body = with_body;
        });
    }

    fn request_body_arrived(&self) {
        self.with(|a| a.request_body = false);
    }

    /// The request answered or abandoned (`request`), its answer's body
    /// finished or never to be (`body`): see [`RequestGuard`].
    fn finished(&self, request: bool, body: bool) {
        self.with(|a| {
            if request {
                a.phase = match a.phase {
                    Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                    _ => Phase::Idle(Instant::now()),
                };
            }
            if body {
                a.bodies = a.bodies.saturating_sub(1);
            }
        });
    }

    /// Whether hyper's connection can be taken apart without losing
    /// anything: no request in hand or arriving, no answer being written.
    fn parkable(&self) -> bool {
        self.with(|a| {
            let waiting = match a.phase {
                Phase::Idle(_) => true,
                Phase::Head(_) => !a.heard,
                Phase::Busy(_) => false,
            };
            waiting && a.settled()
        })
    }

    /// When the connection is to be closed if nothing happens meanwhile;
    /// `None` while a request is being answered (`request_timeout` and the
    /// handlers bound that).
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        self.with(|a| match a.phase {
            Phase::Head(since) => Some(since + timeouts.header_read),
            // A response still being written is not idleness.
            Phase::Idle(since) => Some(since.max(a.last_write) + timeouts.idle),
            Phase::Busy(_) => None,
        })
    }

    /// When the watcher is to look again, at `now`: the deadline, but never
    /// later than the shorter timeout away. A deadline that arises while the
    /// watcher sleeps (a head begins: `header_read` after it; a request
    /// ends: `idle` after it) is then never earlier than the watcher's next
    /// look, which sees it exactly. While hyper serves the connection, never
    /// later than [`PARK_AFTER`] either; parked, nothing changes until the
    /// deadline.
    fn next_check(&self, timeouts: Timeouts, now: Instant, parked: bool) -> Instant {
        let mut horizon = timeouts.header_read.min(timeouts.idle);
        if !parked {
            horizon = horizon.min(PARK_AFTER);
        }
        let horizon = now + horizon;
        self.deadline(timeouts).map_or(horizon, |d| d.min(horizon))
    }
}

impl Probe for Watch {
    fn waiting(&self) -> Option<Waiting> {
        self.with(|a| match a.phase {
            Phase::Idle(since) => Some(Waiting::BetweenRequests(since.max(a.last_write))),
            Phase::Head(since) if !a.heard => Some(Waiting::Silent(since)),
            Phase::Head(_) | Phase::Busy(_) => None,
        })
    }
}

/// A stream that reports its reads and writes to the connection's watch.
struct Watched {
    inner: TcpStream,
    watch: Watch,
    /// Bytes hyper had read and not used when its connection was taken
    /// apart, read again first.
    unread: Bytes,
    /// The lines handed over since the last empty one.
    lines: Lines,
    /// Whether the parser in use has [`MAX_HEADERS`] slots (else hyper's
    /// default 100).
    many_headers: bool,
    /// Bytes held back from a parser with too few slots for them.
    held: Bytes,
}

impl Watched {
    /// Before hyper's connection is built again: what it had read and not
    /// used, then what was held back from it, are read first.
    fn replay(&mut self, read_buf: Bytes) {
        let held = std::mem::take(&mut self.held);
        self.unread = if held.is_empty() {
            read_buf
        } else if read_buf.is_empty() {
            held
        } else {
            [read_buf, held].concat().into()
        };
    }
}

/// Counts the lines of a byte stream since its last empty line (`\n` or
/// `\r\n`): in HTTP/1.1, an upper bound on the lines of the head being read.
#[derive(Debug, Default)]
struct Lines {
    /// Lines ended since the last empty one.
    run: usize,
    /// What the line not yet ended holds.
    tail: Tail,
}

/// The start of a line not yet ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing yet.
    #[default]
    Empty,
    /// A carriage return alone.
    Cr,
    /// Anything else.
    Text,
}

impl Lines {
    /// Takes in `bytes`; the most lines since an empty one, at any point in them.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut most = self.run;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', bytes) {
            let empty = matches!(
                (self.tail, &bytes[start..end]),
                (Tail::Empty, [] | [b'\r']) | (Tail::Cr, [])
            );
            self.run = if empty { 0 } else { self.run + 1 };
            most = most.max(self.run);
            self.tail = Tail::Empty;
            start = end + 1;
        }
        self.tail = match (self.tail, &bytes[start..]) {
            (tail, []) => tail,
            (Tail::Empty, [b'\r']) => Tail::Cr,
            _ => Tail::Text,
        };
        most
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unread.has_remaining() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        if !this.held.is_empty() {
            // Waiting for the parser with more slots: nothing more for this one.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.watch.read();
            let most = this.lines.feed(&buf.filled()[before..]);
            if most > LINES_ON_STACK && !this.many_headers {
                this.held = Bytes::copy_from_slice(&buf.filled()[before..]);
                buf.set_filled(before);
                this.watch.want_more_headers();
                // The connection's task takes hyper's connection apart.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.wrote();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            this.watch.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.wrote();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// One request on the watch, from its start until its answer's body is
/// finished: marks it answered when [`answered`](Self::answered) is called,
/// or abandoned when dropped before; travels in the answer's body
/// ([`Tracked`]) and marks the body finished when dropped.
struct RequestGuard {
    watch: Watch,
    answered: bool,
}

impl RequestGuard {
    fn start(watch: Watch, with_body: bool) -> Self {
        watch.request_started(with_body);
        Self {
            watch,
            answered: false,
        }
    }

    fn answered(&mut self) {
        self.watch.finished(true, false);
        self.answered = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.watch.finished(!self.answered, true);
    }
}

/// A request's body, which tells the watch once it has arrived whole.
struct Arriving {
    inner: Incoming,
    watch: Option<Watch>,
}

impl hyper::body::Body for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if ended && let Some(watch) = this.watch.take() {
            watch.request_body_arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body, carrying its request's guard until hyper drops it
/// (written to the end, or the connection gone).
struct Tracked {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The application as every connection calls it ([`crate::http::app`]).
pub type App = crate::http::App;

/// Accepts connections from `listener`, as `admission` lets them in, and
/// serves `app` on each until `shutdown` resolves; then stops accepting,
/// lets open requests finish, and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    admission: Admission,
    app: App,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let http = Arc::new(Parsers::new());
    let (stop, stopping) = watch::channel(false);
    // Each connection holds a sender; all gone means all closed.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let admitted = async {
            let (stream, peer) = listener::accept(&listener).await;
            let watch = Watch::new(Instant::now());
            let slot = admission.admit(peer.ip(), Arc::new(watch.clone())).await;
            (stream, peer, watch, slot)
        };
        let (stream, peer, watch, slot) = tokio::select! {
            admitted = admitted => admitted,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else {
            // Its client holds its share: closed at once (dropping it).
            crate::telemetry::connection_refused();
            continue;
        };
        tokio::spawn(connection(
            http.clone(),
            Accepted {
                stream,
                peer,
                watch,
                slot,
            },
            app.clone(),
            timeouts,
            stopping.clone(),
            open.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

/// hyper's connection builders: with its default 100 header slots on the
/// stack, and with [`MAX_HEADERS`] on the heap (see the module's comment).
struct Parsers {
    few: hyper::server::conn::http1::Builder,
    many: hyper::server::conn::http1::Builder,
}

impl Parsers {
    fn new() -> Self {
        let mut few = hyper::server::conn::http1::Builder::new();
        // Our watch replaces hyper's timer (see the module's comment).
        few.header_read_timeout(None);
        let mut many = few.clone();
        many.max_headers(MAX_HEADERS);
        Self { few, many }
    }
}

/// A connection let in, with its watch and its slot.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    slot: Slot,
}

/// Serves one connection until it closes, is closed by a timeout or to make
/// room for another, or has finished its requests after a shutdown.
async fn connection(
    http: Arc<Parsers>,
    accepted: Accepted,
    app: App,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
) {
    let Accepted {
        stream,
        peer,
        watch,
        slot,
    } = accepted;
    let mut io = TokioIo::new(Watched {
        inner: stream,
        watch: watch.clone(),
        unread: Bytes::new(),
        lines: Lines::default(),
        many_headers: false,
        held: Bytes::new(),
    });
    let mut app = app;
    app.get_mut().set_peer(peer);
    // The connection's own copy, called for each request in turn rather
    // than cloned for each: a clone counts up (and its drop down) reference
    // counts that every connection shares, atomic writes to cache lines both
    // cores contend for. The lock is the connection's alone: never waited on.
    let app = Mutex::new(app);
    let requests = watch.clone();
    let mut service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let with_body = !request.body().is_end_stream();
        let mut guard = RequestGuard::start(requests.clone(), with_body);
        let request = if with_body {
            let watch = Some(requests.clone());
            request.map(|inner| axum::body::Body::new(Arriving { inner, watch }))
        } else {
            // Nothing to read: an empty body, which allocates nothing
            // (hyper's, boxed, would cost an allocation per request).
            request.map(|_| axum::body::Body::empty())
        };
        let answer = {
            let mut app = app.lock().unwrap_or_else(PoisonError::into_inner);
            // Always ready (the edge has nothing to wait for): asked all the
            // same, as tower's contract wants.
            match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => Either::Left(app.call(request)),
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => Either::Right(app.clone().oneshot(request)),
            }
        };
        async move {
            let response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            guard.answered();
            Ok::<_, Infallible>(response.map(|inner| Tracked {
                inner,
                _guard: guard,
            }))
        }
    });
    let mut shutting_down = *stopping.borrow();
    loop {
        // Boxed: parked, the task holds only a pointer's room for it. The
        // block ends before parking, so that the box is freed then.
        let many = watch.wants_more_headers();
        io.inner_mut().many_headers = many;
        let parser = if many { &http.many } else { &http.few };
        let (parts, parking) = {
            let mut conn = Box::new(parser.serve_connection(io, service));
            if shutting_down {
                Pin::new(&mut *conn).graceful_shutdown();
            }
            // Set when more slots are wanted while hyper is still busy:
            // the watch's next look switches then.
            let mut switch_later = false;
            let parking = loop {
                let check = watch.next_check(timeouts, Instant::now(), false);
                tokio::select! {
                    // Served to the end, or failed: either way it is over.
                    _ = &mut *conn => return,
                    () = tokio::time::sleep_until(check) => {
                        if watch.deadline(timeouts).is_some_and(|d| d <= Instant::now()) {
                            // Dropping the connection closes the socket.
                            return;
                        }
                        if switch_later && watch.switchable() {
                            break false;
                        }
                        if !shutting_down && watch.parkable() {
                            break true;
                        }
                    }
                    () = watch.more_headers_wanted(), if !many && !switch_later => {
                        if watch.switchable() {
                            break false;
                        }
                        switch_later = true;
                    }
                    // Chosen to make room: it was idle, so nothing is cut short.
                    () = slot.closing() => return,
                    _ = stopping.changed(), if !shutting_down => {
                        shutting_down = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                }
            };
            (conn.into_parts(), parking)
        };
        (io, service) = (parts.io, parts.service);
        if !parking {
            // Served on at once by the parser with more slots.
            io.inner_mut().replay(parts.read_buf);
            continue;
        }
        // Parked: the next request starts on the default parser again.
        watch.back_to_few_headers();
        if !parts.read_buf.is_empty() {
            // Part of a next request had arrived: served at once.
            io.inner_mut().replay(parts.read_buf);
            continue;
        }
        // hyper's read buffer, empty but still allocated, goes here.
        drop(parts.read_buf);
        loop {
            let check = watch.next_check(timeouts, Instant::now(), true);
            tokio::select! {
                readable = io.inner().inner.readable() => {
                    if readable.is_err() {
                        return;
                    }
                    break;
                }
                () = tokio::time::sleep_until(check) => {
                    if watch.deadline(timeouts).is_some_and(|d| d <= Instant::now()) {
                        return;
                    }
                }
                () = slot.closing() => return,
                // Nothing in hand: closed at once, as hyper's graceful
                // shutdown closes a connection between requests.
                _ = stopping.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `head` fed in pieces of `size` bytes: the most lines seen, and the state after.
    fn fed(head: &[u8], size: usize) -> (usize, Lines) {
        let mut lines = Lines::default();
        let most = head.chunks(size).map(|piece| lines.feed(piece)).max();
        (most.unwrap_or(0), lines)
    }

    #[test]
    fn lines_are_counted_since_the_last_empty_one_however_the_bytes_arrive() {
        let head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        for size in 1..=head.len() {
            let (most, lines) = fed(head, size);
            assert_eq!((most, lines.run, lines.tail), (3, 0, Tail::Empty), "{size}");
        }
        // Bare line feeds end lines too; what follows an empty line starts again.
        let (most, lines) = fed(b"GET / HTTP/1.1\nA: 1\n\nGET /x", 4);
        assert_eq!((most, lines.run, lines.tail), (2, 0, Tail::Text));
        // A line of two carriage returns is not empty.
        let (most, lines) = fed(b"A\r\n\r\r\n", 4);
        assert_eq!((most, lines.run), (2, 2));
        let (_, lines) = fed(b"A\r\n\r", 2);
        assert_eq!((lines.run, lines.tail), (1, Tail::Cr));
    }

    #[test]
    fn a_head_of_more_headers_than_the_stack_holds_is_seen_in_any_pieces() {
        let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..LINES_ON_STACK {
            head.push_str(&format!("X-{i}: {i}\r\n"));
        }
        head.push_str("\r\n");
        for size in [1, 7, 64, 1000, head.len()] {
            let (most, _) = fed(head.as_bytes(), size);
            assert!(most > LINES_ON_STACK, "{size}: {most}");
        }
        // Ninety-nine headers fit, however they arrive.
        let small: String = head.lines().skip(3).collect::<Vec<_>>().join("\r\n");
        let small = format!("GET / HTTP/1.1\r\n{small}\r\n");
        for size in [1, 7, 64, small.len()] {
            let (most, _) = fed(small.as_bytes(), size);
            assert!(most <= LINES_ON_STACK, "{size}: {most}");
        }
    }
}
