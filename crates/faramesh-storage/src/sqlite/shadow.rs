//! Shadow policy disagreements on SQLite.

use super::unavailable;
use crate::shadow::outcome;
use crate::{OutcomePair, ShadowDisagreement, ShadowSummary, StoreResult};
use rusqlite::{params, Connection};

pub(super) fn insert(
    conn: &Connection,
    action_id: &str,
    d: &ShadowDisagreement,
    at: &str,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO shadow_disagreements (action_id, policy_hash, active_outcome, shadow_outcome, shadow_reason_code, shadow_reason, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(unavailable)?
    .execute(params![
        action_id,
        d.policy_hash,
        d.active_outcome.as_str(),
        d.shadow_outcome.as_str(),
        d.shadow_reason_code,
        d.shadow_reason,
        at
    ])
    .map(|_| ())
    .map_err(unavailable)
}

pub(super) fn summary(
    conn: &Connection,
    policy_hash: &str,
    latest: usize,
) -> StoreResult<ShadowSummary> {
    let pairs = conn
        .prepare_cached(
            "SELECT active_outcome, shadow_outcome, count(*) FROM shadow_disagreements WHERE policy_hash = ?1 \
             GROUP BY active_outcome, shadow_outcome ORDER BY count(*) DESC, active_outcome, shadow_outcome",
        )
        .map_err(unavailable)?
        .query_map([policy_hash], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?
        .into_iter()
        .map(|(active, shadow, count)| {
            Ok(OutcomePair {
                active: outcome(&active)?,
                shadow: outcome(&shadow)?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let limit = i64::try_from(latest).unwrap_or(i64::MAX);
    let latest = conn
        .prepare_cached(
            "SELECT s.action_id, a.agent_id, a.tool, a.operation, s.active_outcome, s.shadow_outcome, s.shadow_reason_code, s.shadow_reason, s.created_at \
             FROM shadow_disagreements s JOIN actions a ON a.id = s.action_id WHERE s.policy_hash = ?1 \
             ORDER BY s.created_at DESC LIMIT ?2",
        )
        .map_err(unavailable)?
        .query_map(params![policy_hash, limit], |row| {
            let text = |i| row.get::<_, String>(i);
            Ok([text(0)?, text(1)?, text(2)?, text(3)?, text(4)?, text(5)?, text(6)?, text(7)?, text(8)?])
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?
        .into_iter()
        .map(crate::shadow::example)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ShadowSummary { pairs, latest })
}
