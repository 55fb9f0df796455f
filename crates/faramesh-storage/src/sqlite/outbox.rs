//! The notification outbox on SQLite. One server owns the database file, so its one delivery
//! worker is the only one taking notifications.

use super::unavailable;
use crate::model::now_timestamp;
use crate::outbox::{decode_notification, listing_clause, RawNotification, NOTIFICATION_COLUMNS};
use crate::{Attempt, NewNotification, NotificationFilter, NotificationRecord, StoreResult};
use rusqlite::{params, params_from_iter, Connection, Row};

/// Writes `notifications` about `action_id`, due now; returns their ids.
pub(super) fn insert(
    conn: &Connection,
    action_id: Option<&str>,
    notifications: &[NewNotification],
) -> StoreResult<Vec<String>> {
    let mut ids = Vec::with_capacity(notifications.len());
    if notifications.is_empty() {
        return Ok(ids);
    }
    let now = now_timestamp();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO notifications (id, action_id, route, kind, payload, state, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
        )
        .map_err(unavailable)?;
    for n in notifications {
        let id = uuid::Uuid::now_v7().to_string();
        let payload = crate::decode::json_text(&n.payload, "notification payload")?;
        stmt.execute(params![id, action_id, n.route, n.kind, payload, now])
            .map_err(unavailable)?;
        ids.push(id);
    }
    Ok(ids)
}

fn raw(row: &Row<'_>) -> rusqlite::Result<RawNotification> {
    Ok(RawNotification {
        seq: row.get(0)?,
        text: [
            row.get(1)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(8)?,
            row.get(10)?,
        ],
        action_id: row.get(2)?,
        attempts: row.get(7)?,
        last_error: row.get(9)?,
        delivered_at: row.get(11)?,
    })
}

pub(super) fn claim(
    conn: &Connection,
    now: &str,
    lease_until: &str,
    limit: usize,
) -> StoreResult<Vec<NotificationRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "UPDATE notifications SET next_attempt_at = ?2, attempts = attempts + 1 WHERE seq IN \
         (SELECT seq FROM notifications WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?3) \
         RETURNING {NOTIFICATION_COLUMNS}"
    );
    let mut claimed = conn
        .prepare_cached(&sql)
        .map_err(unavailable)?
        .query_map(params![now, lease_until, limit], raw)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?
        .into_iter()
        .map(decode_notification)
        .collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|n| n.seq);
    Ok(claimed)
}

pub(super) fn finish(conn: &Connection, id: &str, attempt: &Attempt) -> StoreResult<()> {
    let now = now_timestamp();
    let (sql, args): (&str, Vec<Option<&str>>) = match attempt {
        Attempt::Delivered => (
            "UPDATE notifications SET state = 'delivered', delivered_at = ?2, last_error = NULL WHERE id = ?1",
            vec![Some(id), Some(&now)],
        ),
        Attempt::Retry { at, error } => (
            "UPDATE notifications SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1 AND state = 'pending'",
            vec![Some(id), Some(at), Some(error)],
        ),
        Attempt::GiveUp { error } => (
            "UPDATE notifications SET state = 'failed', last_error = ?2 WHERE id = ?1 AND state = 'pending'",
            vec![Some(id), Some(error)],
        ),
    };
    conn.prepare_cached(sql)
        .map_err(unavailable)?
        .execute(params_from_iter(args))
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) fn list(
    conn: &Connection,
    filter: &NotificationFilter,
) -> StoreResult<Vec<NotificationRecord>> {
    let (clause, args) = listing_clause(filter, |n| format!("?{n}"));
    let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications{clause}");
    conn.prepare_cached(&sql)
        .map_err(unavailable)?
        .query_map(params_from_iter(args), raw)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?
        .into_iter()
        .map(decode_notification)
        .collect()
}
