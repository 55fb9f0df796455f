//! Benchmarks of the decision hot path. `cargo xtask bench` runs them and prints the table
//! against the targets of the README's benchmark table.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use faramesh_core::hash::canonical_sha256;
use faramesh_core::{ActionRequest, Engine, Policy};
use serde_json::{json, Map, Value};
use std::hint::black_box;

fn action(tool: &str, operation: &str, params: Value) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object")
    };
    ActionRequest {
        agent_id: "bench-agent".into(),
        tool: tool.into(),
        operation: operation.into(),
        params,
        context: Map::new(),
    }
}

fn default_policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default.yaml");
    let text = std::fs::read_to_string(path).expect("policies/default.yaml is readable");
    Policy::parse("default.yaml", &text).expect("the default policy is valid")
}

/// 1,000 rules: 900 for distinct tools and, every tenth rule, one for any tool whose extra
/// condition fails, so a decision must pass every wildcard rule before its own near the end.
pub fn thousand_rule_policy() -> String {
    let mut text = String::from("rules:\n");
    for i in 0..1000 {
        if i % 10 == 5 {
            if i % 20 == 5 {
                text.push_str(&format!(
                    "  - match: {{tool: \"*\", op: \"*\", amount_gt: {}}}\n    deny: true\n",
                    1_000_000 + i
                ));
            } else {
                text.push_str(&format!("  - match: {{tool: \"*\", path_starts_with: \"/forbidden/{i}\"}}\n    deny: true\n"));
            }
        } else {
            text.push_str(&format!(
                "  - match: {{tool: \"tool_{i}\", op: \"run\", contains: \"target\"}}\n    allow: true\n    description: \"rule {i}\"\n"
            ));
        }
    }
    text
}

/// A params object of about 1 KiB with nested objects, arrays, numbers and text.
fn params_1kib() -> Value {
    let mut items = Vec::new();
    for i in 0..10 {
        items.push(json!({"id": i, "name": format!("item-{i}"), "price": 12.5 + f64::from(i), "tags": ["a", "b"], "ok": i % 2 == 0}));
    }
    let value = json!({
        "url": "https://api.example.com/v1/orders?customer=cus_123&limit=100",
        "method": "POST",
        "headers": {"content-type": "application/json", "x-request-id": "9f1c2e7a-55b1-4f0e-9d3a-0c6d2b8e4f11"},
        "body": {"customer": "cus_123", "currency": "usd", "amount": 1234.56, "items": items, "note": "deliver to the back door, ring twice"},
    });
    let size = serde_json::to_string(&value).map(|s| s.len()).unwrap_or(0);
    assert!(
        (900..1200).contains(&size),
        "params are about 1 KiB, not {size} bytes"
    );
    value
}

fn benches(c: &mut Criterion) {
    let engine = Engine::new(Some(default_policy()), "bench");
    let shell = action("shell", "run", json!({"cmd": "ls -la /tmp"}));
    assert_eq!(
        engine.decide(&shell).reason_code.as_ref(),
        "POLICY_REQUIRE_APPROVAL"
    );
    c.bench_function("decide_default_policy", |b| {
        b.iter(|| engine.decide(black_box(&shell)))
    });

    let big =
        Policy::parse("thousand.yaml", &thousand_rule_policy()).expect("generated policy is valid");
    assert_eq!(big.rules().len(), 1000);
    let engine = Engine::new(Some(big), "bench");
    let near_end = action(
        "tool_998",
        "run",
        json!({"cmd": "target", "path": "/tmp/x", "amount": 10}),
    );
    let d = engine.decide(&near_end);
    assert_eq!(
        &*d.reason, "rule 998",
        "the action must be decided by the rule near the end"
    );
    c.bench_function("decide_1000_rules_match_at_end", |b| {
        b.iter(|| engine.decide(black_box(&near_end)))
    });

    // A refund checked by an expression over params and context, as a policy would write it.
    let cel = Policy::parse(
        "cel.yaml",
        "rules:\n  - match:\n      tool: stripe\n      op: refund\n      when: \"params.amount <= 5000 && context.env in ['staging', 'dev'] && params.reason.startsWith('customer')\"\n    allow: true\n",
    )
    .expect("the expression policy is valid");
    let engine = Engine::new(Some(cel), "bench");
    let mut refund = action(
        "stripe",
        "refund",
        json!({"amount": 1200, "currency": "usd", "charge": "ch_3NkX", "reason": "customer request"}),
    );
    refund.context = json!({"env": "staging", "ticket": 4711})
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(engine.decide(&refund).reason_code.as_ref(), "POLICY_ALLOW");
    c.bench_function("decide_with_cel_condition", |b| {
        b.iter(|| engine.decide(black_box(&refund)))
    });

    let params = params_1kib();
    c.bench_function("canonicalize_hash_1kib", |b| {
        b.iter(|| canonical_sha256(black_box(&params)))
    });
}

criterion_group!(core, benches);
criterion_main!(core);
