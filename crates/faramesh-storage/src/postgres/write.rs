//! The two write paths, pipelined: every statement of a transaction is sent at once (prepared
//! statements, cached per connection), so a submission costs one round trip and one commit,
//! however many events it writes. `BEGIN … COMMIT` still makes it all or nothing: after a
//! failed statement PostgreSQL turns the `COMMIT` into a rollback.

use super::{feed, raw_action, unavailable, ACTION_COLUMNS};
use crate::decode::{corrupt, json_text};
use crate::{
    ActionRecord, ActionSummary, Change, Created, EventRecord, NewAction, NewEvent, StoreError,
    StoreResult, TransitionUpdate,
};
use deadpool_postgres::Object;
use faramesh_core::{ActionStatus, Transition};
use futures::future::join_all;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

const INSERT_EVENT: &str = "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq";

/// `pg_notify` with the change's payload, its `"seq":0` replaced by the sequence number the
/// transaction's last event got (JSON strings escape quotes, so the pattern occurs only as the
/// key).
const NOTIFY: &str =
    "SELECT pg_notify($1, replace($2, '\"seq\":0,', '\"seq\":' || lastval() || ','))";

const INSERT_KEY: &str =
    "INSERT INTO idempotency_keys (key, body_hash, action_id) VALUES ($1, $2, $3)";

/// The notification payload of one change (an array of one), its seq left for SQL to fill in.
fn notice(change: Change) -> StoreResult<String> {
    let change = Change {
        seq: 0,
        action: change.action.bounded(feed::MAX_FIELD_BYTES),
        ..change
    };
    serde_json::to_string(&[change]).map_err(|e| corrupt("change", e))
}

/// The statements of the write paths, prepared once per connection.
pub(super) struct Statements {
    pub insert_action: Statement,
    pub insert_event: Statement,
    pub insert_key: Statement,
    pub change_status: Statement,
    pub last_hash: Statement,
    /// `pg_notify` of a payload complete with its seqs.
    pub notify_plain: Statement,
}

impl Statements {
    pub async fn prepare(client: &Object) -> StoreResult<Statements> {
        let prepare =
            |sql: String| async move { client.prepare_cached(&sql).await.map_err(unavailable) };
        Ok(Statements {
            insert_action: prepare(insert_action_sql()).await?,
            insert_event: prepare(INSERT_EVENT.into()).await?,
            insert_key: prepare(INSERT_KEY.into()).await?,
            change_status: prepare(change_status_sql()).await?,
            last_hash: prepare(LAST_HASH.into()).await?,
            notify_plain: prepare("SELECT pg_notify($1, $2)".into()).await?,
        })
    }
}

fn insert_action_sql() -> String {
    format!(
        "INSERT INTO actions ({ACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
    )
}

fn change_status_sql() -> String {
    format!(
        "UPDATE actions SET status = $1, decision = COALESCE($2, decision), reason = COALESCE($3, reason), \
         result = COALESCE($4, result), approval_token = NULL, updated_at = $5 \
         WHERE id = $6 AND status = ANY($7) RETURNING {ACTION_COLUMNS}"
    )
}

const LAST_HASH: &str =
    "SELECT record_hash FROM events WHERE action_id = $1 ORDER BY seq DESC LIMIT 1";

/// The result of a pipelined transaction: the first failed statement's error, if any.
fn first_error<T>(
    results: Vec<Result<T, tokio_postgres::Error>>,
) -> Result<Vec<T>, tokio_postgres::Error> {
    results.into_iter().collect()
}

/// Writes a new action and its events; `Ok(None)` when its idempotency key was taken in the
/// meantime (by another replica), so the caller answers with the original.
pub(super) async fn create(client: &Object, new: NewAction) -> StoreResult<Option<Created>> {
    let insert_action = client
        .prepare_cached(&insert_action_sql())
        .await
        .map_err(unavailable)?;
    let insert_event = client
        .prepare_cached(INSERT_EVENT)
        .await
        .map_err(unavailable)?;
    let notify = client.prepare_cached(NOTIFY).await.map_err(unavailable)?;
    let insert_key = client
        .prepare_cached(INSERT_KEY)
        .await
        .map_err(unavailable)?;

    let now = crate::now_timestamp();
    let mut action = new.action;
    action.created_at.clone_from(&now);
    action.updated_at = now;
    // The chain is computed here, so no statement waits for another's answer.
    let mut events = Vec::with_capacity(new.events.len());
    let mut prev: Option<String> = None;
    for event in new.events {
        let record = EventRecord::next(&action.id, event, prev.take())?;
        prev = Some(record.record_hash.clone());
        events.push(record);
    }
    let a = &action;
    let reason_details = a
        .reason_details
        .as_ref()
        .map(|v| json_text(v, "reason_details"))
        .transpose()?;
    let result = a
        .result
        .as_ref()
        .map(|v| json_text(v, "result"))
        .transpose()?;
    let params = json_text(&a.params, "params")?;
    let context = json_text(&a.context, "context")?;
    let status = a.status.as_str();
    let action_values: [&(dyn ToSql + Sync); 26] = [
        &a.id,
        &a.agent_id,
        &a.tool,
        &a.operation,
        &params,
        &context,
        &status,
        &a.decision,
        &a.reason,
        &a.risk_level,
        &a.approval_token,
        &a.policy_version,
        &a.outcome,
        &a.reason_code,
        &reason_details,
        &a.request_hash,
        &a.policy_hash,
        &a.profile_id,
        &a.profile_version,
        &a.profile_hash,
        &a.runtime_version,
        &a.provenance_id,
        &result,
        &a.demo,
        &a.created_at,
        &a.updated_at,
    ];
    let metas = events
        .iter()
        .map(|e| json_text(&e.meta, "event meta"))
        .collect::<StoreResult<Vec<_>>>()?;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let payload = notice(Change {
        seq: 0,
        created: true,
        action: ActionSummary::of(&action),
    })?;

    // Sent in this order, in one go.
    let begin = client.batch_execute("BEGIN");
    let write_action = client.execute(&insert_action, &action_values);
    let event_values: Vec<[&(dyn ToSql + Sync); 7]> = events
        .iter()
        .zip(&metas)
        .zip(&types)
        .map(|((e, meta), kind)| {
            [
                &e.id as &(dyn ToSql + Sync),
                &e.action_id,
                kind,
                meta,
                &e.created_at,
                &e.prev_hash,
                &e.record_hash,
            ]
        })
        .collect();
    let notify_values: [&(dyn ToSql + Sync); 2] = [&feed::CHANNEL, &payload];
    let write_events = join_all(
        event_values
            .iter()
            .map(|values| client.query_one(&insert_event, values)),
    );
    let write_key = async {
        match &new.idempotency {
            Some((key, body_hash)) => client
                .execute(&insert_key, &[key, body_hash, &action.id])
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let announce = client.execute(&notify, &notify_values);
    let commit = client.batch_execute("COMMIT");
    let (begun, wrote_action, wrote_events, wrote_key, announced, committed) = futures::join!(
        begin,
        write_action,
        write_events,
        write_key,
        announce,
        commit
    );

    if let Err(e) = &wrote_key {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            // The COMMIT became a rollback; nothing of ours was stored.
            return Ok(None);
        }
    }
    begun.map_err(unavailable)?;
    wrote_action.map_err(unavailable)?;
    let rows = first_error(wrote_events).map_err(unavailable)?;
    wrote_key.map_err(unavailable)?;
    announced.map_err(unavailable)?;
    committed.map_err(unavailable)?;
    for (event, row) in events.iter_mut().zip(rows) {
        event.seq = row.try_get(0).map_err(|e| corrupt("seq", e))?;
    }
    Ok(Some(Created {
        action,
        events,
        replayed: false,
    }))
}

/// Applies a transition if the status allows it, with its event, in two round trips: the
/// conditional update (whose row lock serializes this action's chain) with the chain's last
/// hash, then the event, the notification and the commit.
pub(super) async fn transition(
    client: &Object,
    id: &str,
    transition: Transition,
    update: TransitionUpdate,
) -> StoreResult<(ActionRecord, EventRecord)> {
    let change_status = client
        .prepare_cached(&change_status_sql())
        .await
        .map_err(unavailable)?;
    let last_hash = client
        .prepare_cached(LAST_HASH)
        .await
        .map_err(unavailable)?;
    let insert_event = client
        .prepare_cached(INSERT_EVENT)
        .await
        .map_err(unavailable)?;
    let notify = client.prepare_cached(NOTIFY).await.map_err(unavailable)?;

    let from: Vec<&str> = transition.from().iter().map(|s| s.as_str()).collect();
    let result = update
        .result
        .as_ref()
        .map(|v| json_text(v, "result"))
        .transpose()?;
    let now = crate::now_timestamp();
    let to = transition.to().as_str();
    let update_values: [&(dyn ToSql + Sync); 7] = [
        &to,
        &update.decision,
        &update.reason,
        &result,
        &now,
        &id,
        &from,
    ];
    let id_value: [&(dyn ToSql + Sync); 1] = [&id];
    let (begun, updated, prev) = futures::join!(
        client.batch_execute("BEGIN"),
        client.query_opt(&change_status, &update_values),
        // Runs after the UPDATE in the same transaction, so it sees the chain as locked.
        client.query_opt(&last_hash, &id_value),
    );
    let outcome = async {
        begun.map_err(unavailable)?;
        let row = updated.map_err(unavailable)?;
        let prev: Option<String> = prev
            .map_err(unavailable)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| corrupt("record_hash", e))?;
        Ok::<_, StoreError>((row, prev))
    }
    .await;
    let (row, prev) = match outcome {
        Ok((Some(row), prev)) => (row, prev),
        Ok((None, _)) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(refusal(client, id, transition).await);
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    let action = raw_action(&row)?;
    let mut event = EventRecord::next(
        id,
        NewEvent {
            event_type: transition.event(),
            meta: update.meta,
        },
        prev,
    )?;
    let meta = json_text(&event.meta, "event meta")?;
    let payload = notice(Change {
        seq: 0,
        created: false,
        action: ActionSummary::of(&action),
    })?;
    let kind = event.event_type.as_str();
    let event_values: [&(dyn ToSql + Sync); 7] = [
        &event.id,
        &event.action_id,
        &kind,
        &meta,
        &event.created_at,
        &event.prev_hash,
        &event.record_hash,
    ];
    let notify_values: [&(dyn ToSql + Sync); 2] = [&feed::CHANNEL, &payload];
    let (inserted, announced, committed) = futures::join!(
        client.query_one(&insert_event, &event_values),
        client.execute(&notify, &notify_values),
        client.batch_execute("COMMIT"),
    );
    let row = inserted.map_err(unavailable)?;
    announced.map_err(unavailable)?;
    committed.map_err(unavailable)?;
    event.seq = row.try_get(0).map_err(|e| corrupt("seq", e))?;
    Ok((action, event))
}

/// Why a transition did not apply: no such action, or its status does not allow it.
pub(super) async fn refusal(client: &Object, id: &str, transition: Transition) -> StoreError {
    let status = client
        .query_opt("SELECT status FROM actions WHERE id = $1", &[&id])
        .await
        .map_err(unavailable)
        .and_then(|row| {
            row.map(|r| r.try_get::<_, String>(0))
                .transpose()
                .map_err(|e| corrupt("status", e))
        });
    match status {
        Err(e) => e,
        Ok(None) => StoreError::NotFound(id.to_owned()),
        Ok(Some(s)) => match ActionStatus::parse(&s) {
            Some(status) => StoreError::Conflict {
                id: id.to_owned(),
                status,
                attempted: crate::transition_name(transition),
            },
            None => StoreError::Corrupt(format!("status {s}")),
        },
    }
}
