//! The in-process hub: numbering, ring buffer, replay and fan-out.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use tokio::sync::mpsc;

/// What each subscriber adds to the batch window (see [`EventHub::batch_window`]): 25 ms at
/// 1,000 subscribers. With 1,000 subscribers of 1,000 events/s, 50 µs gave a p99 of 51-145 ms
/// from run to run on the 2-core machine and 25 µs a steady 41 ms (max 69-79 ms): the shorter
/// wait doubles the writes but keeps each one small.
const WINDOW_PER_CLIENT: Duration = Duration::from_micros(25);

/// Which kind of state change a message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The action was submitted.
    Created,
    /// Any later transition of the action.
    Updated,
}

impl EventKind {
    /// The wire name of the kind (the message's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "action.created",
            EventKind::Updated => "action.updated",
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One published message, as held in the buffer and handed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamMessage {
    /// The message as an SSE frame, rendered once at publication and shared by every
    /// subscriber: a thousand streams cost one serialisation, not a thousand.
    #[serde(skip)]
    pub frame: Bytes,
    /// Monotonic event sequence number, starting at 1.
    pub id: u64,
    /// `"action.created"` or `"action.updated"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The action snapshot (id, status, decision, agent_id, tool, ...).
    pub data: Value,
    /// UTC publication time, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub timestamp: String,
}

impl StreamMessage {
    /// What holding the message costs, about: its frame and its data, which holds the same
    /// text again, plus bookkeeping. The hub's byte bounds count this.
    pub fn cost(&self) -> usize {
        2 * self.frame.len() + 256
    }
}

/// Optional per-client filters; a message is delivered only if every set
/// filter equals the corresponding field of its data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StreamFilter {
    /// Compared with `data["id"]`.
    pub action_id: Option<String>,
    /// Compared with `data["agent_id"]`.
    pub agent_id: Option<String>,
    /// Compared with `data["status"]`.
    pub status: Option<String>,
}

impl StreamFilter {
    /// Whether a message whose data is `data` passes this filter.
    pub fn matches(&self, data: &Value) -> bool {
        field_matches(data, "id", self.action_id.as_deref())
            && field_matches(data, "agent_id", self.agent_id.as_deref())
            && field_matches(data, "status", self.status.as_deref())
    }
}

fn field_matches(data: &Value, field: &str, wanted: Option<&str>) -> bool {
    let Some(wanted) = wanted else {
        return true;
    };
    match data.get(field) {
        Some(Value::String(s)) => s == wanted,
        // Ids may be numeric in some producers; a query string can only carry
        // text, so compare against the number's JSON spelling.
        Some(Value::Number(n)) => n.to_string() == wanted,
        _ => false,
    }
}

/// Hub sizing and timing.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How many recent messages are kept for replay and resume (the contract asks for at
    /// least 1,000).
    pub buffer: usize,
    /// How many (matching) messages a client without `Last-Event-ID` gets on connect.
    pub replay_on_connect: usize,
    /// Capacity of each client's live queue; overflowing it disconnects the client. It must
    /// hold what arrives during a batch window, including a burst of one group commit (up to
    /// 512 actions at once), and stay well below `buffer`, so a disconnected client can resume
    /// with `Last-Event-ID` without a gap. Queues hold shared messages, not copies.
    pub client_queue: usize,
    /// Idle time after which a `: ping` comment is sent.
    pub ping_interval: Duration,
    /// The longest a stream waits after a write before the next one, sending everything that
    /// arrived meanwhile together (see [`EventHub::batch_window`]; the wait grows with the
    /// number of subscribers). An idle stream still sends a new message at once. Zero sends
    /// every message on its own.
    pub batch_window: Duration,
    /// The most the replay buffer holds, in bytes (see [`StreamMessage::cost`]); the oldest
    /// messages leave first. Large messages then shorten the buffer instead of growing memory.
    pub buffer_bytes: usize,
    /// The most one client's queue holds, in bytes; a client that lets more pile up is
    /// disconnected, as on a full queue, and resumes with `Last-Event-ID`.
    pub client_queue_bytes: usize,
    /// Subscribers at once; more are refused ([`Refused::TooManySubscribers`]).
    pub max_subscribers: usize,
    /// How many message ids the hub remembers in publication order (8 bytes each), so a
    /// resume from a message that left the buffer knows exactly which came after it.
    pub remembered_order: usize,
    /// The first message gets `start_after + 1`. A server passes the highest id any earlier
    /// run can have used, so ids keep increasing across restarts and `Last-Event-ID` resumes
    /// never skip a message.
    pub start_after: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            buffer: 4096,
            replay_on_connect: 10,
            client_queue: 1024,
            ping_interval: Duration::from_secs(15),
            batch_window: Duration::from_millis(50),
            buffer_bytes: 16 * 1024 * 1024,
            client_queue_bytes: 1024 * 1024,
            max_subscribers: 5_000,
            remembered_order: 262_144,
            start_after: 0,
        }
    }
}

/// A registered client: its filter and the sending half of its queue.
struct Client {
    key: u64,
    filter: StreamFilter,
    tx: mpsc::Sender<Arc<StreamMessage>>,
    /// Bytes in the queue, shared with the client's [`Subscription`].
    queued: Arc<AtomicUsize>,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the live stream has its maximum number of subscribers ({0})")]
    TooManySubscribers(usize),
}

/// Everything publish and subscribe must see consistently, under one lock.
struct Inner {
    last_id: u64,
    buffer: VecDeque<Arc<StreamMessage>>,
    /// The buffer's cost in bytes.
    buffer_bytes: usize,
    /// The ids of the last [`HubConfig::remembered_order`] messages in the order they were
    /// published, which is not always the order of their ids (see [`Gap::Ids`]).
    published: VecDeque<u64>,
    clients: Vec<Client>,
    next_client_key: u64,
    /// Set by [`EventHub::close`]: no client is registered any more.
    closed: bool,
}

/// The hub's state and, readable without the lock, how many clients it has.
struct Shared {
    state: Mutex<Inner>,
    clients: AtomicUsize,
}

impl Shared {
    /// Called under the lock after every change to the client list.
    fn recount(&self, inner: &Inner) {
        self.clients.store(inner.clients.len(), Ordering::Relaxed);
    }
}

/// The event hub. Cheap to share behind an [`Arc`]; all methods take `&self`.
pub struct EventHub {
    config: HubConfig,
    // Shared (rather than owned) so a Subscription can unregister itself on
    // drop; it holds only a Weak, so dropping the hub ends every stream.
    inner: Arc<Shared>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("config", &self.config)
            .field("last_id", &self.last_id())
            .field("clients", &self.client_count())
            .finish()
    }
}

/// Locks, recovering from poisoning: the protected state is updated in a way
/// that stays consistent even if a holder panicked, and the stream must keep
/// working rather than propagate a panic into every request.
fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventHub {
    /// Creates a hub.
    pub fn new(config: HubConfig) -> Arc<EventHub> {
        let capacity = config.buffer.min(4096);
        let start_after = config.start_after;
        Arc::new(EventHub {
            config,
            inner: Arc::new(Shared {
                state: Mutex::new(Inner {
                    last_id: start_after,
                    buffer: VecDeque::with_capacity(capacity),
                    buffer_bytes: 0,
                    published: VecDeque::new(),
                    clients: Vec::new(),
                    next_client_key: 0,
                    closed: false,
                }),
                clients: AtomicUsize::new(0),
            }),
        })
    }

    /// The configuration the hub was created with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Assigns the next id (starting at 1), timestamps the message, stores it
    /// in the ring buffer and hands it to every matching subscriber without
    /// ever waiting: a subscriber whose queue is full is disconnected.
    /// Returns the message.
    pub fn publish(&self, kind: EventKind, data: Value) -> Arc<StreamMessage> {
        self.publish_inner(None, kind, data)
    }

    /// Publishes with an id chosen elsewhere: the ledger sequence number of the change, when
    /// several replicas share one database and must give every message the same id. Such ids
    /// follow commit order, which need not be numeric order; resuming is by position (see
    /// [`EventHub::subscribe`]), so that is fine.
    pub fn publish_with_id(&self, id: u64, kind: EventKind, data: Value) -> Arc<StreamMessage> {
        self.publish_inner(Some(id), kind, data)
    }

    fn publish_inner(&self, id: Option<u64>, kind: EventKind, data: Value) -> Arc<StreamMessage> {
        // Serialised before taking the lock; only the id and the time are added under it.
        let body = crate::frame::Body::of(kind, &data);
        let mut inner = lock(&self.inner);
        // Id and timestamp are taken under the lock so that id order and
        // timestamp order agree across concurrent publishers.
        let id = id.unwrap_or_else(|| inner.last_id.saturating_add(1));
        inner.last_id = inner.last_id.max(id);
        let timestamp = faramesh_core::timestamp::format(chrono::Utc::now());
        let msg = Arc::new(StreamMessage {
            frame: body.frame(id, &timestamp),
            id,
            kind: kind.as_str(),
            data,
            timestamp,
        });
        if self.config.remembered_order > 0 {
            if inner.published.len() >= self.config.remembered_order {
                inner.published.pop_front();
            }
            inner.published.push_back(id);
        }
        let cost = msg.cost();
        if self.config.buffer > 0 && cost <= self.config.buffer_bytes {
            while inner.buffer.len() >= self.config.buffer
                || inner.buffer_bytes + cost > self.config.buffer_bytes
            {
                let Some(oldest) = inner.buffer.pop_front() else {
                    break;
                };
                inner.buffer_bytes -= oldest.cost();
            }
            inner.buffer.push_back(Arc::clone(&msg));
            inner.buffer_bytes += cost;
        }
        let queue_bytes = self.config.client_queue_bytes;
        // Sending under the same lock as subscribe's replay+registration is
        // what guarantees a client neither misses nor duplicates a message at
        // the replay/live boundary, and that each queue sees ids in order.
        inner.clients.retain(|client| {
            if !client.filter.matches(&msg.data) {
                // Prune clients whose receiver is gone even if they would not
                // have received this message.
                return !client.tx.is_closed();
            }
            // Full or closed: drop the sender, which ends that client's stream
            // after it drains what is already queued; it resumes with
            // Last-Event-ID.
            // Too many bytes waiting counts as full: a reader that stopped costs bounded memory.
            if client.queued.load(Ordering::Relaxed) + cost > queue_bytes {
                return false;
            }
            let sent = client.tx.try_send(Arc::clone(&msg)).is_ok();
            if sent {
                client.queued.fetch_add(cost, Ordering::Relaxed);
            }
            sent
        });
        self.inner.recount(&inner);
        drop(inner);
        msg
    }

    /// Messages to replay (the last `replay_on_connect` matching ones, or with
    /// `last_event_id` every buffered matching message published after that one; when that
    /// message is no longer buffered, every buffered one with a greater id)
    /// followed by live ones, as a stream that ends when the client is
    /// disconnected for being slow (or the hub is dropped).
    ///
    /// Refused when the hub has [`HubConfig::max_subscribers`] already.
    pub fn subscribe(
        &self,
        last_event_id: Option<u64>,
        filter: StreamFilter,
    ) -> Result<Subscription, Refused> {
        // mpsc::channel panics on a zero capacity; one slot is the smallest
        // queue that can work at all.
        let (tx, rx) = mpsc::channel(self.config.client_queue.max(1));
        let mut inner = lock(&self.inner);
        if !inner.closed && inner.clients.len() >= self.config.max_subscribers {
            return Err(Refused::TooManySubscribers(self.config.max_subscribers));
        }
        let mut gap = None;
        let replay: VecDeque<Arc<StreamMessage>> = match last_event_id {
            Some(after) => match inner.buffer.iter().rposition(|m| m.id == after) {
                Some(position) => inner
                    .buffer
                    .iter()
                    .skip(position + 1)
                    .filter(|m| filter.matches(&m.data))
                    .cloned()
                    .collect(),
                None => {
                    let (replay, missing) = resume_beyond_buffer(&inner, after, &filter);
                    gap = missing;
                    replay
                }
            },
            None => {
                let mut recent: Vec<Arc<StreamMessage>> = inner
                    .buffer
                    .iter()
                    .rev()
                    .filter(|m| filter.matches(&m.data))
                    .take(self.config.replay_on_connect)
                    .cloned()
                    .collect();
                recent.reverse();
                recent.into()
            }
        };
        let key = inner.next_client_key;
        inner.next_client_key = inner.next_client_key.wrapping_add(1);
        // After close the sender is dropped at once: the stream ends after its replay.
        let queued = Arc::new(AtomicUsize::new(0));
        if !inner.closed {
            inner.clients.push(Client {
                key,
                filter,
                tx,
                queued: queued.clone(),
            });
            self.inner.recount(&inner);
        }
        drop(inner);
        Ok(Subscription {
            replay,
            rx,
            queued,
            gap,
            hub: Arc::downgrade(&self.inner),
            key,
        })
    }

    /// The buffer's cost in bytes (see [`HubConfig::buffer_bytes`]).
    pub fn buffered_bytes(&self) -> usize {
        lock(&self.inner).buffer_bytes
    }

    /// Ends every stream (after what is already queued) and every later one after its
    /// replay. Used at shutdown: open streams would otherwise keep the server waiting forever.
    pub fn close(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        inner.clients.clear();
        self.inner.recount(&inner);
    }

    /// Number of currently registered clients.
    pub fn client_count(&self) -> usize {
        self.inner.clients.load(Ordering::Relaxed)
    }

    /// How long a busy stream collects messages before its next write: a few microseconds
    /// per subscriber, up to [`HubConfig::batch_window`]. With a handful of subscribers a
    /// stream sends almost at once; with a thousand, each makes one write per window instead
    /// of one per message, which is what lets them all keep up.
    pub fn batch_window(&self) -> Duration {
        let clients = u32::try_from(self.client_count()).unwrap_or(u32::MAX);
        (WINDOW_PER_CLIENT.saturating_mul(clients)).min(self.config.batch_window)
    }

    /// Id of the most recently published message (0 before the first).
    pub fn last_id(&self) -> u64 {
        lock(&self.inner).last_id
    }
}

/// A client's view of the hub: replayed messages, then live ones.
///
/// Dropping it unregisters the client.
pub struct Subscription {
    replay: VecDeque<Arc<StreamMessage>>,
    rx: mpsc::Receiver<Arc<StreamMessage>>,
    queued: Arc<AtomicUsize>,
    gap: Option<Gap>,
    hub: Weak<Shared>,
    key: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pending_replay", &self.replay.len())
            .field("key", &self.key)
            .finish()
    }
}

/// Messages are shared with every other subscriber, not copied.
impl Stream for Subscription {
    type Item = Arc<StreamMessage>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Arc<StreamMessage>>> {
        if let Some(msg) = self.replay.pop_front() {
            return Poll::Ready(Some(msg));
        }
        let received = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(msg)) = &received {
            self.queued.fetch_sub(msg.cost(), Ordering::Relaxed);
        }
        received
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.replay.len(), None)
    }
}

/// Messages a resuming client needs that the buffer no longer has. They are in the ledger
/// (see [`crate::History`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// These ids, in the order they were published. With a database several replicas share,
    /// ids follow the ledger, but changes are announced in the order they commit, which can
    /// differ: a change with a smaller id announced after the resume point is still owed.
    Ids(Vec<u64>),
    /// Every id with `after < id < before`: the resume point is older than the order the hub
    /// remembers.
    Range { after: u64, before: u64 },
}

impl Subscription {
    /// What this resume misses from the buffer, if anything.
    pub fn gap(&self) -> Option<&Gap> {
        self.gap.as_ref()
    }
}

/// For a resume from `after`, a message the buffer no longer holds: the buffered messages
/// that came after it, and the gap before them.
fn resume_beyond_buffer(
    inner: &Inner,
    after: u64,
    filter: &StreamFilter,
) -> (VecDeque<Arc<StreamMessage>>, Option<Gap>) {
    if let Some(position) = inner.published.iter().rposition(|&id| id == after) {
        let later: std::collections::HashSet<u64> =
            inner.published.iter().skip(position + 1).copied().collect();
        let buffered: std::collections::HashSet<u64> = inner.buffer.iter().map(|m| m.id).collect();
        let replay = inner
            .buffer
            .iter()
            .filter(|m| later.contains(&m.id) && filter.matches(&m.data))
            .cloned()
            .collect();
        let missing: Vec<u64> = inner
            .published
            .iter()
            .skip(position + 1)
            .filter(|id| !buffered.contains(id))
            .copied()
            .collect();
        return (replay, (!missing.is_empty()).then_some(Gap::Ids(missing)));
    }
    let replay = inner
        .buffer
        .iter()
        .filter(|m| m.id > after && filter.matches(&m.data))
        .cloned()
        .collect();
    let gap = match inner.buffer.front() {
        Some(oldest) if after < oldest.id => Some(Gap::Range {
            after,
            before: oldest.id,
        }),
        None if after < inner.last_id => Some(Gap::Range {
            after,
            before: inner.last_id.saturating_add(1),
        }),
        _ => None,
    };
    (replay, gap)
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.hub.upgrade() {
            let key = self.key;
            let mut inner = lock(&shared);
            inner.clients.retain(|c| c.key != key);
            shared.recount(&inner);
        }
    }
}
