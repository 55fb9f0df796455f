//! Limit usage on PostgreSQL. Each charge runs in its own transaction that first takes a
//! transaction-scoped advisory lock per limit and key (in one order, so two charges never wait
//! on each other in a cycle): checks of the same limit and key on any replica take turns, and
//! each sees what the one before it counted.

use super::unavailable;
use crate::decode::corrupt;
use crate::limits::{first_exceeded, window_start, ChargeMode, LimitUsage};
use crate::StoreResult;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object};
use faramesh_core::policy::limits::{LimitCharge, LimitExceeded};

pub(super) async fn charge(
    client: &mut Object,
    action_id: &str,
    charges: &[LimitCharge],
    now: DateTime<Utc>,
    mode: ChargeMode,
) -> StoreResult<Option<LimitExceeded>> {
    let tx = client.transaction().await.map_err(unavailable)?;
    let mut keys: Vec<String> = charges
        .iter()
        .map(|c| format!("{}\n{}", c.limit, c.key))
        .collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7037))",
            &[key],
        )
        .await
        .map_err(unavailable)?;
    }
    let mut used = Vec::with_capacity(charges.len());
    for c in charges {
        let start = window_start(now, c.window_seconds);
        tx.execute(
            "DELETE FROM limit_usage WHERE limit_name = $1 AND usage_key = $2 AND at <= $3",
            &[&c.limit, &c.key, &start],
        )
        .await
        .map_err(unavailable)?;
        let row = tx
            .query_one(
                "SELECT COALESCE(SUM(amount), 0)::float8 FROM limit_usage WHERE limit_name = $1 AND usage_key = $2 AND at > $3",
                &[&c.limit, &c.key, &start],
            )
            .await
            .map_err(unavailable)?;
        used.push(
            row.try_get::<_, f64>(0)
                .map_err(|e| corrupt("limit usage", e))?,
        );
    }
    let exceeded = first_exceeded(charges, &used);
    let count = match mode {
        ChargeMode::CheckAndCount => exceeded.is_none(),
        ChargeMode::CheckOnly => false,
        ChargeMode::CountAnyway => true,
    };
    if count {
        let at = faramesh_core::timestamp::format(now);
        for c in charges {
            tx.execute(
                "INSERT INTO limit_usage (limit_name, usage_key, amount, action_id, at) VALUES ($1, $2, $3, $4, $5)",
                &[&c.limit, &c.key, &c.amount, &action_id, &at],
            )
            .await
            .map_err(unavailable)?;
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(exceeded)
}

pub(super) async fn release(client: &impl GenericClient, action_id: &str) -> StoreResult<()> {
    client
        .execute(
            "DELETE FROM limit_usage WHERE action_id = $1",
            &[&action_id],
        )
        .await
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) async fn usage(
    client: &impl GenericClient,
    limits: &[(String, u64)],
    now: DateTime<Utc>,
    per_limit: usize,
) -> StoreResult<Vec<LimitUsage>> {
    let limit = i64::try_from(per_limit).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    for (name, window) in limits {
        let start = window_start(now, *window);
        let rows = client
            .query(
                "SELECT usage_key, SUM(amount)::float8, COUNT(*) FROM limit_usage WHERE limit_name = $1 AND at > $2 \
                 GROUP BY usage_key ORDER BY SUM(amount) DESC, usage_key LIMIT $3",
                &[name, &start, &limit],
            )
            .await
            .map_err(unavailable)?;
        for row in rows {
            found.push(LimitUsage {
                limit: name.clone(),
                key: row.try_get(0).map_err(|e| corrupt("limit usage", e))?,
                used: row.try_get(1).map_err(|e| corrupt("limit usage", e))?,
                calls: u64::try_from(
                    row.try_get::<_, i64>(2)
                        .map_err(|e| corrupt("limit usage", e))?,
                )
                .unwrap_or(0),
            });
        }
    }
    Ok(found)
}
