//! JSON-RPC messages as they cross the gateway: each keeps the exact text it arrived as, so
//! everything the gateway does not govern is relayed byte for byte.
//!
//! rmcp's transports parse every message into its typed model, which drops fields it does not
//! know (`capabilities.tasks`, a tool's `execution`, vendor `x-` fields), renumbers request ids
//! and rewrites progress tokens. A relay must not change what it does not govern, so the
//! gateway frames lines itself and uses rmcp's types only for the messages it reads or writes.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use rmcp::model::ErrorCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// One JSON-RPC message: its text as received (or as the gateway wrote it) and its parsed form.
#[derive(Debug, Clone)]
pub struct Message {
    text: Arc<str>,
    value: Value,
}

/// What a message is, by the JSON-RPC fields it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind<'a> {
    Request {
        id: &'a Value,
        method: &'a str,
    },
    Notification {
        method: &'a str,
    },
    Response {
        id: &'a Value,
    },
    /// Neither: relayed as it is, for the other side to refuse.
    Other,
}

impl Message {
    /// Parses one line. A batch (an array) yields its members, each handled on its own, so that
    /// no call inside a batch escapes being governed.
    pub fn parse_line(line: &str) -> Result<Vec<Message>, serde_json::Error> {
        let value: Value = serde_json::from_str(line)?;
        Ok(match value {
            Value::Array(members) => members.into_iter().map(Message::from_value).collect(),
            value => {
                let text = line.trim_matches(|c: char| c.is_ascii_whitespace());
                // A message spread over lines (a pretty-printed HTTP body) must become one line
                // to cross a stdio transport: written again, compact, key order and number
                // text kept.
                if text.contains(['\n', '\r']) {
                    vec![Message::from_value(value)]
                } else {
                    vec![Message {
                        text: Arc::from(text),
                        value,
                    }]
                }
            }
        })
    }

    /// A message the gateway writes itself.
    pub fn from_value(value: Value) -> Message {
        Message {
            text: Arc::from(value.to_string()),
            value,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn kind(&self) -> Kind<'_> {
        let method = self.value.get("method").and_then(Value::as_str);
        let id = self.value.get("id").filter(|id| !id.is_null());
        match (method, id) {
            (Some(method), Some(id)) => Kind::Request { id, method },
            (Some(method), None) => Kind::Notification { method },
            (None, Some(id))
                if self.value.get("result").is_some() || self.value.get("error").is_some() =>
            {
                Kind::Response { id }
            }
            _ => Kind::Other,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        self.value.get("params")
    }
}

/// A request id as a map key: `7` and `"7"` are different requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey(String);

impl RequestKey {
    pub fn of(id: &Value) -> RequestKey {
        RequestKey(id.to_string())
    }
}

/// The answer to request `id` with `result`.
pub fn response(id: &Value, result: impl Serialize) -> Message {
    let result = serde_json::to_value(result).unwrap_or(Value::Null);
    Message::from_value(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// The error answer to request `id`.
pub fn error(id: &Value, code: ErrorCode, message: &str) -> Message {
    Message::from_value(json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code.0, "message": message},
    }))
}

/// A notification.
pub fn notification(method: &str, params: impl Serialize) -> Message {
    let params = serde_json::to_value(params).unwrap_or(Value::Null);
    Message::from_value(json!({"jsonrpc": "2.0", "method": method, "params": params}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test stops at the first failure")]

    use super::*;

    #[test]
    fn a_message_keeps_its_exact_text() {
        let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x-vendor":1.50,"b":1,"a":2}}"#;
        let messages = Message::parse_line(line).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages.first().unwrap().text(), line);
    }

    #[test]
    fn kinds_follow_the_fields() {
        let kind = |line: &str| {
            let m = Message::parse_line(line).unwrap();
            format!("{:?}", m.first().unwrap().kind())
        };
        assert!(kind(r#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#).starts_with("Request"));
        assert!(
            kind(r#"{"jsonrpc":"2.0","method":"notifications/cancelled"}"#)
                .starts_with("Notification")
        );
        assert!(kind(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).starts_with("Response"));
        assert!(kind(r#"{"jsonrpc":"2.0","id":3,"error":{"code":1}}"#).starts_with("Response"));
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":3}"#), "Other");
    }

    #[test]
    fn a_message_over_several_lines_becomes_one_line() {
        let body = "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"method\": \"ping\",\n  \"params\": {\"n\": 1.50}\n}\n";
        let messages = Message::parse_line(body).unwrap();
        assert_eq!(
            messages.first().unwrap().text(),
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1.50}}"#
        );
    }

    #[test]
    fn a_batch_is_taken_apart() {
        let line = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}},{"jsonrpc":"2.0","method":"n"}]"#;
        let messages = Message::parse_line(line).unwrap();
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn ids_of_different_types_are_different_keys() {
        assert_ne!(RequestKey::of(&json!(7)), RequestKey::of(&json!("7")));
    }
}
