//! The HTTP API of docs/api.md.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::policy_files;
use crate::state::AppState;
use crate::validate;
use crate::view;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use faramesh_core::policy::Effect;
use faramesh_core::{ActionRequest, ActionStatus, Transition};
use faramesh_storage::{
    ActionFilter, ActionRecord, Name, NameColumn, NewAction, Received, TransitionUpdate,
    MAX_SEARCH_NAMES,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub fn api(state: AppState) -> Router {
    Router::new()
        .route("/v1/actions", post(submit).get(list))
        .route("/v1/actions/{id}", get(get_action))
        .route("/v1/actions/{id}/events", get(events))
        .route("/v1/actions/{id}/chain", get(chain))
        .route("/v1/actions/{id}/approval", post(approval))
        .route("/v1/actions/{id}/start", post(start))
        .route("/v1/actions/{id}/withdraw", post(withdraw))
        .route("/v1/actions/{id}/result", post(result))
        .route("/v1/gate/decide", post(decide))
        .route("/v1/gate/denied", post(denied))
        .route("/v1/policy/info", get(policy_info))
        .route("/v1/policy/reload", post(policy_reload))
        .route("/v1/policy/shadow", get(shadow_report))
        .route("/v1/limits", get(crate::limits::list))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::exposition))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

/// A JSON body whose rejection is a 422/413 with `detail`, never axum's plain text.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(ApiError::from)
}

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

#[utoipa::path(post, path = "/v1/actions", request_body = faramesh_api::Submission,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the original action"),
        ("start" = Option<bool>, Query, description = "true: an allowed action is stored already started (executing), in the same write")),
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody), (status = 413, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody), (status = 503, body = faramesh_api::ErrorBody)))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    // The text, not a parsed value: params and context are kept exactly as received.
    payload: Result<Json<Box<RawValue>>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Submit)?;
    let Query(query) =
        query.map_err(|e| ApiError::Validation(format!("The query is not valid: {e}")))?;
    let raw = body(payload)?;
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(key) => {
            let key = key.to_str().map_err(|_| {
                ApiError::Validation("The Idempotency-Key header must be printable ASCII".into())
            })?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::Validation(
                    "The Idempotency-Key header must be 1 to 255 characters".into(),
                ));
            }
            let parsed: Value = serde_json::from_str(raw.get())
                .map_err(|e| ApiError::Validation(format!("The body is not valid JSON: {e}")))?;
            let body_hash = faramesh_core::hash::canonical_sha256(&parsed)
                .map_err(|e| ApiError::Validation(e.to_string()))?;
            // Keys belong to their caller: the same key from another token is another request.
            Some((format!("{}\n{key}", caller.scope), body_hash))
        }
    };
    let submission = validate::action_request(&raw)?;
    let how = Submit {
        idempotency,
        demo: false,
        start_if_allowed: start_now(&query)?,
        submitted_by: Some(caller.name.clone()),
    };
    let action = submit_action(&state, submission, how).await?;
    let progress = crate::approvals::progress_of(&state, std::slice::from_ref(&action)).await?;
    ok(view::action(&action, caller.token_visibility()).with_approvals(&progress))
}

/// `?start=true`: start the action in the same write when it is allowed.
fn start_now(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("start").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::Validation(format!(
            "start={other:?} is not true or false"
        ))),
    }
}

/// How a submission is stored.
#[derive(Debug, Clone, Default)]
pub struct Submit {
    /// `(Idempotency-Key, hash of the body)`.
    pub idempotency: Option<(String, String)>,
    /// Seeded demonstration data.
    pub demo: bool,
    /// Store an allowed action already started (`executing`, with its `started` event), in
    /// the same write, when no built-in executor would run it: one write instead of two for a
    /// caller that runs the action itself at once.
    pub start_if_allowed: bool,
    /// Who submitted it (a token name): under an approval rule, never one of its approvers.
    pub submitted_by: Option<std::sync::Arc<str>>,
}

/// Decides an action and stores it with its `created` and `decision_made` events.
pub async fn submit_action(
    state: &AppState,
    submission: validate::Submission,
    how: Submit,
) -> Result<ActionRecord, ApiError> {
    let span = crate::telemetry::start_decision(state.config.telemetry.as_ref());
    let created = decide_and_store(state, submission, how).await;
    if let Some(span) = span {
        match &created {
            Ok(action) => span.finish(&faramesh_otel::Decided {
                action_id: Some(&action.id),
                agent_id: &action.agent_id,
                tool: &action.tool,
                operation: &action.operation,
                outcome: action.outcome.map_or("", |o| o.as_str()),
                reason_code: action.reason_code.as_deref().unwrap_or_default(),
                risk_level: action.risk_level.map(|r| r.as_str()),
                status: Some(action.status.as_str()),
            }),
            Err(e) => span.fail(&e.to_string()),
        }
    }
    created
}

/// Decides a submission and stores the action with its decision.
async fn decide_and_store(
    state: &AppState,
    submission: validate::Submission,
    how: Submit,
) -> Result<ActionRecord, ApiError> {
    let Submit {
        idempotency,
        demo,
        start_if_allowed,
        submitted_by,
    } = how;
    let loaded = state.loaded.load();
    // The maps are lent to the engine and taken back, not copied.
    let (params_text, params) = submission.params.into_parts();
    let (context_text, context) = submission.context.into_parts();
    let request = ActionRequest {
        agent_id: submission.agent_id,
        tool: submission.tool,
        operation: submission.operation,
        params,
        context,
    };
    let decision = loaded.engine.decide(&request);
    // The candidate decides too, before the request moves into the stored action.
    let shadow = loaded.shadow.as_ref().map(|engine| engine.decide(&request));
    let charges = loaded
        .engine
        .policy()
        .map(|p| p.limit_charges(&request))
        .unwrap_or_default();
    let action_id = faramesh_storage::new_action_id();
    let crate::limits::Charged { decision, counted } =
        crate::limits::charge(state, &loaded.engine, &action_id, charges, decision).await?;
    state
        .metrics
        .decision(decision.outcome.as_str(), &decision.reason_code);
    let received = Received {
        request,
        params_text,
        context_text,
    };
    let own_run = state.executors.for_tool(&received.request.tool).is_none();
    let mut new = NewAction::decided(
        action_id,
        received,
        &decision,
        approval_token,
        demo,
        idempotency,
    );
    if let Some(shadow) = &shadow {
        let disagrees = new.compared_with_shadow(shadow);
        state.metrics.shadow(
            decision.outcome.as_str(),
            shadow.outcome.as_str(),
            disagrees,
        );
        let counts = &loaded.shadow_counts;
        counts
            .decided
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if disagrees {
            counts
                .disagreed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    if start_if_allowed && own_run {
        new = new.started_if_allowed();
    }
    if new.action.status == ActionStatus::PendingApproval {
        if let Some(by) = &submitted_by {
            crate::approvals::record_submitter(&mut new.action, by);
        }
        let required = decision.approval.as_ref().map_or(1, |r| r.approvers);
        new.notifications = crate::approvals::announcements(
            state,
            faramesh_notify::Kind::Requested,
            &new.action,
            faramesh_notify::Approvals { given: 0, required },
            None,
        );
    }
    let id = new.action.id.clone();
    let created = state.store.create_action(new).await;
    // What was counted for an action that was not stored gives its count back: a replayed
    // request is its original, counted already.
    if counted && !matches!(&created, Ok(c) if !c.replayed) {
        if let Err(e) = state.store.release_limits(&id).await {
            tracing::warn!(action = %id, error = %e, "could not give back a limit count");
        }
    }
    // The store has reported the new action to `state.changes`: counted and announced.
    Ok(created?.action)
}

/// 128 random bits, hex.
fn approval_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
    agent_id: Option<String>,
    tool: Option<String>,
    status: Option<String>,
    /// Actions whose id starts with this (hex digits and dashes), for short ids in the CLI.
    id_prefix: Option<String>,
    /// Actions whose agent, tool or operation contains this, ignoring case.
    q: Option<String>,
}

/// The longest search text: names are short, and a longer text is a mistake.
const MAX_SEARCH_CHARS: usize = 200;

#[utoipa::path(get, path = "/v1/actions",
    params(("limit" = Option<i64>, Query, description = "1..1000, default 20"), ("offset" = Option<i64>, Query), ("agent_id" = Option<String>, Query), ("tool" = Option<String>, Query), ("status" = Option<String>, Query), ("id_prefix" = Option<String>, Query, description = "Only actions whose id starts with this"), ("q" = Option<String>, Query, description = "Only actions whose agent_id, tool or operation contains this, ignoring case (at most 32 distinct names may match)")),
    responses((status = 200, body = Vec<faramesh_api::Action>), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let visibility = caller.token_visibility();
    let Query(q) =
        query.map_err(|e| ApiError::Validation(format!("Bad query: {}", e.body_text())))?;
    let number = |name: &str, text: Option<String>, default: i64| -> Result<i64, ApiError> {
        match text {
            None => Ok(default),
            Some(t) => t.trim().parse().map_err(|_| {
                ApiError::Validation(format!("`{name}` must be an integer, not {t:?}"))
            }),
        }
    };
    let limit = number("limit", q.limit, 20)?.clamp(1, 1000);
    let offset = number("offset", q.offset, 0)?;
    if offset < 0 {
        return Err(ApiError::Validation("`offset` must not be negative".into()));
    }
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ActionStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = ActionStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::Validation(format!(
                "`status` must be one of {}, not {s:?}",
                all.join(", ")
            ))
        })?),
    };
    let mut filter = ActionFilter {
        limit: usize::try_from(limit).unwrap_or(20),
        offset: usize::try_from(offset).unwrap_or(0),
        agent_id: q.agent_id.filter(|s| !s.is_empty()),
        tool: q.tool.filter(|s| !s.is_empty()),
        status,
        names: None,
    };
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        filter.names = Some(search_names(&state, &filter, text).await?);
    }
    if let Some(prefix) = q.id_prefix.filter(|p| !p.is_empty()) {
        if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(ApiError::Validation(format!(
                "`id_prefix` may hold only hex digits and dashes, not {prefix:?}"
            )));
        }
        let mut actions = Vec::new();
        for id in state
            .store
            .ids_with_prefix(&prefix.to_ascii_lowercase(), filter.limit)
            .await?
        {
            actions.extend(state.store.get_action(&id).await?);
        }
        let progress = crate::approvals::progress_of(&state, &actions).await?;
        return ok(listed(&actions, visibility, &progress));
    }
    let actions = state.store.list_actions(&filter).await?;
    let progress = crate::approvals::progress_of(&state, &actions).await?;
    ok(listed(&actions, visibility, &progress))
}

/// The names of agents, tools and operations that contain `text` and agree with the exact
/// filters: what the listing then selects actions by.
async fn search_names(
    state: &AppState,
    filter: &ActionFilter,
    text: &str,
) -> Result<Vec<Name>, ApiError> {
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::Validation(format!(
            "`q` may be at most {MAX_SEARCH_CHARS} characters; search for a part of an agent, tool or operation name"
        )));
    }
    let mut names = Vec::new();
    for column in NameColumn::ALL {
        let exact = match column {
            NameColumn::Agent => filter.agent_id.as_deref(),
            NameColumn::Tool => filter.tool.as_deref(),
            NameColumn::Operation => None,
        };
        for value in state.store.names_containing(column, text).await? {
            if exact.is_none_or(|exact| exact == value) {
                names.push(Name { column, value });
            }
        }
    }
    if names.len() > MAX_SEARCH_NAMES {
        let sample: Vec<&str> = names.iter().take(5).map(|n| n.value.as_str()).collect();
        return Err(ApiError::Validation(format!(
            "{text:?} is in {} agent, tool and operation names ({}, …); a search lists the actions of at most {MAX_SEARCH_NAMES}: type more of the name, or filter by agent or tool",
            names.len(),
            sample.join(", ")
        )));
    }
    Ok(names)
}

fn listed<'a>(
    actions: &'a [ActionRecord],
    visibility: view::TokenVisibility,
    progress: &HashMap<String, crate::approvals::Progress>,
) -> Vec<view::ActionView<'a>> {
    actions
        .iter()
        .map(|a| view::action(a, visibility).with_approvals(progress))
        .collect()
}

async fn find(state: &AppState, id: &str) -> Result<ActionRecord, ApiError> {
    state
        .store
        .get_action(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Action {id} not found")))
}

#[utoipa::path(get, path = "/v1/actions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody)))]
pub(crate) async fn get_action(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let action = find(&state, &id).await?;
    let progress = crate::approvals::progress_of(&state, std::slice::from_ref(&action)).await?;
    ok(view::action(&action, caller.token_visibility()).with_approvals(&progress))
}

#[utoipa::path(get, path = "/v1/actions/{id}/events", params(("id" = String, Path)),
    responses((status = 200, body = Vec<faramesh_api::LedgerEvent>), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody)))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    find(&state, &id).await?;
    let events = state.store.events(&id).await?;
    ok(events.iter().map(view::event).collect::<Vec<_>>())
}

/// Recomputes the action's hash chain on the server (beyond the seed) and checks the action row
/// against it, so a dashboard can show "verified" or the first problem without reimplementing
/// canonical JSON.
#[utoipa::path(get, path = "/v1/actions/{id}/chain", params(("id" = String, Path)),
    responses((status = 200, body = faramesh_api::ChainStatus), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody)))]
pub(crate) async fn chain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    use faramesh_core::ledger::{row_request_hash, verify_action, ActionFacts, LedgerProblem};
    let verdict = |a: &ActionRecord, events: &[faramesh_storage::EventRecord]| {
        let chained: Vec<_> = events.iter().map(|e| e.chained()).collect();
        let facts = ActionFacts {
            id: &a.id,
            request_hash: row_request_hash(
                &a.agent_id,
                &a.tool,
                &a.operation,
                a.params.map(),
                a.context.map(),
            ),
            status: a.status.as_str(),
        };
        verify_action(&facts, &chained).err()
    };
    let mut action = find(&state, &id).await?;
    let mut events = state.store.events(&id).await?;
    let mut problem = verdict(&action, &events);
    // The row and its events are two reads: an action that moved on in between would look
    // rewritten. So when they disagree, both are read again (events, action, events) until no
    // event was added meanwhile; a row and its event are written in one transaction.
    for _ in 0..3 {
        if !matches!(problem, Some(LedgerProblem::Unbound(_))) {
            break;
        }
        let before = state.store.events(&id).await?;
        action = find(&state, &id).await?;
        events = state.store.events(&id).await?;
        problem = verdict(&action, &events);
        if before.len() == events.len() {
            break;
        }
    }
    let (broken, unbound) = match problem {
        Some(LedgerProblem::Broken(link)) => (Some(link), None),
        Some(LedgerProblem::Unbound(binding)) => (None, Some(binding)),
        None => (None, None),
    };
    ok(faramesh_api::ChainStatus {
        action_id: id,
        events: events.len(),
        verified: broken.is_none() && unbound.is_none(),
        problem: broken
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| unbound.as_ref().map(ToString::to_string)),
        broken_link: broken,
        binding_problem: unbound,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    token: Option<String>,
    approve: bool,
    reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/actions/{id}/approval", params(("id" = String, Path)), request_body = faramesh_api::ApprovalRequest,
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn approval(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Approve)?;
    let body: ApprovalBody = serde_json::from_value(body(payload)?).map_err(|e| {
        ApiError::Validation(format!(
            "The approval body must be {{token, approve, reason?}}: {e}"
        ))
    })?;
    let action = find(&state, &id).await?;
    if action.status != ActionStatus::PendingApproval {
        return Err(ApiError::Conflict {
            detail: format!("Action {id} is {}, not pending approval", action.status),
            action_id: id,
            status: action.status.as_str().to_owned(),
        });
    }
    let expected = action.approval_token.as_deref().unwrap_or("");
    let given = body.token.as_deref().unwrap_or("");
    if expected.is_empty() || !crate::auth::constant_time_eq(given.as_bytes(), expected.as_bytes())
    {
        return Err(ApiError::Unauthorized(format!(
            "The approval token for action {id} is missing or wrong"
        )));
    }
    let decider = crate::approvals::Decider {
        name: &caller.name,
        role: caller.role,
    };
    let action =
        crate::approvals::decide(&state, &action, decider, body.approve, body.reason).await?;
    let progress = crate::approvals::progress_of(&state, std::slice::from_ref(&action)).await?;
    ok(view::action(&action, caller.token_visibility()).with_approvals(&progress))
}

#[utoipa::path(post, path = "/v1/actions/{id}/start", params(("id" = String, Path)),
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody)))]
pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require(Permission::Execute)?;
    let action = crate::execution::start(&state, &id).await?;
    ok(view::action(&action, caller.token_visibility()))
}

#[utoipa::path(post, path = "/v1/actions/{id}/withdraw", params(("id" = String, Path)), request_body = faramesh_api::WithdrawRequest,
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Execute)?;
    let body: faramesh_api::WithdrawRequest =
        serde_json::from_value(body(payload)?).map_err(|e| {
            ApiError::Validation(format!("The withdrawal body must be {{reason?}}: {e}"))
        })?;
    let action = withdraw_action(&state, &id, &caller.name, body.reason).await?;
    ok(view::action(&action, caller.token_visibility()))
}

/// Takes back a pending action on behalf of `by`: `denied`, with the reason `Withdrawn by <by>:
/// <reason>`.
pub async fn withdraw_action(
    state: &AppState,
    id: &str,
    by: &str,
    reason: Option<String>,
) -> Result<ActionRecord, ApiError> {
    let why = reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "no reason given".to_owned());
    let reason = format!("Withdrawn by {by}: {why}");
    let told = !state.config.notify_routes.routes.is_empty();
    let pending = if told {
        state.store.get_action(id).await?
    } else {
        None
    };
    let notifications = match pending {
        Some(mut action) if action.status == ActionStatus::PendingApproval => {
            action.status = ActionStatus::Denied;
            action.decision = Some(Effect::Deny);
            action.reason = Some(reason.clone());
            let progress =
                crate::approvals::progress_of(state, std::slice::from_ref(&action)).await?;
            let approvals = progress
                .get(id)
                .map(crate::approvals::Progress::counts)
                .unwrap_or_default();
            crate::approvals::announcements(
                state,
                faramesh_notify::Kind::Decided,
                &action,
                approvals,
                Some(by),
            )
        }
        _ => Vec::new(),
    };
    let update = TransitionUpdate {
        notifications,
        decision: Some(Effect::Deny),
        reason: Some(reason.clone()),
        result: None,
        meta: json!({"reason": reason, "by": by, "withdrawn": true}),
    };
    Ok(state.transition(id, Transition::Withdraw, update).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultBody {
    success: bool,
    error: Option<String>,
    output: Option<Value>,
}

/// Longest error text kept from a result report.
const MAX_ERROR_CHARS: usize = 1000;

#[utoipa::path(post, path = "/v1/actions/{id}/result", params(("id" = String, Path)), request_body = faramesh_api::ResultReport,
    responses((status = 200, body = faramesh_api::Action), (status = 401, body = faramesh_api::ErrorBody), (status = 404, body = faramesh_api::ErrorBody), (status = 409, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn result(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Execute)?;
    crate::execution::refuse_report_if_owned(&state, &id).await?;
    let body: ResultBody = serde_json::from_value(body(payload)?).map_err(|e| {
        ApiError::Validation(format!(
            "The result body must be {{success, error?, output?}}: {e}"
        ))
    })?;
    let action = record_result(&state, &id, body.success, body.error, body.output).await?;
    ok(view::action(&action, caller.token_visibility()))
}

/// Records how an action ran, as reported by whoever ran it: `succeeded` or `failed`, the error
/// (cut to 1,000 characters) as its reason, the output as its result.
pub async fn record_result(
    state: &AppState,
    id: &str,
    success: bool,
    error: Option<String>,
    output: Option<Value>,
) -> Result<ActionRecord, ApiError> {
    let error: Option<String> = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
    let transition = if success {
        Transition::Succeed
    } else {
        Transition::Fail
    };
    let meta = json!({"reason": error.clone(), "error": error.clone(), "output": output.clone()});
    let update = TransitionUpdate {
        notifications: Vec::new(),
        decision: None,
        reason: error,
        result: output,
        meta,
    };
    Ok(state.transition(id, transition, update).await?)
}

#[utoipa::path(post, path = "/v1/gate/decide", request_body = faramesh_api::Submission,
    params(("usage" = Option<String>, Query, description = "A JSON object of limit names to usage: limits are checked at that usage instead of the usage now (how a recorded decision is replayed)")),
    responses((status = 200, body = faramesh_api::GateDecision), (status = 401, body = faramesh_api::ErrorBody), (status = 413, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody), (status = 503, body = faramesh_api::ErrorBody)))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    payload: Result<Json<Box<RawValue>>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Decide)?;
    let Query(query) =
        query.map_err(|e| ApiError::Validation(format!("The query is not valid: {e}")))?;
    let request = validate::action_request(&body(payload)?)?.into_request();
    let span = crate::telemetry::start_decision(state.config.telemetry.as_ref());
    let loaded = state.loaded.load();
    // Limits as they stand (only checked: nothing is stored), or at the usage given.
    let d = match query.get("usage") {
        Some(text) => {
            let usage: HashMap<String, f64> = serde_json::from_str(text).map_err(|e| {
                ApiError::Validation(format!(
                    "`usage` must be a JSON object of limit names to numbers: {e}"
                ))
            })?;
            loaded.engine.decide_at_usage(&request, &usage)
        }
        None => {
            let d = loaded.engine.decide(&request);
            let charges = loaded
                .engine
                .policy()
                .map(|p| p.limit_charges(&request))
                .unwrap_or_default();
            crate::limits::check(&state, &loaded.engine, charges, d).await?
        }
    };
    state.metrics.decision(d.outcome.as_str(), &d.reason_code);
    if let Some(span) = span {
        span.finish(&faramesh_otel::Decided {
            action_id: None,
            agent_id: &request.agent_id,
            tool: &request.tool,
            operation: &request.operation,
            outcome: d.outcome.as_str(),
            reason_code: &d.reason_code,
            risk_level: Some(d.risk_level.as_str()),
            status: None,
        });
    }
    let owned = |text: Option<&str>| text.map(str::to_owned);
    ok(faramesh_api::GateDecision {
        outcome: d.outcome,
        decision: d.outcome.into(),
        reason_code: d.reason_code.to_string(),
        reason: d.reason.to_string(),
        request_hash: d.request_hash.clone(),
        policy_version: owned(d.policy_version.as_deref()),
        policy_hash: owned(d.policy_hash.as_deref()),
        profile_id: owned(d.profile_id.as_deref()),
        profile_version: owned(d.profile_version.as_deref()),
        profile_hash: owned(d.profile_hash.as_deref()),
        runtime_version: d.runtime_version.to_string(),
        provenance_id: d.provenance_id.clone(),
        risk_level: d.risk_level,
    })
}

/// The most operations one `POST /v1/gate/denied` may ask about.
const MAX_DENIED_QUERY: usize = 10_000;

#[utoipa::path(post, path = "/v1/gate/denied", request_body = faramesh_api::DeniedQuery,
    responses((status = 200, body = faramesh_api::DeniedOperations), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn denied(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    payload: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    caller.require(Permission::Decide)?;
    let query: faramesh_api::DeniedQuery = serde_json::from_value(body(payload)?).map_err(|e| {
        ApiError::Validation(format!(
            "The body must be {{agent_id, tool, operations: [names]}}: {e}"
        ))
    })?;
    if query.operations.len() > MAX_DENIED_QUERY {
        return Err(ApiError::Validation(format!(
            "operations lists {} names; ask about at most {MAX_DENIED_QUERY} at a time",
            query.operations.len()
        )));
    }
    let loaded = state.loaded.load();
    let denied = query
        .operations
        .into_iter()
        .filter(|op| {
            loaded
                .engine
                .denies_every_call(&query.agent_id, &query.tool, op)
        })
        .collect();
    ok(faramesh_api::DeniedOperations { denied })
}

fn info(state: &AppState) -> faramesh_api::PolicyInfo {
    let loaded = state.loaded.load();
    let policy = loaded.engine.policy();
    let path = &state.config.policy_file;
    faramesh_api::PolicyInfo {
        policy_file: path.file_name().map(|f| f.to_string_lossy().into_owned()),
        policy_path: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string(),
        exists: loaded.policy_exists,
        policy_version: loaded.engine.policy_version().map(str::to_owned),
        policy_hash: policy.map(|p| p.hash().to_owned()),
        rules: policy.map_or_else(Vec::new, |p| p.rules_json().to_vec()),
        risk_rules: policy.map_or_else(Vec::new, |p| p.risk_rules_json().to_vec()),
        loaded_at: loaded.loaded_at.clone(),
        shadow_policy: shadow_policy(state, &loaded),
        profile: match loaded.engine.profile() {
            faramesh_core::ProfileState::Loaded(p) => {
                let form = p.hashed_form();
                Some(faramesh_api::ProfileInfo {
                    file: state
                        .config
                        .profile_file
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned()),
                    id: p.id().to_string(),
                    version: p.version().to_string(),
                    profile_hash: p.hash().to_string(),
                    allowed_tools: form
                        .get("allowed_tools")
                        .and_then(Value::as_array)
                        .map(|tools| {
                            tools
                                .iter()
                                .filter_map(|t| t.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    rules: form
                        .get("rules")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    approval_token_required: form
                        .get("required_controls")
                        .and_then(|c| c.get("approval_token"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
            }
            _ => None,
        },
    }
}

/// The shadow policy loaded, if any.
fn shadow_policy(
    state: &AppState,
    loaded: &crate::policy_files::Loaded,
) -> Option<faramesh_api::ShadowPolicy> {
    let hash = loaded.shadow.as_ref()?.policy()?.hash().to_owned();
    Some(faramesh_api::ShadowPolicy {
        file: state
            .config
            .shadow_policy_file
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned()),
        policy_hash: hash,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShadowQuery {
    policy_hash: Option<String>,
    latest: Option<String>,
}

#[utoipa::path(get, path = "/v1/policy/shadow",
    params(("policy_hash" = Option<String>, Query, description = "Another shadow policy's hash; default the loaded one"), ("latest" = Option<i64>, Query, description = "How many latest disagreements, 0..1000, default 20")),
    responses((status = 200, body = faramesh_api::ShadowReport), (status = 401, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn shadow_report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ShadowQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    let Query(q) =
        query.map_err(|e| ApiError::Validation(format!("Bad query: {}", e.body_text())))?;
    let latest = match q.latest.as_deref().map(str::trim) {
        None | Some("") => 20,
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::Validation(format!("`latest` must be a whole number, not {text:?}"))
        })?,
    }
    .min(1000);
    let loaded = state.loaded.load();
    let loaded_policy = shadow_policy(&state, &loaded);
    let shadow = match q.policy_hash.filter(|h| !h.is_empty()) {
        Some(hash) => Some(faramesh_api::ShadowPolicy {
            file: loaded_policy
                .as_ref()
                .filter(|p| p.policy_hash == hash)
                .and_then(|p| p.file.clone()),
            policy_hash: hash,
        }),
        None => loaded_policy.clone(),
    };
    let summary = match &shadow {
        Some(p) => state.store.shadow_summary(&p.policy_hash, latest).await?,
        None => faramesh_storage::ShadowSummary::default(),
    };
    let counts = &loaded.shadow_counts;
    let this_load = shadow.is_some() && shadow == loaded_policy;
    let count = |n: &std::sync::atomic::AtomicU64| {
        if this_load {
            n.load(std::sync::atomic::Ordering::Relaxed)
        } else {
            0
        }
    };
    ok(faramesh_api::ShadowReport {
        shadow_policy: shadow,
        decided_since_loaded: count(&counts.decided),
        disagreed_since_loaded: count(&counts.disagreed),
        pairs: summary
            .pairs
            .into_iter()
            .map(|p| faramesh_api::ShadowPair {
                active: p.active,
                shadow: p.shadow,
                count: p.count,
            })
            .collect(),
        latest: summary
            .latest
            .into_iter()
            .map(|e| faramesh_api::ShadowDisagreement {
                action_id: e.action_id,
                agent_id: e.agent_id,
                tool: e.tool,
                operation: e.operation,
                active_outcome: e.active_outcome,
                shadow_outcome: e.shadow_outcome,
                shadow_reason_code: e.shadow_reason_code,
                shadow_reason: e.shadow_reason,
                created_at: e.created_at,
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/v1/policy/info", responses((status = 200, body = faramesh_api::PolicyInfo), (status = 401, body = faramesh_api::ErrorBody)))]
pub(crate) async fn policy_info(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    caller.require(Permission::Read)?;
    ok(info(&state))
}

#[utoipa::path(post, path = "/v1/policy/reload", responses((status = 200, body = faramesh_api::PolicyInfo), (status = 401, body = faramesh_api::ErrorBody), (status = 403, body = faramesh_api::ErrorBody), (status = 422, body = faramesh_api::ErrorBody)))]
pub(crate) async fn policy_reload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    caller.require(Permission::ReloadPolicy)?;
    match policy_files::load(&state.config) {
        Ok(loaded) => {
            state.loaded.store(Arc::new(loaded));
            state.metrics.reload(true);
            tracing::info!("policy reloaded");
            ok(info(&state))
        }
        Err(policy_files::LoadError::Invalid(report)) => {
            state.metrics.reload(false);
            let body = faramesh_api::ErrorBody {
                detail: format!("The policy was not reloaded; the previous one stays active: {} problem(s) in {}", report.diagnostics.len(), report.file),
                code: Some("invalid_policy".to_owned()),
                action_id: None,
                status: None,
                errors: Some(
                    report
                        .diagnostics
                        .iter()
                        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                        .collect(),
                ),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
        Err(e) => {
            state.metrics.reload(false);
            Err(ApiError::Validation(format!(
                "The policy was not reloaded; the previous one stays active: {e}"
            )))
        }
    }
}

#[utoipa::path(get, path = "/health", responses((status = 200, body = faramesh_api::StatusBody)))]
pub(crate) async fn health() -> ApiResult {
    ok(faramesh_api::StatusBody {
        status: "healthy".to_owned(),
    })
}

#[utoipa::path(get, path = "/ready", responses((status = 200, body = faramesh_api::StatusBody), (status = 503, body = faramesh_api::ErrorBody)))]
pub(crate) async fn ready(State(state): State<AppState>) -> ApiResult {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("Not ready: {e}")))?;
    if state.loaded.load().engine.policy().is_none() {
        return Err(ApiError::Unavailable(
            "No policy is loaded; every action is denied".into(),
        ));
    }
    ok(faramesh_api::StatusBody {
        status: "ready".to_owned(),
    })
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
