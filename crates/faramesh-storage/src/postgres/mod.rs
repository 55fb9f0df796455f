//! PostgreSQL: one database shared by several server replicas.
//!
//! Every request is one transaction on a pooled connection. Transitions are conditional
//! `UPDATE … WHERE status = ANY(…)`: the row lock makes racing transitions on any replica wait,
//! and the loser re-checks the condition after the winner commits, so exactly one wins.
//! Idempotency keys are a primary key, so they are unique across replicas. Every creation or
//! revocation of an API token raises the token version in its own transaction, so a replica
//! can tell with one read whether its cached tokens miss a revocation.

mod approvals;
mod batch;
mod feed;
mod limits;
mod log;
mod migrate;
mod outbox;
mod shadow;
mod write;

use crate::decode::{
    corrupt, decode_action, decode_token, to_event, RawAction, ACTION_COLUMNS, EVENT_COLUMNS,
    TOKEN_COLUMNS,
};
use crate::{
    ActionFilter, ActionRecord, AtVersion, Change, Created, EventRecord, FeedItem, NameColumn,
    NewAction, NewToken, Store, StoreError, StoreResult, TokenRecord, TransitionUpdate,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use faramesh_core::{ActionStatus, Transition};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Connections kept per replica.
const POOL_SIZE: usize = 16;

/// Actions and events in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Group commit of every write (see `batch`).
    writer: tokio::sync::mpsc::Sender<batch::WriteOp>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// A database error as callers must act on it: anything but bad data is "unavailable" (503),
/// so trouble with the database never turns into an allow.
fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::unavailable_because(e.to_string(), e)
}

fn writer_gone() -> StoreError {
    StoreError::unavailable("the database writer has stopped")
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PostgresStore {
    /// Connects to `dsn` (a `postgres://` URL or `key=value` string) and brings the schema up to
    /// date; safe when several replicas start at once.
    pub async fn connect(dsn: &str) -> StoreResult<PostgresStore> {
        let config: tokio_postgres::Config = dsn.parse().map_err(|e| {
            StoreError::unavailable(format!(
                "FARA_POSTGRES_DSN is not a valid connection string: {e}"
            ))
        })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A pooled connection whose socket closed (database restart, terminated
                // backend) is replaced before use instead of failing a request.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(unavailable)?;
        let writer = batch::spawn(pool.clone());
        let store = PostgresStore {
            pool,
            config,
            writer,
        };
        let mut client = store.client().await?;
        migrate::run(&mut client).await?;
        log::backfill(&mut client).await?;
        Ok(store)
    }

    async fn write(&self, op: batch::WriteOp) -> StoreResult<()> {
        self.writer.send(op).await.map_err(|_| writer_gone())
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            StoreError::unavailable_because(format!("cannot reach PostgreSQL: {e}"), e)
        })
    }
}

fn raw_action(row: &Row) -> StoreResult<ActionRecord> {
    raw_action_at(row, 0)
}

/// The action whose `ACTION_COLUMNS` start at column `first` of `row`.
fn raw_action_at(row: &Row, first: usize) -> StoreResult<ActionRecord> {
    let mut text: [Option<String>; 25] = Default::default();
    for (i, slot) in text.iter_mut().enumerate().take(23) {
        *slot = row
            .try_get(first + i)
            .map_err(|e| corrupt("action row", e))?;
    }
    text[23] = row
        .try_get(first + 24)
        .map_err(|e| corrupt("created_at", e))?;
    text[24] = row
        .try_get(first + 25)
        .map_err(|e| corrupt("updated_at", e))?;
    let demo: bool = row.try_get(first + 23).map_err(|e| corrupt("demo", e))?;
    decode_action(RawAction { text, demo })
}

fn event_row(row: &Row) -> StoreResult<EventRecord> {
    let text =
        |i: usize| -> StoreResult<String> { row.try_get(i).map_err(|e| corrupt("event row", e)) };
    let seq: i64 = row.try_get(0).map_err(|e| corrupt("seq", e))?;
    let prev: Option<String> = row.try_get(6).map_err(|e| corrupt("prev_hash", e))?;
    to_event((
        seq,
        [text(1)?, text(2)?, text(3)?, text(4)?, text(5)?, text(7)?],
        prev,
    ))
}

fn token_row(row: &Row) -> StoreResult<TokenRecord> {
    token_row_at(row, 0)
}

/// The token whose `TOKEN_COLUMNS` start at column `first` of `row`.
fn token_row_at(row: &Row, first: usize) -> StoreResult<TokenRecord> {
    let raw = (|| {
        Ok::<_, tokio_postgres::Error>((
            row.try_get(first)?,
            row.try_get(first + 1)?,
            row.try_get(first + 2)?,
            row.try_get(first + 3)?,
            row.try_get(first + 4)?,
            row.try_get(first + 5)?,
        ))
    })()
    .map_err(|e| corrupt("token row", e))?;
    decode_token(raw)
}

/// The token version in column 0 of a row of [`TOKENS_AT_VERSION`], and its token if there is
/// one (the outer join leaves its columns null when no token matched).
fn versioned_token_row(row: &Row) -> StoreResult<(u64, Option<TokenRecord>)> {
    let version = version_of(row.try_get(0).map_err(|e| corrupt("token version", e))?)?;
    let id: Option<String> = row.try_get(1).map_err(|e| corrupt("token row", e))?;
    let token = id.map(|_| token_row_at(row, 1)).transpose()?;
    Ok((version, token))
}

fn version_of(stored: i64) -> StoreResult<u64> {
    u64::try_from(stored).map_err(|e| corrupt("token version", e))
}

/// Tokens read together with the token version in one statement, so in one snapshot: the
/// version row joined to the tokens matching the condition that follows, one row with null
/// token columns when none does.
const TOKENS_AT_VERSION: &str =
    "SELECT v.version, t.id, t.name, t.role, t.secret_hash, t.created_at, t.revoked_at \
     FROM token_version v LEFT JOIN api_tokens t ON";

/// Raises the token version and announces `record` on the change feed, in the caller's
/// transaction, so both happen if and only if it commits. The version row stays locked until
/// the commit, so these transactions commit one at a time, their versions counting up by one
/// in commit order: the order in which the feed delivers them.
async fn announce_token(
    tx: &deadpool_postgres::Transaction<'_>,
    record: &TokenRecord,
) -> StoreResult<()> {
    let row = tx
        .query_one(
            "UPDATE token_version SET version = version + 1 WHERE id = 1 RETURNING version",
            &[],
        )
        .await
        .map_err(unavailable)?;
    let version = version_of(row.try_get(0).map_err(|e| corrupt("token version", e))?)?;
    let payload = feed::token_payload(version, record)?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&feed::TOKEN_CHANNEL, &payload],
    )
    .await
    .map_err(unavailable)?;
    Ok(())
}

async fn get_action(client: &impl GenericClient, id: &str) -> StoreResult<Option<ActionRecord>> {
    let sql = format!("SELECT {ACTION_COLUMNS} FROM actions WHERE id = $1");
    let row = client.query_opt(&sql, &[&id]).await.map_err(unavailable)?;
    row.as_ref().map(raw_action).transpose()
}

/// The action an idempotency key points to: the original when the body matches, else a conflict.
async fn replay(
    client: &impl GenericClient,
    key: &str,
    body_hash: &str,
) -> StoreResult<Option<Created>> {
    let Some(row) = client
        .query_opt(
            "SELECT body_hash, action_id FROM idempotency_keys WHERE key = $1",
            &[&key],
        )
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let seen_hash: String = row.try_get(0).map_err(|e| corrupt("body_hash", e))?;
    let action_id: String = row.try_get(1).map_err(|e| corrupt("action_id", e))?;
    if seen_hash != body_hash {
        return Err(StoreError::IdempotencyMismatch {
            key: key.to_owned(),
            action_id,
        });
    }
    let action = get_action(client, &action_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(action_id.clone()))?;
    Ok(Some(Created {
        action,
        events: Vec::new(),
        replayed: true,
    }))
}

/// How PostgreSQL spells the listing (see [`crate::listing`]).
const LISTING: crate::listing::Dialect = crate::listing::Dialect {
    position: "pos",
    placeholder: |n| format!("${n}"),
    limit_each_range: true,
};

#[async_trait]
impl Store for PostgresStore {
    async fn create_action(&self, new: NewAction) -> StoreResult<Created> {
        let client = self.client().await?;
        let key = new.idempotency.clone();
        if let Some((key, body_hash)) = &key {
            if let Some(created) = replay(&client, key, body_hash).await? {
                return Ok(created);
            }
        }
        drop(client);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.write(batch::WriteOp::Create {
            new: Box::new(new),
            reply,
        })
        .await?;
        let written = answer.await.map_err(|_| writer_gone())??;
        match written {
            Some(created) => Ok(created),
            // Another replica stored the same key first: answer with its action.
            None => {
                let client = self.client().await?;
                let (key, body_hash) = key.unwrap_or_default();
                replay(&client, &key, &body_hash).await?.ok_or_else(|| {
                    StoreError::unavailable(format!("idempotency key {key} vanished"))
                })
            }
        }
    }

    async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.write(batch::WriteOp::Transition {
            id: id.to_owned(),
            transition,
            update: Box::new(update),
            reply,
        })
        .await?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn get_action(&self, id: &str) -> StoreResult<Option<ActionRecord>> {
        let client = self.client().await?;
        get_action(&client, id).await
    }

    async fn approve(
        &self,
        id: &str,
        vote: crate::ApprovalVote,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let mut client = self.client().await?;
        approvals::approve(&mut client, id, vote).await
    }

    async fn approvals_of(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<crate::Approval>>> {
        let client = self.client().await?;
        approvals::approvals_of(&client, ids).await
    }

    async fn approvals_due(&self, now: &str, limit: usize) -> StoreResult<Vec<crate::DueApproval>> {
        let client = self.client().await?;
        approvals::approvals_due(&client, now, limit).await
    }

    async fn escalate(
        &self,
        id: &str,
        escalation: crate::Escalation,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let mut client = self.client().await?;
        approvals::escalate(&mut client, id, escalation).await
    }

    async fn enqueue_notifications(
        &self,
        notifications: Vec<crate::NewNotification>,
    ) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        outbox::insert(&client, None, &notifications).await
    }

    async fn claim_notifications(
        &self,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> StoreResult<Vec<crate::NotificationRecord>> {
        let client = self.client().await?;
        outbox::claim(&client, now, lease_until, limit).await
    }

    async fn finish_notification(&self, id: &str, attempt: crate::Attempt) -> StoreResult<()> {
        let client = self.client().await?;
        outbox::finish(&client, id, &attempt).await
    }

    async fn charge_limits(
        &self,
        action_id: &str,
        charges: Vec<faramesh_core::policy::limits::LimitCharge>,
        now: chrono::DateTime<chrono::Utc>,
        mode: crate::ChargeMode,
    ) -> StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>> {
        if charges.is_empty() {
            return Ok(None);
        }
        let mut client = self.client().await?;
        limits::charge(&mut client, action_id, &charges, now, mode).await
    }

    async fn release_limits(&self, action_id: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        limits::release(&mut client, action_id).await
    }

    async fn limit_usage(
        &self,
        limits: &[(String, u64)],
        now: chrono::DateTime<chrono::Utc>,
        per_limit: usize,
    ) -> StoreResult<Vec<crate::LimitUsage>> {
        let client = self.client().await?;
        limits::usage(&client, limits, now, per_limit).await
    }

    async fn shadow_summary(
        &self,
        policy_hash: &str,
        latest: usize,
    ) -> StoreResult<crate::ShadowSummary> {
        let client = self.client().await?;
        shadow::summary(&client, policy_hash, latest).await
    }

    async fn list_notifications(
        &self,
        filter: &crate::NotificationFilter,
    ) -> StoreResult<Vec<crate::NotificationRecord>> {
        let client = self.client().await?;
        outbox::list(&client, filter).await
    }

    async fn ids_with_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let pattern = format!("{prefix}%");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id FROM actions WHERE id LIKE $1 ORDER BY id LIMIT $2",
                &[&pattern, &limit],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(|e| corrupt("id", e)))
            .collect()
    }

    async fn list_actions(&self, filter: &ActionFilter) -> StoreResult<Vec<ActionRecord>> {
        if crate::listing::matches_nothing(filter) {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let (sql, args) = crate::listing::query(&LISTING, ACTION_COLUMNS, filter);
        // Each status range is cut at limit + offset, which must not overflow; no ledger holds
        // anywhere near this many actions, so the page is empty either way.
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX).min(1 << 40);
        let offset = i64::try_from(filter.offset)
            .unwrap_or(i64::MAX)
            .min(1 << 40);
        let mut params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        params.extend([&limit as &(dyn ToSql + Sync), &offset]);
        let statement = client.prepare_cached(&sql).await.map_err(unavailable)?;
        let rows = client
            .query(&statement, &params)
            .await
            .map_err(unavailable)?;
        rows.iter().map(raw_action).collect()
    }

    async fn names_containing(&self, column: NameColumn, text: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        // A loose scan of the index led by the column, one seek per distinct name: PostgreSQL
        // 15 has no skip scan, and `SELECT DISTINCT` would read every entry.
        let column = column.as_str();
        let sql = format!(
            "WITH RECURSIVE names(name) AS ( \
               (SELECT {column} FROM actions ORDER BY {column} LIMIT 1) \
               UNION ALL \
               SELECT (SELECT {column} FROM actions WHERE {column} > names.name \
                       ORDER BY {column} LIMIT 1) \
               FROM names WHERE names.name IS NOT NULL) \
             SELECT name FROM names WHERE name IS NOT NULL"
        );
        let statement = client.prepare_cached(&sql).await.map_err(unavailable)?;
        let rows = client.query(&statement, &[]).await.map_err(unavailable)?;
        let names = rows
            .iter()
            .map(|row| row.try_get(0).map_err(|e| corrupt("name", e)))
            .collect::<StoreResult<Vec<String>>>()?;
        Ok(crate::listing::containing(names, text))
    }

    async fn events(&self, action_id: &str) -> StoreResult<Vec<EventRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE action_id = $1 ORDER BY seq");
        let rows = client
            .query(&sql, &[&action_id])
            .await
            .map_err(unavailable)?;
        let mut events = rows
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let indexes = log::indexes_of(&client, &seqs).await?;
        for e in &mut events {
            e.log_index = indexes.get(&e.seq).copied();
        }
        Ok(events)
    }

    async fn log_size(&self) -> StoreResult<u64> {
        log::size(&self.client().await?).await
    }

    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<faramesh_tlog::Hash>> {
        log::hashes(&self.client().await?, &indexes).await
    }

    async fn log_leaves(&self, start: u64, end: u64) -> StoreResult<Vec<crate::LogLeaf>> {
        let end = end.min(start.saturating_add(crate::MAX_LEAVES));
        log::leaves(&self.client().await?, start, end).await
    }

    async fn add_checkpoint(&self, checkpoint: crate::StoredCheckpoint) -> StoreResult<()> {
        log::add_checkpoint(&self.client().await?, &checkpoint).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<crate::StoredCheckpoint>> {
        log::latest_checkpoint(&self.client().await?).await
    }

    async fn changes_between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        feed::changes_between(&client, after, before, limit).await
    }

    async fn changes_with_seqs(&self, seqs: &[u64]) -> StoreResult<Vec<Change>> {
        let client = self.client().await?;
        feed::changes_with_seqs(&client, seqs).await
    }

    async fn pending_since_before(&self, created_before: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM actions WHERE status = $1 AND created_at < $2 ORDER BY pos",
                &[&ActionStatus::PendingApproval.as_str(), &created_before],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(|e| corrupt("id", e)))
            .collect()
    }

    async fn last_event_seq(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT MAX(seq) FROM events", &[])
            .await
            .map_err(unavailable)?;
        let seq: Option<i64> = row.try_get(0).map_err(|e| corrupt("seq", e))?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    async fn count_with_status(&self, status: ActionStatus) -> StoreResult<u64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM actions WHERE status = $1",
                &[&status.as_str()],
            )
            .await
            .map_err(unavailable)?;
        let n: i64 = row.try_get(0).map_err(|e| corrupt("count", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .query_one("SELECT 1", &[])
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn change_feed(&self, after: u64) -> Option<tokio::sync::mpsc::Receiver<FeedItem>> {
        Some(feed::spawn(self.config.clone(), after))
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        let mut client = self.client().await?;
        let record = TokenRecord::new(new);
        let tx = client.transaction().await.map_err(unavailable)?;
        let inserted = tx
            .execute(
                "INSERT INTO api_tokens (id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &record.id,
                    &record.name,
                    &record.role.as_str(),
                    &record.secret_hash,
                    &record.created_at,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::TokenNameTaken(record.name))
            }
            Err(e) => return Err(unavailable(e)),
        }
        announce_token(&tx, &record).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(record)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY pos");
        let rows = client.query(&sql, &[]).await.map_err(unavailable)?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, name_or_id: &str) -> StoreResult<Option<TokenRecord>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let sql = format!(
            "UPDATE api_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND (name = $1 OR id = $1) RETURNING {TOKEN_COLUMNS}"
        );
        let row = tx
            .query_opt(&sql, &[&name_or_id, &crate::now_timestamp()])
            .await
            .map_err(unavailable)?;
        let Some(record) = row.as_ref().map(token_row).transpose()? else {
            // Nothing revoked: nothing to announce (the transaction rolls back when dropped).
            return Ok(None);
        };
        announce_token(&tx, &record).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(record))
    }

    async fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<AtVersion<Option<TokenRecord>>> {
        let client = self.client().await?;
        let sql = format!(
            "{TOKENS_AT_VERSION} t.secret_hash = $1 AND t.revoked_at IS NULL WHERE v.id = 1"
        );
        let statement = client.prepare_cached(&sql).await.map_err(unavailable)?;
        let row = client
            .query_one(&statement, &[&secret_hash])
            .await
            .map_err(unavailable)?;
        let (version, value) = versioned_token_row(&row)?;
        Ok(AtVersion { version, value })
    }

    async fn token_version(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        // On every request with an API token (see the server's `auth`): prepared once per
        // connection.
        let statement = client
            .prepare_cached("SELECT version FROM token_version WHERE id = 1")
            .await
            .map_err(unavailable)?;
        let row = client
            .query_one(&statement, &[])
            .await
            .map_err(unavailable)?;
        version_of(row.try_get(0).map_err(|e| corrupt("token version", e))?)
    }

    async fn token_snapshot(&self) -> StoreResult<AtVersion<Vec<TokenRecord>>> {
        let client = self.client().await?;
        let sql = format!("{TOKENS_AT_VERSION} true WHERE v.id = 1 ORDER BY t.pos");
        let rows = client.query(&sql, &[]).await.map_err(unavailable)?;
        let mut version = None;
        let mut value = Vec::with_capacity(rows.len());
        for row in &rows {
            let (at, token) = versioned_token_row(row)?;
            version = Some(at);
            value.extend(token);
        }
        let version = version
            .ok_or_else(|| StoreError::Corrupt("the token version row is missing".into()))?;
        Ok(AtVersion { version, value })
    }
}
