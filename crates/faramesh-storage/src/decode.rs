//! Stored rows to records, shared by every backend: a value that does not decode is reported as
//! corrupt data, never a crash.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::{ActionRecord, EventRecord, Role, StoreError, StoreResult, TokenRecord};
use faramesh_core::json::ReceivedObject;
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, EventType, Outcome, RiskLevel};
use serde_json::Value;

/// The columns of an action row, in the order every backend reads and writes them.
pub(crate) const ACTION_COLUMNS: &str = "id, agent_id, tool, operation, params, context, status, decision, reason, \
    risk_level, approval_token, policy_version, outcome, reason_code, reason_details, request_hash, policy_hash, \
    profile_id, profile_version, profile_hash, runtime_version, provenance_id, result, demo, created_at, updated_at";

/// `ACTION_COLUMNS` qualified with a table alias (`a.id, a.agent_id, …`), for joins.
pub(crate) fn qualified_action_columns(alias: &str) -> String {
    ACTION_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const EVENT_COLUMNS: &str =
    "seq, id, action_id, event_type, meta, created_at, prev_hash, record_hash";

pub(crate) const TOKEN_COLUMNS: &str = "id, name, role, secret_hash, created_at, revoked_at";

/// The columns of `TOKEN_COLUMNS` as read.
pub(crate) type RawToken = (String, String, String, String, String, Option<String>);

pub(crate) fn decode_token(
    (id, name, role, secret_hash, created_at, revoked_at): RawToken,
) -> StoreResult<TokenRecord> {
    let role = Role::parse(&role)
        .ok_or_else(|| StoreError::Corrupt(format!("token {id} has an unknown role {role:?}")))?;
    Ok(TokenRecord {
        id,
        name,
        role,
        secret_hash,
        created_at,
        revoked_at,
    })
}

/// Reading a row: a value that does not decode is reported as corrupt data, not a crash.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn json_object(text: String, what: &str) -> StoreResult<ReceivedObject> {
    ReceivedObject::stored(text).map_err(|e| corrupt(what, e))
}

/// A column holding one of a closed set of words, or null.
fn closed<T>(
    text: Option<String>,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<Option<T>> {
    text.map(|t| parse(&t).ok_or_else(|| corrupt(what, format!("unknown value {t:?}"))))
        .transpose()
}

fn json_opt(text: Option<String>, what: &str) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(what, e)))
        .transpose()
}

/// The raw columns of an action row, decoded afterwards so errors can be reported.
pub(crate) struct RawAction {
    /// The action columns in `ACTION_COLUMNS` order, without `demo`.
    pub(crate) text: [Option<String>; 25],
    pub(crate) demo: bool,
}

pub(crate) fn decode_action(raw: RawAction) -> StoreResult<ActionRecord> {
    let [id, agent_id, tool, operation, params, context, status, decision, reason, risk_level, approval_token, policy_version, outcome, reason_code, reason_details, request_hash, policy_hash, profile_id, profile_version, profile_hash, runtime_version, provenance_id, result, created_at, updated_at] =
        raw.text;
    let required = |v: Option<String>, what: &str| v.ok_or_else(|| corrupt(what, "missing"));
    let status_text = required(status, "status")?;
    Ok(ActionRecord {
        id: required(id, "id")?,
        agent_id: required(agent_id, "agent_id")?,
        tool: required(tool, "tool")?,
        operation: required(operation, "operation")?,
        params: json_object(required(params, "params")?, "params")?,
        context: json_object(required(context, "context")?, "context")?,
        status: ActionStatus::parse(&status_text).ok_or_else(|| corrupt("status", status_text))?,
        decision: closed(decision, "decision", Effect::parse)?,
        reason,
        risk_level: closed(risk_level, "risk_level", RiskLevel::parse)?,
        approval_token,
        policy_version,
        outcome: closed(outcome, "outcome", Outcome::parse)?,
        reason_code,
        reason_details: json_opt(reason_details, "reason_details")?,
        request_hash,
        policy_hash,
        profile_id,
        profile_version,
        profile_hash,
        runtime_version,
        provenance_id,
        result: json_opt(result, "result")?,
        demo: raw.demo,
        created_at: required(created_at, "created_at")?,
        updated_at: required(updated_at, "updated_at")?,
    })
}

pub(crate) fn to_event(
    (seq, [id, action_id, event_type, meta, created_at, record_hash], prev_hash): (
        i64,
        [String; 6],
        Option<String>,
    ),
) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        seq,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| corrupt("event_type", &event_type))?,
        meta: serde_json::from_str(&meta).map_err(|e| corrupt("event meta", e))?,
        id,
        action_id,
        created_at,
        prev_hash,
        record_hash,
        log_index: None,
    })
}

/// Serialized JSON as stored.
pub(crate) fn json_text(value: &impl serde::Serialize, what: &str) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}
