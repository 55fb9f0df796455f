//! Rate limits and budgets against the real binary: exactly `max_calls` of a hundred
//! concurrent submissions get through, on SQLite and across three PostgreSQL replicas; a budget
//! never lets more through than it holds; `on_exceed: require_approval` sends the rest to a
//! human, whose approval counts; a limit decision replays from its recorded usage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod notify_support;

use notify_support::{Faramesh, ADMIN};
use predicates::prelude::*;
use serde_json::{json, Value};

const BURST: &str = r#"rules:
  - match: {tool: shell, op: run}
    allow: true
  - match: {tool: stripe, op: refund}
    allow: true
limits:
  - name: shell-burst
    match: {tool: shell}
    per: agent_id
    max_calls: 10
    window: 1h
    on_exceed: deny
  - name: refunds-daily
    match: {tool: stripe, op: refund}
    per: agent_id
    sum: params.amount
    max: 5000
    window: 24h
    on_exceed: require_approval
"#;

/// `n` submissions of `tool`/`op` at once, spread over `servers`, params from `params(i)`.
fn submit_at_once(
    servers: &[&Faramesh],
    n: usize,
    tool: &str,
    op: &str,
    params: impl Fn(usize) -> Value + Sync,
) -> Vec<Value> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let server = servers[i % servers.len()];
                let params = &params;
                scope.spawn(move || server.submit(ADMIN, tool, op, params(i)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn count(actions: &[Value], status: &str) -> usize {
    actions.iter().filter(|a| a["status"] == status).count()
}

fn check_exactly_ten_of_a_hundred(servers: &[&Faramesh]) {
    let actions = submit_at_once(
        servers,
        100,
        "shell",
        "run",
        |i| json!({"cmd": format!("echo {i}")}),
    );
    assert_eq!(
        count(&actions, "allowed"),
        10,
        "exactly max_calls get through"
    );
    assert_eq!(count(&actions, "denied"), 90);
    let limited = actions.iter().find(|a| a["status"] == "denied").unwrap();
    assert_eq!(limited["reason_code"], "LIMIT_EXCEEDED");
    assert_eq!(
        limited["reason"],
        "Limit shell-burst: 10 of 10 calls in 1h used (agent:agent-7)"
    );
    let limit = &limited["reason_details"]["limit"];
    assert_eq!(
        (
            limit["name"].as_str(),
            limit["used"].as_f64(),
            limit["max"].as_f64(),
            limit["window"].as_str()
        ),
        (Some("shell-burst"), Some(10.0), Some(10.0), Some("1h"))
    );
    let (status, limits) = servers[0].call("GET", "/v1/limits", ADMIN, None);
    assert_eq!(status, 200, "{limits}");
    let burst = &limits["limits"][0];
    assert_eq!(burst["name"], "shell-burst");
    assert_eq!(burst["usage"][0]["key"], "agent:agent-7");
    assert_eq!(burst["usage"][0]["calls"], 10);
}

#[test]
fn a_hundred_concurrent_submissions_let_exactly_max_calls_through() {
    let server = Faramesh::start(BURST, None, &[]);
    check_exactly_ten_of_a_hundred(&[&server]);
    // The limit decision replays from the usage it recorded, whatever the usage now.
    let (_, listed) = server.call("GET", "/v1/actions?status=denied&limit=1", ADMIN, None);
    let limited = listed[0]["id"].as_str().unwrap().to_owned();
    server
        .cli(ADMIN)
        .args(["replay-decision", &limited])
        .assert()
        .success()
        .stdout(predicate::str::contains("the decision replays identically"));
    let (_, listed) = server.call("GET", "/v1/actions?status=allowed&limit=1", ADMIN, None);
    server
        .cli(ADMIN)
        .args(["replay-decision", listed[0]["id"].as_str().unwrap()])
        .assert()
        .success();
    server
        .cli(ADMIN)
        .args(["explain", &limited])
        .assert()
        .success()
        .stdout(predicate::str::contains("LIMIT_EXCEEDED"));
}

#[test]
fn three_postgres_replicas_let_exactly_max_calls_through_together() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some((dsn, database)) = runtime.block_on(faramesh_testkit::fresh_postgres_database())
    else {
        return;
    };
    let env = [
        ("FARA_DB_BACKEND", "postgres"),
        ("FARA_POSTGRES_DSN", dsn.as_str()),
    ];
    let replicas = [
        Faramesh::start(BURST, None, &env),
        Faramesh::start(BURST, None, &env),
        Faramesh::start(BURST, None, &env),
    ];
    check_exactly_ten_of_a_hundred(&replicas.iter().collect::<Vec<_>>());
    drop(replicas);
    drop(database);
}

#[test]
fn a_budget_never_lets_more_through_and_the_rest_goes_to_a_human_whose_approval_counts() {
    let server = Faramesh::start(BURST, None, &[]);
    // Assorted amounts at once against a budget of 5000.
    let amounts: Vec<u64> = (0..40).map(|i| (i * 379) % 997 + 1).collect();
    let actions = submit_at_once(
        &[&server],
        amounts.len(),
        "stripe",
        "refund",
        |i| json!({"amount": amounts[i]}),
    );
    let allowed: u64 = actions
        .iter()
        .filter(|a| a["status"] == "allowed")
        .map(|a| a["params"]["amount"].as_u64().unwrap())
        .sum();
    assert!(allowed <= 5000, "{allowed} allowed against 5000");
    let waiting: Vec<&Value> = actions
        .iter()
        .filter(|a| a["status"] == "pending_approval")
        .collect();
    assert_eq!(
        count(&actions, "allowed") + waiting.len(),
        amounts.len(),
        "over the budget: a human decides"
    );
    assert!(waiting.iter().all(|a| a["reason_code"] == "LIMIT_EXCEEDED"));
    let used = |server: &Faramesh| {
        let (_, limits) = server.call("GET", "/v1/limits", ADMIN, None);
        limits["limits"][1]["usage"][0]["used"].as_f64().unwrap()
    };
    assert_eq!(used(&server), allowed as f64);
    // The human approves one: it counts.
    let approver = server.token("alice", "approver");
    let one = waiting[0];
    let (status, approved) = server.decide(one["id"].as_str().unwrap(), &approver, true);
    assert_eq!(
        (status, approved["status"].as_str()),
        (200, Some("approved"))
    );
    let amount = one["params"]["amount"].as_f64().unwrap();
    assert_eq!(used(&server), allowed as f64 + amount);
    // A refund without an amount cannot be counted: it goes to a human too (fail closed).
    let unknown = server.submit(ADMIN, "stripe", "refund", json!({"charge": "ch_1"}));
    assert_eq!(unknown["status"], "pending_approval");
    assert!(
        unknown["reason"]
            .as_str()
            .unwrap()
            .contains("cannot count this action: the action has no params.amount"),
        "{unknown}"
    );
}

#[test]
fn a_policy_with_a_broken_limit_is_refused_with_its_place() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "rules:\n  - match: {tool: t}\n    allow: true\nlimits:\n  - name: x\n    match: {tool: t}\n    max_calls: 5\n    window: soon\n    per: agnet_id\n",
    )
    .unwrap();
    assert_cmd::Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(dir.path())
        .args(["policy", "validate", "p.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "p.yaml:8:13: error: `window` must be a duration",
        ))
        .stdout(predicate::str::contains("(did you mean `agent_id`?)"));
}

#[test]
fn policy_validate_says_what_each_limit_and_expression_does() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert_cmd::Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(&root)
        .args(["policy", "validate", "policies/examples/limits.yaml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 limits"))
        .stdout(predicate::str::contains(
            "limit refunds-daily (line 36): params.amount summed, at most 5000 in any 24h, per agent_id, counted when allowed or approved; over it: a human decides",
        ));
    assert_cmd::Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(&root)
        .args(["policy", "validate", "policies/examples/expressions.yaml"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rule 3 (line 38) when \"params.attachments.exists(a, a.bytes > 10000000)\": a CEL expression over params; one that cannot be evaluated matches, so this rule applies (fail closed)",
        ));
}
