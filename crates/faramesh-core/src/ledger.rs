//! Verification of the ledger (docs/audit.md): the per-action hash chain of events, and the binding
//! of each action row to its chain, so that a row rewritten in the database (other params,
//! another status) is caught even though its events still verify.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::decision::Outcome;
use crate::hash::{event_record_hash, request_hash};
use crate::lifecycle::{ActionStatus, EventType};
use serde::Serialize;
use serde_json::{Map, Value};

/// The fields of a stored event that the chain covers.
#[derive(Debug, Clone, Copy)]
pub struct ChainedEvent<'a> {
    pub id: &'a str,
    pub action_id: &'a str,
    pub event_type: &'a str,
    pub created_at: &'a str,
    pub meta: &'a Value,
    pub prev_hash: Option<&'a str>,
    pub record_hash: &'a str,
}

/// The first place a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("action {action_id}, event {event_id} (#{position}): {what}: expected {expected}, found {found}")]
pub struct BrokenLink {
    pub action_id: String,
    pub event_id: String,
    /// 1-based position of the event in its action's chain.
    pub position: usize,
    /// `prev_hash` or `record_hash`.
    pub what: &'static str,
    pub expected: String,
    pub found: String,
}

/// Recomputes the chain of one action's events, oldest first.
pub fn verify_chain(events: &[ChainedEvent<'_>]) -> Result<(), BrokenLink> {
    let mut prev: Option<&str> = None;
    for (i, e) in events.iter().enumerate() {
        let broken = |what, expected: String, found: String| BrokenLink {
            action_id: e.action_id.to_owned(),
            event_id: e.id.to_owned(),
            position: i + 1,
            what,
            expected,
            found,
        };
        if e.prev_hash != prev {
            return Err(broken("prev_hash", show(prev), show(e.prev_hash)));
        }
        let expected = event_record_hash(
            e.id,
            e.action_id,
            e.event_type,
            e.created_at,
            e.meta,
            e.prev_hash,
        )
        .map_err(|err| {
            broken(
                "record_hash",
                format!("a canonical meta ({err})"),
                e.record_hash.to_owned(),
            )
        })?;
        if expected != e.record_hash {
            return Err(broken("record_hash", expected, e.record_hash.to_owned()));
        }
        prev = Some(e.record_hash);
    }
    Ok(())
}

fn show(hash: Option<&str>) -> String {
    hash.map_or_else(|| "null".to_owned(), str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Binding: an action row against its ledger

/// What an action row's `agent_id`, `tool`, `operation`, `params` and `context` hash to (its
/// `request_hash`), or why they have none, in words for a report.
pub type RowHash = Result<String, String>;

/// The `request_hash` of an action row's fields, computed exactly as on submission.
pub fn row_request_hash(
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &Map<String, Value>,
    context: &Map<String, Value>,
) -> RowHash {
    request_hash(agent_id, tool, operation, params, context)
        .map_err(|e| format!("no canonical form ({e})"))
}

/// [`row_request_hash`] of fields read as JSON values (an export's form): params and context
/// that are not objects have no hash.
pub fn row_request_hash_of_values(
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &Value,
    context: &Value,
) -> RowHash {
    match (params, context) {
        (Value::Object(params), Value::Object(context)) => {
            row_request_hash(agent_id, tool, operation, params, context)
        }
        (Value::Object(_), other) => Err(format!("its context is {}", kind(other))),
        (other, _) => Err(format!("its params are {}", kind(other))),
    }
}

/// [`row_request_hash`] of fields as stored in a database file: params and context as JSON
/// text, which a tampered file may not even hold.
pub fn row_request_hash_of_text(
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &str,
    context: &str,
) -> RowHash {
    let parse = |text: &str, what: &str| -> Result<Value, String> {
        serde_json::from_str(text).map_err(|e| format!("its {what} are not JSON ({e})"))
    };
    row_request_hash_of_values(
        agent_id,
        tool,
        operation,
        &parse(params, "params")?,
        &parse(context, "context")?,
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null, not a JSON object",
        Value::Bool(_) => "a boolean, not a JSON object",
        Value::Number(_) => "a number, not a JSON object",
        Value::String(_) => "a string, not a JSON object",
        Value::Array(_) => "an array, not a JSON object",
        Value::Object(_) => "a JSON object",
    }
}

/// The facts of an action row that its ledger vouches for.
#[derive(Debug, Clone)]
pub struct ActionFacts<'a> {
    pub id: &'a str,
    /// What its stored fields hash to (see [`row_request_hash`] and its variants).
    pub request_hash: RowHash,
    /// Its stored status, as text: a rewritten row may hold anything.
    pub status: &'a str,
}

/// What one event does to its action's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusEffect {
    /// `created`: the status comes with the decision, in the next event.
    Keeps,
    /// The action has this status right after the event.
    Sets(ActionStatus),
    /// No known status follows from it (an unknown event type, or a decision with an unknown
    /// outcome); why, in words.
    Unknown(String),
}

/// The status an action has after `event_type` with `meta`: [`EventType::status_after`] for
/// transitions, and for `decision_made` the status of its meta's `outcome`
/// ([`ActionStatus::from_outcome`]).
pub fn status_effect(event_type: &str, meta: &Value) -> StatusEffect {
    match EventType::parse(event_type) {
        Some(EventType::Created) => StatusEffect::Keeps,
        Some(EventType::DecisionMade) => match meta.get("outcome").and_then(Value::as_str) {
            Some(outcome) => match Outcome::parse(outcome) {
                Some(outcome) => StatusEffect::Sets(ActionStatus::from_outcome(outcome)),
                None => StatusEffect::Unknown(format!(
                    "its outcome {outcome:?} is none of EXECUTE, ABSTAIN, HALT"
                )),
            },
            None => StatusEffect::Unknown("its meta has no outcome".to_owned()),
        },
        Some(other) => match other.status_after() {
            Some(status) => StatusEffect::Sets(status),
            None => StatusEffect::Keeps,
        },
        None => StatusEffect::Unknown("no such event type".to_owned()),
    }
}

/// The `request_hash` a `decision_made` event's meta records; `None` when it is null or absent
/// (the server records null when the request had no canonical form).
pub fn recorded_request_hash(meta: &Value) -> Option<&Value> {
    meta.get("request_hash").filter(|v| !v.is_null())
}

/// Whether a decision that recorded `recorded` was made over a row whose fields hash to
/// `row`: the same hash, or no hash on either side.
pub fn request_hash_holds(recorded: Option<&Value>, row: &RowHash) -> bool {
    match (recorded, row) {
        (None, Err(_)) => true,
        (Some(Value::String(recorded)), Ok(row)) => recorded == row,
        _ => false,
    }
}

/// The first way an action row is not the one its ledger describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum BindingProblem {
    /// Every action is written together with its `created` and `decision_made` events.
    #[error("action {action_id}: no events; every action is written with its `created` and `decision_made` events, so this row was added or its events removed outside the server")]
    NoEvents { action_id: String },
    /// Nothing in its chain records what was decided, over which request.
    #[error("action {action_id}: none of its {events} event(s) is `decision_made`, so nothing in the ledger vouches for its params, context or status")]
    NoDecision { action_id: String, events: usize },
    /// The row's fields are not the request that was decided.
    #[error("action {action_id}, event {event_id} (#{position}): params/context do not hash to the request_hash of its decision_made event: expected {expected}, found {found}")]
    RequestHash {
        action_id: String,
        event_id: String,
        /// 1-based position of the `decision_made` event in the chain.
        position: usize,
        /// The `request_hash` the event records.
        expected: String,
        /// What the row's agent_id, tool, operation, params and context hash to.
        found: String,
    },
    /// The row's status is not the one its events lead to.
    #[error("action {action_id}: status is `{found}` but its last event `{event_type}` implies `{expected}`")]
    Status {
        action_id: String,
        event_type: String,
        /// The status the event implies.
        expected: String,
        /// The row's status.
        found: String,
    },
    /// The event that decides the status implies none the row could have.
    #[error("action {action_id}, event {event_id} (#{position}): its last event `{event_type}` implies no status: {why}")]
    UnknownStatus {
        action_id: String,
        event_id: String,
        position: usize,
        event_type: String,
        why: String,
    },
}

impl BindingProblem {
    pub fn action_id(&self) -> &str {
        match self {
            BindingProblem::NoEvents { action_id }
            | BindingProblem::NoDecision { action_id, .. }
            | BindingProblem::RequestHash { action_id, .. }
            | BindingProblem::Status { action_id, .. }
            | BindingProblem::UnknownStatus { action_id, .. } => action_id,
        }
    }
}

/// The first thing wrong with one action's ledger: its chain, or else its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerProblem {
    Broken(BrokenLink),
    Unbound(BindingProblem),
}

/// Verifies an action's chain and then binds its row to it. A broken chain vouches for
/// nothing, so the row is compared with it only when the chain holds.
pub fn verify_action(
    action: &ActionFacts<'_>,
    events: &[ChainedEvent<'_>],
) -> Result<(), LedgerProblem> {
    verify_chain(events).map_err(LedgerProblem::Broken)?;
    verify_binding(action, events).map_err(LedgerProblem::Unbound)
}

/// Checks an action row against its events (oldest first, a chain `verify_chain` accepted):
/// it has events; a `decision_made` event; the request_hash of every `decision_made` event is
/// what the row's fields hash to; and its status is the one the last event that sets a status
/// implies. The first problem found, in that order, is returned.
pub fn verify_binding(
    action: &ActionFacts<'_>,
    events: &[ChainedEvent<'_>],
) -> Result<(), BindingProblem> {
    let action_id = || action.id.to_owned();
    if events.is_empty() {
        return Err(BindingProblem::NoEvents {
            action_id: action_id(),
        });
    }
    let decision = EventType::DecisionMade.as_str();
    if !events.iter().any(|e| e.event_type == decision) {
        return Err(BindingProblem::NoDecision {
            action_id: action_id(),
            events: events.len(),
        });
    }
    for (i, e) in events.iter().enumerate() {
        if e.event_type != decision {
            continue;
        }
        let recorded = recorded_request_hash(e.meta);
        if !request_hash_holds(recorded, &action.request_hash) {
            return Err(BindingProblem::RequestHash {
                action_id: action_id(),
                event_id: e.id.to_owned(),
                position: i + 1,
                expected: match recorded {
                    None => "none (null)".to_owned(),
                    Some(Value::String(hash)) => hash.clone(),
                    Some(other) => format!("a hash, not {other}"),
                },
                found: match &action.request_hash {
                    Ok(hash) => hash.clone(),
                    Err(why) => format!("no hash: {why}"),
                },
            });
        }
    }
    // The last event with an effect on the status; there is one, the decision.
    let mut last = None;
    for (i, e) in events.iter().enumerate() {
        match status_effect(e.event_type, e.meta) {
            StatusEffect::Keeps => {}
            effect => last = Some((i, e, effect)),
        }
    }
    let Some((i, e, effect)) = last else {
        return Ok(());
    };
    match effect {
        StatusEffect::Sets(status) if status.as_str() == action.status => Ok(()),
        StatusEffect::Sets(status) => Err(BindingProblem::Status {
            action_id: action_id(),
            event_type: e.event_type.to_owned(),
            expected: status.as_str().to_owned(),
            found: action.status.to_owned(),
        }),
        StatusEffect::Unknown(why) => Err(BindingProblem::UnknownStatus {
            action_id: action_id(),
            event_id: e.id.to_owned(),
            position: i + 1,
            event_type: e.event_type.to_owned(),
            why,
        }),
        StatusEffect::Keeps => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Events of one action as `(event_type, meta)`, ids `e1`, `e2`, ...
    fn events(spec: &[(&'static str, Value)]) -> Vec<(String, &'static str, Value)> {
        spec.iter()
            .enumerate()
            .map(|(i, (t, meta))| (format!("e{}", i + 1), *t, meta.clone()))
            .collect()
    }

    fn chained<'a>(events: &'a [(String, &'static str, Value)]) -> Vec<ChainedEvent<'a>> {
        events
            .iter()
            .map(|(id, event_type, meta)| ChainedEvent {
                id,
                action_id: "a1",
                event_type,
                created_at: "2026-01-01T00:00:00.000000Z",
                meta,
                prev_hash: None,
                record_hash: "",
            })
            .collect()
    }

    fn params() -> Map<String, Value> {
        json!({"cmd": "ls"})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    fn hash_of(params: &Map<String, Value>) -> String {
        row_request_hash("agent", "shell", "run", params, &Map::new()).unwrap_or_default()
    }

    fn submitted(outcome: &str) -> Vec<(String, &'static str, Value)> {
        events(&[
            ("created", json!({"decision": "allow"})),
            (
                "decision_made",
                json!({"outcome": outcome, "request_hash": hash_of(&params())}),
            ),
        ])
    }

    fn row(status: &str, params: &Map<String, Value>) -> (String, String) {
        (hash_of(params), status.to_owned())
    }

    fn check(
        (hash, status): &(String, String),
        events: &[(String, &'static str, Value)],
    ) -> Result<(), BindingProblem> {
        let facts = ActionFacts {
            id: "a1",
            request_hash: Ok(hash.clone()),
            status,
        };
        verify_binding(&facts, &chained(events))
    }

    #[test]
    fn a_row_as_submitted_and_moved_on_is_bound() {
        assert_eq!(
            check(&row("allowed", &params()), &submitted("EXECUTE")),
            Ok(())
        );
        assert_eq!(
            check(&row("pending_approval", &params()), &submitted("ABSTAIN")),
            Ok(())
        );
        assert_eq!(check(&row("denied", &params()), &submitted("HALT")), Ok(()));
        let mut later = submitted("EXECUTE");
        later.extend(events(&[("started", json!({})), ("succeeded", json!({}))]));
        later[2].0 = "e3".into();
        later[3].0 = "e4".into();
        assert_eq!(check(&row("succeeded", &params()), &later), Ok(()));
        // An allowance withdrawn before the start is a `denied` event.
        let mut revoked = submitted("EXECUTE");
        revoked.push(("e3".into(), "denied", json!({"by": "policy"})));
        assert_eq!(check(&row("denied", &params()), &revoked), Ok(()));
    }

    #[test]
    fn rewritten_params_are_named_with_both_hashes() {
        let rewritten = json!({"cmd": "rm -rf /"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let problem = check(&row("allowed", &rewritten), &submitted("EXECUTE")).unwrap_err();
        assert_eq!(
            problem,
            BindingProblem::RequestHash {
                action_id: "a1".into(),
                event_id: "e2".into(),
                position: 2,
                expected: hash_of(&params()),
                found: hash_of(&rewritten),
            }
        );
        let text = problem.to_string();
        assert!(
            text.starts_with("action a1, event e2 (#2): params/context do not hash to the request_hash of its decision_made event: expected "),
            "{text}"
        );
        // Another tool is another request too.
        let other_tool = row_request_hash("agent", "http", "run", &params(), &Map::new());
        let facts = ActionFacts {
            id: "a1",
            request_hash: other_tool,
            status: "allowed",
        };
        let events = submitted("EXECUTE");
        assert!(matches!(
            verify_binding(&facts, &chained(&events)),
            Err(BindingProblem::RequestHash { .. })
        ));
    }

    #[test]
    fn a_rewritten_status_names_the_event_that_implies_another() {
        let mut started = submitted("EXECUTE");
        started.push(("e3".into(), "started", json!({})));
        let problem = check(&row("succeeded", &params()), &started).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "action a1: status is `succeeded` but its last event `started` implies `executing`"
        );
        let problem = check(&row("allowed", &params()), &submitted("HALT")).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "action a1: status is `allowed` but its last event `decision_made` implies `denied`"
        );
        // A status no action can have is no exception.
        assert!(matches!(
            check(&row("hacked", &params()), &submitted("EXECUTE")),
            Err(BindingProblem::Status { .. })
        ));
    }

    #[test]
    fn an_action_without_events_or_decision_is_reported() {
        let problem = check(&row("allowed", &params()), &[]).unwrap_err();
        assert_eq!(
            problem,
            BindingProblem::NoEvents {
                action_id: "a1".into()
            }
        );
        assert!(problem.to_string().starts_with("action a1: no events"));
        let created_only = events(&[("created", json!({}))]);
        assert_eq!(
            check(&row("allowed", &params()), &created_only),
            Err(BindingProblem::NoDecision {
                action_id: "a1".into(),
                events: 1
            })
        );
    }

    #[test]
    fn a_decision_with_an_unknown_outcome_implies_no_status() {
        let problem = check(&row("allowed", &params()), &submitted("PROCEED")).unwrap_err();
        assert!(
            matches!(&problem, BindingProblem::UnknownStatus { position: 2, .. }),
            "{problem:?}"
        );
        assert!(problem.to_string().contains("\"PROCEED\" is none of"));
        let mut odd = submitted("EXECUTE");
        odd.push(("e3".into(), "teleported", json!({})));
        assert!(matches!(
            check(&row("allowed", &params()), &odd),
            Err(BindingProblem::UnknownStatus { position: 3, .. })
        ));
    }

    #[test]
    fn a_request_without_canonical_form_is_bound_to_a_null_hash() {
        let events = events(&[
            ("created", json!({})),
            (
                "decision_made",
                json!({"outcome": "HALT", "request_hash": null}),
            ),
        ]);
        let facts = |request_hash: RowHash| ActionFacts {
            id: "a1",
            request_hash,
            status: "denied",
        };
        let unhashable = row_request_hash_of_text("a", "t", "o", "[1]", "{}");
        assert_eq!(
            unhashable,
            Err("its params are an array, not a JSON object".to_owned())
        );
        assert_eq!(
            verify_binding(&facts(unhashable.clone()), &chained(&events)),
            Ok(())
        );
        // A hash where the decision recorded none is a rewritten row.
        let problem =
            verify_binding(&facts(Ok(hash_of(&params()))), &chained(&events)).unwrap_err();
        assert!(matches!(
            &problem,
            BindingProblem::RequestHash { expected, .. } if expected == "none (null)"
        ));
        // And no hash where the decision recorded one.
        let problem = verify_binding(&facts(unhashable), &chained(&submitted("HALT"))).unwrap_err();
        assert!(matches!(
            &problem,
            BindingProblem::RequestHash { found, .. } if found.starts_with("no hash: its params are an array")
        ));
    }

    #[test]
    fn stored_text_hashes_as_the_submitted_objects() {
        let text = row_request_hash_of_text("agent", "shell", "run", r#"{"cmd":"ls"}"#, "{}");
        assert_eq!(text, Ok(hash_of(&params())));
        assert!(row_request_hash_of_text("agent", "shell", "run", "{", "{}")
            .is_err_and(|why| why.starts_with("its params are not JSON")));
        assert_eq!(
            row_request_hash_of_text("agent", "shell", "run", "{}", "5"),
            Err("its context is a number, not a JSON object".to_owned())
        );
    }

    #[test]
    fn problems_serialize_with_what_and_the_action() {
        let problem = BindingProblem::Status {
            action_id: "a1".into(),
            event_type: "started".into(),
            expected: "executing".into(),
            found: "succeeded".into(),
        };
        assert_eq!(
            serde_json::to_value(&problem).unwrap_or_default(),
            json!({"what": "status", "action_id": "a1", "event_type": "started", "expected": "executing", "found": "succeeded"})
        );
        assert_eq!(problem.action_id(), "a1");
    }
}
