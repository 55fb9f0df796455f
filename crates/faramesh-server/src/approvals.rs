//! Deciding pending actions under the policy's approval rules (docs/approvals.md), and what
//! the routes file announces of each approval event.
//!
//! An action decided by a rule in the mapping form of `require_approval` keeps that rule in
//! `reason_details.approval`, with who submitted it: the policy may change while it waits, and
//! the approvals it needs may not.

use crate::error::ApiError;
use crate::state::AppState;
use faramesh_core::policy::{ApprovalRule, Approver, Effect};
use faramesh_core::{ActionStatus, Transition};
use faramesh_notify::{Approvals, Kind};
use faramesh_storage::{
    ActionRecord, Approval, ApprovalVote, NewNotification, Role, TransitionUpdate,
};
use serde_json::json;
use std::collections::HashMap;

/// Who decides: a token's name and role.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    pub name: &'a str,
    pub role: Role,
}

/// The approval rule stored with an action, when its rule stated one.
pub fn rule_of(action: &ActionRecord) -> Option<ApprovalRule> {
    let stored = action.reason_details.as_ref()?.get("approval")?;
    serde_json::from_value(stored.clone()).ok()
}

/// Who submitted the action, as stored with its approval rule.
fn submitted_by(action: &ActionRecord) -> Option<&str> {
    action
        .reason_details
        .as_ref()?
        .get("approval")?
        .get("submitted_by")?
        .as_str()
}

/// Records who submitted an action that waits under an approval rule, so that identity can
/// never count among its approvers.
pub fn record_submitter(action: &mut ActionRecord, submitter: &str) {
    if let Some(approval) = action
        .reason_details
        .as_mut()
        .and_then(|d| d.get_mut("approval"))
        .and_then(|a| a.as_object_mut())
    {
        approval.insert("submitted_by".into(), json!(submitter));
    }
}

/// Approves or denies the pending action `action` on behalf of `decider`, who has already been
/// checked to hold a role that approves. Under an approval rule: the rule's `roles` apply, an
/// approval counts once per identity and never the submitter's, and the action is approved
/// only once the quorum is reached; a denial denies at once.
pub async fn decide(
    state: &AppState,
    action: &ActionRecord,
    decider: Decider<'_>,
    approve: bool,
    reason: Option<String>,
) -> Result<ActionRecord, ApiError> {
    if action.status != ActionStatus::PendingApproval {
        return Err(ApiError::Conflict {
            detail: format!(
                "Action {} is {}, not pending approval",
                action.id, action.status
            ),
            action_id: action.id.clone(),
            status: action.status.as_str().to_owned(),
        });
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    let rule = rule_of(action);
    if let Some(rule) = &rule {
        may_decide(rule, decider)?;
    }
    let Some(rule) = rule.filter(|_| approve) else {
        return transition(state, action, decider, approve, reason).await;
    };
    if !state.tokens.enabled() {
        return Err(ApiError::Forbidden(
            "This action's rule needs approvals by identified people, and the server has no API tokens to tell people apart; create one per approver (`faramesh token create alice --role approver`) and approve with those".to_owned(),
        ));
    }
    if Some(decider.name) == submitted_by(action) || decider.name == action.agent_id {
        return Err(ApiError::Forbidden(format!(
            "{} submitted action {} and cannot approve it: its rule needs approvals by others",
            decider.name, action.id
        )));
    }
    let given = state
        .store
        .approvals_of(std::slice::from_ref(&action.id))
        .await?
        .remove(&action.id)
        .map_or(0, |a| a.len());
    let quorum = rule.approvers.max(1);
    // Written with the approval that completes the quorum, and only then.
    let mut approved = action.clone();
    approved.status = ActionStatus::Approved;
    approved.decision = Some(Effect::Allow);
    let notifications = announcements(
        state,
        Kind::Decided,
        &approved,
        Approvals {
            given: given + 1,
            required: quorum,
        },
        Some(decider.name),
    );
    let vote = ApprovalVote {
        by: decider.name.to_owned(),
        reason,
        quorum,
        notifications,
    };
    let (action, _) = state.store.approve(&action.id, vote).await?;
    if action.status == ActionStatus::Approved {
        crate::limits::count_approved(state, &action).await;
    }
    Ok(action)
}

/// A decision without a quorum: the seed's single approval, or a denial.
async fn transition(
    state: &AppState,
    action: &ActionRecord,
    decider: Decider<'_>,
    approve: bool,
    reason: Option<String>,
) -> Result<ActionRecord, ApiError> {
    let (transition, decision, status) = if approve {
        (Transition::Approve, Effect::Allow, ActionStatus::Approved)
    } else {
        (Transition::Deny, Effect::Deny, ActionStatus::Denied)
    };
    let mut decided = action.clone();
    decided.status = status;
    decided.decision = Some(decision);
    if let Some(reason) = &reason {
        decided.reason = Some(reason.clone());
    }
    let progress = progress_of(state, std::slice::from_ref(action)).await?;
    let approvals = progress
        .get(&action.id)
        .map(Progress::counts)
        .unwrap_or_default();
    let update = TransitionUpdate {
        notifications: announcements(
            state,
            Kind::Decided,
            &decided,
            approvals,
            Some(decider.name),
        ),
        decision: Some(decision),
        meta: json!({"reason": reason, "by": decider.name}),
        reason,
        result: None,
    };
    let action = state.transition(&action.id, transition, update).await?;
    if action.status == ActionStatus::Approved {
        crate::limits::count_approved(state, &action).await;
    }
    Ok(action)
}

/// 403 unless the rule's `roles` admit `decider` (any approver or admin when it names none).
fn may_decide(rule: &ApprovalRule, decider: Decider<'_>) -> Result<(), ApiError> {
    if rule.roles.is_empty()
        || rule.roles.iter().any(|who| match who {
            Approver::Role(role) => role == decider.role.as_str(),
            Approver::Token(name) => name == decider.name,
        })
    {
        return Ok(());
    }
    let allowed: Vec<String> = rule
        .roles
        .iter()
        .map(|who| match who {
            Approver::Role(role) => format!("the {role} role"),
            Approver::Token(name) => format!("token {name:?}"),
        })
        .collect();
    Err(ApiError::Forbidden(format!(
        "{} ({} role) may not decide this action: its rule admits only {}",
        decider.name,
        decider.role,
        allowed.join(", ")
    )))
}

/// The approvals of an action under an approval rule.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub approvals: Vec<Approval>,
    /// How many distinct approvals its rule needs.
    pub required: u32,
}

impl Progress {
    pub fn counts(&self) -> Approvals {
        Approvals {
            given: self.approvals.len(),
            required: self.required,
        }
    }
}

/// How far along their approvals the actions under an approval rule are, by id.
pub async fn progress_of(
    state: &AppState,
    actions: &[ActionRecord],
) -> Result<HashMap<String, Progress>, ApiError> {
    let required: HashMap<&str, u32> = actions
        .iter()
        .filter_map(|a| rule_of(a).map(|r| (a.id.as_str(), r.approvers.max(1))))
        .collect();
    if required.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = required.keys().map(|id| (*id).to_owned()).collect();
    let mut given = state.store.approvals_of(&ids).await?;
    Ok(required
        .into_iter()
        .map(|(id, required)| {
            let approvals = given.remove(id).unwrap_or_default();
            (
                id.to_owned(),
                Progress {
                    approvals,
                    required,
                },
            )
        })
        .collect())
}

/// The notifications of `kind` about `action` (as it is once the event happened), one per
/// route that announces it: the escalation routes for an escalation; else the routes its rule
/// names, or every route whose match holds.
pub fn announcements(
    state: &AppState,
    kind: Kind,
    action: &ActionRecord,
    approvals: Approvals,
    by: Option<&str>,
) -> Vec<NewNotification> {
    let routes = &state.config.notify_routes;
    if routes.routes.is_empty() {
        return Vec::new();
    }
    let chosen = if kind == Kind::Escalated {
        routes.escalation_routes()
    } else {
        let named = rule_of(action).map(|r| r.notify).unwrap_or_default();
        let request = action.request();
        let subject = faramesh_notify::Subject {
            request: &request,
            risk: action.risk_level,
        };
        routes.for_action(subject, &named)
    };
    let approvals = Approvals {
        required: approvals.required.max(1),
        ..approvals
    };
    faramesh_notify::announce::notifications(
        kind,
        action,
        approvals,
        by,
        &chosen,
        routes.public_url.as_deref(),
    )
}
