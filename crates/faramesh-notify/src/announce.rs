//! What a notification says: one payload per event, the same for every route; each kind of
//! route renders it its own way at delivery (docs/notifications.md).

use crate::routes::Route;
use faramesh_storage::{ActionRecord, NewNotification};
use serde_json::{json, Value};

/// What happened to a pending action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It waits for approval.
    Requested,
    /// It was approved, denied or withdrawn.
    Decided,
    /// Nobody decided in time.
    Expired,
    /// Nobody decided within the rule's timeout; the escalation routes are told.
    Escalated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Requested => "approval.requested",
            Kind::Decided => "approval.decided",
            Kind::Expired => "approval.expired",
            Kind::Escalated => "approval.escalated",
        }
    }

    /// Whether a human can still decide the action, so the message offers to.
    pub fn asks_for_decision(kind: &str) -> bool {
        kind == Kind::Requested.as_str() || kind == Kind::Escalated.as_str()
    }
}

/// Where the action stands with its approvals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Approvals {
    /// Approvals recorded so far.
    pub given: usize,
    /// Approvals the action needs.
    pub required: u32,
}

/// The notifications of `kind` for `action`, one per route. `by` is who decided, for
/// [`Kind::Decided`].
pub fn notifications(
    kind: Kind,
    action: &ActionRecord,
    approvals: Approvals,
    by: Option<&str>,
    routes: &[&Route],
    public_url: Option<&str>,
) -> Vec<NewNotification> {
    if routes.is_empty() {
        return Vec::new();
    }
    let payload = payload(kind, action, approvals, by, public_url);
    routes
        .iter()
        .map(|route| NewNotification {
            route: route.name.clone(),
            kind: kind.as_str().to_owned(),
            payload: payload.clone(),
        })
        .collect()
}

/// The link to the action in the web UI.
pub fn action_link(public_url: &str, id: &str) -> String {
    format!("{public_url}/#/action/{id}")
}

fn payload(
    kind: Kind,
    action: &ActionRecord,
    approvals: Approvals,
    by: Option<&str>,
    public_url: Option<&str>,
) -> Value {
    let mut payload = json!({
        "type": kind.as_str(),
        "occurred_at": faramesh_storage::now_timestamp(),
        "action": {
            "id": action.id,
            "agent_id": action.agent_id,
            "tool": action.tool,
            "operation": action.operation,
            "params": action.params.map(),
            "status": action.status,
            "decision": action.decision,
            "reason": action.reason,
            "reason_code": action.reason_code,
            "risk_level": action.risk_level,
            "created_at": action.created_at,
            "approvals": approvals.given,
            "approvals_required": approvals.required,
        },
        "by": by,
    });
    if let (Some(url), Some(map)) = (public_url, payload.as_object_mut()) {
        map.insert(
            "links".into(),
            json!({"action": action_link(url, &action.id)}),
        );
    }
    payload
}

/// The payload of `faramesh notify test ROUTE`.
pub fn test_notification(route: &str) -> NewNotification {
    NewNotification {
        route: route.to_owned(),
        kind: "test".to_owned(),
        payload: json!({
            "type": "test",
            "occurred_at": faramesh_storage::now_timestamp(),
            "message": format!("A test message from Faramesh to route {route}: if you read this, the route works."),
        }),
    }
}
