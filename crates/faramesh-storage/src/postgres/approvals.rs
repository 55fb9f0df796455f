//! Approvals under a rule, deadlines and escalation on PostgreSQL. These are human-paced, so
//! each is its own transaction that locks the action's row first (`FOR UPDATE`): racing
//! approvals on any replica take turns, and each counts what the one before it committed.

use super::{feed, outbox, raw_action, unavailable};
use crate::approvals::{Approval, ApprovalVote, DueApproval, Escalation};
use crate::decode::{corrupt, json_text};
use crate::model::now_timestamp;
use crate::{ActionRecord, ActionSummary, Change, EventRecord, NewEvent, StoreError, StoreResult};
use deadpool_postgres::{GenericClient, Object, Transaction};
use faramesh_core::{ActionStatus, EventType, Transition};
use std::collections::HashMap;

/// Locks action `id` and checks it is pending approval.
async fn lock_pending(tx: &Transaction<'_>, id: &str, attempted: &'static str) -> StoreResult<()> {
    let row = tx
        .query_opt(
            "SELECT status FROM actions WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let status: String = row.try_get(0).map_err(|e| corrupt("status", e))?;
    let status =
        ActionStatus::parse(&status).ok_or_else(|| corrupt("status", format!("{status:?}")))?;
    if status == ActionStatus::PendingApproval {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            id: id.to_owned(),
            status,
            attempted,
        })
    }
}

pub(super) async fn approve(
    client: &mut Object,
    id: &str,
    vote: ApprovalVote,
) -> StoreResult<(ActionRecord, EventRecord)> {
    let tx = client.transaction().await.map_err(unavailable)?;
    lock_pending(&tx, id, crate::transition_name(Transition::Approve)).await?;
    let now = now_timestamp();
    let inserted = tx
        .execute(
            "INSERT INTO approvals (action_id, approver, reason, approved_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (action_id, approver) DO NOTHING",
            &[&id, &vote.by, &vote.reason, &now],
        )
        .await
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyApproved {
            id: id.to_owned(),
            by: vote.by,
        });
    }
    let count: i64 = tx
        .query_one(
            "SELECT count(*) FROM approvals WHERE action_id = $1",
            &[&id],
        )
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(|e| corrupt("count", e))?;
    let count = u64::try_from(count).unwrap_or(0);
    let sql = format!(
        "UPDATE actions SET status = 'approved', decision = 'allow', reason = COALESCE($1, reason), \
         approval_token = NULL, updated_at = $2 WHERE id = $3 RETURNING {}",
        crate::decode::ACTION_COLUMNS
    );
    let (row, event_type) = if vote.completes(count) {
        outbox::insert(&tx, Some(id), &vote.notifications).await?;
        let row = tx
            .query_one(&sql, &[&vote.reason, &now, &id])
            .await
            .map_err(unavailable)?;
        (row, EventType::Approved)
    } else {
        (touch(&tx, id, &now).await?, EventType::ApprovalRecorded)
    };
    let action = raw_action(&row)?;
    let event = append_and_announce(&tx, &action, event_type, vote.meta(count)).await?;
    super::log::append(&tx, &[(event.seq, &event.record_hash)]).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok((action, event))
}

pub(super) async fn escalate(
    client: &mut Object,
    id: &str,
    escalation: Escalation,
) -> StoreResult<(ActionRecord, EventRecord)> {
    let tx = client.transaction().await.map_err(unavailable)?;
    lock_pending(&tx, id, "escalated").await?;
    let moved = tx
        .execute(
            "UPDATE approval_deadlines SET deadline = $1, escalated = TRUE WHERE action_id = $2 AND NOT escalated",
            &[&escalation.deadline, &id],
        )
        .await
        .map_err(unavailable)?;
    if moved == 0 {
        return Err(StoreError::Conflict {
            id: id.to_owned(),
            status: ActionStatus::PendingApproval,
            attempted: "escalated again",
        });
    }
    let row = touch(&tx, id, &now_timestamp()).await?;
    outbox::insert(&tx, Some(id), &escalation.notifications).await?;
    let action = raw_action(&row)?;
    let event = append_and_announce(&tx, &action, EventType::Escalated, escalation.meta).await?;
    super::log::append(&tx, &[(event.seq, &event.record_hash)]).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok((action, event))
}

/// Sets `updated_at`; returns the action's row.
async fn touch(tx: &Transaction<'_>, id: &str, now: &str) -> StoreResult<tokio_postgres::Row> {
    let sql = format!(
        "UPDATE actions SET updated_at = $1 WHERE id = $2 RETURNING {}",
        crate::decode::ACTION_COLUMNS
    );
    tx.query_one(&sql, &[&now, &id]).await.map_err(unavailable)
}

/// Appends the event to the action's chain and announces the change on the change feed, in
/// the transaction `tx`, which holds the action's row lock.
async fn append_and_announce(
    tx: &Transaction<'_>,
    action: &ActionRecord,
    event_type: EventType,
    meta: serde_json::Value,
) -> StoreResult<EventRecord> {
    let prev: Option<String> = tx
        .query_opt(
            "SELECT record_hash FROM events WHERE action_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&action.id],
        )
        .await
        .map_err(unavailable)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(|e| corrupt("record_hash", e))?;
    let mut event = EventRecord::next(&action.id, NewEvent { event_type, meta }, prev)?;
    let meta = json_text(&event.meta, "event meta")?;
    let seq: i64 = tx
        .query_one(
            "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
            &[
                &event.id,
                &event.action_id,
                &event.event_type.as_str(),
                &meta,
                &event.created_at,
                &event.prev_hash,
                &event.record_hash,
            ],
        )
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(|e| corrupt("seq", e))?;
    event.seq = seq;
    let change = Change {
        seq: u64::try_from(seq).unwrap_or(0),
        created: false,
        action: ActionSummary::of(action),
    };
    for payload in feed::payloads(vec![change])? {
        tx.execute("SELECT pg_notify($1, $2)", &[&feed::CHANNEL, &payload])
            .await
            .map_err(unavailable)?;
    }
    Ok(event)
}

pub(super) async fn insert_deadlines(
    client: &impl GenericClient,
    deadlines: &[(&str, &str)],
) -> Result<(), tokio_postgres::Error> {
    for (id, deadline) in deadlines {
        client
            .execute(
                "INSERT INTO approval_deadlines (action_id, deadline) VALUES ($1, $2)",
                &[id, deadline],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn approvals_of(
    client: &Object,
    ids: &[String],
) -> StoreResult<HashMap<String, Vec<Approval>>> {
    let rows = client
        .query(
            "SELECT action_id, approver, reason, approved_at FROM approvals WHERE action_id = ANY($1) \
             ORDER BY approved_at, approver",
            &[&ids],
        )
        .await
        .map_err(unavailable)?;
    let mut found: HashMap<String, Vec<Approval>> = HashMap::new();
    for row in rows {
        let get = |i: usize| {
            row.try_get::<_, Option<String>>(i)
                .map_err(|e| corrupt("approval", e))
        };
        let (Some(id), Some(by), reason, Some(at)) = (get(0)?, get(1)?, get(2)?, get(3)?) else {
            return Err(corrupt("approval", "a required column is null"));
        };
        found
            .entry(id)
            .or_default()
            .push(Approval { by, reason, at });
    }
    Ok(found)
}

pub(super) async fn approvals_due(
    client: &Object,
    now: &str,
    limit: usize,
) -> StoreResult<Vec<DueApproval>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT d.action_id, d.escalated, a.status FROM approval_deadlines d JOIN actions a ON a.id = d.action_id \
             WHERE d.deadline <= $1 ORDER BY d.deadline LIMIT $2",
            &[&now, &limit],
        )
        .await
        .map_err(unavailable)?;
    let passed = rows
        .iter()
        .map(|row| {
            Ok((
                DueApproval {
                    id: row.try_get(0).map_err(|e| corrupt("action_id", e))?,
                    escalated: row.try_get(1).map_err(|e| corrupt("escalated", e))?,
                },
                row.try_get::<_, String>(2)
                    .map_err(|e| corrupt("status", e))?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let (due, decided) = crate::approvals::split_due(passed);
    if !decided.is_empty() {
        // Only when there is something to forget: an idle look writes nothing.
        client
            .execute(
                "DELETE FROM approval_deadlines WHERE action_id = ANY($1)",
                &[&decided],
            )
            .await
            .map_err(unavailable)?;
    }
    Ok(due)
}
