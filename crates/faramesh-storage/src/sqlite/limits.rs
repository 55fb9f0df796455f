//! Limit usage on SQLite. Charges go through the single writer, so a check and its count are
//! one step no other check can come between.

use super::unavailable;
use crate::limits::{first_exceeded, window_start, ChargeMode, LimitUsage};
use crate::StoreResult;
use chrono::{DateTime, Utc};
use faramesh_core::policy::limits::{LimitCharge, LimitExceeded};
use rusqlite::{params, Connection};

pub(super) fn charge(
    conn: &Connection,
    action_id: &str,
    charges: &[LimitCharge],
    now: DateTime<Utc>,
    mode: ChargeMode,
) -> StoreResult<Option<LimitExceeded>> {
    let mut used = Vec::with_capacity(charges.len());
    for c in charges {
        let start = window_start(now, c.window_seconds);
        // What fell out of the window is never read again.
        conn.prepare_cached(
            "DELETE FROM limit_usage WHERE limit_name = ?1 AND usage_key = ?2 AND at <= ?3",
        )
        .map_err(unavailable)?
        .execute(params![c.limit, c.key, start])
        .map_err(unavailable)?;
        let sum: f64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(amount), 0) FROM limit_usage WHERE limit_name = ?1 AND usage_key = ?2 AND at > ?3",
            )
            .map_err(unavailable)?
            .query_row(params![c.limit, c.key, start], |row| row.get(0))
            .map_err(unavailable)?;
        used.push(sum);
    }
    let exceeded = first_exceeded(charges, &used);
    let count = match mode {
        ChargeMode::CheckAndCount => exceeded.is_none(),
        ChargeMode::CheckOnly => false,
        ChargeMode::CountAnyway => true,
    };
    if count {
        let at = faramesh_core::timestamp::format(now);
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO limit_usage (limit_name, usage_key, amount, action_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(unavailable)?;
        for c in charges {
            insert
                .execute(params![c.limit, c.key, c.amount, action_id, at])
                .map_err(unavailable)?;
        }
    }
    Ok(exceeded)
}

pub(super) fn release(conn: &Connection, action_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM limit_usage WHERE action_id = ?1")
        .map_err(unavailable)?
        .execute([action_id])
        .map(|_| ())
        .map_err(unavailable)
}

pub(super) fn usage(
    conn: &Connection,
    limits: &[(String, u64)],
    now: DateTime<Utc>,
    per_limit: usize,
) -> StoreResult<Vec<LimitUsage>> {
    let limit = i64::try_from(per_limit).unwrap_or(i64::MAX);
    let mut found = Vec::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT usage_key, SUM(amount), COUNT(*) FROM limit_usage WHERE limit_name = ?1 AND at > ?2 \
             GROUP BY usage_key ORDER BY SUM(amount) DESC, usage_key LIMIT ?3",
        )
        .map_err(unavailable)?;
    for (name, window) in limits {
        let start = window_start(now, *window);
        let rows = stmt
            .query_map(params![name, start, limit], |row| {
                Ok(LimitUsage {
                    limit: name.clone(),
                    key: row.get(0)?,
                    used: row.get(1)?,
                    calls: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                })
            })
            .map_err(unavailable)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(unavailable)?;
        found.extend(rows);
    }
    Ok(found)
}
