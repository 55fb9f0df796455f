//! The action lifecycle of docs/api.md: statuses, the transitions between them, and the ledger
//! event each transition writes.
//!
//! ```text
//! submit ──► allowed ─────────────┐
//!        │      └─► denied (policy changed before start, decided again: not EXECUTE)
//!        ├─► denied (terminal)    ├─► start ──► executing ──► succeeded | failed | timeout
//!        └─► pending_approval ─► approved ┘
//!                             ├─► denied (human)
//!                             └─► timeout (approval expired)
//! ```

use crate::decision::Outcome;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Allowed,
    Denied,
    PendingApproval,
    Approved,
    Executing,
    Succeeded,
    Failed,
    Timeout,
}

impl ActionStatus {
    pub const ALL: [ActionStatus; 8] = [
        ActionStatus::Allowed,
        ActionStatus::Denied,
        ActionStatus::PendingApproval,
        ActionStatus::Approved,
        ActionStatus::Executing,
        ActionStatus::Succeeded,
        ActionStatus::Failed,
        ActionStatus::Timeout,
    ];

    /// The status a fresh action gets from its decision.
    pub fn from_outcome(outcome: Outcome) -> ActionStatus {
        match outcome {
            Outcome::Execute => ActionStatus::Allowed,
            Outcome::Abstain => ActionStatus::PendingApproval,
            Outcome::Halt => ActionStatus::Denied,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Allowed => "allowed",
            ActionStatus::Denied => "denied",
            ActionStatus::PendingApproval => "pending_approval",
            ActionStatus::Approved => "approved",
            ActionStatus::Executing => "executing",
            ActionStatus::Succeeded => "succeeded",
            ActionStatus::Failed => "failed",
            ActionStatus::Timeout => "timeout",
        }
    }

    pub fn parse(text: &str) -> Option<ActionStatus> {
        ActionStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No transition leaves a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ActionStatus::Denied
                | ActionStatus::Succeeded
                | ActionStatus::Failed
                | ActionStatus::Timeout
        )
    }
}

impl fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of ledger event (docs/audit.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Created,
    DecisionMade,
    /// One approval of an action that needs more than one; it stays pending.
    ApprovalRecorded,
    /// Nobody decided within the rule's timeout; the escalation routes were told.
    Escalated,
    Approved,
    Denied,
    Started,
    Succeeded,
    Failed,
    Timeout,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::Created,
        EventType::DecisionMade,
        EventType::ApprovalRecorded,
        EventType::Escalated,
        EventType::Approved,
        EventType::Denied,
        EventType::Started,
        EventType::Succeeded,
        EventType::Failed,
        EventType::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "created",
            EventType::DecisionMade => "decision_made",
            EventType::ApprovalRecorded => "approval_recorded",
            EventType::Escalated => "escalated",
            EventType::Approved => "approved",
            EventType::Denied => "denied",
            EventType::Started => "started",
            EventType::Succeeded => "succeeded",
            EventType::Failed => "failed",
            EventType::Timeout => "timeout",
        }
    }

    /// The status an action has right after this event, for the events of transitions
    /// (`created` and `decision_made` depend on the decision instead; `approval_recorded` and
    /// `escalated` leave the action pending).
    pub fn status_after(self) -> Option<ActionStatus> {
        match self {
            EventType::Created | EventType::DecisionMade => None,
            EventType::ApprovalRecorded | EventType::Escalated => {
                Some(ActionStatus::PendingApproval)
            }
            EventType::Approved => Some(ActionStatus::Approved),
            EventType::Denied => Some(ActionStatus::Denied),
            EventType::Started => Some(ActionStatus::Executing),
            EventType::Succeeded => Some(ActionStatus::Succeeded),
            EventType::Failed => Some(ActionStatus::Failed),
            EventType::Timeout => Some(ActionStatus::Timeout),
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A change of status after submission. Each is applied as one conditional update: it
/// happens only if the action is in one of [`Transition::from`] at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// A human approves a pending action.
    Approve,
    /// A human denies a pending action.
    Deny,
    /// Execution starts: only from `allowed` or `approved`.
    Start,
    /// Execution starts, only from `approved`: a human approval is never decided again, so
    /// this start needs no look at the action first.
    StartApproved,
    /// The executor or the agent reports success.
    Succeed,
    /// The executor or the agent reports failure.
    Fail,
    /// The executor ran out of time.
    ExecutionTimeout,
    /// Nobody decided before the approval expired.
    ApprovalExpired,
    /// An `allowed` action about to start was decided again because the policy or profile
    /// changed since its decision, and the new decision does not let it run.
    Revoke,
    /// The agent no longer wants a pending action (its client cancelled the call): nobody
    /// needs to decide it any more.
    Withdraw,
}

impl Transition {
    /// The statuses this transition may start from.
    pub fn from(self) -> &'static [ActionStatus] {
        use ActionStatus::*;
        match self {
            Transition::Approve
            | Transition::Deny
            | Transition::ApprovalExpired
            | Transition::Withdraw => &[PendingApproval],
            Transition::Start => &[Allowed, Approved],
            Transition::StartApproved => &[Approved],
            Transition::Succeed | Transition::Fail => &[Executing, Allowed, Approved],
            Transition::ExecutionTimeout => &[Executing],
            // Only the policy's own allowance is withdrawn; a human approval stands.
            Transition::Revoke => &[Allowed],
        }
    }

    /// The status it leads to.
    pub fn to(self) -> ActionStatus {
        match self {
            Transition::Approve => ActionStatus::Approved,
            Transition::Deny | Transition::Revoke | Transition::Withdraw => ActionStatus::Denied,
            Transition::Start | Transition::StartApproved => ActionStatus::Executing,
            Transition::Succeed => ActionStatus::Succeeded,
            Transition::Fail => ActionStatus::Failed,
            Transition::ExecutionTimeout | Transition::ApprovalExpired => ActionStatus::Timeout,
        }
    }

    /// The ledger event it writes.
    pub fn event(self) -> EventType {
        match self {
            Transition::Approve => EventType::Approved,
            Transition::Deny | Transition::Revoke | Transition::Withdraw => EventType::Denied,
            Transition::Start | Transition::StartApproved => EventType::Started,
            Transition::Succeed => EventType::Succeeded,
            Transition::Fail => EventType::Failed,
            Transition::ExecutionTimeout | Transition::ApprovalExpired => EventType::Timeout,
        }
    }

    /// Whether it may happen to an action in `status`.
    pub fn allowed_from(self, status: ActionStatus) -> bool {
        self.from().contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_leaves_a_terminal_status() {
        let all = [
            Transition::Approve,
            Transition::Deny,
            Transition::Start,
            Transition::StartApproved,
            Transition::Succeed,
            Transition::Fail,
            Transition::ExecutionTimeout,
            Transition::ApprovalExpired,
            Transition::Revoke,
            Transition::Withdraw,
        ];
        for status in ActionStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(
                all.iter().all(|t| !t.allowed_from(status)),
                "{status} must be terminal"
            );
        }
    }

    #[test]
    fn execution_starts_only_from_allowed_or_approved() {
        for status in ActionStatus::ALL {
            let expected = matches!(status, ActionStatus::Allowed | ActionStatus::Approved);
            assert_eq!(Transition::Start.allowed_from(status), expected, "{status}");
        }
    }

    #[test]
    fn names_round_trip() {
        for status in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            EventType::parse("decision_made"),
            Some(EventType::DecisionMade)
        );
        assert_eq!(ActionStatus::parse("pending"), None);
    }
}
