//! The action as the API returns it (api.md), with ready-to-paste SDK snippets.

use faramesh_core::ActionStatus;
use faramesh_storage::{ActionRecord, EventRecord};
use serde_json::{json, Value};

/// Whether the caller may see `approval_token` (agents never may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVisibility {
    Shown,
    Hidden,
}

pub fn action(a: &ActionRecord, tokens: TokenVisibility) -> Value {
    let approval_token = match (a.status, tokens) {
        (ActionStatus::PendingApproval, TokenVisibility::Shown) => a.approval_token.clone(),
        _ => None,
    };
    json!({
        "id": a.id,
        "agent_id": a.agent_id,
        "tool": a.tool,
        "operation": a.operation,
        "params": a.params,
        "context": a.context,
        "status": a.status.as_str(),
        "decision": a.decision,
        "reason": a.reason,
        "risk_level": a.risk_level,
        "approval_token": approval_token,
        "policy_version": a.policy_version,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "outcome": a.outcome,
        "reason_code": a.reason_code,
        "reason_details": a.reason_details,
        "request_hash": a.request_hash,
        "policy_hash": a.policy_hash,
        "profile_id": a.profile_id,
        "profile_version": a.profile_version,
        "profile_hash": a.profile_hash,
        "runtime_version": a.runtime_version,
        "provenance_id": a.provenance_id,
        "result": a.result,
        "demo": a.demo,
        "js_example": js_example(a),
        "python_example": python_example(a),
    })
}

pub fn event(e: &EventRecord) -> Value {
    json!({
        "id": e.id,
        "action_id": e.action_id,
        "event_type": e.event_type.as_str(),
        "meta": e.meta,
        "created_at": e.created_at,
        "prev_hash": e.prev_hash,
        "record_hash": e.record_hash,
    })
}

/// The fields the live stream carries for an action.
pub fn stream_data(a: &ActionRecord) -> Value {
    serde_json::to_value(faramesh_storage::ActionSummary::of(a)).unwrap_or(Value::Null)
}

fn python_example(a: &ActionRecord) -> String {
    let mut s = format!("from faramesh import get_action, approve_action, deny_action\n\naction = get_action(\"{}\")\n", a.id);
    if a.status == ActionStatus::PendingApproval {
        s.push_str(&format!(
            "approve_action(\"{}\", reason=\"Looks safe\")\n",
            a.id
        ));
    }
    s
}

fn js_example(a: &ActionRecord) -> String {
    let mut s = format!("import {{ getAction, approveAction }} from \"@faramesh/sdk\";\n\nconst action = await getAction(\"{}\");\n", a.id);
    if a.status == ActionStatus::PendingApproval {
        s.push_str(&format!(
            "await approveAction(\"{}\", {{ reason: \"Looks safe\" }});\n",
            a.id
        ));
    }
    s
}
