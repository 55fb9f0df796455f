//! A shadow policy against the real binary: every submission is decided with the candidate
//! too, its disagreements are recorded, counted and reported, and no outcome changes.

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

const ACTIVE: &str = r#"rules:
  - match: {tool: http, op: get}
    allow: true
  - match: {tool: shell, op: run}
    require_approval: true
"#;

/// Stricter: only GitHub's API may be read, and no shell at all.
const CANDIDATE: &str = r#"rules:
  - match: {tool: http, op: get, url_host: [api.github.com]}
    allow: true
  - match: {tool: http, op: get}
    deny: true
    description: Only the GitHub API may be read
  - match: {tool: shell, op: run}
    deny: true
    description: No shell
"#;

#[test]
fn a_stricter_candidate_changes_no_outcome_and_every_disagreement_is_reported() {
    let files = tempfile::TempDir::new().unwrap();
    let candidate = files.path().join("candidate.yaml");
    std::fs::write(&candidate, CANDIDATE).unwrap();
    let server = Faramesh::start(
        ACTIVE,
        None,
        &[("FARAMESH_SHADOW_POLICY", candidate.to_str().unwrap())],
    );
    let github = server.submit(
        ADMIN,
        "http",
        "get",
        json!({"url": "https://api.github.com/repos"}),
    );
    let elsewhere = server.submit(ADMIN, "http", "get", json!({"url": "https://example.com/"}));
    let shell = server.submit(ADMIN, "shell", "run", json!({"cmd": "ls"}));

    // The active policy alone decides.
    assert_eq!(github["status"], "allowed");
    assert_eq!(elsewhere["status"], "allowed");
    assert_eq!(shell["status"], "pending_approval");
    // What the candidate would have done is kept with the action and its decision.
    assert!(github["reason_details"].get("shadow").is_none(), "{github}");
    let shadow = &elsewhere["reason_details"]["shadow"];
    assert_eq!(shadow["outcome"], "HALT");
    assert_eq!(shadow["reason_code"], "POLICY_DENY");
    assert_eq!(shadow["reason"], "Only the GitHub API may be read");
    let events = server.events(elsewhere["id"].as_str().unwrap());
    let decided = events
        .iter()
        .find(|e| e["event_type"] == "decision_made")
        .unwrap();
    assert_eq!(decided["meta"]["shadow"], *shadow);
    server
        .cli(ADMIN)
        .args(["verify-log", elsewhere["id"].as_str().unwrap()])
        .assert()
        .success();

    let (status, info) = server.call("GET", "/v1/policy/info", ADMIN, None);
    assert_eq!(status, 200);
    let hash = info["shadow_policy"]["policy_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(info["shadow_policy"]["file"], "candidate.yaml");

    let (status, report) = server.call("GET", "/v1/policy/shadow", ADMIN, None);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["decided_since_loaded"], 3);
    assert_eq!(report["disagreed_since_loaded"], 2);
    let pairs: Vec<(String, String, u64)> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["active"].as_str().unwrap().to_owned(),
                p["shadow"].as_str().unwrap().to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("ABSTAIN".to_owned(), "HALT".to_owned(), 1),
            ("EXECUTE".to_owned(), "HALT".to_owned(), 1)
        ]
    );
    assert_eq!(report["latest"][0]["action_id"], shell["id"]);
    assert_eq!(report["latest"][0]["shadow_reason"], "No shell");

    server
        .cli(ADMIN)
        .args(["policy", "shadow-report"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Shadow policy candidate.yaml ("))
        .stdout(predicate::str::contains(
            "3 submission(s) decided since it was loaded, 2 decided otherwise",
        ))
        .stdout(predicate::str::contains("No shell"));
    let json: Value = serde_json::from_slice(
        &server
            .cli(ADMIN)
            .args(["policy", "shadow-report", "--json", "--policy-hash", &hash])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["pairs"].as_array().unwrap().len(), 2);

    let metrics = server.text("/metrics");
    assert!(
        metrics.contains(r#"faramesh_shadow_decisions_total{active="EXECUTE",agreement="disagree",shadow="HALT"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"faramesh_shadow_decisions_total{active="EXECUTE",agreement="agree",shadow="EXECUTE"} 1"#
    ));
}

#[test]
fn without_a_shadow_policy_the_report_says_how_to_start_one() {
    let server = Faramesh::start(ACTIVE, None, &[]);
    server
        .cli(ADMIN)
        .args(["policy", "shadow-report"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--shadow-policy FILE"));
}

#[test]
fn an_invalid_shadow_policy_stops_the_start() {
    let files = tempfile::TempDir::new().unwrap();
    let candidate = files.path().join("candidate.yaml");
    std::fs::write(
        &candidate,
        "rules:\n  - match: {tol: http}\n    allow: true\n",
    )
    .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), ACTIVE).unwrap();
    assert_cmd::Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "serve",
            "--port",
            "0",
            "--no-profile",
            "--policy",
            "policy.yaml",
            "--db",
            "a.db",
            "--shadow-policy",
        ])
        .arg(&candidate)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("candidate.yaml:2:"))
        .stderr(predicate::str::contains("unknown condition `tol`"));
}
