#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
// Refusals at the HTTP level: every one is JSON with a `detail`, a connection that will not be
// reused says `Connection: close` and is closed cleanly, and the OpenAPI document lists every
// endpoint. Raw sockets, because an HTTP client hides exactly the things tested here.

use serde_json::Value;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

/// The real `faramesh serve`, stopped when dropped.
struct Server {
    address: String,
    child: std::process::Child,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on a free port with a database of its own.
async fn start() -> Server {
    start_with(&[], None).await
}

/// `start` with extra environment variables and, when given, an open-file limit.
async fn start_with(env: &[(&str, &str)], open_files: Option<u64>) -> Server {
    let dir = TempDir::new().unwrap();
    let (child, url) = common::serve_limited(dir.path(), env, &[], open_files);
    let address = url.trim_start_matches("http://").to_owned();
    Server {
        address,
        child,
        _dir: dir,
    }
}

/// One response read off a raw connection.
struct Reply {
    status: u16,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn assert_detail(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "no detail: {body}"
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{:?}",
            self.headers
        );
    }
}

/// Reads exactly one response (head and a Content-Length body) from the connection.
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("reading the response");
        assert!(
            n > 0,
            "the server closed without a response; got {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Content-Length");
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the body within 10 s")
            .expect("reading the body");
        assert!(n > 0, "the server closed in the middle of the body");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Reply {
        status,
        headers,
        body,
    }
}

/// Asserts the server ends the connection with a clean close (end of stream), not a reset.
async fn assert_closed_cleanly(stream: &mut TcpStream) {
    let mut rest = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut rest))
        .await
        .expect("the server closes within 10 s")
        .expect("a clean close, not a reset");
    assert_eq!(n, 0, "unexpected bytes after the response");
}

async fn request(server: &Server, raw: &[u8]) -> (TcpStream, Reply) {
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let reply = read_reply(&mut stream).await;
    (stream, reply)
}

async fn health_works(server: &Server) {
    let (_, reply) = request(server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_oversized_body_is_a_413_with_detail_then_a_clean_close() {
    let server = start().await;
    // Far more than the socket buffers hold, so the client is still sending when refused.
    let body = vec![b'x'; 8 * faramesh_server::MAX_BODY_BYTES];
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let head = format!(
        "POST /v1/actions HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The whole body goes out while the response is read, as a client that does not wait for
    // `100 Continue` does; the server must not reset the connection under it.
    let (mut reading, mut writing) = stream.into_split();
    let sender = tokio::spawn(async move {
        let sent = writing.write_all(&body).await;
        // Then the client is done, as one that saw `Connection: close` would be.
        let _ = writing.shutdown().await;
        (writing, sent)
    });
    let mut stream_reply = {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), reading.read(&mut chunk))
                .await
                .expect("a response within 10 s")
                .expect("reading the response, not a reset");
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        buffer
    };
    let (_writing, sent) = sender.await.unwrap();
    sent.expect("the whole body could be sent: no reset while it was on its way");
    let head_end = stream_reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&stream_reply[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let body: Value = serde_json::from_slice(&stream_reply.split_off(head_end)).expect("JSON");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("1 MiB")),
        "{body}"
    );
    health_works(&server).await;
}

#[tokio::test]
async fn an_oversized_body_on_a_keep_alive_connection_is_refused_with_connection_close() {
    let server = start().await;
    let body = vec![b'x'; faramesh_server::MAX_BODY_BYTES + 1];
    let head = format!(
        "POST /v1/actions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    let (mut stream, reply) = request(&server, &raw).await;
    reply.assert_detail(413);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_closed_cleanly(&mut stream).await;
    health_works(&server).await;
}

/// Sends a refused request, checks the `{"detail"}` answer, the close, and that the server
/// still serves a new connection.
async fn refused(server: &Server, raw: String, status: u16) {
    let (mut stream, reply) = request(server, raw.as_bytes()).await;
    reply.assert_detail(status);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_closed_cleanly(&mut stream).await;
    health_works(server).await;
}

#[tokio::test]
async fn a_uri_too_long_is_a_414_with_detail() {
    let server = start().await;
    // Over the server's own limit, and over hyper's (answered before any middleware).
    for size in [20 * 1024, 70 * 1024] {
        let raw = format!(
            "GET /v1/actions?unused={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "a".repeat(size)
        );
        refused(&server, raw, 414).await;
    }
    let fits = format!(
        "GET /v1/actions?unused={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(8 * 1024)
    );
    let (_, reply) = request(&server, fits.as_bytes()).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn header_fields_too_large_are_a_431_with_detail() {
    let server = start().await;
    for size in [100 * 1024, 500 * 1024] {
        let raw = format!(
            "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        refused(&server, raw, 431).await;
    }
    // Many small headers add up the same way.
    let many: String = (0..2000)
        .map(|i| format!("X-H{i}: {}\r\n", "a".repeat(40)))
        .collect();
    refused(
        &server,
        format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n"),
        431,
    )
    .await;
}

#[tokio::test]
async fn a_malformed_request_is_a_400_with_detail() {
    let server = start().await;
    let (mut stream, reply) = request(&server, b"GET /health HTTP/1.1\r\nHost x\r\n\r\n").await;
    reply.assert_detail(400);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_closed_cleanly(&mut stream).await;
}

#[tokio::test]
async fn a_ui_path_with_a_nul_byte_is_a_404_with_json_detail() {
    let server = start().await;
    let (_, reply) = request(&server, b"GET /ui/%00 HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    reply.assert_detail(404);
    let (_, reply) = request(
        &server,
        b"GET /ui/a%22b%5C%0A%E2%9C%93 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    reply.assert_detail(404);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("a\"b\\\n\u{2713}"));
}

#[tokio::test]
async fn the_openapi_document_lists_the_live_stream_and_metrics() {
    let server = start().await;
    let (_, reply) = request(
        &server,
        b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    let stream = &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"];
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(stream.get("text/event-stream").is_some(), "{paths:?}");
    let metrics = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(metrics.get("text/plain").is_some(), "{paths:?}");
}

/// Reads until the server closes the connection; returns what it sent before closing.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .expect("the server closes the connection within 20 s")
            .expect("a clean close, not a reset");
        if n == 0 {
            return received;
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_request_head_must_arrive_within_the_header_timeout() {
    let server = start_with(&[("FARAMESH_HEADER_TIMEOUT", "0.5")], None).await;
    // A head that stops in the middle gets a 408 with a detail, then the close.
    let mut slow = TcpStream::connect(&server.address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    let answer = read_to_close(&mut slow).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("in time")),
        "{body}"
    );
    // A connection that never sends anything is closed too.
    let mut silent = TcpStream::connect(&server.address).await.unwrap();
    assert!(read_to_close(&mut silent).await.is_empty());
    health_works(&server).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_but_a_quiet_stream_stays() {
    let server = start_with(&[("FARAMESH_IDLE_TIMEOUT", "0.5")], None).await;
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    let n = stream.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 "));
    // A keep-alive connection that answered one request and then waits is closed.
    let (mut idle, reply) =
        request(&server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(reply.status, 200);
    assert!(read_to_close(&mut idle).await.is_empty());
    // The stream, quiet for at least as long, is a request in flight: it still delivers.
    let submitted = request(
        &server,
        b"POST /v1/actions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"agent_id\":\"a\",\"tool\":\"http\",\"operation\":\"get\",\"params\":{}}",
    )
    .await
    .1
    .json();
    let id = submitted["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(&id) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
            .await
            .expect("the stream delivers the new action")
            .unwrap();
        assert!(n > 0, "the stream was closed");
        seen.extend_from_slice(&head[..n]);
    }
}

#[tokio::test]
async fn connections_over_the_cap_get_a_503_and_the_server_recovers() {
    let server = start_with(&[("FARAMESH_MAX_CONNECTIONS", "4")], None).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        // Each answers a request, so each is known to be served (and counted) by the server.
        let (stream, reply) =
            request(&server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert_eq!(reply.status, 200);
        held.push(stream);
    }
    let (mut refused, reply) =
        request(&server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    reply.assert_detail(503);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("FARAMESH_MAX_CONNECTIONS"));
    assert_closed_cleanly(&mut refused).await;
    held.pop();
    wait_for_health(&server).await;
}

/// Waits until `/health` answers 200 on a new connection.
async fn wait_for_health(server: &Server) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = TcpStream::connect(&server.address).await {
            if stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .is_ok()
                && read_reply(&mut stream).await.status == 200
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health did not recover within 30 s"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn running_out_of_file_descriptors_does_not_stop_the_server() {
    // More silent connections than the process may open files: the server keeps accepting
    // and answering (503 over its cap), and serves again as soon as they are gone.
    let server = start_with(&[("FARAMESH_HEADER_TIMEOUT", "120")], Some(256)).await;
    let mut silent = Vec::new();
    for _ in 0..400 {
        silent.push(TcpStream::connect(&server.address).await.unwrap());
    }
    let (_, reply) = request(&server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    reply.assert_detail(503);
    drop(silent);
    wait_for_health(&server).await;
}

#[tokio::test]
async fn sigterm_ends_the_server_within_the_shutdown_timeout() {
    let server = start_with(&[("FARAMESH_SHUTDOWN_TIMEOUT", "1")], None).await;
    // A request whose body never completes, a connection that sends nothing, a live stream.
    let mut busy = TcpStream::connect(&server.address).await.unwrap();
    busy.write_all(b"POST /v1/actions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"agent_id\"")
        .await
        .unwrap();
    let _silent = TcpStream::connect(&server.address).await.unwrap();
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    assert!(stream.read(&mut head).await.unwrap() > 0);
    health_works(&server).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // Waits for the process itself; the server's own drop then finds it gone.
    let exited = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || nix::sys::wait::waitpid(pid, None)),
    )
    .await
    .expect("the server ends within 30 s of SIGTERM")
    .unwrap()
    .unwrap();
    assert!(
        matches!(exited, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "{exited:?}"
    );
}

/// The server process's open sockets.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_stream_reader_that_stops_reading_is_cut_after_the_write_timeout() {
    let server = start_with(&[("FARAMESH_WRITE_TIMEOUT", "0.5")], None).await;
    let pid = server.child.id();
    // A reader with a tiny receive window that reads the response head and then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket
        .connect(server.address.parse().unwrap())
        .await
        .unwrap();
    stuck
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 512];
    assert!(stuck.read(&mut head).await.unwrap() > 0);
    let with_the_stream = open_sockets(pid);
    // About 3 MB of events, far more than the socket buffers and the server's bounds hold.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let long = "x".repeat(10_000);
    for _ in 0..100 {
        let response = client
            .post(format!("http://{}/v1/actions", server.address))
            .json(&serde_json::json!({"agent_id": long, "tool": long, "operation": long, "params": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    drop(client);
    // The server lets go of the stuck connection (its socket is closed) while the client still
    // does not read.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while open_sockets(pid) >= with_the_stream {
        assert!(
            std::time::Instant::now() < deadline,
            "the server still holds the stuck reader's connection after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    health_works(&server).await;
    drop(stuck);
}
