//! Approvals of actions whose rule asks for more than the seed's single approval (a quorum of
//! distinct approvers, a timeout), as stored.

use crate::outbox::NewNotification;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One recorded approval of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The identity that approved (a token name).
    pub by: String,
    pub reason: Option<String>,
    pub at: String,
}

/// An approval to record with [`crate::Store::approve`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalVote {
    /// Who approves (a token name); the same name never counts twice.
    pub by: String,
    pub reason: Option<String>,
    /// How many distinct approvals the action needs.
    pub quorum: u32,
    /// Written with the `approved` event when this approval completes the quorum.
    pub notifications: Vec<NewNotification>,
}

impl ApprovalVote {
    /// Whether `count` approvals (this one included) meet the quorum.
    pub(crate) fn completes(&self, count: u64) -> bool {
        count >= u64::from(self.quorum.max(1))
    }

    /// The meta of the event this approval writes, the `count`-th of the action's.
    pub(crate) fn meta(&self, count: u64) -> Value {
        json!({
            "reason": self.reason,
            "by": self.by,
            "approvals": count,
            "required": self.quorum,
        })
    }
}

/// A pending action whose approval deadline has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueApproval {
    pub id: String,
    /// Whether it was escalated already (so its second deadline is the one that passed).
    pub escalated: bool,
}

/// Deadlines that passed, with their action's status: those still pending are due; the others
/// (decided since) are returned by id, to be forgotten.
pub(crate) fn split_due(passed: Vec<(DueApproval, String)>) -> (Vec<DueApproval>, Vec<String>) {
    let pending = faramesh_core::ActionStatus::PendingApproval.as_str();
    let mut due = Vec::new();
    let mut decided = Vec::new();
    for (approval, status) in passed {
        if status == pending {
            due.push(approval);
        } else {
            decided.push(approval.id);
        }
    }
    (due, decided)
}

/// What [`crate::Store::escalate`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// The next deadline, after which the action is denied.
    pub deadline: String,
    /// Meta of the `escalated` event.
    pub meta: Value,
    pub notifications: Vec<NewNotification>,
}
