//! The MCP gateway inside the server: each configured MCP server at `/mcp/{name}`, with the
//! same tokens and roles as the REST API, and `GET /v1/mcp/servers`. Its sessions reach this
//! server through [`ServerGate`], the one interface of `faramesh-mcp`: submit, wait, start,
//! record, withdraw, exactly as the REST routes do.

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::routes;
use crate::state::AppState;
use crate::validate;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use faramesh_core::ActionStatus;
use faramesh_mcp::http::{Gateway, Owner};
use faramesh_mcp::{Call, Decided, Finished, Gate, GateError};
use faramesh_storage::ActionRecord;
use futures::StreamExt;
use serde_json::json;

use std::collections::HashSet;
use std::time::Duration;

/// The gateway of this server; sessions use the server through [`ServerGate`].
pub type McpGateway = Gateway<ServerGate>;

/// The longest `X-Faramesh-Agent` accepted.
const MAX_AGENT_ID: usize = 200;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/mcp/{name}", any(endpoint))
        .route("/v1/mcp/servers", get(servers))
        .with_state(state)
}

/// One request to an MCP endpoint, by a caller that may submit and run actions.
async fn endpoint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    if let Err(e) = caller
        .require(Permission::Submit)
        .and_then(|()| caller.require(Permission::Execute))
    {
        return e.into_response();
    }
    let claimed = request
        .headers()
        .get("x-faramesh-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if claimed.is_some_and(|a| a.chars().count() > MAX_AGENT_ID) {
        return ApiError::Validation(format!(
            "X-Faramesh-Agent is longer than {MAX_AGENT_ID} characters"
        ))
        .into_response();
    }
    // The token's name is the agent, unless the client names itself; an open server has no
    // names, so the server's name stands in.
    let agent_id = match claimed {
        Some(agent) => agent.to_owned(),
        None if state.tokens.enabled() => caller.name.to_string(),
        None => format!("mcp:{name}"),
    };
    let owner = Owner {
        key: caller.scope.to_string(),
        agent_id,
        gate: ServerGate {
            state: state.clone(),
            caller,
        },
    };
    state.mcp.handle(&name, owner, request).await
}

#[utoipa::path(get, path = "/v1/mcp/servers",
    responses((status = 200, body = faramesh_api::McpServers), (status = 401, body = faramesh_api::ErrorBody)))]
pub(crate) async fn servers(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(e) = caller.require(Permission::Read) {
        return e.into_response();
    }
    let servers = state
        .mcp
        .states()
        .into_iter()
        .map(|s| faramesh_api::McpServer {
            name: s.name,
            transport: s.transport.to_owned(),
            target: s.target,
            path: s.path,
            sessions: s.sessions,
            sessions_started: s.sessions_started,
            last_error: s.last_error,
        })
        .collect();
    Json(faramesh_api::McpServers { servers }).into_response()
}

/// This server, as the MCP gateway's sessions see it.
#[derive(Clone)]
pub struct ServerGate {
    state: AppState,
    caller: Caller,
}

fn decided(action: &ActionRecord) -> Decided {
    Decided {
        action_id: action.id.clone(),
        status: action.status,
        reason: action.reason.clone().unwrap_or_default(),
    }
}

fn gate_error(e: ApiError) -> GateError {
    match e {
        ApiError::Unavailable(detail) => GateError::Unavailable(detail),
        other => GateError::Refused(other.to_string()),
    }
}

impl ServerGate {
    async fn action(&self, id: &str) -> Result<ActionRecord, GateError> {
        match self.state.store.get_action(id).await {
            Ok(Some(action)) => Ok(action),
            Ok(None) => Err(GateError::Refused(format!("action {id} no longer exists"))),
            Err(e) => Err(gate_error(e.into())),
        }
    }
}

impl Gate for ServerGate {
    async fn submit(&self, call: Call) -> Result<Decided, GateError> {
        // The same checks as a submission over the API (sizes, depth, text).
        let body = json!({
            "agent_id": call.agent_id,
            "tool": call.server,
            "operation": call.tool,
            "params": call.arguments,
            "context": call.context,
        });
        let raw = serde_json::value::RawValue::from_string(body.to_string())
            .map_err(|e| GateError::Refused(e.to_string()))?;
        let submission = validate::action_request(&raw).map_err(gate_error)?;
        let how = routes::Submit {
            start_if_allowed: true,
            ..Default::default()
        };
        let action = routes::submit_action(&self.state, submission, how)
            .await
            .map_err(gate_error)?;
        Ok(decided(&action))
    }

    async fn current(&self, action_id: &str) -> Result<Decided, GateError> {
        Ok(decided(&self.action(action_id).await?))
    }

    async fn settled(&self, action_id: &str, _agent_id: &str) -> Result<Decided, GateError> {
        let filter = faramesh_events::StreamFilter {
            action_id: Some(action_id.to_owned()),
            ..Default::default()
        };
        loop {
            // Subscribed first, then read: a decision made in between is in the stream.
            let subscription = self.state.hub.subscribe(None, filter.clone()).ok();
            let now = self.current(action_id).await?;
            if now.status != ActionStatus::PendingApproval {
                return Ok(now);
            }
            let mut decided = false;
            if let Some(mut messages) = subscription {
                while let Some(message) = messages.next().await {
                    let pending = message.data.get("status").and_then(|s| s.as_str())
                        == Some(ActionStatus::PendingApproval.as_str());
                    if !pending {
                        decided = true;
                        break;
                    }
                }
            }
            // No stream (too many subscribers), or it ended without a decision (the stream
            // is closing, or dropped a slow reader): look again in a moment, not at once.
            if !decided {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn start(&self, action_id: &str) -> Result<(), GateError> {
        crate::execution::start(&self.state, action_id)
            .await
            .map(|_| ())
            .map_err(gate_error)
    }

    async fn withdraw(&self, action_id: &str, reason: &str) -> Result<(), GateError> {
        routes::withdraw_action(
            &self.state,
            action_id,
            &self.caller.name,
            Some(reason.to_owned()),
        )
        .await
        .map(|_| ())
        .map_err(gate_error)
    }

    async fn finish(&self, action_id: &str, finished: Finished) -> Result<(), GateError> {
        crate::execution::refuse_report_if_owned(&self.state, action_id)
            .await
            .map_err(gate_error)?;
        routes::record_result(
            &self.state,
            action_id,
            finished.success,
            finished.error,
            Some(finished.output),
        )
        .await
        .map(|_| ())
        .map_err(gate_error)
    }

    async fn denied_tools(
        &self,
        agent_id: &str,
        server: &str,
        tools: Vec<String>,
    ) -> Result<HashSet<String>, GateError> {
        let loaded = self.state.loaded.load();
        Ok(tools
            .into_iter()
            .filter(|tool| loaded.engine.denies_every_call(agent_id, server, tool))
            .collect())
    }
}
