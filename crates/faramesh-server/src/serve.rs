//! The HTTP/1.1 server loop: accepting connections under a cap, the per-connection clocks of
//! [`crate::connection`], and a shutdown that ends within a bound (docs/api.md, "Connections").
//!
//! axum's own `serve` has none of these limits, so this loop drives hyper directly. Only HTTP/1.1
//! is spoken, as by the reference implementation's server.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::connection::{Activity, Guarded, Timeouts};

/// Limits on the connections of one server.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub timeouts: Timeouts,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before it closes their connections.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            timeouts: Timeouts {
                header: Duration::from_secs(10),
                idle: Duration::from_secs(60),
                write: Duration::from_secs(30),
            },
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The most hyper buffers per connection, each way: a request head (URI up to 16 KiB, headers
/// up to 64 KiB) fits, and a live stream whose reader stopped holds no more than this before
/// its writes wait (hyper's default, 400 KiB, made a thousand stuck readers cost 400 MB).
const CONNECTION_BUFFER: usize = 96 * 1024;

/// Connections over the cap answered at once; while all of these are busy, accepting waits (the
/// kernel's backlog holds the rest), so every connection gets an answer and refusals hold a
/// bounded number of sockets.
const REFUSALS: usize = 64;
/// How long a refusal waits for the request to arrive, and for the client to close, each.
const REFUSAL_WAIT: Duration = Duration::from_millis(100);
/// File descriptors kept free for everything but client connections: the database, executors'
/// pipes, the refusals above, the log.
const RESERVED_FILES: u64 = 192;

/// The connection cap that fits in this process's open-file limit, raising the soft limit to
/// the hard one first (as Go's runtime does), so a flood of connections ends in 503s rather
/// than in accept errors that stop every client, the health checks included.
pub fn fit_connection_cap(configured: usize) -> usize {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            };
            let room = if soft > 2 * RESERVED_FILES {
                soft - RESERVED_FILES
            } else {
                (soft / 2).max(1)
            };
            return configured.min(usize::try_from(room).unwrap_or(usize::MAX));
        }
    }
    configured
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish for
/// at most `limits.shutdown_timeout`. Returns when every connection has ended or the bound has
/// passed (the caller then drops the runtime, which ends what is left).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max = limits
        .max_connections
        .clamp(1, u32::MAX as usize)
        .min(Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors or similar: wait for connections to end.
                        tracing::warn!(error = %e, "cannot accept a connection; retrying");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let refusal = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = refusals.clone().acquire_owned() => permit,
            };
            if let Ok(refusal) = refusal {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stopping = stopping.clone();
        let timeouts = limits.timeouts;
        tokio::spawn(async move {
            serve_connection(stream, app, timeouts, &mut stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let finished = tokio::time::timeout(limits.shutdown_timeout, slots.acquire_many(all)).await;
    if finished.is_err() {
        tracing::warn!(
            connections = max - slots.available_permits(),
            seconds = limits.shutdown_timeout.as_secs_f64(),
            "connections still busy after the shutdown timeout are closed"
        );
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    timeouts: Timeouts,
    stopping: &mut watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Guarded::new(stream, timeouts, activity.clone()));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        activity.request_started();
        let activity = activity.clone();
        let response = app.clone().oneshot(request.map(Body::new));
        async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<Response, Infallible>(response.map(|body| {
                Body::new(Finishing {
                    body,
                    activity: Some(activity),
                })
            }))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(CONNECTION_BUFFER)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Finish the request in flight, if any, and close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// A response body that tells the connection's clocks when it is done.
struct Finishing {
    body: Body,
    activity: Option<Arc<Activity>>,
}

impl Finishing {
    fn finish(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.response_finished();
        }
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        self.finish();
    }
}

impl http_body::Body for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Errors of one connection that does not concern the listener (the client went away while
/// queued); anything else is the process running out of something.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Take what the client sent first, and what it sends until it closes, so the close does not
    // reset the connection under the answer.
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_WAIT, stream.read(&mut scratch)).await;
    let answer = over_capacity_answer();
    if tokio::time::timeout(REFUSAL_WAIT, stream.write_all(&answer))
        .await
        .is_err()
    {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

fn over_capacity_answer() -> Vec<u8> {
    let body = serde_json::json!({
        "detail": "The server is at its connection limit (FARAMESH_MAX_CONNECTIONS); retry shortly or reuse a connection",
        "code": "service_unavailable",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
