//! Running a started action with a built-in executor and recording how it ended, exactly as a
//! `/result` report would be recorded.

use crate::state::AppState;
use faramesh_core::Transition;
use faramesh_executors::{execute, timeout_for, ExecOutcome, ExecutorKind, Limits};
use faramesh_storage::{ActionRecord, TransitionUpdate};
use serde_json::json;

/// Longest error text kept, as for `/result`.
const MAX_ERROR_CHARS: usize = 1000;

/// Runs `action` (already `executing`) in the background.
pub fn spawn(state: AppState, kind: ExecutorKind, action: ActionRecord) {
    tokio::spawn(async move {
        let limits = Limits {
            timeout: timeout_for(&action.context, state.config.action_timeout),
            max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
        };
        // The decided operation, not anything in params, says what the executor does.
        let outcome = execute(
            kind,
            &action.operation,
            &action.params,
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
            decision: None,
            reason: error.clone(),
            result: Some(output.clone()),
            meta: json!({"reason": error.clone(), "error": error, "output": output}),
        };
        // The agent may have reported a result first; then this outcome is not recorded.
        if let Err(e) = state.transition(&action.id, transition, update).await {
            tracing::warn!(action = %action.id, error = %e, "executor outcome not recorded");
        }
    });
}
