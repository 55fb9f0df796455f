//! The OpenAPI 3 description served at `/openapi.json`, generated from the route handlers'
//! annotations and the schema types below (which mirror what the handlers accept and return).

#![allow(
    dead_code,
    reason = "the types exist to describe the wire format, not to be constructed"
)]

use serde_json::{Map, Value};
use utoipa::{OpenApi, ToSchema};

/// The body of `POST /v1/actions` and `POST /v1/gate/decide`. Unknown fields are refused.
#[derive(ToSchema)]
pub struct ActionSubmission {
    /// Non-empty, at most 10,000 characters, no NUL.
    #[schema(min_length = 1, max_length = 10000)]
    agent_id: String,
    #[schema(min_length = 1, max_length = 10000)]
    tool: String,
    #[schema(min_length = 1, max_length = 10000)]
    operation: String,
    /// Tool-specific; at most 100,000 bytes as JSON and 10 levels of objects.
    params: Map<String, Value>,
    /// Free metadata; `{}` when absent.
    context: Option<Map<String, Value>>,
}

/// An action (docs/api.md).
#[derive(ToSchema)]
pub struct Action {
    id: String,
    agent_id: String,
    tool: String,
    operation: String,
    params: Map<String, Value>,
    context: Map<String, Value>,
    /// allowed | denied | pending_approval | approved | executing | succeeded | failed | timeout
    status: String,
    /// allow | deny | require_approval
    decision: Option<String>,
    reason: Option<String>,
    /// low | medium | high
    risk_level: Option<String>,
    /// Present only while pending approval.
    approval_token: Option<String>,
    policy_version: Option<String>,
    created_at: String,
    updated_at: String,
    /// EXECUTE | ABSTAIN | HALT
    outcome: Option<String>,
    reason_code: Option<String>,
    reason_details: Option<Map<String, Value>>,
    request_hash: Option<String>,
    policy_hash: Option<String>,
    profile_id: Option<String>,
    profile_version: Option<String>,
    profile_hash: Option<String>,
    runtime_version: Option<String>,
    provenance_id: Option<String>,
    result: Option<Value>,
    demo: bool,
    js_example: String,
    python_example: String,
}

/// One ledger event (docs/audit.md).
#[derive(ToSchema)]
pub struct LedgerEvent {
    id: String,
    action_id: String,
    /// created | decision_made | approved | denied | started | succeeded | failed | timeout
    event_type: String,
    meta: Value,
    created_at: String,
    prev_hash: Option<String>,
    record_hash: String,
}

/// `GET /v1/actions/{id}/chain`: the action's hash chain recomputed by the server, and the
/// action row checked against it.
#[derive(ToSchema)]
pub struct ChainStatus {
    action_id: String,
    /// Number of events in the chain.
    events: usize,
    /// True when the chain holds and the row is the one it describes.
    verified: bool,
    /// The first event whose `prev_hash` or `record_hash` does not hold; null when the chain
    /// holds.
    broken_link: Option<BrokenLink>,
    /// With an intact chain, the first way the action row is not the one it describes; null
    /// when it is.
    binding_problem: Option<BindingProblem>,
    /// The first problem (`broken_link` or `binding_problem`) in one sentence; null when
    /// verified.
    problem: Option<String>,
}

/// How an action row differs from its ledger.
#[derive(ToSchema)]
pub struct BindingProblem {
    /// `no_events`; `no_decision` (no `decision_made` event); `request_hash` (its agent_id,
    /// tool, operation, params and context do not hash to the `request_hash` its
    /// `decision_made` event records); `status` (not the status its last event implies);
    /// `unknown_status` (its last event implies none).
    what: String,
    action_id: String,
    /// The event concerned (`request_hash`, `unknown_status`).
    event_id: Option<String>,
    /// Its 1-based position in the chain.
    position: Option<usize>,
    /// What the ledger says: the recorded `request_hash`, or the implied status.
    expected: Option<String>,
    /// What the row holds: the hash of its fields, or its status.
    found: Option<String>,
    /// The event implying the status (`status`, `unknown_status`).
    event_type: Option<String>,
    /// How many events the chain has (`no_decision`).
    events: Option<usize>,
    /// Why no status follows (`unknown_status`).
    why: Option<String>,
}

/// Where a hash chain breaks.
#[derive(ToSchema)]
pub struct BrokenLink {
    action_id: String,
    event_id: String,
    /// 1-based position in the action's chain.
    position: usize,
    /// `prev_hash` or `record_hash`.
    what: String,
    expected: String,
    found: String,
}

/// The body of `POST /v1/tokens`.
#[derive(ToSchema)]
pub struct TokenRequest {
    /// 1 to 64 letters, digits, '-', '_', '.' or '@'; unique among tokens in use.
    name: String,
    /// agent | approver | admin
    role: String,
}

/// An API token, without its secret.
#[derive(ToSchema)]
pub struct TokenInfo {
    id: String,
    name: String,
    role: String,
    created_at: String,
    revoked_at: Option<String>,
}

/// A newly created token: the only answer that carries the secret.
#[derive(ToSchema)]
pub struct NewTokenBody {
    id: String,
    name: String,
    role: String,
    created_at: String,
    revoked_at: Option<String>,
    /// The bearer secret; stored only as its SHA-256, never shown again.
    token: String,
}

/// The body of `POST /v1/actions/{id}/approval`.
#[derive(ToSchema)]
pub struct ApprovalRequest {
    token: String,
    approve: bool,
    reason: Option<String>,
}

/// The body of `POST /v1/actions/{id}/result`.
#[derive(ToSchema)]
pub struct ResultReport {
    success: bool,
    /// Cut at 1,000 characters.
    error: Option<String>,
    output: Option<Value>,
}

/// The answer of `POST /v1/gate/decide`.
#[derive(ToSchema)]
pub struct GateDecision {
    outcome: String,
    decision: String,
    reason_code: String,
    reason: String,
    request_hash: Option<String>,
    policy_version: Option<String>,
    policy_hash: Option<String>,
    profile_id: Option<String>,
    profile_version: Option<String>,
    profile_hash: Option<String>,
    runtime_version: String,
    provenance_id: String,
    risk_level: String,
}

/// `GET /v1/policy/info`.
#[derive(ToSchema)]
pub struct PolicyInfo {
    policy_file: Option<String>,
    policy_path: String,
    exists: bool,
    policy_version: Option<String>,
    policy_hash: Option<String>,
    rules: Vec<Value>,
    risk_rules: Vec<Value>,
    loaded_at: String,
}

/// Every error.
#[derive(ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    detail: String,
    code: Option<String>,
    action_id: Option<String>,
    status: Option<String>,
}

/// `{"status": "healthy"}` or `{"status": "ready"}`.
#[derive(ToSchema)]
pub struct StatusBody {
    status: String,
}

// The live stream lives in faramesh-events and `/metrics` answers Prometheus text, so neither
// handler carries an annotation; these functions describe them and are never called.

/// The live stream of action changes as Server-Sent Events: `event:` is `action.created` or
/// `action.updated`, `data:` the action as JSON, `id:` its ledger sequence number. It never
/// ends by itself; send `Last-Event-ID` on reconnect to receive what was missed.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("action_id" = Option<String>, Query, description = "Only this action's changes; empty means no filter"),
        ("agent_id" = Option<String>, Query, description = "Only this agent's actions; empty means no filter"),
        ("status" = Option<String>, Query, description = "Only actions in this status; empty means no filter"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this message id"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody),
    ))]
fn live_events() {}

/// Prometheus metrics in the text exposition format; public, like `/health`.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
    ))]
fn metrics() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Faramesh",
        description = "Execution gatekeeper for AI agents: submit tool calls as actions, get them decided, approve them, execute them, audit them."
    ),
    paths(
        crate::routes::submit,
        crate::routes::list,
        crate::routes::get_action,
        crate::routes::events,
        crate::routes::chain,
        crate::routes::approval,
        crate::routes::start,
        crate::routes::result,
        crate::routes::decide,
        crate::routes::policy_info,
        crate::routes::policy_reload,
        crate::token_routes::create,
        crate::token_routes::list,
        crate::token_routes::revoke,
        crate::routes::health,
        crate::routes::ready,
        live_events,
        metrics,
    ),
    components(schemas(
        ActionSubmission,
        Action,
        LedgerEvent,
        ChainStatus,
        TokenRequest,
        TokenInfo,
        NewTokenBody,
        BrokenLink,
        BindingProblem,
        ApprovalRequest,
        ResultReport,
        GateDecision,
        PolicyInfo,
        ErrorBody,
        StatusBody
    ))
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}
