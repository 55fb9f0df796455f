//! The connection under the HTTP server, for the two refusals the application never sees.
//!
//! hyper answers a request it cannot parse (400), a URI beyond its limit (414) and a header
//! section beyond its buffer (431) by itself, before any middleware runs, with an empty body.
//! [`Guarded`] replaces exactly those automatic answers with the usual `{"detail"}` JSON and
//! `Connection: close`. And when a response says `Connection: close` while the client may still
//! be sending (a refused oversized body), closing the socket with unread data would make the
//! kernel reset the connection, and the client could lose the response; so the close is
//! "lingering": the write side is shut first, then what the client still sends is read and
//! dropped for a bounded time.
//!
//! It also keeps the connection's clocks (docs/api.md, "Connections"): the request head must
//! arrive within the header timeout (counted from the connection's start, or from the first
//! byte of a later request), a keep-alive connection with no request in flight closes after the
//! idle timeout, and a write the client does not drain within the write timeout ends the
//! connection. Which of these applies depends on whether a request is in flight, which only the
//! service sees: it counts requests and finished responses in a shared [`Activity`].

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How much of it is read at most; beyond, the connection is closed anyway.
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// One connection; see the module documentation.
pub struct Guarded<S> {
    inner: S,
    clock: Clock,
    /// A rewritten refusal still to be sent; it replaces what hyper wrote.
    pending: Vec<u8>,
    sent: usize,
    /// A response said `Connection: close`: linger when closing.
    linger: bool,
    /// Set once the write side is shut during a lingering close.
    draining: Option<Drain>,
}

struct Drain {
    deadline: Pin<Box<Sleep>>,
    read: usize,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, timeouts: Timeouts, activity: Arc<Activity>) -> Guarded<S> {
        Guarded {
            inner,
            clock: Clock::new(timeouts, activity),
            pending: Vec::new(),
            sent: 0,
            linger: false,
            draining: None,
        }
    }
}

/// The connection timeouts (docs/api.md, "Connections").
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A request head must be complete this long after its first byte (or after the connection
    /// opened, for the first request).
    pub header: Duration,
    /// A keep-alive connection with no request in flight closes after this long.
    pub idle: Duration,
    /// A write the client does not drain for this long ends the connection.
    pub write: Duration,
}

/// Requests begun and responses finished on one connection, counted by the service; a request
/// is in flight while they differ.
#[derive(Debug)]
pub struct Activity {
    requests: AtomicU64,
    responses: AtomicU64,
    /// When the last response finished, in nanoseconds since `epoch`.
    finished_at: AtomicU64,
    epoch: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            finished_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Activity {
    /// A request head was parsed and handed to the application.
    pub fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Release);
    }

    /// The response's body was sent to the end (or dropped).
    pub fn response_finished(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.finished_at.store(nanos, Ordering::Relaxed);
        self.responses.fetch_add(1, Ordering::Release);
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Acquire),
            self.responses.load(Ordering::Acquire),
        )
    }

    fn last_finished(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.finished_at.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head, since then.
    Head(Instant),
    /// A request is in flight: the application's own time. Seen so since then.
    Busy(Instant),
    /// No request in flight, since then.
    Idle(Instant),
}

/// Which limit ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
    Write,
}

/// The connection's clocks. One timer serves them all: it is armed at the earliest deadline and,
/// when it fires early because the deadline moved later, re-armed, so a request costs no timer
/// operation.
struct Clock {
    timeouts: Timeouts,
    activity: Arc<Activity>,
    phase: Phase,
    /// The request count at the last look.
    requests_seen: u64,
    /// Bytes of the current request head were read (a timed-out head then gets a 408).
    head_bytes: bool,
    write_blocked_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Clock {
    fn new(timeouts: Timeouts, activity: Arc<Activity>) -> Clock {
        let now = Instant::now();
        Clock {
            timeouts,
            activity,
            phase: Phase::Head(now),
            requests_seen: 0,
            head_bytes: false,
            write_blocked_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.header)),
            armed: Some(now + timeouts.header),
        }
    }

    /// Follows the service's counts: a request in flight makes the connection busy; requests
    /// that started and finished since the last look make it idle from the last response.
    fn observe(&mut self) {
        let (requests, responses) = self.activity.counts();
        if requests != responses {
            if !matches!(self.phase, Phase::Busy(_)) {
                self.phase = Phase::Busy(Instant::now());
            }
            self.requests_seen = requests;
        } else if requests != self.requests_seen || matches!(self.phase, Phase::Busy(_)) {
            self.requests_seen = requests;
            self.phase = Phase::Idle(self.activity.last_finished());
            self.head_bytes = false;
        }
    }

    fn read(&mut self, bytes: usize) {
        self.observe();
        if bytes > 0 {
            match self.phase {
                Phase::Idle(_) => {
                    self.phase = Phase::Head(Instant::now());
                    self.head_bytes = true;
                }
                Phase::Head(_) => self.head_bytes = true,
                Phase::Busy(_) => self.head_bytes = false,
            }
        }
    }

    fn wrote(&mut self) {
        self.write_blocked_since = None;
        self.observe();
        if let Phase::Idle(_) = self.phase {
            // Bytes still leaving (the end of a response) count as activity.
            self.phase = Phase::Idle(Instant::now());
        }
    }

    fn write_blocked(&mut self) {
        self.write_blocked_since.get_or_insert_with(Instant::now);
    }

    /// The next moment to look, and the limit that runs out then; `None` for a busy
    /// connection's look at whether its response has finished (a response ends inside hyper's
    /// poll, which does not poll the reading side again), which ends nothing.
    fn deadline(&self) -> (Instant, Option<Expired>) {
        let phase = match self.phase {
            Phase::Head(since) => (since + self.timeouts.header, Some(Expired::Header)),
            Phase::Idle(since) => (since + self.timeouts.idle, Some(Expired::Idle)),
            Phase::Busy(since) => (since + self.timeouts.idle, None),
        };
        let write = self
            .write_blocked_since
            .map(|since| (since + self.timeouts.write, Some(Expired::Write)));
        match write {
            Some(write) if write.0 < phase.0 => write,
            _ => phase,
        }
    }

    /// Whether a limit has run out; otherwise the timer is armed to wake the connection at the
    /// next deadline.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Expired> {
        self.observe();
        loop {
            let (deadline, which) = self.deadline();
            if Instant::now() >= deadline {
                if let Some(which) = which {
                    return Poll::Ready(which);
                }
                self.phase = Phase::Busy(Instant::now());
                self.observe();
                continue;
            }
            // Re-arm only when the timer would fire too late or not at all.
            if self.armed.is_none_or(|armed| armed > deadline) {
                self.timer.as_mut().reset(deadline);
                self.armed = Some(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // It fired for an earlier deadline that has since moved; aim at the current one.
            self.armed = None;
        }
    }
}

/// The answer to a request head that did not arrive in time.
fn head_timeout_answer() -> Vec<u8> {
    let body = serde_json::json!({
        "detail": "The request head did not arrive in time; send the whole request at once",
        "code": "request_timeout",
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn timed_out(which: Expired) -> io::Error {
    let what = match which {
        Expired::Header => "the request head did not arrive within the header timeout",
        Expired::Idle => "the connection was idle beyond the idle timeout",
        Expired::Write => "the client did not read the response within the write timeout",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// The `{"detail"}` answer replacing hyper's empty automatic one, if `written` is one.
///
/// hyper's automatic answer is a whole head on its own, with `content-length: 0`; the
/// application's own errors always have a JSON body, so they never match.
fn replacement(written: &[u8]) -> Option<Vec<u8>> {
    let (status, reason, detail) = if written.starts_with(b"HTTP/1.1 400 ") {
        (
            400,
            "Bad Request",
            "The request is not valid HTTP/1.1 (a malformed request line or header); fix the request and send it again",
        )
    } else if written.starts_with(b"HTTP/1.1 414 ") {
        (
            414,
            "URI Too Long",
            "The request URI is too long; shorten the query or the path and send it again",
        )
    } else if written.starts_with(b"HTTP/1.1 431 ") {
        (
            431,
            "Request Header Fields Too Large",
            "The request headers are too large; send fewer or smaller headers",
        )
    } else {
        return None;
    };
    let head_end = find(written, b"\r\n\r\n")? + 4;
    if head_end != written.len() || !contains_line(written, b"content-length: 0") {
        return None;
    }
    let body = serde_json::json!({"detail": detail, "code": "bad_request"}).to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the head has this header line, compared without regard to case.
fn contains_line(head: &[u8], line: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .any(|l| l.eq_ignore_ascii_case(line))
}

/// Whether `written` starts a response head that says `Connection: close`.
fn says_close(written: &[u8]) -> bool {
    if !written.starts_with(b"HTTP/1.") {
        return false;
    }
    let head = match find(written, b"\r\n\r\n") {
        Some(end) => written.get(..end).unwrap_or(written),
        None => written,
    };
    contains_line(head, b"connection: close")
}

/// Writes through, ending the connection when the client has not drained it for the write
/// timeout.
fn poll_write_timed<S: AsyncWrite + Unpin>(
    inner: &mut S,
    clock: &mut Clock,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    match Pin::new(inner).poll_write(cx, buf) {
        Poll::Ready(Ok(n)) => {
            clock.wrote();
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => {
            clock.write_blocked();
            match clock.poll_expired(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(which) => Poll::Ready(Err(timed_out(which))),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    /// Sends what is left of a rewritten refusal.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(poll_write_timed(
                &mut self.inner,
                &mut self.clock,
                cx,
                self.pending.get(self.sent..).unwrap_or_default()
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.clock.read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.clock.poll_expired(cx) {
                Poll::Pending => Poll::Pending,
                // An idle keep-alive connection just ends, as if the client had closed it.
                Poll::Ready(Expired::Idle) => Poll::Ready(Ok(())),
                Poll::Ready(Expired::Header) => {
                    if this.clock.head_bytes && this.pending.is_empty() {
                        // Best effort: the answer fits in the socket's empty send buffer.
                        let answer = head_timeout_answer();
                        let _ = Pin::new(&mut this.inner).poll_write(cx, &answer);
                    }
                    Poll::Ready(Err(timed_out(Expired::Header)))
                }
                Poll::Ready(which) => Poll::Ready(Err(timed_out(which))),
            },
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = replacement(buf) {
            this.pending = answer;
            this.sent = 0;
            this.linger = true;
            // hyper's bytes count as written; the answer goes out on the next flush at the latest.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        if says_close(buf) {
            this.linger = true;
        }
        poll_write_timed(&mut this.inner, &mut this.clock, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if !this.linger {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        if this.draining.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.draining = Some(Drain {
                deadline: Box::pin(tokio::time::sleep(LINGER)),
                read: 0,
            });
        }
        let mut scratch = [0u8; 8192];
        loop {
            let Some(drain) = this.draining.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if drain.deadline.as_mut().poll(cx).is_ready() || drain.read > LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => drain.read += buf.filled().len(),
                // The client is gone; there is nothing left to protect.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    // Not vectored: hyper then writes each response head in one piece, so an automatic refusal
    // is recognised by a single write.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_automatic_refusals_are_replaced() {
        let automatic =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement(automatic).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "));
        assert!(answer.contains("\r\nconnection: close\r\n"));
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["detail"].is_string());
        // The application's own 400 has a body, so it is left alone.
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement(own).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }

    #[test]
    fn a_close_is_seen_in_the_head_only() {
        assert!(says_close(
            b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n{}"
        ));
        assert!(!says_close(b"HTTP/1.1 200 OK\r\n\r\nconnection: close\r\n"));
        assert!(!says_close(b"{\"a\":\"HTTP/1.1 200\"}"));
    }
}
