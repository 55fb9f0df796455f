//! The notification outbox: what must be delivered, written in the transaction of the event
//! that caused it, and taken by delivery workers (docs/notifications.md).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A notification to write with an event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The route that delivers it (a name from the routes file).
    pub route: String,
    /// What happened: `approval.requested`, `approval.decided`, `approval.expired`,
    /// `approval.escalated`, or `test`.
    pub kind: String,
    /// What the receivers are told, without any secret: those are added at delivery.
    pub payload: Value,
}

/// Where a notification's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Not delivered yet: waiting for its first attempt or its next retry.
    Pending,
    Delivered,
    /// Given up after retrying for as long as the routes file allows.
    Failed,
}

impl NotificationState {
    pub const ALL: [NotificationState; 3] = [
        NotificationState::Pending,
        NotificationState::Delivered,
        NotificationState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationState> {
        NotificationState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRecord {
    /// Its position in the outbox: increases with every notification written.
    pub seq: i64,
    pub id: String,
    /// The action it is about; none for a test message.
    pub action_id: Option<String>,
    pub route: String,
    pub kind: String,
    pub payload: Value,
    pub state: NotificationState,
    /// Delivery attempts begun so far.
    pub attempts: u32,
    /// When it may be tried next (while pending).
    pub next_attempt_at: String,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// How an attempt ended, for [`crate::Store::finish_notification`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; try again at `at` (an ISO-8601 time).
    Retry {
        at: String,
        error: String,
    },
    /// Failed for the last time.
    GiveUp {
        error: String,
    },
}

/// Filters of `GET /v1/notifications`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotificationFilter {
    pub limit: usize,
    pub action_id: Option<String>,
    pub route: Option<String>,
    pub state: Option<NotificationState>,
}

/// The columns of a notification row, in the order both backends read them.
pub(crate) const NOTIFICATION_COLUMNS: &str = "seq, id, action_id, route, kind, payload, state, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// Builds the `WHERE … ORDER BY … LIMIT` of a listing for `filter`, with placeholders made by
/// `placeholder(n)` (1-based), and its arguments in order.
pub(crate) fn listing_clause(
    filter: &NotificationFilter,
    placeholder: fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    let mut add = |column: &str, value: String| {
        args.push(value);
        conditions.push(format!("{column} = {}", placeholder(args.len())));
    };
    if let Some(id) = &filter.action_id {
        add("action_id", id.clone());
    }
    if let Some(route) = &filter.route {
        add("route", route.clone());
    }
    if let Some(state) = filter.state {
        add("state", state.as_str().to_owned());
    }
    let mut clause = String::new();
    if !conditions.is_empty() {
        clause.push_str(" WHERE ");
        clause.push_str(&conditions.join(" AND "));
    }
    clause.push_str(&format!(" ORDER BY seq DESC LIMIT {}", filter.limit.max(1)));
    (clause, args)
}

/// A notification row read as its raw columns, decoded afterwards so errors can be reported.
pub(crate) struct RawNotification {
    pub seq: i64,
    /// id, route, kind, payload, state, next_attempt_at, created_at
    pub text: [String; 7],
    pub action_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

pub(crate) fn decode_notification(raw: RawNotification) -> crate::StoreResult<NotificationRecord> {
    let [id, route, kind, payload, state, next_attempt_at, created_at] = raw.text;
    Ok(NotificationRecord {
        seq: raw.seq,
        id,
        action_id: raw.action_id,
        route,
        kind,
        payload: serde_json::from_str(&payload)
            .map_err(|e| crate::decode::corrupt("notification payload", e))?,
        state: NotificationState::parse(&state)
            .ok_or_else(|| crate::decode::corrupt("notification state", &state))?,
        attempts: u32::try_from(raw.attempts).unwrap_or(u32::MAX),
        next_attempt_at,
        last_error: raw.last_error,
        created_at,
        delivered_at: raw.delivered_at,
    })
}
