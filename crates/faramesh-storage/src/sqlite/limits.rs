//! Limit usage on SQLite. Charges go through the single writer, so a check and its count are
//! one step no other check can come between.

use super::unavailable;
use crate::limits::{first_exceeded, window_start, ChargeMode, LimitUsage};
use crate::StoreResult;
use chrono::{DateTime, Utc};
use faramesh_core::policy::limits::{LimitCharge, LimitExceeded};
use rusqlite::{params, Connection, OptionalExtension};

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
        // What left the window leaves the total: each row once, so a check costs the same
        // however many actions the key has in its window.
        let expired: f64 = conn
            .prepare_cached(
                "DELETE FROM limit_usage WHERE limit_name = ?1 AND usage_key = ?2 AND at <= ?3 RETURNING amount",
            )
            .map_err(unavailable)?
            .query_map(params![c.limit, c.key, start], |row| row.get::<_, f64>(0))
            .map_err(unavailable)?
            .sum::<rusqlite::Result<f64>>()
            .map_err(unavailable)?;
        let total: f64 = conn
            .prepare_cached(
                "SELECT total FROM limit_totals WHERE limit_name = ?1 AND usage_key = ?2",
            )
            .map_err(unavailable)?
            .query_row(params![c.limit, c.key], |row| row.get(0))
            .optional()
            .map_err(unavailable)?
            .unwrap_or(0.0);
        let total = (total - expired).max(0.0);
        if expired > 0.0 {
            set_total(conn, c, total)?;
        }
        used.push(total);
    }
    let exceeded = first_exceeded(charges, &used);
    if mode.counts(exceeded.is_some()) {
        let at = faramesh_core::timestamp::format(now);
        for (c, total) in charges.iter().zip(&used) {
            conn.prepare_cached(
                "INSERT INTO limit_usage (limit_name, usage_key, amount, action_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(unavailable)?
            .execute(params![c.limit, c.key, c.amount, action_id, at])
            .map_err(unavailable)?;
            set_total(conn, c, total + c.amount)?;
        }
    }
    Ok(exceeded)
}

fn set_total(conn: &Connection, c: &LimitCharge, total: f64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO limit_totals (limit_name, usage_key, total) VALUES (?1, ?2, ?3) \
         ON CONFLICT (limit_name, usage_key) DO UPDATE SET total = excluded.total",
    )
    .map_err(unavailable)?
    .execute(params![c.limit, c.key, total])
    .map(|_| ())
    .map_err(unavailable)
}

pub(super) fn release(conn: &Connection, action_id: &str) -> StoreResult<()> {
    let released = conn
        .prepare_cached(
            "DELETE FROM limit_usage WHERE action_id = ?1 RETURNING limit_name, usage_key, amount",
        )
        .map_err(unavailable)?
        .query_map([action_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, f64>(2)?,
            ))
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    for (limit, key, amount) in released {
        conn.prepare_cached(
            "UPDATE limit_totals SET total = MAX(total - ?3, 0) WHERE limit_name = ?1 AND usage_key = ?2",
        )
        .map_err(unavailable)?
        .execute(params![limit, key, amount])
        .map_err(unavailable)?;
    }
    Ok(())
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
