//! The action as the API returns it (docs/api.md), with ready-to-paste SDK snippets.

use faramesh_core::json::ReceivedObject;
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, Outcome, RiskLevel};
use faramesh_storage::{ActionRecord, EventRecord};
use serde::Serialize;
use serde_json::Value;

/// Whether the caller may see `approval_token` (agents never may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVisibility {
    Shown,
    Hidden,
}

/// An action as the API returns it, borrowed from its record: responses are written straight
/// from the record instead of through a copied JSON tree. Fields in the order of docs/api.md.
#[derive(Debug, Serialize)]
pub struct ActionView<'a> {
    id: &'a str,
    agent_id: &'a str,
    tool: &'a str,
    operation: &'a str,
    /// Serialized as the text received.
    params: &'a ReceivedObject,
    context: &'a ReceivedObject,
    status: ActionStatus,
    decision: Option<Effect>,
    reason: &'a Option<String>,
    risk_level: Option<RiskLevel>,
    approval_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<Vec<faramesh_api::ApprovalGiven>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals_required: Option<u32>,
    policy_version: &'a Option<String>,
    created_at: &'a str,
    updated_at: &'a str,
    outcome: Option<Outcome>,
    reason_code: &'a Option<String>,
    reason_details: &'a Option<Value>,
    request_hash: &'a Option<String>,
    policy_hash: &'a Option<String>,
    profile_id: &'a Option<String>,
    profile_version: &'a Option<String>,
    profile_hash: &'a Option<String>,
    runtime_version: &'a Option<String>,
    provenance_id: &'a Option<String>,
    result: &'a Option<Value>,
    demo: bool,
    js_example: String,
    python_example: String,
}

pub fn action(a: &ActionRecord, tokens: TokenVisibility) -> ActionView<'_> {
    let approval_token = match (a.status, tokens) {
        (ActionStatus::PendingApproval, TokenVisibility::Shown) => a.approval_token.as_deref(),
        _ => None,
    };
    ActionView {
        id: &a.id,
        agent_id: &a.agent_id,
        tool: &a.tool,
        operation: &a.operation,
        params: &a.params,
        context: &a.context,
        status: a.status,
        decision: a.decision,
        reason: &a.reason,
        risk_level: a.risk_level,
        approval_token,
        approvals: None,
        approvals_required: None,
        policy_version: &a.policy_version,
        created_at: &a.created_at,
        updated_at: &a.updated_at,
        outcome: a.outcome,
        reason_code: &a.reason_code,
        reason_details: &a.reason_details,
        request_hash: &a.request_hash,
        policy_hash: &a.policy_hash,
        profile_id: &a.profile_id,
        profile_version: &a.profile_version,
        profile_hash: &a.profile_hash,
        runtime_version: &a.runtime_version,
        provenance_id: &a.provenance_id,
        result: &a.result,
        demo: a.demo,
        js_example: js_example(a),
        python_example: python_example(a),
    }
}

impl ActionView<'_> {
    /// With its approvals so far, when the action is under an approval rule (`progress` holds
    /// it; see `approvals::progress_of`).
    pub fn with_approvals(
        mut self,
        progress: &std::collections::HashMap<String, crate::approvals::Progress>,
    ) -> Self {
        if let Some(p) = progress.get(self.id) {
            self.approvals_required = Some(p.required);
            self.approvals = Some(
                p.approvals
                    .iter()
                    .map(|a| faramesh_api::ApprovalGiven {
                        by: a.by.clone(),
                        reason: a.reason.clone(),
                        at: a.at.clone(),
                    })
                    .collect(),
            );
        }
        self
    }
}

pub fn event(e: &EventRecord) -> faramesh_api::LedgerEvent {
    faramesh_api::LedgerEvent {
        id: e.id.clone(),
        action_id: e.action_id.clone(),
        event_type: e.event_type.as_str().to_owned(),
        meta: e.meta.clone(),
        created_at: e.created_at.clone(),
        prev_hash: e.prev_hash.clone(),
        record_hash: e.record_hash.clone(),
        log_index: e.log_index,
    }
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
