//! Versioned migrations for PostgreSQL. An advisory lock held for the migration transaction
//! makes replicas that start together apply each migration exactly once.

use super::unavailable;
use crate::{StoreError, StoreResult};

/// The schema, one migration per step, in order. Never edit a shipped one; add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_listing_by_status.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_token_version.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_approvals_and_notifications.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_shadow_decisions.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_limit_usage.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_limit_totals.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_search_by_operation.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_merkle_log.sql"),
    ),
];

/// Arbitrary but fixed: the advisory lock id of Faramesh migrations.
const MIGRATION_LOCK: i64 = 0x6661_7261_6d65_7368;

pub(super) async fn run(client: &mut deadpool_postgres::Object) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(unavailable)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(unavailable)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS faramesh_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(unavailable)?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM faramesh_migrations",
            &[],
        )
        .await
        .map_err(unavailable)?;
    let current: i64 = row.try_get(0).map_err(unavailable)?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::unavailable(format!(
            "the database schema is version {current}, newer than this server knows ({latest}); upgrade faramesh"
        )));
    }
    if current > 0 && current < latest {
        // A new index over a ledger of millions of actions takes a while to build.
        tracing::info!(
            "upgrading the database schema from version {current} to {latest}; on a large ledger this can take a minute"
        );
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::unavailable_because(format!("migration {version} failed: {e}"), e)
        })?;
        tx.execute(
            "INSERT INTO faramesh_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)
}
