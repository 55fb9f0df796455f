//! Shadow policy disagreements on PostgreSQL.

use super::unavailable;
use crate::decode::corrupt;
use crate::shadow::outcome;
use crate::{OutcomePair, ShadowDisagreement, ShadowSummary, StoreResult};
use deadpool_postgres::GenericClient;

/// The rows of the batch's new actions that a shadow policy disagreed with.
pub(super) async fn insert(
    client: &impl GenericClient,
    rows: &[(&str, &ShadowDisagreement, &str)],
) -> Result<(), tokio_postgres::Error> {
    for (action_id, d, at) in rows {
        client
            .execute(
                "INSERT INTO shadow_disagreements (action_id, policy_hash, active_outcome, shadow_outcome, shadow_reason_code, shadow_reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    action_id,
                    &d.policy_hash,
                    &d.active_outcome.as_str(),
                    &d.shadow_outcome.as_str(),
                    &d.shadow_reason_code,
                    &d.shadow_reason,
                    at,
                ],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn summary(
    client: &impl GenericClient,
    policy_hash: &str,
    latest: usize,
) -> StoreResult<ShadowSummary> {
    let rows = client
        .query(
            "SELECT active_outcome, shadow_outcome, count(*) FROM shadow_disagreements WHERE policy_hash = $1 \
             GROUP BY active_outcome, shadow_outcome ORDER BY count(*) DESC, active_outcome, shadow_outcome",
            &[&policy_hash],
        )
        .await
        .map_err(unavailable)?;
    let pairs = rows
        .iter()
        .map(|row| {
            let text = |i| {
                row.try_get::<_, String>(i)
                    .map_err(|e| corrupt("shadow", e))
            };
            let count: i64 = row.try_get(2).map_err(|e| corrupt("shadow count", e))?;
            Ok(OutcomePair {
                active: outcome(&text(0)?)?,
                shadow: outcome(&text(1)?)?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let limit = i64::try_from(latest).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT s.action_id, a.agent_id, a.tool, a.operation, s.active_outcome, s.shadow_outcome, s.shadow_reason_code, s.shadow_reason, s.created_at \
             FROM shadow_disagreements s JOIN actions a ON a.id = s.action_id WHERE s.policy_hash = $1 \
             ORDER BY s.created_at DESC LIMIT $2",
            &[&policy_hash, &limit],
        )
        .await
        .map_err(unavailable)?;
    let latest = rows
        .iter()
        .map(|row| {
            let text = |i| {
                row.try_get::<_, String>(i)
                    .map_err(|e| corrupt("shadow", e))
            };
            crate::shadow::example([
                text(0)?,
                text(1)?,
                text(2)?,
                text(3)?,
                text(4)?,
                text(5)?,
                text(6)?,
                text(7)?,
                text(8)?,
            ])
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ShadowSummary { pairs, latest })
}
