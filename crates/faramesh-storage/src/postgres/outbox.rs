//! The notification outbox on PostgreSQL. Workers of every replica take due notifications
//! with `FOR UPDATE SKIP LOCKED`, so no two take the same one at once.

use super::unavailable;
use crate::decode::{corrupt, json_text};
use crate::model::now_timestamp;
use crate::outbox::{decode_notification, listing_clause, RawNotification, NOTIFICATION_COLUMNS};
use crate::{Attempt, NewNotification, NotificationFilter, NotificationRecord, StoreResult};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Writes `notifications` about `action_id`, due now; returns their ids.
pub(super) async fn insert(
    client: &impl GenericClient,
    action_id: Option<&str>,
    notifications: &[NewNotification],
) -> StoreResult<Vec<String>> {
    insert_raw(client, action_id, notifications)
        .await
        .map_err(|e| match e {
            InsertError::Database(e) => unavailable(e),
            InsertError::Store(e) => e,
        })
}

pub(super) enum InsertError {
    Database(tokio_postgres::Error),
    Store(crate::StoreError),
}

/// [`insert`], keeping the database's own error for the batch writer.
pub(super) async fn insert_raw(
    client: &impl GenericClient,
    action_id: Option<&str>,
    notifications: &[NewNotification],
) -> Result<Vec<String>, InsertError> {
    let now = now_timestamp();
    let mut ids = Vec::with_capacity(notifications.len());
    for n in notifications {
        let id = uuid::Uuid::now_v7().to_string();
        let payload = json_text(&n.payload, "notification payload").map_err(InsertError::Store)?;
        client
            .execute(
                "INSERT INTO notifications (id, action_id, route, kind, payload, state, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
                &[&id, &action_id, &n.route, &n.kind, &payload, &now],
            )
            .await
            .map_err(InsertError::Database)?;
        ids.push(id);
    }
    Ok(ids)
}

fn decode(row: &Row) -> StoreResult<NotificationRecord> {
    let text = |i: usize| {
        row.try_get::<_, String>(i)
            .map_err(|e| corrupt("notification", e))
    };
    let optional = |i: usize| {
        row.try_get::<_, Option<String>>(i)
            .map_err(|e| corrupt("notification", e))
    };
    decode_notification(RawNotification {
        seq: row.try_get(0).map_err(|e| corrupt("notification seq", e))?,
        text: [
            text(1)?,
            text(3)?,
            text(4)?,
            text(5)?,
            text(6)?,
            text(8)?,
            text(10)?,
        ],
        action_id: optional(2)?,
        attempts: row
            .try_get(7)
            .map_err(|e| corrupt("notification attempts", e))?,
        last_error: optional(9)?,
        delivered_at: optional(11)?,
    })
}

pub(super) async fn claim(
    client: &impl GenericClient,
    now: &str,
    lease_until: &str,
    limit: usize,
) -> StoreResult<Vec<NotificationRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "UPDATE notifications SET next_attempt_at = $2, attempts = attempts + 1 WHERE seq IN \
         (SELECT seq FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1 \
          ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {NOTIFICATION_COLUMNS}"
    );
    let rows = client
        .query(&sql, &[&now, &lease_until, &limit])
        .await
        .map_err(unavailable)?;
    let mut claimed = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|n| n.seq);
    Ok(claimed)
}

pub(super) async fn finish(
    client: &impl GenericClient,
    id: &str,
    attempt: &Attempt,
) -> StoreResult<()> {
    let now = now_timestamp();
    let (sql, args): (&str, Vec<&(dyn ToSql + Sync)>) = match attempt {
        Attempt::Delivered => (
            "UPDATE notifications SET state = 'delivered', delivered_at = $2, last_error = NULL WHERE id = $1",
            vec![&id, &now],
        ),
        Attempt::Retry { at, error } => (
            "UPDATE notifications SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND state = 'pending'",
            vec![&id, at, error],
        ),
        Attempt::GiveUp { error } => (
            "UPDATE notifications SET state = 'failed', last_error = $2 WHERE id = $1 AND state = 'pending'",
            vec![&id, error],
        ),
    };
    client
        .execute(sql, &args)
        .await
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) async fn list(
    client: &impl GenericClient,
    filter: &NotificationFilter,
) -> StoreResult<Vec<NotificationRecord>> {
    let (clause, args) = listing_clause(filter, |n| format!("${n}"));
    let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications{clause}");
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &params).await.map_err(unavailable)?;
    rows.iter().map(decode).collect()
}
