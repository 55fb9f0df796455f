//! Coding agents that call a hook command before each tool use (Claude Code, Cursor): their
//! hook payloads read as Faramesh actions, a decision written as the answer each expects, and
//! the hook added to their settings files.
//!
//! Everything here is pure: the `faramesh hook` command reads stdin, asks the server and
//! writes stdout; this crate only translates.

pub mod claude_code;
pub mod cursor;
pub mod install;

pub use install::{Installed, SettingsError};

use serde_json::{Map, Value};

/// A tool call the agent is about to make, as a Faramesh action.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAction {
    /// The coding agent (`claude-code`, `cursor`): the action's tool.
    pub tool: &'static str,
    /// What the agent does (`Bash`, `Edit`, `mcp__github__create_issue`, `shell`).
    pub operation: String,
    pub params: Map<String, Value>,
    /// Where and in which session: session id, working directory, hook event.
    pub context: Map<String, Value>,
    /// The agent's own id of this call, when it has one: the after-hook names the same call.
    pub call_id: Option<String>,
    /// The session the call belongs to, when the agent names one.
    pub session_id: Option<String>,
}

impl HookAction {
    /// A key that makes a repeated hook for the same call submit no second action.
    pub fn idempotency_key(&self) -> Option<String> {
        let call = self.call_id.as_deref()?;
        let session = self.session_id.as_deref().unwrap_or("-");
        let key = format!("{}:{session}:{call}", self.tool);
        // The server takes keys of up to 255 printable ASCII characters.
        (key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())).then_some(key)
    }
}

/// How a tool call ended, as the after-hook tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct HookOutcome {
    pub session_id: Option<String>,
    pub call_id: String,
    pub success: bool,
    pub error: Option<String>,
    pub output: Value,
}

/// What a hook payload asks of Faramesh.
#[derive(Debug, Clone, PartialEq)]
pub enum HookEvent {
    /// Decide this call before it runs.
    Before(HookAction),
    /// Record how a call ended.
    After(HookOutcome),
    /// An event Faramesh has nothing to do with (named): answered with no decision.
    Other(String),
}

/// The answer to a hook that asked before a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let it run.
    Allow { reason: String },
    /// Do not run it; the reason is shown to the model.
    Deny { reason: String },
    /// Leave it to the agent's own permission prompt.
    Ask { reason: String },
}

/// A hook payload that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the hook input is not JSON: {0}")]
    NotJson(String),
    #[error("the hook input is not a JSON object")]
    NotAnObject,
    #[error("the hook input has no {0} (is this hook installed for the right agent?)")]
    Missing(&'static str),
    #[error("the hook input's {field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// The payload as a JSON object.
pub(crate) fn object(input: &str) -> Result<Map<String, Value>, HookError> {
    match serde_json::from_str::<Value>(input) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(HookError::NotAnObject),
        Err(e) => Err(HookError::NotJson(e.to_string())),
    }
}

/// A required string field.
pub(crate) fn text(payload: &Map<String, Value>, field: &'static str) -> Result<String, HookError> {
    match payload.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(HookError::Missing(field)),
        Some(_) => Err(HookError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// An optional string field; any other type is a mistake worth naming.
pub(crate) fn optional_text(
    payload: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, HookError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HookError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// Copies the listed fields, when present, into `context`.
pub(crate) fn copy_fields(
    payload: &Map<String, Value>,
    fields: &[&str],
    context: &mut Map<String, Value>,
) {
    for field in fields {
        if let Some(value) = payload.get(*field).filter(|v| !v.is_null()) {
            context.insert((*field).to_owned(), value.clone());
        }
    }
}
