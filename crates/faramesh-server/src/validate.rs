//! Request bodies checked field by field (docs/api.md), so every refusal names the field.

use crate::error::ApiError;
use faramesh_core::ActionRequest;
use serde_json::{Map, Value};

const MAX_TEXT: usize = 10_000;
const MAX_PARAMS_BYTES: usize = 100_000;
const MAX_OBJECT_DEPTH: usize = 10;
const SUBMIT_FIELDS: &[&str] = &["agent_id", "tool", "operation", "params", "context"];

fn invalid(detail: String) -> ApiError {
    ApiError::Validation(detail)
}

/// The body of `POST /v1/actions` and `POST /v1/gate/decide`.
pub fn action_request(body: Value) -> Result<ActionRequest, ApiError> {
    let Value::Object(mut map) = body else {
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
    let params = match map.remove("params") {
        Some(Value::Object(params)) => params,
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
    let context = match map.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(context)) => context,
        Some(other) => {
            return Err(invalid(format!(
                "`context` must be an object, not {}",
                kind(&other)
            )))
        }
    };
    check_params(&params)?;
    if tool == "http" {
        // The executor sends the operation's method; params that say otherwise would show a
        // reviewer (or a rule on params) one request while another is decided.
        faramesh_executors::check_http_params(&operation, &params).map_err(invalid)?;
    }
    check_nested(&Value::Object(context.clone()), "context", 0)?;
    Ok(ActionRequest {
        agent_id,
        tool,
        operation,
        params,
        context,
    })
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
    use super::action_request;
    use serde_json::json;

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
        assert!(a.context.is_empty());
    }
}
