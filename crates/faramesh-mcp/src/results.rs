//! What the gateway answers in place of the MCP server, and what it records of the server's
//! answers.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::gate::Finished;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Value};

/// A tool result with `isError: true` and one text block: how the gateway tells the model why
/// a call did not go through (a protocol error would be for a malformed request).
/// `complete_result_type`: the client speaks a protocol version that types every result.
pub fn refusal(text: String, complete_result_type: bool) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    if !complete_result_type {
        // Versions before results were typed do not know the field.
        result.result_type = None;
    }
    result
}

/// The longest output kept in the ledger for one call, as JSON text.
pub const MAX_RECORDED_BYTES: usize = 4096;

/// How a call ended, from the server's answer (`result` or `error` of the response).
pub fn finished_from_response(response: &Value) -> Finished {
    if let Some(error) = response.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the MCP server answered with an error");
        return Finished {
            success: false,
            error: Some(format!("MCP error: {message}")),
            output: summarize(error),
        };
    }
    let result = response.get("result").unwrap_or(&Value::Null);
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    Finished {
        success: !is_error,
        error: is_error.then(|| {
            let text = text_of(result);
            if text.is_empty() {
                "the tool reported an error (isError: true)".to_owned()
            } else {
                cut(&text, 1000)
            }
        }),
        output: summarize(result),
    }
}

/// A call that ended without the server's answer.
pub fn finished_without_answer(why: &str) -> Finished {
    Finished {
        success: false,
        error: Some(why.to_owned()),
        output: Value::Null,
    }
}

/// The value itself when its JSON is small; otherwise its text content, cut, with its size.
pub fn summarize(value: &Value) -> Value {
    let size = value.to_string().len();
    if size <= MAX_RECORDED_BYTES {
        return value.clone();
    }
    json!({
        "truncated": true,
        "bytes": size,
        "text": cut(&text_of(value), MAX_RECORDED_BYTES / 2),
    })
}

/// The text blocks of a tool result, joined.
fn text_of(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut kept = text.get(..end).unwrap_or_default().to_owned();
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test stops at the first failure")]

    use super::*;

    #[test]
    fn a_refusal_is_a_tool_error_with_one_text_block() {
        let old = serde_json::to_value(refusal("no".into(), false)).unwrap();
        assert_eq!(
            old,
            json!({"content": [{"type": "text", "text": "no"}], "isError": true})
        );
        let typed = serde_json::to_value(refusal("no".into(), true)).unwrap();
        assert_eq!(typed["resultType"], "complete");
    }

    #[test]
    fn answers_become_outcomes() {
        let ok = finished_from_response(
            &json!({"result": {"content": [{"type": "text", "text": "hi"}]}}),
        );
        assert!(ok.success && ok.error.is_none());
        let tool_error = finished_from_response(
            &json!({"result": {"content": [{"type": "text", "text": "boom"}], "isError": true}}),
        );
        assert_eq!(
            (tool_error.success, tool_error.error.as_deref()),
            (false, Some("boom"))
        );
        let protocol =
            finished_from_response(&json!({"error": {"code": -32602, "message": "bad"}}));
        assert_eq!(protocol.error.as_deref(), Some("MCP error: bad"));
    }

    #[test]
    fn a_large_answer_is_summarized_and_cut_at_a_character() {
        let text = "é".repeat(10_000);
        let summary = summarize(&json!({"content": [{"type": "text", "text": text}]}));
        assert_eq!(summary["truncated"], true);
        let kept = summary["text"].as_str().unwrap();
        assert!(kept.len() <= MAX_RECORDED_BYTES / 2 + '…'.len_utf8());
        assert!(kept.ends_with('…'));
    }
}
