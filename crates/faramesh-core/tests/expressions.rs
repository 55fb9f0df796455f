//! `when:` expressions (CEL) in whole policies: a table of expressions and actions with the
//! decision each gives, problems refused at load, and failures at decision time that fail
//! closed both ways.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::{ActionRequest, Engine, Outcome, Policy, RiskLevel};
use serde_json::{json, Value};

fn engine(text: &str) -> Engine {
    let policy = Policy::parse("p.yaml", text).unwrap_or_else(|r| panic!("{r}"));
    Engine::new(Some(policy), "test")
}

fn act(tool: &str, op: &str, params: Value, context: Value) -> ActionRequest {
    serde_json::from_value(json!({
        "agent_id": "billing-bot", "tool": tool, "operation": op, "params": params, "context": context,
    }))
    .unwrap()
}

/// One rule that allows when `expression` holds, after which everything is denied.
fn allow_when(expression: &str) -> Engine {
    engine(&format!(
        "rules:\n  - match: {{tool: \"*\", op: \"*\", when: {}}}\n    allow: true\n",
        serde_json::to_string(expression).unwrap()
    ))
}

#[test]
fn expressions_decide_as_the_table_says() {
    let rows: &[(&str, Value, Value, Outcome)] = &[
        (
            "params.amount > 100",
            json!({"amount": 500}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.amount > 100",
            json!({"amount": 50}),
            json!({}),
            Outcome::Halt,
        ),
        // Numbers keep their kind: 100.5 is a double, compared with an int literal.
        (
            "params.amount > 100.0",
            json!({"amount": 100.5}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.amount <= 1000 && context.env == 'staging'",
            json!({"amount": 10}),
            json!({"env": "staging"}),
            Outcome::Execute,
        ),
        (
            "params.amount <= 1000 && context.env == 'staging'",
            json!({"amount": 10}),
            json!({"env": "prod"}),
            Outcome::Halt,
        ),
        (
            "tool == 'stripe' && operation == 'refund'",
            json!({}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "agent_id.startsWith('billing-')",
            json!({}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.cmd.startsWith('ls ') && !params.cmd.contains(';')",
            json!({"cmd": "ls -la"}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.cmd.startsWith('ls ') && !params.cmd.contains(';')",
            json!({"cmd": "ls; rm -rf /"}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "params.branch.matches('^feature/[a-z0-9-]+$')",
            json!({"branch": "feature/x-1"}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.branch.matches('^feature/[a-z0-9-]+$')",
            json!({"branch": "main"}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "params.recipients.all(r, r.endsWith('@example.com'))",
            json!({"recipients": ["a@example.com", "b@example.com"]}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.recipients.all(r, r.endsWith('@example.com'))",
            json!({"recipients": ["a@example.com", "x@evil.test"]}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "size(params.files) <= 3",
            json!({"files": [1, 2, 3]}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "size(params.files) <= 3",
            json!({"files": [1, 2, 3, 4]}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "has(params.dry_run) && params.dry_run == true",
            json!({"dry_run": true}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "has(params.dry_run) && params.dry_run == true",
            json!({}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "params.env in ['dev', 'staging']",
            json!({"env": "dev"}),
            json!({}),
            Outcome::Execute,
        ),
        (
            "params.env in ['dev', 'staging']",
            json!({"env": "prod"}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "params.items.exists(i, i.sku == 'GIFT' && i.qty > 2)",
            json!({"items": [{"sku": "A", "qty": 9}, {"sku": "GIFT", "qty": 3}]}),
            json!({}),
            Outcome::Execute,
        ),
        // A missing key, and a type mismatch, fail: an allow rule then does not match.
        ("params.amount > 100", json!({}), json!({}), Outcome::Halt),
        (
            "params.amount > 100",
            json!({"amount": "lots"}),
            json!({}),
            Outcome::Halt,
        ),
        (
            "params.amount",
            json!({"amount": 5}),
            json!({}),
            Outcome::Halt,
        ),
    ];
    for (expression, params, context, expected) in rows {
        let decision = allow_when(expression).decide(&act(
            "stripe",
            "refund",
            params.clone(),
            context.clone(),
        ));
        assert_eq!(
            decision.outcome, *expected,
            "{expression} with params {params} and context {context}: {}",
            decision.reason
        );
    }
}

#[test]
fn a_failed_expression_fails_closed_both_ways_and_the_decision_says_so() {
    let policy = r#"
rules:
  - match: {tool: stripe, op: refund, when: "params.amount > 10000"}
    deny: true
    description: Refunds over 10000 are denied
  - match: {tool: stripe, op: refund, when: "params.amount <= 100"}
    allow: true
    description: Small refunds
  - match: {tool: stripe, op: refund}
    require_approval: true
    description: Other refunds need a human
"#;
    let engine = engine(policy);
    // No amount: the deny rule's expression fails and counts as a match.
    let decision = engine.decide(&act(
        "stripe",
        "refund",
        json!({"charge": "ch_1"}),
        json!({}),
    ));
    assert_eq!(decision.outcome, Outcome::Halt);
    assert!(
        decision.reason.starts_with("Refunds over 10000 are denied (its `when` expression could not be evaluated, so the rule applies: No such key: amount)"),
        "{}",
        decision.reason
    );
    assert_eq!(decision.expression_failures.len(), 1);
    assert_eq!(decision.expression_failures[0].rule, "rule 1");
    assert!(decision.expression_failures[0].counted_as_match);

    // A text amount: the deny rule fails again (counted as a match); with the deny rule
    // gone, the allow rule's failure counts as no match and the human decides.
    let without_deny = r#"
rules:
  - match: {tool: stripe, op: refund, when: "params.amount <= 100"}
    allow: true
  - match: {tool: stripe, op: refund}
    require_approval: true
"#;
    let decision = self::engine(without_deny).decide(&act(
        "stripe",
        "refund",
        json!({"amount": "5"}),
        json!({}),
    ));
    assert_eq!(decision.outcome, Outcome::Abstain);
    assert_eq!(decision.expression_failures.len(), 1);
    assert!(!decision.expression_failures[0].counted_as_match);
    assert!(
        decision.expression_failures[0].error.contains("_<=_"),
        "{:?}",
        decision.expression_failures
    );

    // Expressions that evaluate say nothing.
    let decision = engine.decide(&act("stripe", "refund", json!({"amount": 50}), json!({})));
    assert_eq!(decision.outcome, Outcome::Execute);
    assert!(decision.expression_failures.is_empty());
}

#[test]
fn risk_rules_take_an_expression_and_a_failure_raises_the_risk() {
    let engine = engine(
        r#"
rules:
  - match: {tool: http, op: post}
    allow: true
risk:
  rules:
    - name: big-upload
      when: "size(params.body) > 1000"
      risk_level: high
"#,
    );
    let small = engine.decide(&act("http", "post", json!({"body": "hi"}), json!({})));
    assert_eq!(
        (small.outcome, small.risk_level),
        (Outcome::Execute, RiskLevel::Low)
    );
    let big = engine.decide(&act(
        "http",
        "post",
        json!({"body": "x".repeat(2000)}),
        json!({}),
    ));
    assert_eq!(
        (big.outcome, big.risk_level),
        (Outcome::Abstain, RiskLevel::High)
    );
    // No body: the size cannot be taken, and the risk rule counts as matching.
    let unknown = engine.decide(&act("http", "post", json!({}), json!({})));
    assert_eq!(unknown.risk_level, RiskLevel::High);
    assert_eq!(unknown.expression_failures[0].rule, "risk rule big-upload");
}

#[test]
fn work_over_the_cost_limit_is_a_failure_not_a_stall() {
    let engine = allow_when("params.a.all(x, params.b.exists(y, y == x))");
    let small = engine.decide(&act("t", "o", json!({"a": [1, 2], "b": [2, 1]}), json!({})));
    assert_eq!(small.outcome, Outcome::Execute);
    let long: Vec<u32> = (0..5000).collect();
    let big = engine.decide(&act("t", "o", json!({"a": long, "b": long}), json!({})));
    assert_eq!(big.outcome, Outcome::Halt);
    assert!(
        big.expression_failures[0].error.contains("over the limit"),
        "{:?}",
        big.expression_failures
    );
    // Only what the expression reads counts: a long list it never looks at costs nothing.
    let engine = allow_when("params.tags.exists(t, t == 'ok')");
    let unrelated = engine.decide(&act(
        "t",
        "o",
        json!({"tags": ["ok"], "blob": long}),
        json!({}),
    ));
    assert_eq!(
        unrelated.outcome,
        Outcome::Execute,
        "{:?}",
        unrelated.expression_failures
    );
    // A map used whole is converted whole.
    let whole = allow_when("size(params) == 2 && params.all(k, k in ['a', 'b'])");
    assert_eq!(
        whole
            .decide(&act("t", "o", json!({"a": 1, "b": 2}), json!({})))
            .outcome,
        Outcome::Execute
    );
    assert_eq!(
        whole
            .decide(&act("t", "o", json!({"a": 1, "c": 2}), json!({})))
            .outcome,
        Outcome::Halt
    );
}

#[test]
fn mistakes_are_refused_at_load_with_their_place() {
    let cases: &[(&str, &str)] = &[
        ("params.amount >", "is not valid CEL"),
        (
            "parms.amount > 1",
            "uses the unknown name `parms` (did you mean `params`?)",
        ),
        ("nosuch(params.x)", "calls the unknown function `nosuch`"),
        (
            "params.x.matches(params.y)",
            "takes a `matches` pattern that is not a literal string",
        ),
        (
            "params.x.matches('(')",
            "takes a `matches` pattern that does not compile",
        ),
        ("42", "is a constant that is not true or false"),
        (
            "params.a.all(x, params.b.all(y, params.c.all(z, z == x)))",
            "nests comprehensions (all, exists, map, filter) 3 deep",
        ),
    ];
    for (expression, expected) in cases {
        let text = format!(
            "rules:\n  - match: {{tool: t, when: {}}}\n    allow: true\n",
            serde_json::to_string(expression).unwrap()
        );
        let report = Policy::parse("p.yaml", &text)
            .err()
            .unwrap_or_else(|| panic!("{expression} was accepted"));
        let d = &report.diagnostics[0];
        assert_eq!(d.code, "bad-expression", "{expression}: {d:?}");
        assert!(d.message.contains(expected), "{expression}: {}", d.message);
        assert_eq!(d.line, 2, "{expression}");
    }
    let too_long = "true && ".repeat(600) + "true";
    let text = format!("rules:\n  - match: {{tool: t, when: \"{too_long}\"}}\n    allow: true\n");
    let report = Policy::parse("p.yaml", &text).err().unwrap();
    assert!(
        report.diagnostics[0]
            .message
            .contains("more than the limit"),
        "{}",
        report.diagnostics[0].message
    );
}

#[test]
fn a_policy_without_expressions_hashes_as_before_and_one_with_them_differently() {
    let plain = "rules:\n  - match: {tool: t}\n    allow: true\n";
    let with = "rules:\n  - match: {tool: t, when: \"params.a == 1\"}\n    allow: true\n";
    let hash = |t: &str| Policy::parse("p.yaml", t).unwrap().hash().to_owned();
    // The same rule as before the language had expressions.
    assert_eq!(
        hash(plain),
        faramesh_core::hash::canonical_sha256(
            &json!({"rules": [{"match": {"tool": "t"}, "allow": true}], "risk_rules": []})
        )
        .unwrap()
    );
    assert_ne!(hash(plain), hash(with));
}
