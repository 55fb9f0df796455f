//! A decided action as it is stored: the record built from the request and its decision, and
//! its `created` and `decision_made` events (docs/audit.md). Every conversion of a decision's
//! typed fields into stored ones happens here.

use crate::{ActionRecord, NewAction, NewEvent};
use faramesh_core::json::ReceivedText;
use faramesh_core::{ActionRequest, ActionStatus, Decision, EventType};
use serde_json::json;

/// The request as received: its fields, and the text of its params and context.
#[derive(Debug)]
pub struct Received {
    pub request: ActionRequest,
    pub params_text: ReceivedText,
    pub context_text: ReceivedText,
}

impl NewAction {
    /// The action `decision` decided, ready to store as `id` (see [`crate::new_action_id`]).
    /// `approval_token` is called only when the action waits for approval.
    pub fn decided(
        id: String,
        received: Received,
        decision: &Decision,
        approval_token: impl FnOnce() -> String,
        demo: bool,
        idempotency: Option<(String, String)>,
    ) -> NewAction {
        let Received {
            request,
            params_text,
            context_text,
        } = received;
        let status = ActionStatus::from_outcome(decision.outcome);
        let owned = |text: Option<&str>| text.map(str::to_owned);
        let action = ActionRecord {
            id,
            agent_id: request.agent_id,
            tool: request.tool,
            operation: request.operation,
            params: params_text.rejoin(request.params),
            context: context_text.rejoin(request.context),
            status,
            decision: Some(decision.outcome.into()),
            reason: Some(decision.reason.to_string()),
            risk_level: Some(decision.risk_level),
            approval_token: (status == ActionStatus::PendingApproval).then(approval_token),
            policy_version: owned(decision.policy_version.as_deref()),
            outcome: Some(decision.outcome),
            reason_code: Some(decision.reason_code.to_string()),
            // What decided, kept with the action: the policy may change later.
            reason_details: Some(reason_details(decision)),
            request_hash: decision.request_hash.clone(),
            policy_hash: owned(decision.policy_hash.as_deref()),
            profile_id: owned(decision.profile_id.as_deref()),
            profile_version: owned(decision.profile_version.as_deref()),
            profile_hash: owned(decision.profile_hash.as_deref()),
            runtime_version: Some(decision.runtime_version.to_string()),
            provenance_id: Some(decision.provenance_id.clone()),
            result: None,
            demo,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let approval_deadline = decision
            .approval
            .as_ref()
            .and_then(|rule| rule.timeout_seconds)
            .filter(|_| status == ActionStatus::PendingApproval)
            .and_then(deadline_after);
        NewAction {
            action,
            events: submission_events(decision),
            idempotency,
            approval_deadline,
            notifications: Vec::new(),
            shadow: None,
        }
    }
}

impl NewAction {
    /// With what the shadow policy decided for the same request: when its outcome differs,
    /// the disagreement is recorded in the `decision_made` event's meta (`shadow`), with the
    /// action (`reason_details.shadow`) and for the shadow report. The action itself is
    /// decided by the active policy alone. Returns whether they disagreed.
    pub fn compared_with_shadow(&mut self, shadow: &Decision) -> bool {
        let active = self.action.outcome;
        if active == Some(shadow.outcome) {
            return false;
        }
        let policy_hash = shadow.policy_hash.as_deref().unwrap_or("").to_owned();
        let recorded = json!({
            "outcome": shadow.outcome.as_str(),
            "reason_code": &*shadow.reason_code,
            "reason": &*shadow.reason,
            "policy_hash": policy_hash,
        });
        if let Some(meta) = self
            .events
            .iter_mut()
            .find(|e| e.event_type == EventType::DecisionMade)
            .and_then(|e| e.meta.as_object_mut())
        {
            meta.insert("shadow".into(), recorded.clone());
        }
        if let Some(details) = self
            .action
            .reason_details
            .as_mut()
            .and_then(|d| d.as_object_mut())
        {
            details.insert("shadow".into(), recorded);
        }
        if let Some(active) = active {
            self.shadow = Some(crate::ShadowDisagreement {
                policy_hash,
                active_outcome: active,
                shadow_outcome: shadow.outcome,
                shadow_reason_code: shadow.reason_code.to_string(),
                shadow_reason: shadow.reason.to_string(),
            });
        }
        true
    }

    /// The same action, started in the same write when its decision lets it run (`allowed`):
    /// `executing`, with a `started` event after its decision. An action that waits for a
    /// human or is denied is left as it is.
    pub fn started_if_allowed(mut self) -> NewAction {
        if self.action.status == ActionStatus::Allowed {
            self.action.status = ActionStatus::Executing;
            self.events.push(NewEvent {
                event_type: EventType::Started,
                meta: json!({}),
            });
        }
        self
    }
}

/// The time `seconds` from now, as stored; `None` past the end of time.
fn deadline_after(seconds: u64) -> Option<String> {
    let seconds = i64::try_from(seconds).ok()?;
    let at = chrono::Utc::now().checked_add_signed(chrono::TimeDelta::try_seconds(seconds)?)?;
    Some(faramesh_core::timestamp::format(at))
}

/// The risk, the rule that decided, and (when that rule states them) the approval rules the
/// action's approvals must meet, kept with the action: the policy may change while it waits.
fn reason_details(decision: &Decision) -> serde_json::Value {
    let mut details = json!({
        "risk_level": decision.risk_level.as_str(),
        "decided_by": decision.decided_by,
        "risk_rule": decision.risk_rule.as_deref(),
    });
    if let Some(map) = details.as_object_mut() {
        if let Some(approval) = &decision.approval {
            map.insert("approval".into(), json!(approval));
        }
        if let Some(limit) = &decision.limit {
            map.insert("limit".into(), json!(limit));
        }
        if !decision.expression_failures.is_empty() {
            map.insert(
                "expression_failures".into(),
                json!(decision.expression_failures),
            );
        }
    }
    details
}

/// `created` and `decision_made`.
fn submission_events(d: &Decision) -> Vec<NewEvent> {
    vec![
        NewEvent {
            event_type: EventType::Created,
            meta: json!({"decision": d.decision(), "risk_level": d.risk_level.as_str()}),
        },
        NewEvent {
            event_type: EventType::DecisionMade,
            meta: json!({
                "decision": d.decision(),
                "outcome": d.outcome.as_str(),
                "reason_code": &*d.reason_code,
                "reason": &*d.reason,
                "risk_level": d.risk_level.as_str(),
                "request_hash": d.request_hash,
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test stops at the first failure")]

    use super::*;
    use faramesh_core::json::ReceivedObject;
    use faramesh_core::{Engine, Policy};

    fn decided(policy: &str, op: &str) -> NewAction {
        let engine = Engine::new(Some(Policy::parse("p.yaml", policy).unwrap()), "1");
        let request: ActionRequest = serde_json::from_value(
            json!({"agent_id": "a", "tool": "stripe", "operation": op, "params": {}}),
        )
        .unwrap();
        let decision = engine.decide(&request);
        let empty = || ReceivedObject::from_map(serde_json::Map::new()).unwrap();
        let received = Received {
            request,
            params_text: empty().into_parts().0,
            context_text: empty().into_parts().0,
        };
        NewAction::decided(
            crate::new_action_id(),
            received,
            &decision,
            || "t".into(),
            false,
            None,
        )
    }

    #[test]
    fn the_approval_rules_of_the_decision_are_kept_with_the_action() {
        let policy = "rules:\n  - match: {tool: stripe, op: refund}\n    require_approval: {approvers: 2, timeout: 30m}\n  - match: {tool: stripe, op: charge}\n    require_approval: true\n";
        let refund = decided(policy, "refund");
        let details = refund.action.reason_details.unwrap();
        assert_eq!(details["approval"]["approvers"], 2);
        assert_eq!(details["approval"]["timeout_seconds"], 1800);
        // The seed form keeps the details as they always were.
        let charge = decided(policy, "charge");
        let details = charge.action.reason_details.unwrap();
        assert_eq!(
            details.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["risk_level", "decided_by", "risk_rule"]
        );
    }
}
