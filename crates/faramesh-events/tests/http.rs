//! `GET /v1/events` over real HTTP: headers, SSE framing, query filters,
//! the Last-Event-ID header and keep-alive pings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use faramesh_events::{router, EventHub, EventKind, HubConfig};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

/// Upper bound on any single await; only reached if the code under test hangs.
const LIMIT: Duration = Duration::from_secs(10);

async fn serve(hub: Arc<EventHub>) -> SocketAddr {
    serve_with_history(hub, None).await
}

async fn serve_with_history(
    hub: Arc<EventHub>,
    history: Option<Arc<dyn faramesh_events::History>>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router(hub, history)).await });
    addr
}

fn client() -> reqwest::Client {
    // Bypass any proxy configured in the environment: the server is local.
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// One parsed SSE frame (the text between blank lines).
#[derive(Debug, Default)]
struct Frame {
    raw: String,
    id: Option<String>,
    data: Vec<String>,
    comments: Vec<String>,
}

impl Frame {
    fn parse(raw: String) -> Frame {
        let mut frame = Frame::default();
        for line in raw.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                frame.comments.push(comment.trim_start().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => frame.id = Some(value),
                "data" => frame.data.push(value),
                _ => {}
            }
        }
        frame.raw = raw;
        frame
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.data.join("\n")).expect("data is JSON")
    }
}

type Body = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// Incremental SSE parser over a response body.
struct SseReader {
    body: Body,
    buf: Vec<u8>,
}

impl SseReader {
    fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            body: Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buf: Vec::new(),
        }
    }

    /// The next complete frame, awaiting more body chunks as needed.
    async fn frame(&mut self) -> Frame {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let text = String::from_utf8(raw).expect("utf-8 frame");
                return Frame::parse(text.trim_end_matches('\n').to_owned());
            }
            let chunk = tokio::time::timeout(LIMIT, self.body.next())
                .await
                .expect("no SSE data within the limit")
                .expect("body ended")
                .expect("body error");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next frame that carries a message (skipping keep-alive comments).
    async fn message(&mut self) -> Frame {
        loop {
            let frame = self.frame().await;
            if frame.id.is_some() || !frame.data.is_empty() {
                return frame;
            }
        }
    }
}

async fn connect(addr: SocketAddr, query: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = client().get(format!("http://{addr}/v1/events{query}"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = tokio::time::timeout(LIMIT, req.send())
        .await
        .expect("no response within the limit")
        .expect("request failed");
    assert_eq!(resp.status(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content-type was {content_type:?}"
    );
    SseReader::new(resp)
}

fn action(id: &str, status: &str, agent: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "decision": "allow",
        "agent_id": agent,
        "tool": "shell",
        "operation": "run",
        "reason": "policy rule 3",
        "risk_level": "medium",
    })
}

#[tokio::test]
async fn streams_published_messages_as_sse() {
    let hub = EventHub::new(HubConfig::default());
    let addr = serve(hub.clone()).await;
    // The handler subscribes before sending the response head, so once
    // `connect` has seen the 200 the client is registered.
    let mut sse = connect(addr, "", None).await;
    assert_eq!(hub.client_count(), 1);

    let data = action("act-1", "pending_approval", "agent-a");
    let published = hub.publish(EventKind::Created, data.clone());

    let frame = sse.message().await;
    assert_eq!(frame.id.as_deref(), Some("1"));
    assert_eq!(frame.data.len(), 1, "one data line per message");
    let body = frame.json();
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, vec!["action_id", "type", "data", "timestamp"]);
    assert_eq!(
        body["action_id"], "act-1",
        "the action id is also at the top level"
    );
    assert_eq!(body["type"], "action.created");
    assert_eq!(body["data"], data);
    assert_eq!(body["timestamp"], published.timestamp.as_str());
    assert!(published.timestamp.ends_with('Z'));

    hub.publish(EventKind::Updated, action("act-1", "approved", "agent-a"));
    let frame = sse.message().await;
    assert_eq!(frame.id.as_deref(), Some("2"));
    assert_eq!(frame.json()["type"], "action.updated");
    assert_eq!(frame.json()["data"]["status"], "approved");
}

#[tokio::test]
async fn query_filters_apply_over_http() {
    let hub = EventHub::new(HubConfig::default());
    let addr = serve(hub.clone()).await;
    let mut filtered = connect(addr, "?status=approved&agent_id=agent-a", None).await;
    let mut by_action = connect(addr, "?action_id=act-2", None).await;
    // Empty parameters mean "no filter".
    let mut unfiltered = connect(addr, "?status=&agent_id=&action_id=", None).await;

    hub.publish(
        EventKind::Created,
        action("act-1", "pending_approval", "agent-a"),
    );
    hub.publish(EventKind::Updated, action("act-2", "approved", "agent-b"));
    hub.publish(EventKind::Updated, action("act-3", "approved", "agent-a"));

    let frame = filtered.message().await;
    assert_eq!(frame.id.as_deref(), Some("3"));
    assert_eq!(frame.json()["data"]["id"], "act-3");

    let frame = by_action.message().await;
    assert_eq!(frame.id.as_deref(), Some("2"));

    for expected in ["1", "2", "3"] {
        assert_eq!(unfiltered.message().await.id.as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn last_event_id_header_resumes_and_garbage_is_ignored() {
    let hub = EventHub::new(HubConfig::default());
    let addr = serve(hub.clone()).await;
    for i in 1..=5 {
        hub.publish(
            EventKind::Updated,
            action(&format!("act-{i}"), "approved", "agent-a"),
        );
    }

    let mut resumed = connect(addr, "", Some("3")).await;
    assert_eq!(resumed.message().await.id.as_deref(), Some("4"));
    assert_eq!(resumed.message().await.id.as_deref(), Some("5"));

    // A non-numeric Last-Event-ID is not an error: the client gets the
    // ordinary on-connect replay.
    let mut garbled = connect(addr, "", Some("not-a-number")).await;
    for expected in ["1", "2", "3", "4", "5"] {
        assert_eq!(garbled.message().await.id.as_deref(), Some(expected));
    }

    // Header resume combines with query filters.
    let mut filtered = connect(addr, "?action_id=act-5", Some("1")).await;
    assert_eq!(filtered.message().await.id.as_deref(), Some("5"));

    hub.publish(EventKind::Updated, action("act-5", "executed", "agent-a"));
    assert_eq!(resumed.message().await.id.as_deref(), Some("6"));
    assert_eq!(garbled.message().await.id.as_deref(), Some("6"));
    assert_eq!(filtered.message().await.id.as_deref(), Some("6"));
}

#[tokio::test]
async fn idle_stream_sends_ping_comments() {
    let hub = EventHub::new(HubConfig {
        ping_interval: Duration::from_millis(100),
        ..HubConfig::default()
    });
    let addr = serve(hub.clone()).await;
    let mut sse = connect(addr, "", None).await;
    // Nothing is published, so the first frame can only be the keep-alive.
    let frame = sse.frame().await;
    assert_eq!(frame.raw, ": ping");
    assert_eq!(frame.comments, vec!["ping".to_owned()]);
    assert!(frame.id.is_none() && frame.data.is_empty());
}

#[tokio::test]
async fn malformed_query_is_a_client_error_not_a_crash() {
    let hub = EventHub::new(HubConfig::default());
    let addr = serve(hub.clone()).await;
    let resp = tokio::time::timeout(
        LIMIT,
        client()
            .get(format!("http://{addr}/v1/events?status=a&status=b"))
            .send(),
    )
    .await
    .expect("no response within the limit")
    .expect("request failed");
    assert!(resp.status().is_client_error(), "got {}", resp.status());
    assert_eq!(hub.client_count(), 0);

    // The server is still serving afterwards.
    let mut sse = connect(addr, "?unknown=1", None).await;
    hub.publish(EventKind::Created, action("act-1", "pending", "agent-a"));
    assert_eq!(sse.message().await.id.as_deref(), Some("1"));
}

/// A subscriber that never reads fills its socket and then its queue; it is dropped, while
/// publishing never waits and a reading subscriber gets every message, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscriber_delays_neither_publishing_nor_other_subscribers() {
    use tokio::io::AsyncWriteExt;

    let hub = EventHub::new(HubConfig {
        client_queue: 64,
        ..HubConfig::default()
    });
    let addr = serve(hub.clone()).await;
    // Never read from; a small receive buffer so it fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stuck = socket.connect(addr).await.expect("connect");
    stuck
        .write_all(format!("GET /v1/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut reader = connect(addr, "", None).await;
    tokio::time::timeout(LIMIT, async {
        while hub.client_count() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both subscribers registered");

    // 20 MB of messages, far beyond what the stuck client's socket and queue can hold, in
    // groups the reader takes in before the next: each group is published from a plain
    // thread, which would never finish if publishing waited for the stuck client.
    let pad = "x".repeat(10_000);
    for group in 0..40u64 {
        let (publisher, pad) = (hub.clone(), pad.clone());
        tokio::time::timeout(
            LIMIT,
            tokio::task::spawn_blocking(move || {
                for n in 1..=50 {
                    let id = group * 50 + n;
                    publisher.publish(
                        EventKind::Created,
                        json!({"id": format!("act-{id}"), "pad": pad}),
                    );
                }
            }),
        )
        .await
        .expect("publishing waited for a subscriber")
        .expect("publisher panicked");
        for n in 1..=50 {
            let frame = reader.message().await;
            assert_eq!(
                frame.id,
                Some((group * 50 + n).to_string()),
                "every message, in order"
            );
        }
    }
    assert_eq!(hub.client_count(), 1, "the stuck subscriber was dropped");
    drop(stuck);
}

/// A ledger in memory: every message ever published, by id.
struct Ledger(Vec<faramesh_events::PastMessage>);

impl faramesh_events::History for Ledger {
    fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> futures::future::BoxFuture<'_, Result<Vec<faramesh_events::PastMessage>, String>> {
        let page = self
            .0
            .iter()
            .filter(|m| m.id > after && m.id < before)
            .take(limit)
            .cloned()
            .collect();
        Box::pin(async move { Ok(page) })
    }

    fn with_ids<'a>(
        &'a self,
        ids: &'a [u64],
    ) -> futures::future::BoxFuture<'a, Result<Vec<faramesh_events::PastMessage>, String>> {
        let found = self
            .0
            .iter()
            .filter(|m| ids.contains(&m.id))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// Publishes messages with these ids, in this order, each recorded in a ledger too; serves
/// the hub with that ledger as its history.
async fn serve_published(
    hub: Arc<EventHub>,
    ids: &[u64],
    agent: fn(u64) -> &'static str,
) -> SocketAddr {
    let mut ledger = Vec::new();
    for &id in ids {
        let data = action(&format!("a{id}"), "allowed", agent(id));
        hub.publish_with_id(id, EventKind::Updated, data.clone());
        ledger.push(faramesh_events::PastMessage {
            id,
            kind: EventKind::Updated,
            data,
        });
    }
    serve_with_history(hub, Some(Arc::new(Ledger(ledger)))).await
}

#[tokio::test]
async fn a_resume_older_than_the_buffer_gets_the_rest_from_the_history() {
    // The hub remembers no publication order here: the history is read by id range.
    let hub = EventHub::new(HubConfig {
        buffer: 10,
        remembered_order: 0,
        ..HubConfig::default()
    });
    // More than a page of history, so paging is exercised too.
    let ids: Vec<u64> = (1..=1_200).collect();
    let addr = serve_published(hub, &ids, |n| if n % 2 == 0 { "even" } else { "odd" }).await;

    let mut sse = connect(addr, "", Some("3")).await;
    for n in 4..=1_200u64 {
        let frame = sse.message().await;
        assert_eq!(frame.id.as_deref(), Some(n.to_string().as_str()));
        assert_eq!(frame.json()["data"]["id"], format!("a{n}"));
    }
    // Filters apply to the history as to the buffer.
    let mut even = connect(addr, "?agent_id=even", Some("3")).await;
    for n in (4..=1_200u64).step_by(2) {
        assert_eq!(
            even.message().await.id.as_deref(),
            Some(n.to_string().as_str())
        );
    }
}

#[tokio::test]
async fn a_resume_gets_changes_announced_after_it_even_with_smaller_ids() {
    // Ids follow the ledger, announcements follow commits: 5 was announced after 6, so a
    // client that saw 6 is owed 5. The buffer has forgotten both; the hub remembers the order.
    let hub = EventHub::new(HubConfig {
        buffer: 2,
        ..HubConfig::default()
    });
    let addr = serve_published(hub, &[1, 2, 3, 4, 6, 5, 7, 8, 9, 10], |_| "agent").await;
    let mut sse = connect(addr, "", Some("6")).await;
    for id in [5u64, 7, 8, 9, 10] {
        assert_eq!(
            sse.message().await.id.as_deref(),
            Some(id.to_string().as_str())
        );
    }
}
