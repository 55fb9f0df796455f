//! What a shadow policy would have decided otherwise, as stored, and the report over it.

use faramesh_core::Outcome;
use serde::Serialize;

/// A shadow policy's different outcome for an action, written with the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowDisagreement {
    /// `policy_hash` of the shadow policy.
    pub policy_hash: String,
    pub active_outcome: Outcome,
    pub shadow_outcome: Outcome,
    pub shadow_reason_code: String,
    pub shadow_reason: String,
}

/// How many actions went from one outcome under the active policy to another under the
/// shadow one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomePair {
    pub active: Outcome,
    pub shadow: Outcome,
    pub count: u64,
}

/// One recorded disagreement, with the action it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowExample {
    pub action_id: String,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub active_outcome: Outcome,
    pub shadow_outcome: Outcome,
    pub shadow_reason_code: String,
    pub shadow_reason: String,
    pub created_at: String,
}

/// The disagreements of one shadow policy: counted by outcome pair, and the latest ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ShadowSummary {
    pub pairs: Vec<OutcomePair>,
    pub latest: Vec<ShadowExample>,
}

pub(crate) fn outcome(text: &str) -> crate::StoreResult<Outcome> {
    Outcome::parse(text).ok_or_else(|| crate::decode::corrupt("shadow outcome", text))
}

/// An example from its columns: action id, agent, tool, operation, the two outcomes, the
/// shadow reason code and reason, when.
pub(crate) fn example(columns: [String; 9]) -> crate::StoreResult<ShadowExample> {
    let [action_id, agent_id, tool, operation, active, shadow, shadow_reason_code, shadow_reason, created_at] =
        columns;
    Ok(ShadowExample {
        action_id,
        agent_id,
        tool,
        operation,
        active_outcome: outcome(&active)?,
        shadow_outcome: outcome(&shadow)?,
        shadow_reason_code,
        shadow_reason,
        created_at,
    })
}
