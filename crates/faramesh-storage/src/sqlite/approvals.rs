//! Approvals under a rule, deadlines and escalation, on the writer's connection (inside its
//! transaction) or, for reads, on a pooled one.

use super::writer::append;
use super::{outbox, rows, unavailable};
use crate::approvals::{Approval, ApprovalVote, DueApproval, Escalation};
use crate::model::now_timestamp;
use crate::{ActionRecord, EventRecord, NewEvent, StoreError, StoreResult};
use faramesh_core::{ActionStatus, EventType, Transition};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

/// The status of action `id`, or `NotFound`.
fn status_of(conn: &Connection, id: &str) -> StoreResult<ActionStatus> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM actions WHERE id = ?1")
        .map_err(unavailable)?
        .query_row([id], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    let status = status.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    ActionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))
}

/// `Conflict` unless action `id` is pending approval.
fn require_pending(conn: &Connection, id: &str, attempted: &'static str) -> StoreResult<()> {
    let status = status_of(conn, id)?;
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

pub(super) fn approve(
    conn: &Connection,
    id: &str,
    vote: ApprovalVote,
) -> StoreResult<(ActionRecord, EventRecord)> {
    require_pending(conn, id, crate::transition_name(Transition::Approve))?;
    let now = now_timestamp();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO approvals (action_id, approver, reason, approved_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (action_id, approver) DO NOTHING",
        )
        .map_err(unavailable)?
        .execute(params![id, vote.by, vote.reason, now])
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyApproved {
            id: id.to_owned(),
            by: vote.by,
        });
    }
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM approvals WHERE action_id = ?1")
        .map_err(unavailable)?
        .query_row([id], |row| row.get(0))
        .map_err(unavailable)?;
    let count = u64::try_from(count).unwrap_or(0);
    let event_type = if vote.completes(count) {
        conn.prepare_cached(
            "UPDATE actions SET status = 'approved', decision = 'allow', reason = COALESCE(?1, reason), \
             approval_token = NULL, updated_at = ?2 WHERE id = ?3",
        )
        .map_err(unavailable)?
        .execute(params![vote.reason, now, id])
        .map_err(unavailable)?;
        outbox::insert(conn, Some(id), &vote.notifications)?;
        EventType::Approved
    } else {
        touch(conn, id, &now)?;
        EventType::ApprovalRecorded
    };
    let event = append_event(conn, id, event_type, vote.meta(count))?;
    Ok((current(conn, id)?, event))
}

pub(super) fn escalate(
    conn: &Connection,
    id: &str,
    escalation: Escalation,
) -> StoreResult<(ActionRecord, EventRecord)> {
    require_pending(conn, id, "escalated")?;
    let moved = conn
        .prepare_cached(
            "UPDATE approval_deadlines SET deadline = ?1, escalated = 1 WHERE action_id = ?2 AND escalated = 0",
        )
        .map_err(unavailable)?
        .execute(params![escalation.deadline, id])
        .map_err(unavailable)?;
    if moved == 0 {
        return Err(StoreError::Conflict {
            id: id.to_owned(),
            status: ActionStatus::PendingApproval,
            attempted: "escalated again",
        });
    }
    touch(conn, id, &now_timestamp())?;
    outbox::insert(conn, Some(id), &escalation.notifications)?;
    let event = append_event(conn, id, EventType::Escalated, escalation.meta)?;
    Ok((current(conn, id)?, event))
}

pub(super) fn insert_deadline(conn: &Connection, id: &str, deadline: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO approval_deadlines (action_id, deadline) VALUES (?1, ?2)")
        .map_err(unavailable)?
        .execute(params![id, deadline])
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) fn approvals_of(
    conn: &Connection,
    ids: &[String],
) -> StoreResult<HashMap<String, Vec<Approval>>> {
    let mut found: HashMap<String, Vec<Approval>> = HashMap::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT approver, reason, approved_at FROM approvals WHERE action_id = ?1 ORDER BY approved_at, approver",
        )
        .map_err(unavailable)?;
    for id in ids {
        let approvals = stmt
            .query_map([id], |row| {
                Ok(Approval {
                    by: row.get(0)?,
                    reason: row.get(1)?,
                    at: row.get(2)?,
                })
            })
            .map_err(unavailable)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(unavailable)?;
        if !approvals.is_empty() {
            found.insert(id.clone(), approvals);
        }
    }
    Ok(found)
}

pub(super) fn approvals_due(
    conn: &Connection,
    now: &str,
    limit: usize,
) -> StoreResult<Vec<DueApproval>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let passed = conn
        .prepare_cached(
            "SELECT d.action_id, d.escalated, a.status FROM approval_deadlines d JOIN actions a ON a.id = d.action_id \
             WHERE d.deadline <= ?1 ORDER BY d.deadline LIMIT ?2",
        )
        .map_err(unavailable)?
        .query_map(params![now, limit], |row| {
            Ok((
                DueApproval {
                    id: row.get(0)?,
                    escalated: row.get::<_, i64>(1)? != 0,
                },
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    let (due, decided) = crate::approvals::split_due(passed);
    // Only when there is something to forget: an idle look takes no write lock.
    for id in decided {
        conn.prepare_cached("DELETE FROM approval_deadlines WHERE action_id = ?1")
            .map_err(unavailable)?
            .execute([id])
            .map_err(unavailable)?;
    }
    Ok(due)
}

fn touch(conn: &Connection, id: &str, now: &str) -> StoreResult<()> {
    conn.prepare_cached("UPDATE actions SET updated_at = ?1 WHERE id = ?2")
        .map_err(unavailable)?
        .execute(params![now, id])
        .map(|_| ())
        .map_err(unavailable)
}

fn append_event(
    conn: &Connection,
    id: &str,
    event_type: EventType,
    meta: serde_json::Value,
) -> StoreResult<EventRecord> {
    let prev = rows::last_record_hash(conn, id)?;
    append(conn, id, NewEvent { event_type, meta }, prev)
}

fn current(conn: &Connection, id: &str) -> StoreResult<ActionRecord> {
    rows::get_action(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))
}
