//! Request bodies checked field by field (docs/api.md), so every refusal names the field.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::error::ApiError;
use faramesh_core::json::{DuplicateKey, ReceivedError, ReceivedObject};
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
/// and shown. Decisions read their parsed maps.
#[derive(Debug)]
pub struct Submission {
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub params: ReceivedObject,
    pub context: ReceivedObject,
}

impl Submission {
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

/// The top-level fields of a body, in order, each as its text: read in one pass, without
/// building values for params and context that are parsed once, from their text, anyway.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(SUBMIT_FIELDS.len());
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, text)| *text)
    }
}

/// The body of `POST /v1/actions` and `POST /v1/gate/decide`.
pub fn action_request(body: &RawValue) -> Result<Submission, ApiError> {
    let fields = match serde_json::from_str::<Fields>(body.get()) {
        Ok(fields) => fields,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(invalid(format!(
                "The body must be a JSON object with {}",
                SUBMIT_FIELDS.join(", ")
            )))
        }
        Err(e) => return Err(invalid(format!("The body is not valid JSON: {e}"))),
    };
    // Params and context are kept as their text. With a key given twice, the parsed map would
    // keep one value while the text shows both: what is decided would not be what is shown.
    // Keys inside params and context are checked as they are read.
    for (i, (key, _)) in fields.0.iter().enumerate() {
        if fields.0.iter().take(i).any(|(seen, _)| seen == key) {
            return Err(duplicate_key(&DuplicateKey {
                key: key.clone(),
                path: key.clone(),
            }));
        }
    }
    if let Some((unknown, _)) = fields
        .0
        .iter()
        .find(|(key, _)| !SUBMIT_FIELDS.contains(&key.as_str()))
    {
        return Err(invalid(format!(
            "Unknown field `{unknown}`; allowed fields are {}",
            SUBMIT_FIELDS.join(", ")
        )));
    }
    let agent_id = identifier(fields.get("agent_id"), "agent_id")?;
    let tool = identifier(fields.get("tool"), "tool")?;
    let operation = identifier(fields.get("operation"), "operation")?;
    let params = match fields.get("params") {
        Some(text) => received(text, "params")?,
        None => {
            return Err(invalid(
                "`params` is required and must be an object (use {} for none)".to_owned(),
            ))
        }
    };
    let context = match fields.get("context") {
        // An absent or null context is the empty object.
        None => ReceivedObject::default(),
        Some(text) if text.get() == "null" => ReceivedObject::default(),
        Some(text) => received(text, "context")?,
    };
    let mut scratch = String::new();
    check_params(&params, &mut scratch)?;
    if tool == "http" {
        // The executor sends the operation's method; params that say otherwise would show a
        // reviewer (or a rule on params) one request while another is decided.
        faramesh_executors::check_http_params(&operation, params.map()).map_err(invalid)?;
    }
    check_object(context.map(), &Path::Field("context"), 0, &mut scratch)?;
    Ok(Submission {
        agent_id,
        tool,
        operation,
        params,
        context,
    })
}

/// `field`'s text as a received object, or the refusal naming what is wrong with it.
fn received(text: &RawValue, field: &str) -> Result<ReceivedObject, ApiError> {
    if !text.get().starts_with('{') {
        let value: Value = serde_json::from_str(text.get()).unwrap_or(Value::Null);
        return Err(invalid(format!(
            "`{field}` must be an object, not {}",
            kind(&value)
        )));
    }
    ReceivedObject::parse(text.get()).map_err(|e| match e {
        ReceivedError::DuplicateKey(d) => duplicate_key(&DuplicateKey {
            path: format!("{field}.{}", d.path),
            key: d.key,
        }),
        other => invalid(format!("`{field}`: {other}")),
    })
}

fn duplicate_key(d: &DuplicateKey) -> ApiError {
    invalid(format!(
        "Key `{}` appears more than once in the same object (at `{}`); give each key once",
        d.key, d.path
    ))
}

fn identifier(text: Option<&RawValue>, field: &str) -> Result<String, ApiError> {
    let value = text.map(|t| serde_json::from_str(t.get()).unwrap_or(Value::Null));
    match value {
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

fn check_params(params: &ReceivedObject, scratch: &mut String) -> Result<(), ApiError> {
    let size = params.text().len();
    if size > MAX_PARAMS_BYTES {
        return Err(invalid(format!(
            "`params` is {size} bytes as JSON; the limit is {MAX_PARAMS_BYTES}"
        )));
    }
    check_object(params.map(), &Path::Field("params"), 0, scratch)
}

/// Where a value is, written out only for a refusal (`params.a[2].b`): checking a valid
/// request allocates nothing per key.
enum Path<'a> {
    Field(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Field(name) => f.write_str(name),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Objects nest at most ten levels deep, strings are at most 10,000 characters, and every
/// number has a canonical form (so the request can be hashed). `scratch` is reused for the
/// canonical form of each number.
fn check_object(
    map: &Map<String, Value>,
    path: &Path<'_>,
    depth: usize,
    scratch: &mut String,
) -> Result<(), ApiError> {
    if depth >= MAX_OBJECT_DEPTH {
        return Err(invalid(format!(
            "`{path}` nests objects deeper than {MAX_OBJECT_DEPTH} levels"
        )));
    }
    for (key, item) in map {
        check_value(item, &Path::Key(path, key), depth + 1, scratch)?;
    }
    Ok(())
}

fn check_value(
    value: &Value,
    path: &Path<'_>,
    depth: usize,
    scratch: &mut String,
) -> Result<(), ApiError> {
    match value {
        Value::Object(map) => check_object(map, path, depth, scratch)?,
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_value(item, &Path::Index(path, i), depth, scratch)?;
            }
        }
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            return Err(invalid(format!(
                "`{path}` is a string longer than {MAX_TEXT} characters"
            )));
        }
        Value::Number(_) => {
            scratch.clear();
            faramesh_core::json::write_canonical(scratch, value)
                .map_err(|e| invalid(format!("`{path}`: {e}")))?;
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
