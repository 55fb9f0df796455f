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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How much of it is read at most; beyond, the connection is closed anyway.
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// A TCP listener whose connections are [`Guarded`]; give it to `axum::serve`.
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    pub fn new(inner: TcpListener) -> Listener {
        Listener { inner }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop, which retries and backs off on errors such as too many files.
        let (io, address) = axum::serve::Listener::accept(&mut self.inner).await;
        (Guarded::new(io), address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection; see the module documentation.
pub struct Guarded<S> {
    inner: S,
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
    pub fn new(inner: S) -> Guarded<S> {
        Guarded {
            inner,
            pending: Vec::new(),
            sent: 0,
            linger: false,
            draining: None,
        }
    }
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
    if head_end != written.len() || !contains_line(&written[..head_end], b"content-length: 0") {
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
        Some(end) => &written[..end],
        None => written,
    };
    contains_line(head, b"connection: close")
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    /// Sends what is left of a rewritten refusal.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
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
        Pin::new(&mut this.inner).poll_write(cx, buf)
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
