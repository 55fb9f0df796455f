//! The mapping form of `require_approval`: read into approval rules, validated with located
//! errors, and part of the policy hash; the seed's `true` form unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::policy::{ApprovalRule, Approver, OnTimeout};
use faramesh_core::Policy;

fn rule_with(approval: &str) -> String {
    format!("rules:\n  - match: {{tool: stripe, op: refund}}\n    require_approval:{approval}\n    description: Refunds need people\n")
}

#[test]
fn the_mapping_form_is_read_into_approval_rules() {
    let text = rule_with(
        "\n      approvers: 2\n      roles: [approver, \"token:alice\"]\n      timeout: 30m\n      on_timeout: escalate\n      notify: [payments-oncall]",
    );
    let policy = Policy::parse("p.yaml", &text).unwrap_or_else(|r| panic!("{r}"));
    let rule = &policy.rules()[0];
    assert_eq!(rule.effect, faramesh_core::policy::Effect::RequireApproval);
    assert_eq!(
        rule.approval.as_deref(),
        Some(&ApprovalRule {
            approvers: 2,
            roles: vec![
                Approver::Role("approver".into()),
                Approver::Token("alice".into())
            ],
            timeout_seconds: Some(1800),
            on_timeout: OnTimeout::Escalate,
            notify: vec!["payments-oncall".into()],
        })
    );
}

#[test]
fn the_seed_form_is_unchanged_and_the_mapping_form_is_hashed() {
    let seed = Policy::parse("p.yaml", &rule_with(" true")).unwrap();
    assert_eq!(seed.rules()[0].approval, None);
    let same_text_other_layout =
        "rules:\n- match: {op: refund, tool: stripe}\n  require_approval: true\n  description: Refunds need people\n";
    assert_eq!(
        seed.hash(),
        Policy::parse("p.yaml", same_text_other_layout)
            .unwrap()
            .hash()
    );
    let one = Policy::parse("p.yaml", &rule_with("\n      approvers: 1")).unwrap();
    let two = Policy::parse("p.yaml", &rule_with("\n      approvers: 2")).unwrap();
    assert_ne!(seed.hash(), one.hash());
    assert_ne!(
        one.hash(),
        two.hash(),
        "the requirements are part of policy_hash"
    );
    // Defaults: one approval by any approver or admin.
    assert_eq!(
        one.rules()[0].approval.as_deref(),
        Some(&ApprovalRule::default())
    );
}

#[test]
fn every_problem_of_the_mapping_form_is_located_and_named() {
    let cases: &[(&str, &str)] = &[
        (
            "\n      approvers: 0",
            "`approvers` must be a whole number from 1 to 100, found the number 0",
        ),
        (
            "\n      approvers: two",
            "`approvers` must be a whole number from 1 to 100",
        ),
        ("\n      roles: [agent]", "the agent role can never approve"),
        (
            "\n      roles: [aprover]",
            "\"aprover\" is not a role that approves (did you mean `approver`?)",
        ),
        ("\n      roles: approver", "`roles` must be a list"),
        ("\n      roles: [\"token:\"]", "`token:` needs a token name"),
        (
            "\n      timeout: soon",
            "`timeout` must be a duration such as 90s, 30m, 2h or 1d",
        ),
        ("\n      timeout: 0", "`timeout` must be a duration"),
        (
            "\n      on_timeout: escalte\n      timeout: 5m",
            "`on_timeout` must be deny or escalate, found \"escalte\" (did you mean `escalate`?)",
        ),
        (
            "\n      on_timeout: escalate",
            "`on_timeout: escalate` needs a `timeout`",
        ),
        (
            "\n      notify: payments",
            "`notify` must be a list of route names",
        ),
        (
            "\n      quorum: 2",
            "unknown key `quorum` in `require_approval`",
        ),
        (
            " [1]",
            "`require_approval` must be true, false or a mapping of approval rules",
        ),
    ];
    for (approval, expected) in cases {
        let report = Policy::parse("p.yaml", &rule_with(approval)).unwrap_err();
        let rendered = report.to_string();
        assert!(
            rendered.contains(expected),
            "{approval:?}: expected {expected:?} in\n{rendered}"
        );
        let d = &report.diagnostics[0];
        assert!(
            d.line >= 3,
            "{approval:?}: located at its value, line {}",
            d.line
        );
    }
    let report = Policy::parse("p.yaml", &rule_with("\n      approvers: 0")).unwrap_err();
    assert_eq!(report.diagnostics[0].code.as_str(), "bad-approval");
}

#[test]
fn a_decision_carries_the_approval_rules_of_the_rule_that_asked_for_approval() {
    use faramesh_core::{ActionRequest, Engine, Outcome};
    let text = rule_with("\n      approvers: 2\n      roles: [approver]")
        + "  - match: {tool: stripe, op: charge}\n    require_approval: true\n  - match: {tool: stripe, op: list}\n    allow: true\n";
    let engine = Engine::new(Some(Policy::parse("p.yaml", &text).unwrap()), "1");
    let decide = |op: &str| {
        let action: ActionRequest = serde_json::from_value(
            serde_json::json!({"agent_id": "a", "tool": "stripe", "operation": op, "params": {}}),
        )
        .unwrap();
        engine.decide(&action)
    };
    let refund = decide("refund");
    assert_eq!(refund.outcome, Outcome::Abstain);
    assert_eq!(refund.approval.as_deref().map(|a| a.approvers), Some(2));
    // The seed form, and anything not asking for approval, carry none.
    assert_eq!(decide("charge").approval, None);
    assert_eq!(decide("list").approval, None);
}
