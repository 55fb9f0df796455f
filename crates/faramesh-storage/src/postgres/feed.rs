//! The change feed: every write transaction sends a `NOTIFY` with its change, delivered to
//! every listening replica only if and when it commits, in commit order. A listener that loses
//! its connection reconnects and catches up from the ledger, so no committed change of an
//! action is skipped. Token changes come on a channel of their own, in the same order; those
//! missed while disconnected are not caught up here: the token version (see
//! `Store::token_version`) shows a replica that it missed some.

use super::raw_action_at;
use crate::decode::{corrupt, decode_token};
use crate::{Change, FeedItem, TokenChange, TokenRecord};
use futures::StreamExt;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// The notification channel of actions.
pub(super) const CHANNEL: &str = "faramesh_changes";

/// The notification channel of API tokens.
pub(super) const TOKEN_CHANNEL: &str = "faramesh_tokens";

/// A token change as notified: the token with its secret's hash, which a replica needs to find
/// it in its cache (the hash is stored in the same database, readable by the same roles).
#[derive(serde::Serialize, serde::Deserialize)]
struct TokenNote {
    version: u64,
    id: String,
    name: String,
    role: String,
    secret_hash: String,
    created_at: String,
    revoked_at: Option<String>,
}

/// The notification payload of a token change committed as token version `version`.
pub(super) fn token_payload(version: u64, token: &TokenRecord) -> crate::StoreResult<String> {
    let note = TokenNote {
        version,
        id: token.id.clone(),
        name: token.name.clone(),
        role: token.role.as_str().to_owned(),
        secret_hash: token.secret_hash.clone(),
        created_at: token.created_at.clone(),
        revoked_at: token.revoked_at.clone(),
    };
    serde_json::to_string(&note).map_err(|e| corrupt("token change", e))
}

/// The token change of a notification payload; `None` for one that is not (never written).
fn token_change(payload: &str) -> Option<TokenChange> {
    let note: TokenNote = serde_json::from_str(payload).ok()?;
    let token = decode_token((
        note.id,
        note.name,
        note.role,
        note.secret_hash,
        note.created_at,
        note.revoked_at,
    ))
    .ok()?;
    Some(TokenChange {
        version: note.version,
        token,
    })
}

/// The `application_name` of each replica's listening connection.
pub const APPLICATION_NAME: &str = "faramesh change feed";

/// Longest text kept per field in a notification; PostgreSQL refuses payloads over 8000 bytes.
const MAX_FIELD_BYTES: usize = 900;

/// Largest notification payload written; PostgreSQL's limit is 8000 bytes.
const MAX_PAYLOAD_BYTES: usize = 7900;

/// Notification payloads for `changes`: JSON arrays, as many changes in each as fit.
pub(super) fn payloads(changes: Vec<Change>) -> crate::StoreResult<Vec<String>> {
    let mut payloads = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for change in changes {
        let change = Change {
            action: change.action.bounded(MAX_FIELD_BYTES),
            ..change
        };
        let text =
            serde_json::to_string(&change).map_err(|e| crate::decode::corrupt("change", e))?;
        if !current.is_empty() && size + text.len() + 1 > MAX_PAYLOAD_BYTES {
            payloads.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += text.len() + 1;
        current.push(text);
    }
    if !current.is_empty() {
        payloads.push(format!("[{}]", current.join(",")));
    }
    Ok(payloads)
}

/// Starts listening; the receiver ends only when the store is dropped.
pub(super) fn spawn(mut config: tokio_postgres::Config, after: u64) -> mpsc::Receiver<FeedItem> {
    // So an operator (and a test) can tell the listening connection apart in pg_stat_activity.
    config.application_name(APPLICATION_NAME);
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(listen(config, tx, after));
    rx
}

/// How far below the highest sequence number seen a reconnecting listener looks again.
/// Sequence numbers are taken when rows are inserted, but transactions commit in their own
/// order: one holding smaller numbers can commit after a later one was announced. If that
/// happens while the listener is disconnected, its notification is lost, and a catch-up
/// from the highest number seen would skip it. Concurrent transactions hold at most a few
/// group commits' worth of numbers (512 actions, two events each, per replica), well inside
/// this window.
const REORDER_WINDOW: u64 = 20_000;

/// The sequence numbers delivered most recently, so a catch-up that looks back does not
/// deliver a change twice.
#[derive(Default)]
struct Delivered {
    order: VecDeque<u64>,
    seen: HashSet<u64>,
}

impl Delivered {
    fn contains(&self, seq: u64) -> bool {
        self.seen.contains(&seq)
    }

    fn insert(&mut self, seq: u64) {
        if self.seen.insert(seq) {
            self.order.push_back(seq);
            // Twice the window: what can still be looked at again is remembered.
            while self.order.len() > 2 * REORDER_WINDOW as usize {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}

async fn listen(config: tokio_postgres::Config, tx: mpsc::Sender<FeedItem>, after: u64) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    let mut feed = Position {
        last_seq: after,
        delivered: Delivered::default(),
        reconnected: false,
    };
    let mut backoff = FIRST_RETRY;
    while !tx.is_closed() {
        let began = std::time::Instant::now();
        match session(&config, &tx, &mut feed).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "change feed interrupted; reconnecting");
                // A connection that worked for a while was not part of the same outage.
                if began.elapsed() > Duration::from_secs(30) {
                    backoff = FIRST_RETRY;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Where the feed is: the highest sequence number delivered, and which were delivered lately.
struct Position {
    last_seq: u64,
    delivered: Delivered,
    /// Set after the first session: only a reconnection can have lost notifications.
    reconnected: bool,
}

/// One connection's worth of listening. `Ok` when the receiver is gone, `Err` when the
/// connection failed.
async fn session(
    config: &tokio_postgres::Config,
    tx: &mpsc::Sender<FeedItem>,
    feed: &mut Position,
) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let note = (n.channel() == TOKEN_CHANNEL, n.payload().to_owned());
                    if notes_tx.send(note).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {TOKEN_CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    // Listening now: whatever committed since the last change seen comes from the ledger
    // (after a reconnection, from a little below it: see REORDER_WINDOW), and what was
    // delivered already, from there or by an earlier notification, is skipped.
    let from = if feed.reconnected {
        feed.last_seq.saturating_sub(REORDER_WINDOW)
    } else {
        feed.last_seq
    };
    feed.reconnected = true;
    for change in missed(&client, from).await? {
        if !deliver(feed, tx, change).await {
            return Ok(());
        }
    }
    while let Some((token, payload)) = notes.recv().await {
        if token {
            if let Some(change) = token_change(&payload) {
                if tx.send(FeedItem::Token(change)).await.is_err() {
                    return Ok(());
                }
            }
            continue;
        }
        let Ok(changes) = serde_json::from_str::<Vec<Change>>(&payload) else {
            continue;
        };
        for change in changes {
            if !deliver(feed, tx, change).await {
                return Ok(());
            }
        }
    }
    driver.abort();
    Err("the connection closed".into())
}

/// Sends `change` unless it was delivered already; `false` when the receiver is gone.
async fn deliver(feed: &mut Position, tx: &mpsc::Sender<FeedItem>, change: Change) -> bool {
    if feed.delivered.contains(change.seq) {
        return true;
    }
    feed.delivered.insert(change.seq);
    feed.last_seq = feed.last_seq.max(change.seq);
    tx.send(FeedItem::Action(change)).await.is_ok()
}

/// Changes committed after `after`, from the ledger.
async fn missed(client: &tokio_postgres::Client, after: u64) -> Result<Vec<Change>, String> {
    changes_between(client, after, u64::MAX, i64::MAX)
        .await
        .map_err(|e| e.to_string())
}

/// The changes with these sequence numbers, in ledger order (see [`Change::from_event`]).
pub(super) async fn changes_with_seqs(
    client: &tokio_postgres::Client,
    seqs: &[u64],
) -> crate::StoreResult<Vec<Change>> {
    let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
    let sql = format!(
        "SELECT e.seq, e.event_type, e.meta, {} FROM events e JOIN actions a ON a.id = e.action_id \
         WHERE e.seq = ANY($1) AND e.event_type <> 'created' ORDER BY e.seq",
        crate::decode::qualified_action_columns("a")
    );
    let rows = client
        .query(&sql, &[&seqs])
        .await
        .map_err(super::unavailable)?;
    changes_of(rows)
}

fn changes_of(rows: Vec<tokio_postgres::Row>) -> crate::StoreResult<Vec<Change>> {
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(|e| corrupt("seq", e))?;
        let event_type: String = row.try_get(1).map_err(|e| corrupt("event_type", e))?;
        let meta: String = row.try_get(2).map_err(|e| corrupt("meta", e))?;
        let action = raw_action_at(&row, 3)?;
        changes.extend(Change::from_event(seq, &event_type, &meta, &action));
    }
    Ok(changes)
}

/// Changes with `after < seq < before`, in ledger order, at most `limit` (see
/// [`Change::from_event`]).
pub(super) async fn changes_between(
    client: &tokio_postgres::Client,
    after: u64,
    before: u64,
    limit: i64,
) -> crate::StoreResult<Vec<Change>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT e.seq, e.event_type, e.meta, {} FROM events e JOIN actions a ON a.id = e.action_id \
         WHERE e.seq > $1 AND e.seq < $2 AND e.event_type <> 'created' ORDER BY e.seq LIMIT $3",
        crate::decode::qualified_action_columns("a")
    );
    let rows = client
        .query(&sql, &[&after, &before, &limit])
        .await
        .map_err(super::unavailable)?;
    changes_of(rows)
}
