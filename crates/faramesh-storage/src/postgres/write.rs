//! The statements of the write path (see `batch`), prepared once per connection, and the
//! explanation of a transition that did not apply.

use super::{unavailable, ACTION_COLUMNS};
use crate::decode::corrupt;
use crate::{ActionRecord, EventRecord, StoreError, StoreResult};
use deadpool_postgres::Object;
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, Outcome, RiskLevel, Transition};
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

/// Every event of a batch in one statement: one array per column, rows in array order (so
/// `seq` follows it). Each event's `seq` comes back with its id.
const INSERT_EVENTS: &str = "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
     RETURNING id, seq";

const INSERT_KEY: &str =
    "INSERT INTO idempotency_keys (key, body_hash, action_id) VALUES ($1, $2, $3)";

/// The statements of the write paths, prepared once per connection.
pub(super) struct Statements {
    /// Every new action of a batch (see [`ActionRows`]).
    pub insert_actions: Statement,
    /// Every event of a batch (see [`EventRows`]).
    pub insert_events: Statement,
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
            insert_actions: prepare(insert_actions_sql()).await?,
            insert_events: prepare(INSERT_EVENTS.into()).await?,
            insert_key: prepare(INSERT_KEY.into()).await?,
            change_status: prepare(change_status_sql()).await?,
            last_hash: prepare(LAST_HASH.into()).await?,
            notify: prepare("SELECT pg_notify($1, $2)".into()).await?,
        })
    }
}

/// Every new action of a batch in one statement, one array per column in `ACTION_COLUMNS`
/// order (all text but `demo`): one statement instead of one per action, whose fixed cost in
/// PostgreSQL was most of the cost of a small insert.
fn insert_actions_sql() -> String {
    let arrays: Vec<String> = (1..=ACTION_COLUMN_COUNT)
        .map(|i| {
            let kind = if i == DEMO_COLUMN { "boolean" } else { "text" };
            format!("${i}::{kind}[]")
        })
        .collect();
    format!(
        "INSERT INTO actions ({ACTION_COLUMNS}) SELECT * FROM unnest({})",
        arrays.join(", ")
    )
}

/// Columns of `ACTION_COLUMNS`; `demo` (1-based) is the only one that is not text.
const ACTION_COLUMN_COUNT: usize = 26;
const DEMO_COLUMN: usize = 24;

/// Rows of one batch insert, held as one array per column (see `insert_actions` and
/// `INSERT_EVENTS`).
pub(super) trait Columns {
    /// Whether there is no row, so the insert can be skipped.
    fn is_empty(&self) -> bool;
    /// The statement's parameters, one array per column, in column order.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)>;
}

/// The columns of new actions, as the arrays `insert_actions` takes.
#[derive(Default)]
pub(super) struct ActionRows<'a> {
    /// Every column but `demo`, in `ACTION_COLUMNS` order.
    text: [Vec<Option<&'a str>>; ACTION_COLUMN_COUNT - 1],
    demo: Vec<bool>,
}

impl<'a> ActionRows<'a> {
    /// Adds `a`, whose JSON columns are already text.
    pub fn push(
        &mut self,
        a: &'a ActionRecord,
        json: [&'a str; 2],
        optional_json: [Option<&'a str>; 2],
    ) {
        let [params, context] = json;
        let [reason_details, result] = optional_json;
        let row: [Option<&'a str>; ACTION_COLUMN_COUNT - 1] = [
            Some(&a.id),
            Some(&a.agent_id),
            Some(&a.tool),
            Some(&a.operation),
            Some(params),
            Some(context),
            Some(a.status.as_str()),
            a.decision.map(Effect::as_str),
            a.reason.as_deref(),
            a.risk_level.map(RiskLevel::as_str),
            a.approval_token.as_deref(),
            a.policy_version.as_deref(),
            a.outcome.map(Outcome::as_str),
            a.reason_code.as_deref(),
            reason_details,
            a.request_hash.as_deref(),
            a.policy_hash.as_deref(),
            a.profile_id.as_deref(),
            a.profile_version.as_deref(),
            a.profile_hash.as_deref(),
            a.runtime_version.as_deref(),
            a.provenance_id.as_deref(),
            result,
            Some(&a.created_at),
            Some(&a.updated_at),
        ];
        for (column, value) in self.text.iter_mut().zip(row) {
            column.push(value);
        }
        self.demo.push(a.demo);
    }
}

impl Columns for ActionRows<'_> {
    fn is_empty(&self) -> bool {
        self.demo.is_empty()
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(ACTION_COLUMN_COUNT);
        for (i, column) in self.text.iter().enumerate() {
            if i + 1 == DEMO_COLUMN {
                params.push(&self.demo);
            }
            params.push(column);
        }
        params
    }
}

/// The columns of events, as the arrays `insert_events` takes.
#[derive(Default)]
pub(super) struct EventRows<'a> {
    columns: [Vec<Option<&'a str>>; 7],
}

impl<'a> EventRows<'a> {
    /// Adds `e`, whose `meta` is already text.
    pub fn push(&mut self, e: &'a EventRecord, meta: &'a str) {
        let row = [
            Some(e.id.as_str()),
            Some(&e.action_id),
            Some(e.event_type.as_str()),
            Some(meta),
            Some(&e.created_at),
            e.prev_hash.as_deref(),
            Some(&e.record_hash),
        ];
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
}

impl Columns for EventRows<'_> {
    fn is_empty(&self) -> bool {
        self.columns[0].is_empty()
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.columns
            .iter()
            .map(|c| c as &(dyn ToSql + Sync))
            .collect()
    }
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
