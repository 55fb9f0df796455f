//! `GET /v1/events` as Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::hub::{EventHub, StreamFilter, StreamMessage};

/// Bounds for the keep-alive interval. Zero would make axum emit pings in a
/// busy loop, and a huge value overflows `Instant + Duration` inside axum's
/// keep-alive timer (a panic), so the configured value is clamped.
const MIN_PING: Duration = Duration::from_millis(1);
const MAX_PING: Duration = Duration::from_secs(24 * 60 * 60);

/// The `data:` payload; the sequence number travels in the SSE `id:` field
/// instead, as the contract specifies.
#[derive(Serialize)]
struct WireMessage<'a> {
    /// The action's id at the top level too: clients (such as the original Python SDK)
    /// filter the stream on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    action_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a Value,
    timestamp: &'a str,
}

/// The events router, with the hub as its state.
pub fn router(hub: Arc<EventHub>) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(hub)
}

async fn events(
    State(hub): State<Arc<EventHub>>,
    Query(filter): Query<StreamFilter>,
    headers: HeaderMap,
) -> impl IntoResponse {
    // A garbled Last-Event-ID is ignored rather than rejected: the client
    // then just gets the ordinary on-connect replay.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    // Subscribing here, before the response head is sent, means a client that
    // has seen the 200 is already registered and cannot miss a later publish.
    let subscription = hub.subscribe(last_event_id, normalise(filter));
    let stream =
        subscription.filter_map(|msg| std::future::ready(to_event(&msg).map(Ok::<_, Infallible>)));
    let ping = hub.config().ping_interval.clamp(MIN_PING, MAX_PING);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(ping).text("ping"));
    (
        // Reverse proxies such as nginx buffer responses by default, which
        // would hold back live events; this header opts the stream out.
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        sse,
    )
}

/// UIs commonly send unselected filters as empty parameters (`?status=`);
/// those mean "no filter", not "match an empty value".
fn normalise(filter: StreamFilter) -> StreamFilter {
    let keep = |v: Option<String>| v.filter(|s| !s.is_empty());
    StreamFilter {
        action_id: keep(filter.action_id),
        agent_id: keep(filter.agent_id),
        status: keep(filter.status),
    }
}

fn to_event(msg: &StreamMessage) -> Option<Event> {
    let wire = WireMessage {
        action_id: msg.data.get("id").and_then(|v| v.as_str()),
        kind: msg.kind,
        data: &msg.data,
        timestamp: &msg.timestamp,
    };
    // Serialising a serde_json::Value cannot fail; should it ever, skipping
    // the one message beats tearing down the client's stream.
    let json = serde_json::to_string(&wire).ok()?;
    // Compact JSON never contains a raw newline, so this is a single `data:` line.
    Some(Event::default().id(msg.id.to_string()).data(json))
}
