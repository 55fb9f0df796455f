//! The one interface between the gateway and Faramesh: submit a call, wait for a human, start
//! it, record how it ended, and ask which tools are denied whatever their arguments. The stdio
//! wrapper implements it over the REST API ([`crate::RestGate`]); the server implements it over
//! its own state.

use faramesh_core::ActionStatus;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::future::Future;

/// A `tools/call` as an action: the server is the tool, the MCP tool the operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub agent_id: String,
    /// The MCP server's name.
    pub server: String,
    /// The MCP tool's name.
    pub tool: String,
    /// The call's `arguments` (`{}` when absent).
    pub arguments: Map<String, Value>,
    /// `{"mcp": {...}}`: transport, client, session, protocol version.
    pub context: Map<String, Value>,
}

/// An action as the gateway needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub action_id: String,
    pub status: ActionStatus,
    /// Why it was decided so (the policy's or the human's reason).
    pub reason: String,
}

/// How running an action ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub success: bool,
    pub error: Option<String>,
    /// A summary of the upstream's answer, capped.
    pub output: Value,
}

/// Faramesh could not be asked: the call does not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// The server cannot be reached or answered with an error of its own.
    #[error("{0}")]
    Unavailable(String),
    /// The server refused the request (a conflict: the action is no longer in a state that
    /// allows it).
    #[error("{0}")]
    Refused(String),
}

pub trait Gate: Send + Sync + 'static {
    /// Submits the call as an action and returns its decision. An allowed call is started in
    /// the same write (`executing`), so the call costs one durable write before it runs.
    fn submit(&self, call: Call) -> impl Future<Output = Result<Decided, GateError>> + Send;

    /// The action as it is now.
    fn current(&self, action_id: &str) -> impl Future<Output = Result<Decided, GateError>> + Send;

    /// Resolves once the action is no longer pending approval (no time limit: the caller
    /// stops waiting by dropping the future).
    fn settled(
        &self,
        action_id: &str,
        agent_id: &str,
    ) -> impl Future<Output = Result<Decided, GateError>> + Send;

    /// Starts an allowed or approved action: only one start succeeds, so an approved call runs
    /// at most once. [`GateError::Refused`] when it is not startable (already started, revoked
    /// because the policy changed).
    fn start(&self, action_id: &str) -> impl Future<Output = Result<(), GateError>> + Send;

    /// Takes back a pending action: the client cancelled the call or left.
    fn withdraw(
        &self,
        action_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), GateError>> + Send;

    /// Records how the call ended.
    fn finish(
        &self,
        action_id: &str,
        finished: Finished,
    ) -> impl Future<Output = Result<(), GateError>> + Send;

    /// Which of `tools` of `server` are denied for every call by `agent_id`.
    fn denied_tools(
        &self,
        agent_id: &str,
        server: &str,
        tools: Vec<String>,
    ) -> impl Future<Output = Result<HashSet<String>, GateError>> + Send;
}
