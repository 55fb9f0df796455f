//! The single writer: group commit of many requests per transaction.
//!
//! The thread takes the first waiting request, then every request already queued (up to
//! [`MAX_BATCH`]), applies each inside its own savepoint so that one failing request does not
//! undo the others, commits once, and only then answers every request of the batch. A failed
//! commit answers all of them with an error: nothing is acknowledged that is not durable.

use super::{rows, unavailable};
use crate::model::now_timestamp;
use crate::{
    ActionRecord, Created, EventRecord, NewAction, NewEvent, StoreError, StoreResult,
    TransitionUpdate,
};
use faramesh_core::{ActionStatus, Transition};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};

/// Most requests committed together.
const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before senders are slowed down.
const QUEUE: usize = 4096;

pub(super) enum WriteOp {
    Create(Box<NewAction>, oneshot::Sender<StoreResult<Created>>),
    Transition {
        id: String,
        transition: Transition,
        update: Box<TransitionUpdate>,
        reply: oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    },
}

/// An applied request whose answer waits for the commit.
enum Pending {
    Create(StoreResult<Created>, oneshot::Sender<StoreResult<Created>>),
    Transition(
        StoreResult<(ActionRecord, EventRecord)>,
        oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    ),
}

pub(super) fn spawn(conn: Connection) -> StoreResult<mpsc::Sender<WriteOp>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("faramesh-sqlite-writer".into())
        .spawn(move || run(conn, rx))
        .map_err(|e| StoreError::Unavailable(format!("cannot start the database writer: {e}")))?;
    Ok(tx)
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Ends when every sender is gone: the store was dropped.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch);
    }
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<WriteOp>) {
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let err = unavailable(e);
            for op in batch.drain(..) {
                fail(op, &err);
            }
            return;
        }
    };
    let mut pending = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        pending.push(match op {
            WriteOp::Create(new, reply) => {
                Pending::Create(in_savepoint(&mut tx, |c| create(c, *new)), reply)
            }
            WriteOp::Transition {
                id,
                transition,
                update,
                reply,
            } => Pending::Transition(
                in_savepoint(&mut tx, |c| apply_transition(c, &id, transition, *update)),
                reply,
            ),
        });
    }
    let committed = tx.commit().map_err(unavailable);
    // A caller that went away (timed out, disconnected) no longer needs its answer.
    for p in pending {
        match p {
            Pending::Create(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
            Pending::Transition(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
        }
    }
}

fn after_commit<T>(result: StoreResult<T>, committed: &StoreResult<()>) -> StoreResult<T> {
    match (result, committed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(StoreError::Unavailable(format!(
            "the transaction could not be committed: {e}"
        ))),
        (Err(e), _) => Err(e),
    }
}

fn fail(op: WriteOp, err: &StoreError) {
    let copy = || StoreError::Unavailable(err.to_string());
    match op {
        WriteOp::Create(_, reply) => {
            let _ = reply.send(Err(copy()));
        }
        WriteOp::Transition { reply, .. } => {
            let _ = reply.send(Err(copy()));
        }
    }
}

/// Runs `f` in a savepoint: its writes stay only if it succeeds.
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let sp = tx.savepoint().map_err(unavailable)?;
    let result = f(&sp);
    if result.is_ok() {
        sp.commit().map_err(unavailable)?;
    }
    // Dropping an uncommitted savepoint rolls it back.
    result
}

fn create(conn: &Connection, new: NewAction) -> StoreResult<Created> {
    if let Some((key, body_hash)) = &new.idempotency {
        let seen: Option<(String, String)> = conn
            .prepare_cached("SELECT body_hash, action_id FROM idempotency_keys WHERE key = ?1")
            .map_err(unavailable)?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(unavailable)?;
        if let Some((seen_hash, action_id)) = seen {
            if &seen_hash != body_hash {
                return Err(StoreError::IdempotencyMismatch {
                    key: key.clone(),
                    action_id,
                });
            }
            let action = rows::get_action(conn, &action_id)?
                .ok_or_else(|| StoreError::NotFound(action_id.clone()))?;
            return Ok(Created {
                action,
                events: Vec::new(),
                replayed: true,
            });
        }
    }
    let now = now_timestamp();
    let mut action = new.action;
    action.created_at.clone_from(&now);
    action.updated_at = now;
    rows::insert_action(conn, &action)?;
    let mut events = Vec::with_capacity(new.events.len());
    let mut prev: Option<String> = None;
    for event in new.events {
        let record = append(conn, &action.id, event, prev.take())?;
        prev = Some(record.record_hash.clone());
        events.push(record);
    }
    if let Some((key, body_hash)) = &new.idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (key, body_hash, action_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(unavailable)?
        .execute(params![key, body_hash, action.id])
        .map_err(unavailable)?;
    }
    Ok(Created {
        action,
        events,
        replayed: false,
    })
}

/// Writes one event after `prev_hash`, computing its `record_hash`.
fn append(
    conn: &Connection,
    action_id: &str,
    event: NewEvent,
    prev_hash: Option<String>,
) -> StoreResult<EventRecord> {
    let mut record = EventRecord::next(action_id, event, prev_hash)?;
    record.seq = rows::insert_event(conn, &record)?;
    Ok(record)
}

fn apply_transition(
    conn: &Connection,
    id: &str,
    transition: Transition,
    update: TransitionUpdate,
) -> StoreResult<(ActionRecord, EventRecord)> {
    let from = transition.from();
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("?{}", i + 7)).collect();
    let sql = format!(
        "UPDATE actions SET status = ?1, decision = COALESCE(?2, decision), reason = COALESCE(?3, reason), \
         result = COALESCE(?4, result), approval_token = NULL, updated_at = ?5 \
         WHERE id = ?6 AND status IN ({})",
        placeholders.join(", ")
    );
    let result = update
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let now = now_timestamp();
    let mut args: Vec<rusqlite::types::Value> = vec![
        transition.to().as_str().to_owned().into(),
        update.decision.into(),
        update.reason.into(),
        result.into(),
        now.into(),
        id.to_owned().into(),
    ];
    args.extend(
        from.iter()
            .map(|s| rusqlite::types::Value::from(s.as_str().to_owned())),
    );
    let changed = conn
        .prepare_cached(&sql)
        .map_err(unavailable)?
        .execute(rusqlite::params_from_iter(args))
        .map_err(unavailable)?;
    if changed == 0 {
        let status: Option<String> = conn
            .prepare_cached("SELECT status FROM actions WHERE id = ?1")
            .map_err(unavailable)?
            .query_row([id], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        return Err(match status {
            None => StoreError::NotFound(id.to_owned()),
            Some(s) => StoreError::Conflict {
                id: id.to_owned(),
                status: ActionStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {s}")))?,
                attempted: crate::transition_name(transition),
            },
        });
    }
    let prev = rows::last_record_hash(conn, id)?;
    let event = append(
        conn,
        id,
        NewEvent {
            event_type: transition.event(),
            meta: update.meta,
        },
        prev,
    )?;
    let action = rows::get_action(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    Ok((action, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionRecord;
    use faramesh_core::EventType;
    use serde_json::{json, Map};

    fn new_action(id: &str) -> NewAction {
        NewAction {
            action: ActionRecord {
                id: id.to_owned(),
                agent_id: "a".into(),
                tool: "http".into(),
                operation: "get".into(),
                params: Map::new(),
                context: Map::new(),
                status: ActionStatus::Allowed,
                decision: Some("allow".into()),
                reason: None,
                risk_level: Some("low".into()),
                approval_token: None,
                policy_version: None,
                outcome: Some("EXECUTE".into()),
                reason_code: None,
                reason_details: None,
                request_hash: None,
                policy_hash: None,
                profile_id: None,
                profile_version: None,
                profile_hash: None,
                runtime_version: None,
                provenance_id: None,
                result: None,
                demo: false,
                created_at: String::new(),
                updated_at: String::new(),
            },
            events: vec![NewEvent {
                event_type: EventType::Created,
                meta: json!({}),
            }],
            idempotency: None,
        }
    }

    #[test]
    fn one_failing_request_leaves_the_rest_of_its_batch_committed() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let mut replies = Vec::new();
        let mut batch = Vec::new();
        // The second request reuses the first one's id, so its insert fails inside the batch.
        for id in ["a1", "a1", "a2"] {
            let (reply, answer) = oneshot::channel();
            batch.push(WriteOp::Create(Box::new(new_action(id)), reply));
            replies.push(answer);
        }
        commit_batch(&mut conn, &mut batch);
        let results: Vec<bool> = replies
            .into_iter()
            .map(|mut r| matches!(r.try_recv(), Ok(Ok(_))))
            .collect();
        assert_eq!(results, [true, false, true]);
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM actions", [], |row| row.get(0))
            .unwrap();
        let events: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            (stored, events),
            (2, 2),
            "the failed request left no half-written rows"
        );
    }
}
