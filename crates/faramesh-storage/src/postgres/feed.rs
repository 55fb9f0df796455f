//! The change feed: every write transaction sends a `NOTIFY` with its change, delivered to
//! every listening replica only if and when it commits, in commit order. A listener that loses
//! its connection reconnects and catches up from the ledger, so no committed change of an
//! action is skipped. Token changes come on a channel of their own, in the same order; those
//! missed while disconnected are not caught up here: the token version (see
//! `Store::token_version`) shows a replica that it missed some.

use super::{raw_action_at, ACTION_COLUMNS};
use crate::decode::{corrupt, decode_token};
use crate::{ActionSummary, Change, FeedItem, TokenChange, TokenRecord};
use faramesh_core::{ActionStatus, EventType, Outcome};
use futures::StreamExt;
use std::collections::HashSet;
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
pub(super) fn spawn(config: tokio_postgres::Config, after: u64) -> mpsc::Receiver<FeedItem> {
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(listen(config, tx, after));
    rx
}

async fn listen(config: tokio_postgres::Config, tx: mpsc::Sender<FeedItem>, after: u64) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    let mut last_seq = after;
    let mut backoff = FIRST_RETRY;
    while !tx.is_closed() {
        let began = std::time::Instant::now();
        match session(&config, &tx, &mut last_seq).await {
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

/// One connection's worth of listening. `Ok` when the receiver is gone, `Err` when the
/// connection failed.
async fn session(
    config: &tokio_postgres::Config,
    tx: &mpsc::Sender<FeedItem>,
    last_seq: &mut u64,
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
    // Listening now: whatever committed since the last change seen comes from the ledger,
    // and is skipped if it also arrives as a notification.
    let mut caught_up = HashSet::new();
    for change in missed(&client, *last_seq).await? {
        caught_up.insert(change.seq);
        *last_seq = change.seq;
        if tx.send(FeedItem::Action(change)).await.is_err() {
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
            if caught_up.remove(&change.seq) {
                continue;
            }
            *last_seq = (*last_seq).max(change.seq);
            if tx.send(FeedItem::Action(change)).await.is_err() {
                return Ok(());
            }
        }
    }
    driver.abort();
    Err("the connection closed".into())
}

/// Changes committed after `after`, from the ledger: each with the status (and, for a new
/// action, the decision and reason) its event recorded; other fields as the action is now.
async fn missed(client: &tokio_postgres::Client, after: u64) -> Result<Vec<Change>, String> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT e.seq, e.event_type, e.meta, {} FROM events e JOIN actions a ON a.id = e.action_id \
         WHERE e.seq > $1 AND e.event_type <> 'created' ORDER BY e.seq",
        ACTION_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = client
        .query(&sql, &[&after])
        .await
        .map_err(|e| e.to_string())?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(|e| e.to_string())?;
        let event_type: String = row.try_get(1).map_err(|e| e.to_string())?;
        let meta: String = row.try_get(2).map_err(|e| e.to_string())?;
        let action = raw_action_at(&row, 3).map_err(|e| e.to_string())?;
        let mut summary = ActionSummary::of(&action);
        let event_type = EventType::parse(&event_type);
        if let Some(status) = event_type.and_then(EventType::status_after) {
            summary.status = status.as_str().to_owned();
        } else {
            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
            if let Some(outcome) = meta["outcome"].as_str().and_then(Outcome::parse) {
                summary.status = ActionStatus::from_outcome(outcome).as_str().to_owned();
                summary.decision = Some(outcome.decision().to_owned());
            }
            summary.reason = meta["reason"].as_str().map(str::to_owned);
        }
        changes.push(Change {
            seq: u64::try_from(seq).unwrap_or(0),
            created: event_type == Some(EventType::DecisionMade),
            action: summary,
        });
    }
    Ok(changes)
}
