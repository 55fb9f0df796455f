//! Cursor's hooks: `beforeShellExecution` (`command`, `cwd`), `beforeMCPExecution`
//! (`tool_name`, `tool_input`, and the server's `url` or `command`) and `beforeReadFile`
//! (`file_path`, `content`) ask before the agent acts. Every payload carries
//! `hook_event_name`, `conversation_id`, `generation_id` and `workspace_roots`. The answer is
//! `permission` (`allow`, `deny` or `ask`; a file read knows only `allow` and `deny`) with a
//! message for the user and one for the agent.

use crate::{copy_fields, object, optional_text, text, HookAction, HookError, HookEvent, Verdict};
use serde_json::{json, Map, Value};

/// The action's tool for every Cursor call.
pub const TOOL: &str = "cursor";

/// The events this hook decides.
pub const EVENTS: [&str; 3] = [
    "beforeShellExecution",
    "beforeMCPExecution",
    "beforeReadFile",
];

/// Reads a hook payload.
pub fn parse(input: &str) -> Result<HookEvent, HookError> {
    let payload = object(input)?;
    let event = text(&payload, "hook_event_name")?;
    let mut context = Map::new();
    copy_fields(
        &payload,
        &["conversation_id", "generation_id", "workspace_roots", "cwd"],
        &mut context,
    );
    context.insert("hook_event".into(), json!(event));
    let (operation, params) = match event.as_str() {
        "beforeShellExecution" => (
            "shell".to_owned(),
            Map::from_iter([("command".to_owned(), json!(text(&payload, "command")?))]),
        ),
        "beforeMCPExecution" => {
            let tool = text(&payload, "tool_name")?;
            // Sent as an object by some versions and as JSON text by others.
            let params = match payload.get("tool_input") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(input)) => input.clone(),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(input)) => input,
                    _ => Map::from_iter([("input".to_owned(), json!(s))]),
                },
                Some(other) => Map::from_iter([("input".to_owned(), other.clone())]),
            };
            let mut server = Map::new();
            copy_fields(&payload, &["url", "command"], &mut server);
            if !server.is_empty() {
                context.insert("mcp_server".into(), Value::Object(server));
            }
            (format!("mcp__{tool}"), params)
        }
        // The path only: the content may hold the very secrets a policy keeps from the agent.
        "beforeReadFile" => (
            "read_file".to_owned(),
            Map::from_iter([("file_path".to_owned(), json!(text(&payload, "file_path")?))]),
        ),
        _ => return Ok(HookEvent::Other(event)),
    };
    Ok(HookEvent::Before(HookAction {
        tool: TOOL,
        operation,
        params,
        context,
        call_id: None,
        session_id: optional_text(&payload, "conversation_id")?,
    }))
}

/// The answer to `event` for a verdict. Both spellings of the message fields are written:
/// Cursor has documented `user_message`/`agent_message` and, earlier, `userMessage`/
/// `agentMessage`, and ignores the ones it does not read.
pub fn answer(event: &str, verdict: &Verdict) -> Value {
    let (permission, reason) = match verdict {
        Verdict::Allow { reason } => ("allow", reason),
        Verdict::Deny { reason } => ("deny", reason),
        // A file read cannot be asked about: without Faramesh's approval it is not read.
        Verdict::Ask { reason } if event == "beforeReadFile" => ("deny", reason),
        Verdict::Ask { reason } => ("ask", reason),
    };
    if event == "beforeReadFile" {
        return json!({"permission": permission});
    }
    json!({
        "permission": permission,
        "user_message": reason,
        "agent_message": reason,
        "userMessage": reason,
        "agentMessage": reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before(input: &str) -> HookAction {
        match parse(input).unwrap() {
            HookEvent::Before(action) => action,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_event_is_an_action_of_cursor() {
        let shell = before(
            r#"{"hook_event_name":"beforeShellExecution","conversation_id":"c1","generation_id":"g1",
                "workspace_roots":["/work/app"],"command":"npm test","cwd":"/work/app"}"#,
        );
        assert_eq!((shell.tool, shell.operation.as_str()), ("cursor", "shell"));
        assert_eq!(Value::Object(shell.params), json!({"command": "npm test"}));
        assert_eq!(
            Value::Object(shell.context),
            json!({"conversation_id":"c1","generation_id":"g1","workspace_roots":["/work/app"],"cwd":"/work/app","hook_event":"beforeShellExecution"})
        );

        let mcp = before(
            r#"{"hook_event_name":"beforeMCPExecution","tool_name":"query","tool_input":"{\"sql\":\"select 1\"}","url":"http://localhost:3000"}"#,
        );
        assert_eq!(mcp.operation, "mcp__query");
        assert_eq!(Value::Object(mcp.params), json!({"sql": "select 1"}));
        assert_eq!(
            mcp.context["mcp_server"],
            json!({"url": "http://localhost:3000"})
        );

        let read = before(
            r#"{"hook_event_name":"beforeReadFile","file_path":"/work/app/.env","content":"KEY=secret"}"#,
        );
        assert_eq!(read.operation, "read_file");
        assert_eq!(
            Value::Object(read.params),
            json!({"file_path": "/work/app/.env"})
        );
        assert!(!read
            .context
            .values()
            .any(|v| v.to_string().contains("secret")));

        assert_eq!(
            parse(r#"{"hook_event_name":"afterFileEdit","file_path":"x"}"#).unwrap(),
            HookEvent::Other("afterFileEdit".into())
        );
        assert_eq!(
            parse(r#"{"hook_event_name":"beforeShellExecution"}"#),
            Err(HookError::Missing("command"))
        );
    }

    #[test]
    fn a_file_read_is_never_asked_about() {
        let ask = Verdict::Ask {
            reason: "needs approval".into(),
        };
        assert_eq!(
            answer("beforeReadFile", &ask),
            json!({"permission": "deny"})
        );
        assert_eq!(
            answer("beforeShellExecution", &ask)["permission"],
            json!("ask")
        );
        assert_eq!(
            answer("beforeShellExecution", &ask)["agent_message"],
            json!("needs approval")
        );
    }
}
