//! Request bodies checked field by field (docs/api.md), so every refusal names the field.

use crate::error::ApiError;
use faramesh_core::json::{duplicate_key_in, DuplicateKey, ReceivedObject};
use faramesh_core::ActionRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const MAX_TEXT: usize = 10_000;
const MAX_PARAMS_BYTES: usize = 100_000;
const MAX_OBJECT_DEPTH: usize = 10;
const SUBMIT_FIELDS: &[&str] = &["agent_id", "tool", "operation", "params", "context"];

fn invalid(detail: String) -> ApiError {
    ApiError::Validation(detail)
}

/// A submission that passed validation, with params and context as received: what is stored
/// and shown. Decisions read their parsed maps ([`Submission::request`]).
#[derive(Debug)]
pub struct Submission {
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub params: ReceivedObject,
    pub context: ReceivedObject,
}

impl Submission {
    /// The request the engine decides.
    pub fn request(&self) -> ActionRequest {
        ActionRequest {
            agent_id: self.agent_id.clone(),
            tool: self.tool.clone(),
            operation: self.operation.clone(),
            params: self.params.map().clone(),
            context: self.context.map().clone(),
        }
    }

    /// The request the engine decides, when the received text is no longer needed.
    pub fn into_request(self) -> ActionRequest {
        ActionRequest {
            agent_id: self.agent_id,
            tool: self.tool,
            operation: self.operation,
            params: self.params.into_map(),
            context: self.context.into_map(),
        }
    }
}

/// The texts of `params` and `context` exactly as in the body.
#[derive(Deserialize)]
struct ReceivedTexts<'a> {
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
}

/// The body of `POST /v1/actions` and `POST /v1/gate/decide`.
pub fn action_request(body: &RawValue) -> Result<Submission, ApiError> {
    let not_json = |e: serde_json::Error| invalid(format!("The body is not valid JSON: {e}"));
    // Params and context are kept as their text. With a key given twice, the parsed map would
    // keep one value while the text shows both: what is decided would not be what is shown.
    let parsed: Value = serde_json::from_str(body.get()).map_err(not_json)?;
    if let Some(duplicate) = duplicate_key_in(body.get(), &parsed).map_err(not_json)? {
        return Err(duplicate_key(&duplicate));
    }
    let Value::Object(mut map) = parsed else {
        return Err(invalid(format!(
            "The body must be a JSON object with {}",
            SUBMIT_FIELDS.join(", ")
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !SUBMIT_FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "Unknown field `{unknown}`; allowed fields are {}",
            SUBMIT_FIELDS.join(", ")
        )));
    }
    let agent_id = identifier(&mut map, "agent_id")?;
    let tool = identifier(&mut map, "tool")?;
    let operation = identifier(&mut map, "operation")?;
    match map.remove("params") {
        Some(Value::Object(_)) => {}
        None => {
            return Err(invalid(
                "`params` is required and must be an object (use {} for none)".to_owned(),
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "`params` must be an object, not {}",
                kind(&other)
            )))
        }
    };
    match map.remove("context") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return Err(invalid(format!(
                "`context` must be an object, not {}",
                kind(&other)
            )))
        }
    }
    let texts: ReceivedTexts = serde_json::from_str(body.get()).map_err(not_json)?;
    let received = |text: Option<&RawValue>, field: &str| {
        // An absent or null context is the empty object (a null reads as `None`).
        let Some(text) = text else {
            return Ok(ReceivedObject::default());
        };
        ReceivedObject::parse(text.get()).map_err(|e| invalid(format!("`{field}`: {e}")))
    };
    let params = received(texts.params, "params")?;
    let context = received(texts.context, "context")?;
    check_params(params.map())?;
    if tool == "http" {
        // The executor sends the operation's method; params that say otherwise would show a
        // reviewer (or a rule on params) one request while another is decided.
        faramesh_executors::check_http_params(&operation, params.map()).map_err(invalid)?;
    }
    check_nested(&Value::Object(context.map().clone()), "context", 0)?;
    Ok(Submission {
        agent_id,
        tool,
        operation,
        params,
        context,
    })
}

fn duplicate_key(d: &DuplicateKey) -> ApiError {
    invalid(format!(
        "Key `{}` appears more than once in the same object (at `{}`); give each key once",
        d.key, d.path
    ))
}

fn identifier(map: &mut Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match map.remove(field) {
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                Err(invalid(format!("`{field}` must not be empty")))
            } else if s.chars().count() > MAX_TEXT {
                Err(invalid(format!(
                    "`{field}` is longer than {MAX_TEXT} characters"
                )))
            } else if s.contains('\0') {
                Err(invalid(format!(
                    "`{field}` must not contain NUL characters"
                )))
            } else {
                Ok(s)
            }
        }
        None | Some(Value::Null) => Err(invalid(format!("`{field}` is required"))),
        Some(other) => Err(invalid(format!(
            "`{field}` must be a string, not {}",
            kind(&other)
        ))),
    }
}

fn check_params(params: &Map<String, Value>) -> Result<(), ApiError> {
    let size = serde_json::to_string(params)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PARAMS_BYTES {
        return Err(invalid(format!(
            "`params` is {size} bytes as JSON; the limit is {MAX_PARAMS_BYTES}"
        )));
    }
    let params = Value::Object(params.clone());
    check_nested(&params, "params", 0)
}

/// Objects nest at most ten levels deep, strings are at most 10,000 characters, and every
/// number has a canonical form (so the request can be hashed).
fn check_nested(value: &Value, path: &str, depth: usize) -> Result<(), ApiError> {
    match value {
        Value::Object(map) => {
            if depth >= MAX_OBJECT_DEPTH {
                return Err(invalid(format!(
                    "`{path}` nests objects deeper than {MAX_OBJECT_DEPTH} levels"
                )));
            }
            for (key, item) in map {
                check_nested(item, &format!("{path}.{key}"), depth + 1)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_nested(item, &format!("{path}[{i}]"), depth)?;
            }
        }
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            return Err(invalid(format!(
                "`{path}` is a string longer than {MAX_TEXT} characters"
            )));
        }
        Value::Number(n) => {
            let mut out = String::new();
            if let Err(e) =
                faramesh_core::json::write_canonical(&mut out, &Value::Number(n.clone()))
            {
                return Err(invalid(format!("`{path}`: {e}")));
            }
        }
        _ => {}
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, Submission};
    use serde_json::json;

    fn action_request(body: serde_json::Value) -> Result<Submission, ApiError> {
        let text = serde_json::value::RawValue::from_string(body.to_string()).unwrap();
        super::action_request(&text)
    }

    fn detail(body: serde_json::Value) -> String {
        action_request(body).unwrap_err().to_string()
    }

    #[test]
    fn every_refusal_names_its_field() {
        let ok = json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}});
        assert!(action_request(ok).is_ok());
        assert!(detail(json!({"tool": "t", "operation": "o", "params": {}}))
            .contains("`agent_id` is required"));
        assert!(
            detail(json!({"agent_id": " ", "tool": "t", "operation": "o", "params": {}}))
                .contains("`agent_id` must not be empty")
        );
        assert!(
            detail(json!({"agent_id": "a", "tool": 5, "operation": "o", "params": {}}))
                .contains("`tool` must be a string")
        );
        assert!(
            detail(json!({"agent_id": "a", "tool": "t", "operation": "o\u{0}", "params": {}}))
                .contains("NUL")
        );
        assert!(
            detail(json!({"agent_id": "a", "tool": "t", "operation": "o", "params": []}))
                .contains("`params` must be an object")
        );
        assert!(detail(
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}, "context": 1})
        )
        .contains("`context` must be an object"));
        assert!(detail(
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}, "extra": 1})
        )
        .contains("Unknown field `extra`"));
        let deep = (0..11).fold(json!(1), |v, _| json!({"k": v}));
        assert!(
            detail(json!({"agent_id": "a", "tool": "t", "operation": "o", "params": deep}))
                .contains("deeper than 10")
        );
        let long = "x".repeat(10_001);
        assert!(detail(
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {"s": long}})
        )
        .contains("`params.s` is a string longer"));
    }

    #[test]
    fn null_context_is_empty() {
        let a = action_request(
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}, "context": null}),
        )
        .unwrap();
        assert!(a.context.map().is_empty());
        assert_eq!(a.context.text(), "{}");
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        let refused = |body: &str| {
            let text = serde_json::value::RawValue::from_string(body.to_owned()).unwrap();
            super::action_request(&text).unwrap_err().to_string()
        };
        let head = r#"{"agent_id": "a", "tool": "t", "operation": "o", "#;
        assert!(refused(&format!(r#"{head}"params": {{"x": 1, "x": 2}}}}"#))
            .contains("Key `x` appears more than once in the same object (at `params.x`)"));
        assert!(refused(&format!(
            r#"{head}"params": {{"a": [{{"y": 1, "y": 1}}]}}}}"#
        ))
        .contains("(at `params.a[0].y`)"));
        assert!(
            refused(&format!(r#"{head}"params": {{}}, "params": {{}}}}"#))
                .contains("(at `params`)")
        );
    }
}
