//! The OpenAPI 3 description served at `/openapi.json`, generated from the route handlers'
//! annotations and the wire types of `faramesh_api`, which the handlers answer with.

#![allow(
    dead_code,
    reason = "live_events and metrics only carry the annotations of handlers that live elsewhere"
)]

use serde_json::Value;
use utoipa::OpenApi;

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
        (status = 401, body = faramesh_api::ErrorBody),
        (status = 422, body = faramesh_api::ErrorBody),
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
        crate::routes::withdraw,
        crate::routes::result,
        crate::routes::decide,
        crate::routes::denied,
        crate::mcp::servers,
        crate::notifications::list,
        crate::notifications::route_list,
        crate::notifications::test,
        crate::notifications::slack_interactions,
        crate::routes::policy_info,
        crate::routes::policy_reload,
        crate::routes::shadow_report,
        crate::limits::list,
        crate::token_routes::create,
        crate::token_routes::list,
        crate::token_routes::revoke,
        crate::transparency::key,
        crate::transparency::latest,
        crate::transparency::inclusion,
        crate::transparency::consistency,
        crate::transparency::leaves,
        crate::routes::health,
        crate::routes::ready,
        live_events,
        metrics,
    ),
    components(schemas(
        faramesh_api::Submission,
        faramesh_api::Action,
        faramesh_api::ApprovalGiven,
        faramesh_api::Notification,
        faramesh_api::RouteInfo,
        faramesh_api::TestNotificationRequest,
        faramesh_api::LedgerEvent,
        faramesh_api::ChainStatus,
        faramesh_api::TokenRequest,
        faramesh_api::TokenInfo,
        faramesh_api::NewToken,
        faramesh_core::ledger::BrokenLink,
        faramesh_core::ledger::BindingProblem,
        faramesh_api::ApprovalRequest,
        faramesh_api::ResultReport,
        faramesh_api::GateDecision,
        faramesh_api::DeniedQuery,
        faramesh_api::McpServers,
        faramesh_api::McpServer,
        faramesh_api::WithdrawRequest,
        faramesh_api::DeniedOperations,
        faramesh_api::PolicyInfo,
        faramesh_api::ProfileInfo,
        faramesh_api::ShadowReport,
        faramesh_api::Limits,
        faramesh_api::LimitInfo,
        faramesh_api::LimitUse,
        faramesh_api::ShadowPolicy,
        faramesh_api::ShadowPair,
        faramesh_api::ShadowDisagreement,
        faramesh_api::InclusionProof,
        faramesh_api::ConsistencyProof,
        faramesh_api::LogLeaf,
        faramesh_api::ErrorBody,
        faramesh_api::StatusBody
    ))
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}
