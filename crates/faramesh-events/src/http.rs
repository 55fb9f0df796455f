//! `GET /v1/events` as Server-Sent Events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::frame::PING;
use crate::history::{History, PastMessage};
use crate::hub::{EventHub, Gap, StreamFilter, Subscription};
use std::collections::HashMap;

/// Bounds for the keep-alive interval. Zero would make the stream send pings in a busy loop,
/// and a huge value overflows `Instant + Duration`, so the configured value is clamped.
const MIN_PING: Duration = Duration::from_millis(1);
const MAX_PING: Duration = Duration::from_secs(24 * 60 * 60);

/// A batch stops growing at this size; the rest goes in the next write. Each stream copies
/// its batch, so this bounds what a thousand lagging streams hold at once.
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// Messages rebuilt from the history per query.
const HISTORY_PAGE: usize = 500;

#[derive(Clone)]
struct Source {
    hub: Arc<EventHub>,
    history: Option<Arc<dyn History>>,
}

/// The events router. With a `history`, a client resuming from a message the buffer no longer
/// holds gets every later one from it first, so a resume has no gap.
pub fn router(hub: Arc<EventHub>, history: Option<Arc<dyn History>>) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .with_state(Source { hub, history })
}

async fn events(
    State(Source { hub, history }): State<Source>,
    Query(filter): Query<StreamFilter>,
    headers: HeaderMap,
) -> Response {
    // A garbled Last-Event-ID is ignored rather than rejected: the client
    // then just gets the ordinary on-connect replay.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let filter = normalise(filter);
    // A status no action can have would make a stream that never says anything.
    if let Some(status) = filter
        .status
        .as_deref()
        .filter(|s| faramesh_core::ActionStatus::parse(s).is_none())
    {
        let all: Vec<&str> = faramesh_core::ActionStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let body = serde_json::json!({
            "detail": format!("`status` must be one of {}, not {status:?}", all.join(", ")),
            "code": "validation_error",
        });
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    }
    // Subscribing here, before the response head is sent, means a client that
    // has seen the 200 is already registered and cannot miss a later publish.
    let subscription = match hub.subscribe(last_event_id, filter.clone()) {
        Ok(subscription) => subscription,
        Err(refused) => {
            let body = serde_json::json!({
                "detail": format!("{refused}; retry later (the limit is FARAMESH_MAX_SUBSCRIBERS)"),
                "code": "unavailable",
            });
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
                axum::Json(body),
            )
                .into_response();
        }
    };
    let missed = match (subscription.gap(), history) {
        (Some(gap), Some(history)) => Some(past(history, gap.clone(), filter)),
        _ => None,
    };
    let ping = hub.config().ping_interval.clamp(MIN_PING, MAX_PING);
    let frames = Frames::new(subscription, ping, move || hub.batch_window().min(MAX_PING));
    let body = match missed {
        Some(missed) => Body::from_stream(missed.chain(frames)),
        None => Body::from_stream(frames),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Reverse proxies such as nginx buffer responses by default, which would hold
            // back live events; this header opts the stream out.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The messages of `gap` from the history, page by page, as frames. A failed query ends the
/// stream (an error chunk makes the body fail): the client reconnects with the last id it got
/// and the resume is tried again, rather than continuing with a gap.
fn past(
    history: Arc<dyn History>,
    gap: Gap,
    filter: StreamFilter,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::try_unfold(Some(gap), move |gap| {
        let history = history.clone();
        let filter = filter.clone();
        async move {
            let Some(gap) = gap else {
                return Ok(None);
            };
            let (page, next) = match gap {
                Gap::Range { after, before } => {
                    let page = history
                        .between(after, before, HISTORY_PAGE)
                        .await
                        .map_err(std::io::Error::other)?;
                    let next = match page.last() {
                        Some(last) if page.len() == HISTORY_PAGE => Some(Gap::Range {
                            after: last.id,
                            before,
                        }),
                        _ => None,
                    };
                    (page, next)
                }
                Gap::Ids(mut ids) => {
                    let rest = ids.split_off(ids.len().min(HISTORY_PAGE));
                    let mut found: HashMap<u64, PastMessage> = history
                        .with_ids(&ids)
                        .await
                        .map_err(std::io::Error::other)?
                        .into_iter()
                        .map(|m| (m.id, m))
                        .collect();
                    // In the order they were published, as the client would have seen them.
                    let page = ids.iter().filter_map(|id| found.remove(id)).collect();
                    (page, (!rest.is_empty()).then_some(Gap::Ids(rest)))
                }
            };
            let timestamp = faramesh_core::timestamp::format(chrono::Utc::now());
            let mut chunk = BytesMut::new();
            for message in page.iter().filter(|m| filter.matches(&m.data)) {
                let frame = crate::frame::Body::of(message.kind, &message.data);
                chunk.extend_from_slice(&frame.frame(message.id, &timestamp));
            }
            Ok(Some((chunk.freeze(), next)))
        }
    })
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

/// A subscription as the bytes of the response body: each message's pre-rendered frame,
/// several at once when they arrive within a batch window, and a ping when the stream is quiet.
struct Frames<W> {
    subscription: Subscription,
    ping_every: Duration,
    /// The batch window, asked anew after each write (it follows the number of subscribers).
    window: W,
    /// The end of the current batch window while `holding`, otherwise the next ping.
    timer: Pin<Box<Sleep>>,
    holding: bool,
    ended: bool,
}

impl<W: Fn() -> Duration> Frames<W> {
    fn new(subscription: Subscription, ping_every: Duration, window: W) -> Frames<W> {
        Frames {
            subscription,
            ping_every,
            window,
            timer: Box::pin(tokio::time::sleep(ping_every)),
            holding: false,
            ended: false,
        }
    }

    /// Every message that is ready now, up to [`MAX_BATCH_BYTES`], as one buffer.
    fn ready_batch(&mut self, cx: &mut Context<'_>) -> Option<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        loop {
            let size = more
                .as_ref()
                .map_or_else(|| first.as_ref().map_or(0, Bytes::len), BytesMut::len);
            if size >= MAX_BATCH_BYTES {
                break;
            }
            match self.subscription.poll_next_unpin(cx) {
                Poll::Ready(Some(msg)) => match (&first, &mut more) {
                    // One message alone goes out as its shared frame, without a copy.
                    (None, _) => first = Some(msg.frame.clone()),
                    (Some(one), None) => {
                        let mut joined = BytesMut::with_capacity(one.len() * 8);
                        joined.extend_from_slice(one);
                        joined.extend_from_slice(&msg.frame);
                        more = Some(joined);
                    }
                    (Some(_), Some(joined)) => joined.extend_from_slice(&msg.frame),
                },
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        more.map(BytesMut::freeze).or(first)
    }
}

impl<W: Fn() -> Duration + Unpin> Stream for Frames<W> {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.holding {
            // Inside the window after a write: messages queue up without waking this stream.
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.holding = false;
            this.timer.as_mut().reset(Instant::now() + this.ping_every);
        }
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(batch) = this.ready_batch(cx) {
            let now = Instant::now();
            let window = (this.window)();
            if window.is_zero() {
                this.timer.as_mut().reset(now + this.ping_every);
            } else {
                this.holding = true;
                this.timer.as_mut().reset(now + window);
            }
            return Poll::Ready(Some(Ok(batch)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.timer.as_mut().reset(Instant::now() + this.ping_every);
            return Poll::Ready(Some(Ok(Bytes::from_static(PING))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{EventKind, HubConfig};
    use serde_json::json;

    async fn next_chunk<W: Fn() -> Duration + Unpin>(frames: &mut Frames<W>) -> String {
        let chunk = frames
            .next()
            .await
            .expect("stream ended")
            .expect("no error");
        String::from_utf8(chunk.to_vec()).expect("utf-8")
    }

    fn ids(chunk: &str) -> Vec<&str> {
        chunk
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .collect()
    }

    // Time is paused: timers fire in order as soon as nothing else can run, so the test is
    // exact and takes no wall time.
    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_sends_at_once_and_a_busy_one_once_per_window() {
        let hub = EventHub::new(HubConfig::default());
        let window = Duration::from_millis(10);
        let mut frames = Frames::new(
            hub.subscribe(None, StreamFilter::default()).unwrap(),
            Duration::from_secs(15),
            move || window,
        );
        let started = Instant::now();
        hub.publish(EventKind::Created, json!({"id": "a"}));
        assert_eq!(ids(&next_chunk(&mut frames).await), ["1"]);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "an idle stream does not wait"
        );

        // Published inside the window: held, then sent together in one write.
        for n in 0..5 {
            hub.publish(EventKind::Updated, json!({"id": "a", "n": n}));
        }
        let chunk = next_chunk(&mut frames).await;
        assert_eq!(ids(&chunk), ["2", "3", "4", "5", "6"]);
        assert_eq!(
            chunk.matches("\n\n").count(),
            5,
            "five whole frames: {chunk:?}"
        );
        assert_eq!(started.elapsed(), window);

        // Quiet for the ping interval after the last window: a keep-alive comment, then the
        // stream is idle again.
        assert_eq!(next_chunk(&mut frames).await, ": ping\n\n");
        assert_eq!(started.elapsed(), window * 2 + Duration::from_secs(15));
        let before = Instant::now();
        hub.publish(EventKind::Updated, json!({"id": "b"}));
        assert_eq!(ids(&next_chunk(&mut frames).await), ["7"]);
        assert_eq!(before.elapsed(), Duration::ZERO);

        // Closing the hub ends the stream after what was queued.
        hub.publish(EventKind::Updated, json!({"id": "c"}));
        hub.close();
        assert_eq!(ids(&next_chunk(&mut frames).await), ["8"]);
        assert!(frames.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_sends_every_message_as_it_comes() {
        let hub = EventHub::new(HubConfig::default());
        let mut frames = Frames::new(
            hub.subscribe(None, StreamFilter::default()).unwrap(),
            Duration::from_secs(15),
            || Duration::ZERO,
        );
        hub.publish(EventKind::Created, json!({"id": "a"}));
        assert_eq!(ids(&next_chunk(&mut frames).await), ["1"]);
        hub.publish(EventKind::Created, json!({"id": "b"}));
        let started = Instant::now();
        assert_eq!(ids(&next_chunk(&mut frames).await), ["2"]);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_stops_growing_at_its_size_limit() {
        let hub = EventHub::new(HubConfig {
            client_queue: 10_000,
            client_queue_bytes: usize::MAX,
            ..HubConfig::default()
        });
        let mut frames = Frames::new(
            hub.subscribe(None, StreamFilter::default()).unwrap(),
            Duration::from_secs(15),
            || Duration::from_millis(10),
        );
        let big = "x".repeat(10_000);
        for n in 0..100 {
            hub.publish(EventKind::Created, json!({"id": n.to_string(), "pad": big}));
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let chunk = next_chunk(&mut frames).await;
            assert!(
                chunk.len() < MAX_BATCH_BYTES + 20_000,
                "{} bytes",
                chunk.len()
            );
            seen.extend(ids(&chunk).into_iter().map(str::to_owned));
        }
        let expected: Vec<String> = (1..=100).map(|n: u64| n.to_string()).collect();
        assert_eq!(seen, expected, "every message once, in order");
    }
}
