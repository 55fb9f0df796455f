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
        // What left the window leaves the total: each row once, so a check costs the same
        // however many actions the key has in its window.
        let expired: f64 = tx
            .query(
                "DELETE FROM limit_usage WHERE limit_name = $1 AND usage_key = $2 AND at <= $3 RETURNING amount",
                &[&c.limit, &c.key, &start],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| r.try_get::<_, f64>(0).map_err(|e| corrupt("limit usage", e)))
            .sum::<StoreResult<f64>>()?;
        let total: f64 = tx
            .query_opt(
                "SELECT total FROM limit_totals WHERE limit_name = $1 AND usage_key = $2",
                &[&c.limit, &c.key],
            )
            .await
            .map_err(unavailable)?
            .map(|r| {
                r.try_get::<_, f64>(0)
                    .map_err(|e| corrupt("limit total", e))
            })
            .transpose()?
            .unwrap_or(0.0);
        let total = (total - expired).max(0.0);
        if expired > 0.0 {
            set_total(&tx, c, total).await?;
        }
        used.push(total);
    }
    let exceeded = first_exceeded(charges, &used);
    if mode.counts(exceeded.is_some()) {
        let at = faramesh_core::timestamp::format(now);
        for (c, total) in charges.iter().zip(&used) {
            tx.execute(
                "INSERT INTO limit_usage (limit_name, usage_key, amount, action_id, at) VALUES ($1, $2, $3, $4, $5)",
                &[&c.limit, &c.key, &c.amount, &action_id, &at],
            )
            .await
            .map_err(unavailable)?;
            set_total(&tx, c, total + c.amount).await?;
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(exceeded)
}

async fn set_total(tx: &impl GenericClient, c: &LimitCharge, total: f64) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO limit_totals (limit_name, usage_key, total) VALUES ($1, $2, $3) \
         ON CONFLICT (limit_name, usage_key) DO UPDATE SET total = excluded.total",
        &[&c.limit, &c.key, &total],
    )
    .await
    .map(|_| ())
    .map_err(unavailable)
}

/// Gives back what an action counted, under the same locks as a charge.
pub(super) async fn release(client: &mut Object, action_id: &str) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(unavailable)?;
    let counted = tx
        .query(
            "SELECT DISTINCT limit_name, usage_key FROM limit_usage WHERE action_id = $1 ORDER BY 1, 2",
            &[&action_id],
        )
        .await
        .map_err(unavailable)?;
    for row in &counted {
        let limit: String = row.try_get(0).map_err(|e| corrupt("limit usage", e))?;
        let key: String = row.try_get(1).map_err(|e| corrupt("limit usage", e))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7037))",
            &[&format!("{limit}\n{key}")],
        )
        .await
        .map_err(unavailable)?;
    }
    let released = tx
        .query(
            "DELETE FROM limit_usage WHERE action_id = $1 RETURNING limit_name, usage_key, amount",
            &[&action_id],
        )
        .await
        .map_err(unavailable)?;
    for row in released {
        let limit: String = row.try_get(0).map_err(|e| corrupt("limit usage", e))?;
        let key: String = row.try_get(1).map_err(|e| corrupt("limit usage", e))?;
        let amount: f64 = row.try_get(2).map_err(|e| corrupt("limit usage", e))?;
        tx.execute(
            "UPDATE limit_totals SET total = GREATEST(total - $3, 0) WHERE limit_name = $1 AND usage_key = $2",
            &[&limit, &key, &amount],
        )
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)
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
