//! Decision paths beyond the reference vectors: failures are HALT, profiles gate first,
//! hostile input stays cheap.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::{
    ActionRequest, DecidedBy, Engine, Outcome, Policy, Profile, ProfileState, RiskLevel,
};
use serde_json::{json, Value};

fn action(tool: &str, op: &str, params: Value) -> ActionRequest {
    serde_json::from_value(
        json!({"agent_id": "a", "tool": tool, "operation": op, "params": params}),
    )
    .unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::parse("p.yaml", text).unwrap_or_else(|r| panic!("{r}"))
}

const ALLOW_ALL: &str = "rules:\n  - match: {tool: \"*\", op: \"*\"}\n    allow: true\n";

#[test]
fn without_a_policy_everything_halts_with_missing_policy() {
    let d = Engine::new(None, "1").decide(&action("http", "get", json!({})));
    assert_eq!(
        (d.outcome, &*d.reason_code, d.risk_level),
        (Outcome::Halt, "MISSING_POLICY", RiskLevel::High)
    );
    assert!(d.request_hash.is_some() && d.policy_hash.is_none());
}

#[test]
fn a_profile_that_failed_to_load_halts_everything() {
    let engine = Engine::new(Some(policy(ALLOW_ALL)), "1")
        .with_profile(ProfileState::Failed("bad yaml".into()));
    let d = engine.decide(&action("http", "get", json!({})));
    assert_eq!(
        (d.outcome, &*d.reason_code),
        (Outcome::Halt, "PROFILE_LOAD_ERROR")
    );
    assert!(d.reason.contains("bad yaml"));
}

#[test]
fn an_action_without_canonical_form_halts_with_internal_error() {
    let params: Value = serde_json::from_str(r#"{"amount": 1e400}"#).unwrap();
    let d = Engine::new(Some(policy(ALLOW_ALL)), "1").decide(&action("pay", "send", params));
    assert_eq!(
        (d.outcome, &*d.reason_code, d.decided_by.clone()),
        (Outcome::Halt, "INTERNAL_ERROR", DecidedBy::Failure)
    );
    assert_eq!(d.request_hash, None);
}

#[test]
fn required_approval_token_is_checked_after_profile_rules() {
    let profile = Profile::parse(
        "profile.yaml",
        "id: p\nversion: \"2\"\nallowed_tools: [http, shell]\nrules:\n  - name: shell_needs_human\n    when: {tool: shell}\n    outcome: ABSTAIN\n    reason_code: PROFILE_SHELL\nrequired_controls:\n  approval_token: true\n",
    )
    .unwrap();
    let engine = Engine::new(Some(policy(ALLOW_ALL)), "1")
        .with_profile(ProfileState::Loaded(Box::new(profile)));

    let d = engine.decide(&action("http", "get", json!({})));
    assert_eq!(
        (d.outcome, &*d.reason_code),
        (Outcome::Halt, "PROFILE_MISSING_REQUIRED_CONTROL")
    );

    let with_token: ActionRequest = serde_json::from_value(
        json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {}, "context": {"approval_token": "t-1"}}),
    )
    .unwrap();
    let d = engine.decide(&with_token);
    assert_eq!(
        (d.outcome, &*d.reason_code),
        (Outcome::Execute, "POLICY_ALLOW")
    );
    assert_eq!(
        (d.profile_id.as_deref(), d.profile_version.as_deref()),
        (Some("p"), Some("2"))
    );

    let d = engine.decide(&action("shell", "run", json!({})));
    assert_eq!(
        (d.outcome, &*d.reason_code, &*d.reason),
        (Outcome::Abstain, "PROFILE_SHELL", "shell_needs_human")
    );
}

#[test]
fn an_allow_meeting_high_risk_waits_for_a_human_unless_the_rule_sets_its_risk() {
    let engine = Engine::new(
        Some(policy(
            "rules:\n  - match: {tool: shell}\n    allow: true\n  - match: {tool: http}\n    allow: true\n    risk: low\nrisk:\n  rules:\n    - name: everything_is_high\n      when: {tool: \"*\"}\n      risk_level: high\n",
        )),
        "1",
    );
    let d = engine.decide(&action("shell", "run", json!({})));
    assert_eq!(
        (d.outcome, &*d.reason),
        (
            Outcome::Abstain,
            "Allowed by policy rule (high risk requires approval)"
        )
    );
    assert_eq!(d.risk_rule.as_deref(), Some("everything_is_high"));
    let d = engine.decide(&action("http", "get", json!({})));
    assert_eq!(
        (d.outcome, d.risk_level),
        (Outcome::Execute, RiskLevel::Low)
    );
}

#[test]
fn hostile_regex_and_input_are_decided_normally() {
    // Exponential with a backtracking engine; linear with the one the policy uses.
    let engine = Engine::new(
        Some(policy(
            "rules:\n  - match: {tool: t, pattern: \"^(a+)+$\"}\n    deny: true\n",
        )),
        "1",
    );
    let d = engine.decide(&action(
        "t",
        "o",
        json!({"x": format!("{}!", "a".repeat(100_000))}),
    ));
    assert_eq!(&*d.reason_code, "DEFAULT_DENY_NO_MATCH");
}

#[test]
fn decisions_are_deterministic_field_for_field() {
    let engine = Engine::new(Some(policy(ALLOW_ALL)), "1").with_policy_version(Some("v7"));
    let a = action("http", "get", json!({"b": 1, "a": [1.0, "x"]}));
    let (d1, d2) = (engine.decide(&a), engine.decide(&a));
    assert_eq!(d1, d2);
    assert_eq!(d1.policy_version.as_deref(), Some("v7"));
}

#[test]
fn key_order_does_not_change_the_request_hash() {
    let engine = Engine::new(Some(policy(ALLOW_ALL)), "1");
    let a = engine.decide(&action(
        "h",
        "g",
        serde_json::from_str(r#"{"a":1,"b":{"y":2,"x":3}}"#).unwrap(),
    ));
    let b = engine.decide(&action(
        "h",
        "g",
        serde_json::from_str(r#"{"b":{"x":3,"y":2},"a":1.0}"#).unwrap(),
    ));
    assert_eq!(a.request_hash, b.request_hash);
}

#[test]
fn policy_hash_ignores_formatting_and_comments() {
    let a = policy("rules:\n  - match: {tool: a, op: b}\n    allow: true\n");
    let b = policy("# note\nrules:\n- allow: true\n  match:\n    op: \"b\"\n    tool: 'a'\n");
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.default_version(), format!("p.yaml@{}", &a.hash()[..12]));
}

#[test]
fn a_rule_behind_a_catch_all_is_reported_unreachable() {
    let p = policy("rules:\n  - match: {tool: \"*\", op: \"*\"}\n    deny: true\n  - match: {tool: http}\n    allow: true\n");
    let w = p.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].code.as_str(), w[0].line), ("unreachable-rule", 4));
}

#[test]
fn profile_problems_are_all_reported() {
    let report = Profile::parse(
        "p.yaml",
        "id: 1\nallowed_tools: shell\nrules:\n  - when: {}\n    outcome: STOP\n",
    )
    .unwrap_err();
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "not-text",
            "missing-key",
            "not-a-list",
            "missing-key",
            "empty-match",
            "bad-outcome"
        ],
        "{report}"
    );
}
