//! Policy, profile and test-case parsing on arbitrary text, then decisions on a policy that
//! parsed. None of it may panic: a parse error is a `Report`, and `Engine::decide` fails
//! closed. (libfuzzer-sys aborts on any panic, even one `decide` would catch.)
#![no_main]

use faramesh_core::{cases, ActionRequest, Engine, Policy, Profile};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fn action(tool: &str, operation: &str, params: Value) -> ActionRequest {
    let params = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    ActionRequest {
        agent_id: "fuzz-agent".to_owned(),
        tool: tool.to_owned(),
        operation: operation.to_owned(),
        params,
        context: Map::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Profile::parse("fuzz-profile.yaml", text);
    let _ = cases::parse("fuzz-cases.yaml", text);
    let Ok(policy) = Policy::parse("fuzz-policy.yaml", text) else {
        return;
    };
    let engine = Engine::new(Some(policy), "fuzz");
    let actions = [
        action("shell", "run", json!({"cmd": "rm -rf /"})),
        action(
            "http",
            "get",
            json!({"url": "https://example.com/a", "method": "GET", "amount": 1500.5}),
        ),
        action(
            "stripe",
            "refund",
            json!({"amount": "1000", "currency": "usd"}),
        ),
        action(
            "fs",
            "write",
            json!({"path": "/etc/passwd", "branch": "main", "query": {"kind": "drop"}}),
        ),
    ];
    for a in &actions {
        let first = engine.decide(a);
        let second = engine.decide(a);
        assert_eq!(first, second, "decide is not deterministic");
    }
});
