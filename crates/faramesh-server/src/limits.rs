//! The policy's limits at the server: charging a submission, counting an approval, the usage
//! shown at `GET /v1/limits` (docs/policies.md#limits).

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faramesh_core::policy::limits::{LimitCharge, Measure, Per};
use faramesh_core::{Decision, Engine, Outcome};
use faramesh_storage::{ActionRecord, ChargeMode, StoreError};
use std::collections::HashMap;

/// What a submission's decision becomes under the limits, and whether its charges were
/// counted (to be given back if the action is not stored after all).
pub struct Charged {
    pub decision: Decision,
    pub counted: bool,
}

/// Checks `charges` for the action `action_id` decided as `decision`: an allowed action is
/// checked and counted in one atomic step, one that waits for a human is only checked (it
/// counts once approved), a denied one is left alone. A limit that does not fit turns the
/// decision into `LIMIT_EXCEEDED`.
pub async fn charge(
    state: &AppState,
    engine: &Engine,
    action_id: &str,
    charges: Vec<LimitCharge>,
    decision: Decision,
) -> Result<Charged, StoreError> {
    let mode = match decision.outcome {
        _ if charges.is_empty() => None,
        Outcome::Execute => Some(ChargeMode::CheckAndCount),
        Outcome::Abstain => Some(ChargeMode::CheckOnly),
        Outcome::Halt => None,
    };
    let Some(mode) = mode else {
        return Ok(Charged {
            decision,
            counted: false,
        });
    };
    apply(state, engine, action_id, charges, decision, mode).await
}

/// `decision` under the limits as they stand, checked and never counted: what
/// `POST /v1/gate/decide` answers, since it stores nothing.
pub async fn check(
    state: &AppState,
    engine: &Engine,
    charges: Vec<LimitCharge>,
    decision: Decision,
) -> Result<Decision, StoreError> {
    if charges.is_empty() || decision.outcome == Outcome::Halt {
        return Ok(decision);
    }
    let id = faramesh_storage::new_action_id();
    let checked = apply(state, engine, &id, charges, decision, ChargeMode::CheckOnly).await?;
    Ok(checked.decision)
}

async fn apply(
    state: &AppState,
    engine: &Engine,
    action_id: &str,
    charges: Vec<LimitCharge>,
    decision: Decision,
    mode: ChargeMode,
) -> Result<Charged, StoreError> {
    let exceeded = state
        .store
        .charge_limits(action_id, charges, chrono::Utc::now(), mode)
        .await?;
    Ok(match exceeded {
        Some(exceeded) => Charged {
            decision: engine.limit_exceeded(decision, exceeded),
            counted: false,
        },
        None => Charged {
            decision,
            counted: mode == ChargeMode::CheckAndCount,
        },
    })
}

/// Counts an action a human approved against the limits that apply to it now, fitting or not:
/// limits count what was allowed or approved.
pub async fn count_approved(state: &AppState, action: &ActionRecord) {
    let loaded = state.loaded.load();
    let Some(policy) = loaded.engine.policy() else {
        return;
    };
    if policy.limits().is_empty() {
        return;
    }
    let request = action.request();
    let charges = policy.limit_charges(&request);
    if let Err(e) = state
        .store
        .charge_limits(
            &action.id,
            charges,
            chrono::Utc::now(),
            ChargeMode::CountAnyway,
        )
        .await
    {
        tracing::warn!(action = %action.id, error = %e, "an approved action could not be counted against its limits");
    }
}

/// Most keys shown per limit.
const KEYS_SHOWN: usize = 100;

#[utoipa::path(get, path = "/v1/limits",
    responses((status = 200, body = faramesh_api::Limits), (status = 401, body = faramesh_api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let loaded = state.loaded.load();
    let limits = loaded
        .engine
        .policy()
        .map(|p| p.limits().to_vec())
        .unwrap_or_default();
    let windows: Vec<(String, u64)> = limits
        .iter()
        .map(|l| (l.name.to_string(), l.window_seconds))
        .collect();
    let mut usage: HashMap<String, Vec<faramesh_api::LimitUse>> = HashMap::new();
    for u in state
        .store
        .limit_usage(&windows, chrono::Utc::now(), KEYS_SHOWN)
        .await?
    {
        usage
            .entry(u.limit)
            .or_default()
            .push(faramesh_api::LimitUse {
                key: u.key,
                used: u.used,
                calls: u.calls,
            });
    }
    let shown: Vec<faramesh_api::LimitInfo> = limits
        .iter()
        .map(|l| {
            let (max_calls, sum, max) = match &l.measure {
                Measure::Calls { max } => (Some(*max), None, *max as f64),
                Measure::Sum { path, max } => (None, Some(path.text.clone()), *max),
            };
            faramesh_api::LimitInfo {
                name: l.name.to_string(),
                per: match &l.per {
                    Per::AgentId => "agent_id".to_owned(),
                    Per::Tool => "tool".to_owned(),
                    Per::Global => "global".to_owned(),
                    Per::Field(path) => path.text.clone(),
                },
                max_calls,
                sum,
                max,
                window: faramesh_core::policy::limits::describe_window(l.window_seconds),
                window_seconds: l.window_seconds,
                on_exceed: match l.on_exceed {
                    faramesh_core::policy::limits::OnExceed::Deny => "deny".to_owned(),
                    faramesh_core::policy::limits::OnExceed::RequireApproval => {
                        "require_approval".to_owned()
                    }
                },
                usage: usage.remove(&*l.name).unwrap_or_default(),
            }
        })
        .collect();
    Ok(Json(faramesh_api::Limits { limits: shown }).into_response())
}
