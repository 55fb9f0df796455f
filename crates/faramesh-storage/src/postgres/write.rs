//! The statements of the write path (see `batch`), prepared once per connection, and the
//! explanation of a transition that did not apply.

use super::{unavailable, ACTION_COLUMNS};
use crate::decode::corrupt;
use crate::{StoreError, StoreResult};
use deadpool_postgres::Object;
use faramesh_core::{ActionStatus, Transition};
use tokio_postgres::Statement;

const INSERT_EVENT: &str = "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq";

const INSERT_KEY: &str =
    "INSERT INTO idempotency_keys (key, body_hash, action_id) VALUES ($1, $2, $3)";

/// The statements of the write paths, prepared once per connection.
pub(super) struct Statements {
    pub insert_action: Statement,
    pub insert_event: Statement,
    pub insert_key: Statement,
    pub change_status: Statement,
    pub last_hash: Statement,
    /// `pg_notify` on the change channel.
    pub notify: Statement,
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
            notify: prepare("SELECT pg_notify($1, $2)".into()).await?,
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
