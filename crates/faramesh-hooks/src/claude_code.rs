//! Claude Code's hooks: `PreToolUse` asks before a tool runs, `PostToolUse` and
//! `PostToolUseFailure` tell how it ended. Every payload carries `session_id`, `cwd`,
//! `permission_mode` and `hook_event_name`; tool events add `tool_name`, `tool_input` and
//! `tool_use_id`. A `PreToolUse` answer is `hookSpecificOutput.permissionDecision` (`allow`,
//! `deny` or `ask`) with a `permissionDecisionReason`, which Claude sees when it is denied.

use crate::{
    copy_fields, object, optional_text, text, HookAction, HookError, HookEvent, HookOutcome,
    Verdict,
};
use serde_json::{json, Map, Value};

/// The action's tool for every Claude Code call.
pub const TOOL: &str = "claude-code";

/// The longest tool output recorded with a result, in characters of JSON.
pub const MAX_OUTPUT_CHARS: usize = 100_000;

/// Reads a hook payload.
pub fn parse(input: &str) -> Result<HookEvent, HookError> {
    let payload = object(input)?;
    let event = text(&payload, "hook_event_name")?;
    match event.as_str() {
        "PreToolUse" => {
            let operation = text(&payload, "tool_name")?;
            let params = match payload.get("tool_input") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(input)) => input.clone(),
                // Not an object: kept whole, under one name.
                Some(other) => Map::from_iter([("input".to_owned(), other.clone())]),
            };
            let mut context = Map::new();
            copy_fields(
                &payload,
                &["session_id", "cwd", "permission_mode", "tool_use_id"],
                &mut context,
            );
            context.insert("hook_event".into(), json!("PreToolUse"));
            Ok(HookEvent::Before(HookAction {
                tool: TOOL,
                operation,
                params,
                context,
                call_id: optional_text(&payload, "tool_use_id")?,
                session_id: optional_text(&payload, "session_id")?,
            }))
        }
        "PostToolUse" | "PostToolUseFailure" => {
            let success = event == "PostToolUse";
            let error = if success {
                None
            } else {
                Some(
                    optional_text(&payload, "error")?
                        .unwrap_or_else(|| "the tool call failed".to_owned()),
                )
            };
            Ok(HookEvent::After(HookOutcome {
                session_id: optional_text(&payload, "session_id")?,
                call_id: text(&payload, "tool_use_id")?,
                success,
                error,
                output: capped(payload.get("tool_response").cloned().unwrap_or(Value::Null)),
            }))
        }
        _ => Ok(HookEvent::Other(event)),
    }
}

/// The `PreToolUse` answer for a verdict.
pub fn answer(verdict: &Verdict) -> Value {
    let (decision, reason) = match verdict {
        Verdict::Allow { reason } => ("allow", reason),
        Verdict::Deny { reason } => ("deny", reason),
        Verdict::Ask { reason } => ("ask", reason),
    };
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    })
}

/// Tool output small enough to record: a long one becomes its beginning, marked as cut.
pub(crate) fn capped(output: Value) -> Value {
    let text = output.to_string();
    if text.len() <= MAX_OUTPUT_CHARS {
        return output;
    }
    let mut end = MAX_OUTPUT_CHARS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({"truncated": true, "preview": text.get(..end).unwrap_or_default()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pre_tool_use_payload_is_an_action_of_claude_code() {
        let event = parse(
            r#"{"session_id":"s-1","transcript_path":"/t.jsonl","cwd":"/work/app","permission_mode":"default",
                "hook_event_name":"PreToolUse","tool_name":"Bash",
                "tool_input":{"command":"git push","description":"Push"},"tool_use_id":"toolu_01"}"#,
        )
        .unwrap();
        let HookEvent::Before(action) = event else {
            panic!("{event:?}")
        };
        assert_eq!(action.tool, "claude-code");
        assert_eq!(action.operation, "Bash");
        assert_eq!(
            action.params,
            json!({"command":"git push","description":"Push"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(
            Value::Object(action.context.clone()),
            json!({"session_id":"s-1","cwd":"/work/app","permission_mode":"default","tool_use_id":"toolu_01","hook_event":"PreToolUse"})
        );
        assert_eq!(
            action.idempotency_key().as_deref(),
            Some("claude-code:s-1:toolu_01")
        );
    }

    #[test]
    fn after_events_carry_the_outcome_and_other_events_are_named() {
        let ok = parse(r#"{"hook_event_name":"PostToolUse","session_id":"s","tool_name":"Edit","tool_input":{},"tool_response":{"success":true},"tool_use_id":"t1"}"#).unwrap();
        assert_eq!(
            ok,
            HookEvent::After(HookOutcome {
                session_id: Some("s".into()),
                call_id: "t1".into(),
                success: true,
                error: None,
                output: json!({"success": true}),
            })
        );
        let failed = parse(
            r#"{"hook_event_name":"PostToolUseFailure","tool_use_id":"t2","error":"exit 1"}"#,
        )
        .unwrap();
        assert!(
            matches!(failed, HookEvent::After(HookOutcome { success: false, error: Some(ref e), .. }) if e == "exit 1")
        );
        assert_eq!(
            parse(r#"{"hook_event_name":"Stop","session_id":"s"}"#).unwrap(),
            HookEvent::Other("Stop".into())
        );
    }

    #[test]
    fn unreadable_payloads_say_what_is_wrong() {
        assert!(matches!(parse("not json"), Err(HookError::NotJson(_))));
        assert_eq!(parse("[]"), Err(HookError::NotAnObject));
        assert_eq!(parse("{}"), Err(HookError::Missing("hook_event_name")));
        assert_eq!(
            parse(r#"{"hook_event_name":"PreToolUse"}"#),
            Err(HookError::Missing("tool_name"))
        );
        assert_eq!(
            parse(r#"{"hook_event_name":"PreToolUse","tool_name":7}"#),
            Err(HookError::WrongType {
                field: "tool_name",
                expected: "a string"
            })
        );
    }

    #[test]
    fn answers_use_the_documented_fields() {
        assert_eq!(
            answer(&Verdict::Deny {
                reason: "no".into()
            }),
            json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"no"}})
        );
    }

    #[test]
    fn long_output_is_cut_on_a_character_boundary() {
        let long = Value::String("é".repeat(MAX_OUTPUT_CHARS));
        let cut = capped(long);
        assert_eq!(cut["truncated"], json!(true));
        assert!(cut["preview"].as_str().unwrap().len() <= MAX_OUTPUT_CHARS);
    }
}
