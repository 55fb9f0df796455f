//! Starting an action and running it with a built-in executor: the gate of `start` (an
//! `allowed` action is decided again when its policy or profile changed), which executor owns
//! the outcome, and recording how the run ended, exactly as a `/result` report would be.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::error::ApiError;
use crate::state::AppState;
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, EventType, Outcome, Transition};
use faramesh_executors::{execute, timeout_for, ExecOutcome, ExecutorKind, ExecutorSet, Limits};
use faramesh_storage::{ActionRecord, StoreError, TransitionUpdate};
use serde_json::{json, Value};

/// Starts action `id` if it is `allowed` or `approved` at that instant, and runs it in the
/// background when a built-in executor is enabled for its tool.
pub async fn start(state: &AppState, id: &str) -> Result<ActionRecord, ApiError> {
    // Without built-in executors the started event names none, so an approved action (the
    // common case) starts in one conditional update, with no read first.
    if state.executors == ExecutorSet::none() {
        match state
            .transition(id, Transition::StartApproved, started(json!({})))
            .await
        {
            Ok(action) => return Ok(action),
            // Allowed by the policy rather than a human: see below.
            Err(StoreError::Conflict {
                status: ActionStatus::Allowed,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let current = state
        .store
        .get_action(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Action {id} not found")))?;
    let mut meta = serde_json::Map::new();
    if current.status == ActionStatus::Allowed {
        if let Some(redecision) = decide_again_if_changed(state, &current).await? {
            meta.insert("redecided".into(), redecision);
        }
    }
    let executor = state.executors.for_tool(&current.tool);
    // The started event names the built-in executor that owns the outcome, so an agent's
    // `/result` cannot overwrite what really happened.
    if let Some(kind) = executor {
        meta.insert("executor".into(), json!(kind.name()));
    }
    // The conditional update is the gate: only an `allowed` or `approved` action gets here.
    let action = state
        .transition(id, Transition::Start, started(Value::Object(meta)))
        .await?;
    if let Some(kind) = executor {
        spawn(state.clone(), kind, action.clone());
    }
    Ok(action)
}

fn started(meta: Value) -> TransitionUpdate {
    TransitionUpdate {
        meta,
        ..Default::default()
    }
}

/// An `allowed` action was allowed by the policy and profile of its decision. If either has
/// changed since, the action is decided again before it may run: an EXECUTE lets it start
/// (the answer describes the new decision, for the `started` event); anything else withdraws
/// the allowance (a `denied` event saying why) and refuses the start with 409. A human approval
/// is never re-decided: the human judged the action itself.
async fn decide_again_if_changed(
    state: &AppState,
    action: &ActionRecord,
) -> Result<Option<Value>, ApiError> {
    let request = action.request();
    let decision = state.loaded.load().engine.decide(&request);
    let policy_changed = decision.policy_hash.as_deref() != action.policy_hash.as_deref();
    let profile_changed = decision.profile_hash.as_deref() != action.profile_hash.as_deref();
    if !policy_changed && !profile_changed {
        return Ok(None);
    }
    let what = match (policy_changed, profile_changed) {
        (true, true) => "the policy and the profile changed",
        (true, false) => "the policy changed",
        _ => "the profile changed",
    };
    let redecision = json!({
        "why": format!("{what} since the decision"),
        "decision": decision.decision(),
        "outcome": decision.outcome.as_str(),
        "reason_code": &*decision.reason_code,
        "reason": &*decision.reason,
        "policy_hash": decision.policy_hash.as_deref(),
        "profile_hash": decision.profile_hash.as_deref(),
    });
    if decision.outcome == Outcome::Execute {
        return Ok(Some(redecision));
    }
    let reason = format!(
        "Not started: {what} since this action was allowed, and it is now decided {}: {}",
        decision.decision(),
        decision.reason
    );
    let update = TransitionUpdate {
        notifications: Vec::new(),
        decision: Some(Effect::Deny),
        reason: Some(reason.clone()),
        result: None,
        meta: json!({"reason": reason, "by": "policy", "redecided": redecision}),
    };
    let revoked = state
        .transition(&action.id, Transition::Revoke, update)
        .await?;
    Err(ApiError::Conflict {
        detail: format!("{reason}. Submit it again to have it decided under the current policy."),
        action_id: revoked.id,
        status: revoked.status.as_str().to_owned(),
    })
}

/// 409 when a built-in executor runs the action: its outcome is recorded by the server from what
/// really happened, and an agent's report must not replace it.
///
/// Replicas share `FARAMESH_EXECUTORS`, so a server without an executor for the action's tool
/// is not running it, and nothing needs to be read: the agent's report is the outcome.
pub async fn refuse_report_if_owned(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.executors == ExecutorSet::none() {
        return Ok(());
    }
    let action = state
        .store
        .get_action(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Action {id} not found")))?;
    if action.status != ActionStatus::Executing || state.executors.for_tool(&action.tool).is_none()
    {
        return Ok(());
    }
    let events = state.store.events(id).await?;
    let executor = events
        .iter()
        .rev()
        .find(|e| e.event_type == EventType::Started)
        .and_then(|e| e.meta.get("executor"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match executor {
        Some(executor) => Err(ApiError::Conflict {
            detail: format!(
                "Action {id} is being run by the built-in {executor} executor, which records its real outcome; a reported result is refused. Wait for the action to finish (GET /v1/actions/{id}) instead of reporting it"
            ),
            action_id: id.to_owned(),
            status: action.status.as_str().to_owned(),
        }),
        None => Ok(()),
    }
}

/// Longest error text kept, as for `/result`.
const MAX_ERROR_CHARS: usize = 1000;

/// Runs `action` (already `executing`) in the background.
pub fn spawn(state: AppState, kind: ExecutorKind, action: ActionRecord) {
    tokio::spawn(async move {
        let limits = Limits {
            timeout: timeout_for(action.context.map(), state.config.action_timeout),
            max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
        };
        // The decided operation, not anything in params, says what the executor does.
        let outcome = execute(
            kind,
            &action.operation,
            action.params.map(),
            &limits,
            &state.config.http_allowed_networks,
        )
        .await;
        let (transition, error, output) = match outcome {
            ExecOutcome::Succeeded { output } => (Transition::Succeed, None, output),
            ExecOutcome::Failed { error, output } => (Transition::Fail, Some(error), output),
            ExecOutcome::TimedOut { error, output } => {
                (Transition::ExecutionTimeout, Some(error), output)
            }
        };
        let error: Option<String> = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
        let update = TransitionUpdate {
            notifications: Vec::new(),
            decision: None,
            reason: error.clone(),
            result: Some(output.clone()),
            meta: json!({"reason": error.clone(), "error": error, "output": output}),
        };
        // Only a server whose executor settings differ from the others' lets an agent report
        // first (see `refuse_report_if_owned`); then this outcome is not recorded.
        if let Err(e) = state.transition(&action.id, transition, update).await {
            tracing::warn!(action = %action.id, error = %e, "executor outcome not recorded");
        }
    });
}
