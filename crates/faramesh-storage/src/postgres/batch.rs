//! Group commit for PostgreSQL: one writer task per server takes every write waiting at that
//! moment and commits them in one transaction, answering each only after the COMMIT.
//!
//! Why: each write transaction announces its changes with `NOTIFY`, and PostgreSQL serializes
//! the commits of notifying transactions (to keep notifications in commit order), WAL flush
//! included. One transaction per request would cap throughput at one flush per request; one per
//! batch shares the flush and the lock among up to [`MAX_BATCH`] requests.
//!
//! A batch is three pipelined round trips: (1) `BEGIN`, every insert of new actions and every
//! conditional status update with the chain's last hash; (2) the events of the transitions
//! that applied; (3) the notifications and `COMMIT`. If any statement fails (an idempotency key
//! taken by another replica, a deadlock), the batch is rolled back and its requests are retried
//! one by one, each as a batch of its own, so one request never fails another.

use super::write::{self, ActionRows, Columns, EventRows, Statements};
use super::{feed, raw_action};
use crate::decode::{corrupt, json_text};
use crate::{
    ActionRecord, ActionSummary, Change, Created, EventRecord, NewAction, NewEvent, StoreError,
    StoreResult, TransitionUpdate,
};
use deadpool_postgres::{Object, Pool};
use faramesh_core::policy::Effect;
use faramesh_core::Transition;
use futures::future::join_all;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Most requests committed together.
pub(super) const MAX_BATCH: usize = 256;

pub(super) enum WriteOp {
    Create {
        new: Box<NewAction>,
        reply: oneshot::Sender<StoreResult<Option<Created>>>,
    },
    Transition {
        id: String,
        transition: Transition,
        update: Box<TransitionUpdate>,
        reply: oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    },
}

pub(super) fn spawn(pool: Pool) -> mpsc::Sender<WriteOp> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    tokio::spawn(run(pool, rx));
    tx
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<WriteOp>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ops = std::mem::take(&mut batch);
        let client = match pool.get().await {
            Ok(client) => client,
            Err(e) => {
                let why = format!("cannot reach PostgreSQL: {e}");
                ops.into_iter().for_each(|op| fail(op, &why));
                continue;
            }
        };
        match Statements::prepare(&client).await {
            Ok(statements) => commit(&client, &statements, ops).await,
            Err(e) => {
                let why = e.to_string();
                ops.into_iter().for_each(|op| fail(op, &why));
            }
        }
    }
}

/// Answers `op` with "unavailable" and the reason.
fn fail(op: WriteOp, why: &str) {
    let err = || StoreError::unavailable(why.to_owned());
    match op {
        WriteOp::Create { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        WriteOp::Transition { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
    }
}

/// Commits `ops` together, or, if the batch cannot be, each on its own.
async fn commit(client: &Object, s: &Statements, ops: Vec<WriteOp>) {
    if ops.len() > 1 {
        match together(client, s, &ops).await {
            Ok(answers) => {
                for (op, answer) in ops.into_iter().zip(answers) {
                    deliver(client, op, answer).await;
                }
                return;
            }
            Err(why) => {
                tracing::debug!(
                    %why,
                    requests = ops.len(),
                    "batch rolled back; writing its requests one by one"
                );
                let _ = client.batch_execute("ROLLBACK").await;
            }
        }
    }
    for op in ops {
        match together(client, s, std::slice::from_ref(&op)).await {
            Ok(mut answers) => match answers.pop() {
                Some(answer) => deliver(client, op, answer).await,
                None => fail(op, "the database writer lost an answer"),
            },
            Err(why) => {
                let _ = client.batch_execute("ROLLBACK").await;
                match (op, why) {
                    // Alone, a unique violation can only be its idempotency key, taken by
                    // another replica meanwhile: the caller answers with the original action.
                    (WriteOp::Create { reply, .. }, BatchError::Database(e))
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                    {
                        let _ = reply.send(Ok(None));
                    }
                    (op, BatchError::Store(e)) => match op {
                        WriteOp::Create { reply, .. } => {
                            let _ = reply.send(Err(e));
                        }
                        WriteOp::Transition { reply, .. } => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    (op, BatchError::Database(e)) => fail(op, &e.to_string()),
                }
            }
        }
    }
}

/// Sends a committed request its answer.
async fn deliver(client: &Object, op: WriteOp, answer: Answer) {
    match (op, answer) {
        (WriteOp::Create { reply, .. }, Answer::Created(created)) => {
            let _ = reply.send(Ok(Some(*created)));
        }
        (WriteOp::Transition { reply, .. }, Answer::Applied(action, event)) => {
            let _ = reply.send(Ok((*action, *event)));
        }
        (
            WriteOp::Transition {
                id,
                transition,
                reply,
                ..
            },
            Answer::Refused,
        ) => {
            let _ = reply.send(Err(write::refusal(client, &id, transition).await));
        }
        (op, _) => fail(op, "the database writer mixed up its answers"),
    }
}

enum Answer {
    Created(Box<Created>),
    Applied(Box<ActionRecord>, Box<EventRecord>),
    Refused,
}

/// A new action with its rows ready to insert: the chain computed, JSON as text.
struct Prepared {
    action: ActionRecord,
    events: Vec<EventRecord>,
    params: String,
    context: String,
    reason_details: Option<String>,
    result: Option<String>,
    metas: Vec<String>,
}

fn prepare_create(new: &NewAction) -> StoreResult<Prepared> {
    let now = crate::now_timestamp();
    let mut action = new.action.clone();
    action.created_at.clone_from(&now);
    action.updated_at = now;
    let mut events = Vec::with_capacity(new.events.len());
    let mut prev: Option<String> = None;
    for event in &new.events {
        let record = EventRecord::next(&action.id, event.clone(), prev.take())?;
        prev = Some(record.record_hash.clone());
        events.push(record);
    }
    let reason_details = action
        .reason_details
        .as_ref()
        .map(|v| json_text(v, "reason_details"))
        .transpose()?;
    let result = action
        .result
        .as_ref()
        .map(|v| json_text(v, "result"))
        .transpose()?;
    let params = action.params.text().to_owned();
    let context = action.context.text().to_owned();
    let metas = events
        .iter()
        .map(|e| json_text(&e.meta, "event meta"))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Prepared {
        action,
        events,
        params,
        context,
        reason_details,
        result,
        metas,
    })
}

type Failure = tokio_postgres::Error;

/// A transition of the batch, ready to bind: its conditional update and its event.
struct PendingUpdate<'a> {
    id: &'a String,
    transition: Transition,
    update: &'a TransitionUpdate,
    /// The new decision's text, when the transition records one.
    decision: Option<&'static str>,
    /// The result as JSON text, when the transition records one.
    result: Option<String>,
    /// The statuses it may start from, and the one it leads to.
    from: Vec<&'static str>,
    to: &'static str,
}

/// What one applied transition wrote.
type Applied = Option<(ActionRecord, EventRecord)>;

async fn together(
    client: &Object,
    s: &Statements,
    ops: &[WriteOp],
) -> Result<Vec<Answer>, BatchError> {
    let mut creates = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Create { new, .. } => Some(prepare_create(new)),
            WriteOp::Transition { .. } => None,
        })
        .collect::<StoreResult<Vec<_>>>()
        .map_err(BatchError::Store)?;
    let updates = pending_updates(ops).map_err(BatchError::Store)?;
    let updated = begin_insert_and_update(client, s, ops, &mut creates, &updates).await?;
    let applied = insert_transition_events(client, s, &updates, &updated).await?;
    announce_and_commit(client, s, &creates, &applied, &updates).await?;
    answers_in_request_order(ops, creates, applied)
}

fn pending_updates(ops: &[WriteOp]) -> StoreResult<Vec<PendingUpdate<'_>>> {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Transition {
                id,
                transition,
                update,
                ..
            } => Some((id, *transition, update)),
            WriteOp::Create { .. } => None,
        })
        .map(|(id, transition, update)| {
            Ok(PendingUpdate {
                id,
                transition,
                update,
                decision: update.decision.map(Effect::as_str),
                result: update
                    .result
                    .as_ref()
                    .map(|v| json_text(v, "result"))
                    .transpose()?,
                from: transition.from().iter().map(|s| s.as_str()).collect(),
                to: transition.to().as_str(),
            })
        })
        .collect()
}

/// Round trip 1: `BEGIN`, the inserts of new actions, their events and idempotency keys, and
/// the conditional status updates with each action's last hash. Gives the new events their
/// sequence numbers, and returns each update's row (none when its condition failed) with the
/// hash its chain ended in.
async fn begin_insert_and_update(
    client: &Object,
    s: &Statements,
    ops: &[WriteOp],
    creates: &mut [Prepared],
    updates: &[PendingUpdate<'_>],
) -> Result<Vec<UpdatedRow>, BatchError> {
    let now = crate::now_timestamp();
    let mut action_rows = ActionRows::default();
    let mut event_rows = EventRows::default();
    let mut key_values: Vec<Vec<&(dyn ToSql + Sync)>> = Vec::new();
    let create_ops = ops.iter().filter_map(|op| match op {
        WriteOp::Create { new, .. } => Some(new),
        WriteOp::Transition { .. } => None,
    });
    for (new, p) in create_ops.zip(creates.iter()) {
        let a = &p.action;
        action_rows.push(
            a,
            [&p.params, &p.context],
            [p.reason_details.as_deref(), p.result.as_deref()],
        );
        for (e, meta) in p.events.iter().zip(&p.metas) {
            event_rows.push(e, meta);
        }
        if let Some((key, body_hash)) = &new.idempotency {
            key_values.push(vec![key, body_hash, &a.id]);
        }
    }
    let update_values: Vec<[&(dyn ToSql + Sync); 7]> = updates
        .iter()
        .map(|u| {
            [
                &u.to as &(dyn ToSql + Sync),
                &u.decision,
                &u.update.reason,
                &u.result,
                &now,
                u.id,
                &u.from,
            ]
        })
        .collect();
    let id_values: Vec<[&(dyn ToSql + Sync); 1]> = updates
        .iter()
        .map(|u| [u.id as &(dyn ToSql + Sync)])
        .collect();

    let create_extras = ops.iter().filter_map(|op| match op {
        WriteOp::Create { new, .. }
            if new.approval_deadline.is_some()
                || !new.notifications.is_empty()
                || new.shadow.is_some() =>
        {
            Some(new)
        }
        _ => None,
    });
    let deadlines: Vec<(&str, &str)> = create_extras
        .clone()
        .filter_map(|new| {
            new.approval_deadline
                .as_deref()
                .map(|d| (new.action.id.as_str(), d))
        })
        .collect();
    let notifications: Vec<(&str, &[crate::NewNotification])> = create_extras
        .clone()
        .map(|new| (new.action.id.as_str(), new.notifications.as_slice()))
        .collect();
    let shadows: Vec<(&str, &crate::ShadowDisagreement, &str)> = create_extras
        .filter_map(|new| {
            new.shadow
                .as_ref()
                .map(|d| (new.action.id.as_str(), d, now.as_str()))
        })
        .collect();

    let (begun, inserted_actions, inserted_events, inserted_keys, updated, extras) = futures::join!(
        client.batch_execute("BEGIN"),
        insert_all(client, &s.insert_actions, &action_rows),
        insert_all(client, &s.insert_events, &event_rows),
        join_all(key_values.iter().map(|v| client.execute(&s.insert_key, v))),
        join_all(
            update_values
                .iter()
                .zip(&id_values)
                .map(|(u, id)| async move {
                    // Pipelined too: both are sent before either answer is awaited.
                    let (row, prev) = futures::join!(
                        client.query_opt(&s.change_status, u),
                        client.query_opt(&s.last_hash, id)
                    );
                    Ok::<_, Failure>((row?, prev?))
                })
        ),
        // Rare (pending actions under approval rules or routes): after the actions they name.
        async {
            super::approvals::insert_deadlines(client, &deadlines)
                .await
                .map_err(BatchError::Database)?;
            super::shadow::insert(client, &shadows)
                .await
                .map_err(BatchError::Database)?;
            insert_notifications(client, &notifications).await
        },
    );
    begun?;
    inserted_actions?;
    let mut seqs = sequence_numbers(inserted_events?)?;
    collect(inserted_keys)?;
    let updated = collect(updated)?;
    extras?;
    for e in creates.iter_mut().flat_map(|p| p.events.iter_mut()) {
        e.seq = take_seq(&mut seqs, &e.id)?;
    }
    Ok(updated)
}

/// A conditional update's row, and the row holding the chain's last hash before it.
type UpdatedRow = (Option<tokio_postgres::Row>, Option<tokio_postgres::Row>);

/// Round trip 2: the events of the transitions that applied. Two transitions of one action in
/// this batch chain to each other, not to what the database held before.
async fn insert_transition_events(
    client: &Object,
    s: &Statements,
    updates: &[PendingUpdate<'_>],
    updated: &[UpdatedRow],
) -> Result<Vec<Applied>, BatchError> {
    let mut last_hash: HashMap<&str, String> = HashMap::new();
    let mut applied: Vec<Applied> = Vec::with_capacity(updates.len());
    for (u, (row, prev)) in updates.iter().zip(updated) {
        let Some(row) = row else {
            applied.push(None);
            continue;
        };
        let action = raw_action(row).map_err(BatchError::Store)?;
        let prev = match last_hash.get(u.id.as_str()) {
            Some(hash) => Some(hash.clone()),
            None => prev
                .as_ref()
                .map(|r| r.try_get::<_, String>(0))
                .transpose()
                .map_err(|e| BatchError::Store(corrupt("record_hash", e)))?,
        };
        let event = EventRecord::next(
            u.id,
            NewEvent {
                event_type: u.transition.event(),
                meta: u.update.meta.clone(),
            },
            prev,
        )
        .map_err(BatchError::Store)?;
        last_hash.insert(u.id.as_str(), event.record_hash.clone());
        applied.push(Some((action, event)));
    }
    let metas: Vec<Option<String>> = applied
        .iter()
        .map(|a| {
            a.as_ref()
                .map(|(_, e)| json_text(&e.meta, "event meta"))
                .transpose()
        })
        .collect::<StoreResult<_>>()
        .map_err(BatchError::Store)?;
    let mut transition_events = EventRows::default();
    for ((_, event), meta) in applied.iter().flatten().zip(metas.iter().flatten()) {
        transition_events.push(event, meta);
    }
    let mut seqs =
        sequence_numbers(insert_all(client, &s.insert_events, &transition_events).await?)?;
    for (_, event) in applied.iter_mut().flatten() {
        event.seq = take_seq(&mut seqs, &event.id)?;
    }
    Ok(applied)
}

/// The outbox rows of the batch's actions.
async fn insert_notifications(
    client: &Object,
    notifications: &[(&str, &[crate::NewNotification])],
) -> Result<(), BatchError> {
    for (id, list) in notifications {
        super::outbox::insert_raw(client, Some(id), list)
            .await
            .map_err(|e| match e {
                super::outbox::InsertError::Database(e) => BatchError::Database(e),
                super::outbox::InsertError::Store(e) => BatchError::Store(e),
            })?;
    }
    Ok(())
}

/// Round trip 3: the outbox rows of the transitions that applied, the change notifications in
/// ledger order, and `COMMIT`.
async fn announce_and_commit(
    client: &Object,
    s: &Statements,
    creates: &[Prepared],
    applied: &[Applied],
    updates: &[PendingUpdate<'_>],
) -> Result<(), BatchError> {
    let ledger_position = |seq: i64| u64::try_from(seq).unwrap_or(0);
    let created = creates.iter().map(|p| Change {
        seq: p.events.last().map_or(0, |e| ledger_position(e.seq)),
        created: true,
        action: ActionSummary::of(&p.action),
    });
    let changed = applied.iter().flatten().map(|(action, event)| Change {
        seq: ledger_position(event.seq),
        created: false,
        action: ActionSummary::of(action),
    });
    let mut changes: Vec<Change> = created.chain(changed).collect();
    changes.sort_by_key(|c| c.seq);
    let payloads = feed::payloads(changes).map_err(BatchError::Store)?;
    let notify_values: Vec<[&(dyn ToSql + Sync); 2]> = payloads
        .iter()
        .map(|p| [&feed::CHANNEL as &(dyn ToSql + Sync), p])
        .collect();
    let outbox: Vec<(&str, &[crate::NewNotification])> = applied
        .iter()
        .zip(updates)
        .filter(|(a, u)| a.is_some() && !u.update.notifications.is_empty())
        .map(|(_, u)| (u.id.as_str(), u.update.notifications.as_slice()))
        .collect();
    // Last before the commit, so the log is held only while this batch commits.
    let events: Vec<(i64, &str)> = creates
        .iter()
        .flat_map(|p| p.events.iter())
        .chain(applied.iter().flatten().map(|(_, event)| event))
        .map(|e| (e.seq, e.record_hash.as_str()))
        .collect();
    let appended = if events.is_empty() {
        None
    } else {
        Some(
            super::log::lock_and_append(client, &events)
                .await
                .map_err(BatchError::Store)?,
        )
    };
    let log_written = async {
        match &appended {
            Some(appended) => super::log::write(client, appended).await,
            None => Ok(()),
        }
    };
    let (queued, announced, logged, committed) = futures::join!(
        insert_notifications(client, &outbox),
        join_all(notify_values.iter().map(|v| client.execute(&s.notify, v))),
        log_written,
        client.batch_execute("COMMIT"),
    );
    queued?;
    collect(announced)?;
    logged.map_err(BatchError::Store)?;
    committed?;
    Ok(())
}

/// The answers, in the order of the requests.
fn answers_in_request_order(
    ops: &[WriteOp],
    creates: Vec<Prepared>,
    applied: Vec<Applied>,
) -> Result<Vec<Answer>, BatchError> {
    let mut creates = creates.into_iter();
    let mut applied = applied.into_iter();
    ops.iter()
        .map(|op| {
            Ok(match op {
                WriteOp::Create { .. } => {
                    let p = creates.next().ok_or(BatchError::Store(StoreError::Corrupt(
                        "missing create".into(),
                    )))?;
                    Answer::Created(Box::new(Created {
                        action: p.action,
                        events: p.events,
                        replayed: false,
                    }))
                }
                WriteOp::Transition { .. } => match applied.next().flatten() {
                    Some((action, event)) => Answer::Applied(Box::new(action), Box::new(event)),
                    None => Answer::Refused,
                },
            })
        })
        .collect()
}

/// The sequence number the database gave the event `id`.
fn take_seq(seqs: &mut HashMap<String, i64>, id: &str) -> Result<i64, BatchError> {
    seqs.remove(id).ok_or(BatchError::Store(StoreError::Corrupt(
        "missing event row".into(),
    )))
}

/// Why a batch could not be committed (a batch of several is then retried one by one, where
/// each request gets its own error).
enum BatchError {
    Database(Failure),
    Store(StoreError),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Database(e) => write!(f, "{e}"),
            BatchError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<Failure> for BatchError {
    fn from(e: Failure) -> BatchError {
        BatchError::Database(e)
    }
}

/// Runs one of the batch inserts, unless it has no rows.
async fn insert_all(
    client: &Object,
    statement: &tokio_postgres::Statement,
    rows: &impl Columns,
) -> Result<Vec<tokio_postgres::Row>, Failure> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    client.query(statement, &rows.params()).await
}

/// Each inserted event's `seq`, by its id, from the rows `insert_events` returned.
fn sequence_numbers(rows: Vec<tokio_postgres::Row>) -> Result<HashMap<String, i64>, BatchError> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| BatchError::Store(corrupt("seq", e)))
}

fn collect<T>(results: Vec<Result<T, Failure>>) -> Result<Vec<T>, BatchError> {
    results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(BatchError::from)
}
