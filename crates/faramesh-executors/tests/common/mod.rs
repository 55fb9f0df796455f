//! Helpers shared by the executor tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use faramesh_executors::{ExecOutcome, Limits};
use serde_json::{Map, Value};
use std::time::Duration;

pub fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test params must be an object, got {other}"),
    }
}

pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    }
}

pub fn succeeded(outcome: ExecOutcome) -> Value {
    match outcome {
        ExecOutcome::Succeeded { output } => output,
        other => panic!("expected Succeeded, got {other:?}"),
    }
}

pub fn failed(outcome: ExecOutcome) -> (String, Value) {
    match outcome {
        ExecOutcome::Failed { error, output } => (error, output),
        other => panic!("expected Failed, got {other:?}"),
    }
}

pub fn text<'a>(output: &'a Value, field: &str) -> &'a str {
    output[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} should be a string in {output}"))
}
