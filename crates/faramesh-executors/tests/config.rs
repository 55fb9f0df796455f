#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
use std::time::Duration;

use faramesh_executors::{timeout_for, ExecutorKind, ExecutorSet};
use serde_json::{json, Map, Value};

fn context(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test context must be an object, got {other}"),
    }
}

const DEFAULT: Duration = Duration::from_secs(300);

#[test]
fn parse_single_executors() {
    let shell = ExecutorSet::parse("shell").expect("shell is valid");
    assert_eq!(shell.enabled(), vec![ExecutorKind::Shell]);
    let http = ExecutorSet::parse("http").expect("http is valid");
    assert_eq!(http.enabled(), vec![ExecutorKind::Http]);
}

#[test]
fn parse_lists_with_spaces_and_case() {
    let both = vec![ExecutorKind::Shell, ExecutorKind::Http];
    for text in [
        "shell,http",
        " shell , http ",
        "http,shell",
        "SHELL,Http",
        "shell,http,",
    ] {
        let set = ExecutorSet::parse(text).expect("valid list");
        assert_eq!(set.enabled(), both, "for {text:?}");
    }
}

#[test]
fn parse_none_and_empty_enable_nothing() {
    for text in ["none", " none ", "", "   "] {
        let set = ExecutorSet::parse(text).expect("valid");
        assert_eq!(set, ExecutorSet::none(), "for {text:?}");
        assert!(set.enabled().is_empty());
    }
}

#[test]
fn parse_unknown_names_the_entry_and_lists_valid_ones() {
    let err = ExecutorSet::parse("shell, python").expect_err("python is unknown");
    let text = err.to_string();
    assert!(text.contains("\"python\""), "{text}");
    for valid in ["shell", "http", "none"] {
        assert!(text.contains(valid), "{text} should list {valid}");
    }
}

#[test]
fn parse_rejects_none_combined_with_an_executor() {
    let err = ExecutorSet::parse("none,shell").expect_err("contradictory");
    assert!(err.to_string().contains("none"), "{err}");
}

#[test]
fn default_is_shell_only() {
    let set = ExecutorSet::default();
    assert_eq!(set.enabled(), vec![ExecutorKind::Shell]);
    assert_eq!(set.for_tool("shell"), Some(ExecutorKind::Shell));
    assert_eq!(set.for_tool("http"), None);
}

#[test]
fn for_tool_maps_only_enabled_executors() {
    let both = ExecutorSet::parse("shell,http").expect("valid");
    assert_eq!(both.for_tool("shell"), Some(ExecutorKind::Shell));
    assert_eq!(both.for_tool("http"), Some(ExecutorKind::Http));
    assert_eq!(both.for_tool("stripe"), None);
    assert_eq!(both.for_tool(""), None);

    let none = ExecutorSet::none();
    assert_eq!(none.for_tool("shell"), None);
    assert_eq!(none.for_tool("http"), None);
}

#[test]
fn timeout_absent_uses_default() {
    assert_eq!(timeout_for(&Map::new(), DEFAULT), DEFAULT);
    assert_eq!(
        timeout_for(&context(json!({"timeout": null})), DEFAULT),
        DEFAULT
    );
}

#[test]
fn timeout_number_replaces_default() {
    assert_eq!(
        timeout_for(&context(json!({"timeout": 10})), DEFAULT),
        Duration::from_secs(10)
    );
    assert_eq!(
        timeout_for(&context(json!({"timeout": 900})), DEFAULT),
        Duration::from_secs(900)
    );
    assert_eq!(
        timeout_for(&context(json!({"timeout": 0.5})), DEFAULT),
        Duration::from_millis(500)
    );
}

#[test]
fn timeout_numeric_string_replaces_default() {
    assert_eq!(
        timeout_for(&context(json!({"timeout": "42"})), DEFAULT),
        Duration::from_secs(42)
    );
    assert_eq!(
        timeout_for(&context(json!({"timeout": " 7 "})), DEFAULT),
        Duration::from_secs(7)
    );
}

#[test]
fn timeout_too_large_is_capped() {
    let cap = Duration::from_secs(3600);
    for value in [json!(3601), json!("100000"), json!(1e300), json!("1e400")] {
        assert_eq!(
            timeout_for(&context(json!({ "timeout": value })), DEFAULT),
            cap,
            "for {value}"
        );
    }
    assert_eq!(timeout_for(&Map::new(), Duration::from_secs(7200)), cap);
}

#[test]
fn timeout_invalid_falls_back_to_default() {
    for value in [
        json!(0),
        json!(-5),
        json!("0"),
        json!("-1"),
        json!("soon"),
        json!(""),
        json!("inf"),
        json!("NaN"),
        json!(true),
        json!([10]),
        json!({"seconds": 10}),
    ] {
        assert_eq!(
            timeout_for(&context(json!({ "timeout": value })), DEFAULT),
            DEFAULT,
            "for {value}"
        );
    }
}
