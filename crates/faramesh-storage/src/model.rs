//! The records storage reads and writes.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use faramesh_core::json::ReceivedObject;
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, EventType, Outcome, RiskLevel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The current UTC time as stored and returned: ISO-8601 with microseconds and `Z`.
pub fn now_timestamp() -> String {
    faramesh_core::timestamp::format(chrono::Utc::now())
}

/// An action as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    pub id: String,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    /// Exactly as received: stored as its text, shown as its text, decided on its map.
    pub params: ReceivedObject,
    pub context: ReceivedObject,
    pub status: ActionStatus,
    pub decision: Option<Effect>,
    pub reason: Option<String>,
    pub risk_level: Option<RiskLevel>,
    pub approval_token: Option<String>,
    pub policy_version: Option<String>,
    pub outcome: Option<Outcome>,
    pub reason_code: Option<String>,
    pub reason_details: Option<Value>,
    pub request_hash: Option<String>,
    pub policy_hash: Option<String>,
    pub profile_id: Option<String>,
    pub profile_version: Option<String>,
    pub profile_hash: Option<String>,
    pub runtime_version: Option<String>,
    pub provenance_id: Option<String>,
    /// Executor output, when the server executed it.
    pub result: Option<Value>,
    /// Seeded demonstration data.
    pub demo: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl ActionRecord {
    /// The request this action was decided on, for deciding it again or reading its limits.
    pub fn request(&self) -> faramesh_core::ActionRequest {
        faramesh_core::ActionRequest {
            agent_id: self.agent_id.clone(),
            tool: self.tool.clone(),
            operation: self.operation.clone(),
            params: self.params.map().clone(),
            context: self.context.map().clone(),
        }
    }
}

/// A ledger event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Position in the whole ledger: increases with every event written.
    pub seq: i64,
    pub id: String,
    pub action_id: String,
    pub event_type: EventType,
    pub meta: Value,
    pub created_at: String,
    pub prev_hash: Option<String>,
    pub record_hash: String,
    /// Position in the Merkle log (0-based, no gaps); `None` until the event's transaction
    /// appended it, so only in what is read back.
    pub log_index: Option<u64>,
}

impl EventRecord {
    /// The next event of an action's chain, after `prev_hash`: a new id, the time now, and its
    /// `record_hash`. `seq` is 0 until the database assigns it.
    pub fn next(
        action_id: &str,
        event: NewEvent,
        prev_hash: Option<String>,
    ) -> crate::StoreResult<EventRecord> {
        // Time-ordered (version 7): nobody types an event id, and a unique index on it (as
        // PostgreSQL keeps) takes each new one at its end instead of at a random page.
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now_timestamp();
        let record_hash = faramesh_core::hash::event_record_hash(
            &id,
            action_id,
            event.event_type.as_str(),
            &created_at,
            &event.meta,
            prev_hash.as_deref(),
        )
        .map_err(|e| {
            crate::StoreError::Corrupt(format!("event meta has no canonical form: {e}"))
        })?;
        Ok(EventRecord {
            seq: 0,
            id,
            action_id: action_id.to_owned(),
            event_type: event.event_type,
            meta: event.meta,
            created_at,
            prev_hash,
            record_hash,
            log_index: None,
        })
    }

    /// The fields the hash chain covers, for `faramesh_core::ledger::verify_chain`.
    pub fn chained(&self) -> faramesh_core::ledger::ChainedEvent<'_> {
        faramesh_core::ledger::ChainedEvent {
            id: &self.id,
            action_id: &self.action_id,
            event_type: self.event_type.as_str(),
            created_at: &self.created_at,
            meta: &self.meta,
            prev_hash: self.prev_hash.as_deref(),
            record_hash: &self.record_hash,
        }
    }
}

/// An event to append; id, time and hashes are assigned when it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub meta: Value,
}

/// A new action with the events of its submission.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    /// `created_at`/`updated_at` are replaced by the time of writing.
    pub action: ActionRecord,
    pub events: Vec<NewEvent>,
    /// `(Idempotency-Key, hash of the request body)`.
    pub idempotency: Option<(String, String)>,
    /// When the approval rule's timeout applies (for an action that waits for approval under
    /// a rule with a timeout).
    pub approval_deadline: Option<String>,
    /// Written with the action (the announcements of a pending action).
    pub notifications: Vec<crate::NewNotification>,
    /// What a shadow policy would have decided instead, when it disagrees.
    pub shadow: Option<crate::ShadowDisagreement>,
}

/// The result of [`crate::Store::create_action`].
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub action: ActionRecord,
    /// The events written; empty when `replayed`.
    pub events: Vec<EventRecord>,
    /// True when an earlier action with the same idempotency key and body was returned.
    pub replayed: bool,
}

/// Field changes that come with a transition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransitionUpdate {
    /// New `decision` (after a human decides: `allow` or `deny`).
    pub decision: Option<Effect>,
    /// New `reason`.
    pub reason: Option<String>,
    /// New `result` (executor output).
    pub result: Option<Value>,
    /// Meta of the event the transition writes.
    pub meta: Value,
    /// Written with the event when the transition applies.
    pub notifications: Vec<crate::NewNotification>,
}

/// Filters of `GET /v1/actions`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActionFilter {
    pub limit: usize,
    pub offset: usize,
    pub agent_id: Option<String>,
    pub tool: Option<String>,
    pub status: Option<ActionStatus>,
    /// What a search found: only actions with at least one of these names, besides the
    /// filters above. `Some` of an empty list matches nothing; `None` does not filter.
    pub names: Option<Vec<Name>>,
}

/// The columns a search reads names from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameColumn {
    Agent,
    Tool,
    Operation,
}

impl NameColumn {
    pub const ALL: [NameColumn; 3] = [NameColumn::Agent, NameColumn::Tool, NameColumn::Operation];

    /// The column, as the schema and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            NameColumn::Agent => "agent_id",
            NameColumn::Tool => "tool",
            NameColumn::Operation => "operation",
        }
    }
}

/// One name of one column, as a search found it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    pub column: NameColumn,
    pub value: String,
}

/// What the live stream says of an action (the data of `GET /v1/events` messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSummary {
    pub id: String,
    pub status: ActionStatus,
    pub decision: Option<Effect>,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub reason: Option<String>,
    pub risk_level: Option<RiskLevel>,
}

impl ActionSummary {
    pub fn of(a: &ActionRecord) -> ActionSummary {
        ActionSummary {
            id: a.id.clone(),
            status: a.status,
            decision: a.decision,
            agent_id: a.agent_id.clone(),
            tool: a.tool.clone(),
            operation: a.operation.clone(),
            reason: a.reason.clone(),
            risk_level: a.risk_level,
        }
    }

    /// The same with every text cut to at most `max` bytes (at a character boundary), so a
    /// notification fits the database's payload limit.
    pub fn bounded(mut self, max: usize) -> ActionSummary {
        let cut = |text: &mut String| {
            if text.len() > max {
                let mut end = max;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
        };
        for text in [&mut self.agent_id, &mut self.tool, &mut self.operation] {
            cut(text);
        }
        if let Some(reason) = &mut self.reason {
            cut(reason);
        }
        self
    }
}

/// One item of the change feed (see [`crate::Store::change_feed`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// An action was created or changed.
    Action(Change),
    /// An API token was created or revoked.
    Token(crate::TokenChange),
}

/// A committed change, announced to every replica sharing the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Ledger sequence number of the change's last event: the live stream's message id.
    pub seq: u64,
    /// A new action (else a transition of an existing one).
    pub created: bool,
    pub action: ActionSummary,
}

impl Change {
    /// The change an event of the ledger recorded, for an action now as `action`: the status
    /// (and, for a new action, the decision and reason) the event recorded; other fields as the
    /// action is now. `None` for a `created` event, whose change is announced with the
    /// `decision_made` event that follows it in the same transaction.
    pub fn from_event(
        seq: i64,
        event_type: &str,
        meta: &str,
        action: &ActionRecord,
    ) -> Option<Change> {
        let event_type = faramesh_core::EventType::parse(event_type);
        if event_type == Some(faramesh_core::EventType::Created) {
            return None;
        }
        let mut summary = ActionSummary::of(action);
        if let Some(status) = event_type.and_then(faramesh_core::EventType::status_after) {
            summary.status = status;
        } else {
            let meta: Value = serde_json::from_str(meta).unwrap_or_default();
            if let Some(outcome) = meta
                .get("outcome")
                .and_then(Value::as_str)
                .and_then(faramesh_core::Outcome::parse)
            {
                summary.status = ActionStatus::from_outcome(outcome);
                summary.decision = Some(outcome.into());
            }
            summary.reason = meta
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Some(Change {
            seq: u64::try_from(seq).unwrap_or(0),
            created: event_type == Some(faramesh_core::EventType::DecisionMade),
            action: summary,
        })
    }
}
