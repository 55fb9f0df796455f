//! The Faramesh HTTP API's wire types (docs/api.md): what each request and response holds.
//! The server answers with them and describes them in `/openapi.json`; the client reads them.
//! Field order is the order of the documentation and of the JSON the server writes.

use faramesh_core::json::ReceivedObject;
use faramesh_core::ledger::{BindingProblem, BrokenLink, ChainedEvent};
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, Outcome, RiskLevel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `POST /v1/actions` and `POST /v1/gate/decide`. Unknown fields are refused.
pub use faramesh_core::ActionRequest as Submission;

/// An action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action {
    pub id: String,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    /// As the server received them: number text and key order as sent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: ReceivedObject,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: ReceivedObject,
    pub status: ActionStatus,
    pub decision: Option<Effect>,
    pub reason: Option<String>,
    pub risk_level: Option<RiskLevel>,
    /// Present only while pending approval, and never to an `agent` token.
    pub approval_token: Option<String>,
    /// The approvals recorded so far, for an action whose rule needs more than one or names
    /// who may approve; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalGiven>>,
    /// How many distinct approvals its rule needs; absent when the rule is the plain
    /// `require_approval: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    pub policy_version: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub outcome: Option<Outcome>,
    pub reason_code: Option<String>,
    /// `risk_level`, and what decided (`decided_by`, `risk_rule`).
    pub reason_details: Option<Value>,
    pub request_hash: Option<String>,
    pub policy_hash: Option<String>,
    pub profile_id: Option<String>,
    pub profile_version: Option<String>,
    pub profile_hash: Option<String>,
    pub runtime_version: Option<String>,
    pub provenance_id: Option<String>,
    pub result: Option<Value>,
    #[serde(default)]
    pub demo: bool,
    /// Ready-to-paste SDK snippets for this action.
    #[serde(default)]
    pub js_example: String,
    #[serde(default)]
    pub python_example: String,
}

/// One approval of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalGiven {
    /// The token name of who approved.
    pub by: String,
    pub reason: Option<String>,
    pub at: String,
}

/// A notification of the outbox (`GET /v1/notifications`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: String,
    /// The action it is about; none for a test message.
    pub action_id: Option<String>,
    /// The route that delivers it.
    pub route: String,
    /// approval.requested | approval.decided | approval.expired | approval.escalated | test
    pub kind: String,
    /// pending | delivered | failed
    pub state: String,
    /// Delivery attempts begun so far.
    pub attempts: u32,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// What the receivers are told.
    pub payload: Value,
}

/// A route of the routes file (`GET /v1/notifications/routes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteInfo {
    pub name: String,
    /// webhook | slack | email
    pub kind: String,
    /// Whether approval escalations are sent to it.
    pub escalation: bool,
}

/// The body of `POST /v1/notifications/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TestNotificationRequest {
    /// The route to send a test message to.
    pub route: String,
}

/// One ledger event (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEvent {
    pub id: String,
    pub action_id: String,
    /// created | decision_made | approved | denied | started | succeeded | failed | timeout
    pub event_type: String,
    pub meta: Value,
    pub created_at: String,
    pub prev_hash: Option<String>,
    pub record_hash: String,
    /// The event's position in the ledger's Merkle log (0-based, no gaps; docs/audit.md).
    #[serde(default)]
    pub log_index: Option<u64>,
}

/// `GET /v1/log/proof/inclusion`: the audit path of leaf `index` in the tree of `size` leaves
/// (RFC 9162 §2.1.3), hex hashes from the leaf up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/consistency`: that the tree of `to` leaves extends the tree of `from`
/// (RFC 9162 §2.1.4), hex hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

/// `GET /v1/log/leaves`: one leaf of the log, the event at `log_index` by its `record_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLeaf {
    pub log_index: u64,
    pub record_hash: String,
}

impl LedgerEvent {
    /// The fields the hash chain covers, for `faramesh_core::ledger::verify_chain`.
    pub fn chained(&self) -> ChainedEvent<'_> {
        ChainedEvent {
            id: &self.id,
            action_id: &self.action_id,
            event_type: &self.event_type,
            created_at: &self.created_at,
            meta: &self.meta,
            prev_hash: self.prev_hash.as_deref(),
            record_hash: &self.record_hash,
        }
    }
}

/// `GET /v1/actions/{id}/chain`: the action's hash chain recomputed by the server, and the
/// action row checked against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainStatus {
    pub action_id: String,
    /// Number of events in the chain.
    pub events: usize,
    /// True when the chain holds and the row is the one it describes.
    pub verified: bool,
    /// The first event whose `prev_hash` or `record_hash` does not hold; null when the chain
    /// holds.
    pub broken_link: Option<BrokenLink>,
    /// With an intact chain, the first way the action row is not the one it describes; null
    /// when it is.
    pub binding_problem: Option<BindingProblem>,
    /// The first problem (`broken_link` or `binding_problem`) in one sentence; null when
    /// verified.
    pub problem: Option<String>,
}

/// `GET /v1/mcp/servers`: the MCP servers the gateway serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpServers {
    pub servers: Vec<McpServer>,
}

/// One MCP server of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpServer {
    /// The name in the servers file: the tool of its actions.
    pub name: String,
    /// `stdio` (a child process per session) or `http` (a remote server).
    pub transport: String,
    /// The command run, or the URL reached; never headers or environment values.
    pub target: String,
    /// Where clients connect: `/mcp/{name}`.
    pub path: String,
    /// Sessions open now.
    pub sessions: usize,
    /// Sessions started since the server started.
    pub sessions_started: u64,
    /// Why the last session could not start its upstream, if one could not.
    pub last_error: Option<String>,
}

/// The body of `POST /v1/actions/{id}/withdraw`: the agent takes back a pending action (its
/// client cancelled the call). The action becomes `denied`, its reason `Withdrawn by <token
/// name>: <reason>`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub reason: Option<String>,
}

/// The body of `POST /v1/gate/denied`: which of these operations of `tool` does the active
/// policy and profile deny for every call by `agent_id`, whatever its params?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeniedQuery {
    pub agent_id: String,
    pub tool: String,
    /// At most 10,000 names.
    pub operations: Vec<String>,
}

/// The answer of `POST /v1/gate/denied`: the operations asked about that every call of would
/// be denied, in the order asked. An operation some params would let through (or send for
/// approval) is never listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeniedOperations {
    pub denied: Vec<String>,
}

/// The body of `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// 1 to 64 letters, digits, '-', '_', '.' or '@'; unique among tokens in use.
    pub name: String,
    /// agent | approver | admin
    pub role: String,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    /// agent | approver | admin
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A newly created token: the only answer that carries the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer secret; stored only as its SHA-256, never shown again.
    pub token: String,
}

/// The body of `POST /v1/actions/{id}/approval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRequest {
    /// The action's `approval_token`.
    pub token: String,
    pub approve: bool,
    pub reason: Option<String>,
}

/// The body of `POST /v1/actions/{id}/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultReport {
    pub success: bool,
    /// Cut at 1,000 characters.
    pub error: Option<String>,
    pub output: Option<Value>,
}

/// The answer of `POST /v1/gate/decide`: the decision, stored nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateDecision {
    pub outcome: Outcome,
    pub decision: Effect,
    pub reason_code: String,
    pub reason: String,
    pub request_hash: Option<String>,
    pub policy_version: Option<String>,
    pub policy_hash: Option<String>,
    pub profile_id: Option<String>,
    pub profile_version: Option<String>,
    pub profile_hash: Option<String>,
    pub runtime_version: String,
    pub provenance_id: String,
    pub risk_level: RiskLevel,
}

/// `GET /v1/policy/info`, and the answer of a successful `POST /v1/policy/reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyInfo {
    pub policy_file: Option<String>,
    pub policy_path: String,
    pub exists: bool,
    pub policy_version: Option<String>,
    pub policy_hash: Option<String>,
    pub rules: Vec<Value>,
    pub risk_rules: Vec<Value>,
    pub loaded_at: String,
    /// The shadow policy decided alongside, never enforced (`--shadow-policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_policy: Option<ShadowPolicy>,
    /// The execution profile that runs before the policy, when one is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileInfo>,
}

/// The execution profile as loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileInfo {
    pub file: Option<String>,
    pub id: String,
    pub version: String,
    pub profile_hash: String,
    pub allowed_tools: Vec<String>,
    /// The profile's rules with every default filled in, as hashed.
    pub rules: Vec<Value>,
    /// Whether an `approval_token` is required in params or context.
    pub approval_token_required: bool,
}

/// What the shadow policy would have decided otherwise (`GET /v1/policy/shadow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowReport {
    /// The shadow policy the report is about; none when the server runs without one and no
    /// `policy_hash` was asked for.
    pub shadow_policy: Option<ShadowPolicy>,
    /// Submissions this server decided with it since it was loaded, and how many of them it
    /// would have decided otherwise.
    pub decided_since_loaded: u64,
    pub disagreed_since_loaded: u64,
    /// Every recorded disagreement, counted by outcome pair, most frequent first.
    pub pairs: Vec<ShadowPair>,
    /// The latest disagreements, newest first.
    pub latest: Vec<ShadowDisagreement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowPolicy {
    pub file: Option<String>,
    pub policy_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowPair {
    pub active: Outcome,
    pub shadow: Outcome,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowDisagreement {
    pub action_id: String,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub active_outcome: Outcome,
    pub shadow_outcome: Outcome,
    pub shadow_reason_code: String,
    pub shadow_reason: String,
    pub created_at: String,
}

/// The policy's limits and their usage now (`GET /v1/limits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    pub limits: Vec<LimitInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitInfo {
    pub name: String,
    /// agent_id | tool | global | a params./context. path
    pub per: String,
    /// Set for a rate limit.
    pub max_calls: Option<u64>,
    /// The summed path, for a budget.
    pub sum: Option<String>,
    pub max: f64,
    pub window: String,
    pub window_seconds: u64,
    /// deny | require_approval
    pub on_exceed: String,
    /// The most used keys in the window now, most used first.
    pub usage: Vec<LimitUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitUse {
    pub key: String,
    pub used: f64,
    pub calls: u64,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub detail: String,
    /// A stable name of the kind of error (`validation_error`, `conflict`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// With a 409 about an action: the action and its current status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    /// The action's status, or `idempotency_key_reused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// With a 422 from a policy reload: every problem of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub errors: Option<Vec<Value>>,
}

/// `{"status": "healthy"}` or `{"status": "ready"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusBody {
    pub status: String,
}
