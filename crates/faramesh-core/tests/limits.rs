//! `limits:` in the policy language: what an action counts against which limit, the decision
//! a limit that bites gives, and how limits take part in the hash and in diffs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::policy::limits::OnExceed;
use faramesh_core::{ActionRequest, Engine, Outcome, Policy};
use serde_json::{json, Value};
use std::collections::HashMap;

const POLICY: &str = r#"
rules:
  - match: {tool: stripe, op: refund}
    allow: true
  - match: {tool: shell, op: run}
    require_approval: true
  - match: {tool: shell, op: rm}
    deny: true
limits:
  - name: refunds-daily
    match: {tool: stripe, op: refund}
    per: params.customer
    sum: params.amount
    max: 5000
    window: 24h
    on_exceed: require_approval
  - name: shell-burst
    match: {tool: shell}
    max_calls: 3
    window: 10m
"#;

fn act(tool: &str, op: &str, params: Value) -> ActionRequest {
    serde_json::from_value(
        json!({"agent_id": "bot", "tool": tool, "operation": op, "params": params}),
    )
    .unwrap()
}

fn usage(pairs: &[(&str, f64)]) -> HashMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn an_action_is_charged_by_every_limit_that_matches_it() {
    let policy = Policy::parse("p.yaml", POLICY).unwrap();
    let charges = policy.limit_charges(&act(
        "stripe",
        "refund",
        json!({"amount": 1200, "customer": "cus_1"}),
    ));
    assert_eq!(charges.len(), 1);
    let c = &charges[0];
    assert_eq!(
        (c.limit.as_str(), c.key.as_str(), c.amount, c.max),
        ("refunds-daily", "params.customer=\"cus_1\"", 1200.0, 5000.0)
    );
    assert_eq!(
        (c.window_seconds, c.on_exceed),
        (86_400, OnExceed::RequireApproval)
    );
    let shell = policy.limit_charges(&act("shell", "run", json!({})));
    assert_eq!((shell[0].key.as_str(), shell[0].amount), ("agent:bot", 1.0));
    // A budget's number that is missing, negative or not a number cannot be counted.
    for params in [
        json!({"customer": "c"}),
        json!({"amount": -5}),
        json!({"amount": "lots"}),
    ] {
        let c = &policy.limit_charges(&act("stripe", "refund", params.clone()))[0];
        assert!(c.unreadable.is_some(), "{params}");
        assert!(!c.fits(0.0), "{params}");
    }
}

#[test]
fn a_limit_that_bites_turns_the_decision_and_only_tightens() {
    let engine = Engine::new(Some(Policy::parse("p.yaml", POLICY).unwrap()), "test");
    let refund = act(
        "stripe",
        "refund",
        json!({"amount": 1200, "customer": "cus_1"}),
    );
    assert_eq!(
        engine.decide_at_usage(&refund, &usage(&[])).outcome,
        Outcome::Execute
    );
    assert_eq!(
        engine
            .decide_at_usage(&refund, &usage(&[("refunds-daily", 3800.0)]))
            .outcome,
        Outcome::Execute
    );
    let over = engine.decide_at_usage(&refund, &usage(&[("refunds-daily", 3801.0)]));
    assert_eq!(
        (over.outcome, over.reason_code.as_ref()),
        (Outcome::Abstain, "LIMIT_EXCEEDED")
    );
    assert_eq!(
        &*over.reason,
        "Limit refunds-daily: 3801 of 5000 used in 24h, and this action adds 1200 (params.customer=\"cus_1\")"
    );
    let limit = over.limit.unwrap();
    assert_eq!(
        (limit.used, limit.max, limit.window.as_str()),
        (3801.0, 5000.0, "24h")
    );
    // A rule's require_approval over a deny limit becomes a denial; a denial stays a denial.
    let shell = engine.decide_at_usage(
        &act("shell", "run", json!({})),
        &usage(&[("shell-burst", 3.0)]),
    );
    assert_eq!(
        (shell.outcome, &*shell.reason),
        (
            Outcome::Halt,
            "Limit shell-burst: 3 of 3 calls in 10m used (agent:bot)"
        )
    );
    assert!(shell.approval.is_none());
    let rm = engine.decide_at_usage(
        &act("shell", "rm", json!({})),
        &usage(&[("shell-burst", 3.0)]),
    );
    assert_eq!(rm.reason_code.as_ref(), "POLICY_DENY");
}

#[test]
fn limits_are_hashed_when_present_and_diffed_by_name() {
    let plain = "rules:\n  - match: {tool: t}\n    allow: true\n";
    let limited = format!("{plain}limits:\n  - name: burst\n    match: {{tool: t}}\n    max_calls: 5\n    window: 1h\n");
    let hash = |t: &str| Policy::parse("p.yaml", t).unwrap().hash().to_owned();
    assert_eq!(
        hash(plain),
        faramesh_core::hash::canonical_sha256(
            &json!({"rules": [{"match": {"tool": "t"}, "allow": true}], "risk_rules": []})
        )
        .unwrap()
    );
    assert_ne!(hash(plain), hash(&limited));
    let tighter = limited.replace("max_calls: 5", "max_calls: 3");
    let changes = faramesh_core::diff::diff(
        &Policy::parse("a.yaml", &limited).unwrap(),
        &Policy::parse("b.yaml", &tighter).unwrap(),
    );
    let shown = serde_json::to_value(&changes).unwrap();
    assert_eq!(shown[0]["section"], "limits");
    assert_eq!(shown[0]["change"], "changed");
    assert_eq!(shown[0]["fields"][0]["field"], "max_calls");
}

#[test]
fn mistakes_in_limits_are_refused_with_their_place() {
    let text = r#"rules: []
limits:
  - name: a
    match: {tool: t}
    max_calls: 5
    sum: params.amount
    window: 1h
  - name: b
    match: {tool: t}
    max_calls: -1
    window: 1h
    on_exceed: approve
  - name: b
    match: {tool: t}
    sum: amount
    max: 10
    window: 1h
"#;
    let report = Policy::parse("p.yaml", text).err().unwrap();
    let messages: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.code, d.message))
        .collect();
    let all = messages.join("\n");
    for expected in [
        "3:bad-limit a limit counts calls (`max_calls`) or sums a number (`sum` with `max`), one of the two",
        "`max_calls` must be a whole number",
        "`on_exceed` must be deny or require_approval, found \"approve\"",
        "does not say where the field is",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
}
