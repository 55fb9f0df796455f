//! An `allowed` action is decided again at `start` when the policy changed since its decision.

use crate::harness::{policy_file, Serve, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const ALLOW_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    allow: true\n    risk: low\n    description: shell allowed\n";
const DENY_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    deny: true\n    description: shell is no longer allowed\n";
const APPROVE_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    require_approval: true\n    description: shell needs approval\n";
const ALLOW_SHELL_REWORDED: &str = "rules:\n  - match: {tool: shell, op: run}\n    allow: true\n    risk: low\n    description: shell still allowed\n";

/// A server without executors (nothing runs) on `policy`, whose file the test rewrites.
fn server_on(dir: &Path, policy: &str) -> (Server, PathBuf) {
    let file = policy_file(dir, "policy.yaml", policy);
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        policy: Some(file.clone()),
        ..Default::default()
    }
    .start(dir);
    (server, file)
}

/// Replaces the policy and reloads it.
async fn change_policy(server: &Server, file: &Path, policy: &str) {
    std::fs::write(file, policy).unwrap();
    let (status, answer) = server.post("/v1/policy/reload", json!({})).await;
    assert_eq!(status, 200, "{answer}");
}

fn shell(cmd: &str) -> Value {
    json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": cmd}})
}

#[tokio::test]
async fn an_allowed_action_does_not_start_after_the_policy_was_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let (server, policy) = server_on(dir.path(), ALLOW_SHELL);
    let (_, first) = server.submit(shell("echo one")).await;
    let (_, second) = server.submit(shell("echo two")).await;
    assert_eq!(first["status"], "allowed");

    for (tightened, expected) in [(DENY_SHELL, "deny"), (APPROVE_SHELL, "require_approval")] {
        change_policy(&server, &policy, tightened).await;
        let action = if expected == "deny" { &first } else { &second };
        let id = action["id"].as_str().unwrap();
        let (status, refused) = server.start(id).await;
        assert_eq!(status, 409, "{refused}");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("policy changed"),
            "{refused}"
        );
        let (_, now) = server.get(&format!("/v1/actions/{id}")).await;
        assert_eq!(now["status"], "denied", "{now}");
        let (_, events) = server.get(&format!("/v1/actions/{id}/events")).await;
        let last = events.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["event_type"], "denied", "{events}");
        assert_eq!(last["meta"]["by"], "policy");
        assert_eq!(last["meta"]["redecided"]["decision"], expected, "{last}");
    }
}

#[tokio::test]
async fn a_policy_change_that_still_allows_it_lets_it_start_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (server, policy) = server_on(dir.path(), ALLOW_SHELL);
    let (_, action) = server.submit(shell("echo hi")).await;
    let id = action["id"].as_str().unwrap();
    change_policy(&server, &policy, ALLOW_SHELL_REWORDED).await;
    let (status, started) = server.start(id).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "executing");
    let (_, events) = server.get(&format!("/v1/actions/{id}/events")).await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "started");
    assert_eq!(last["meta"]["redecided"]["outcome"], "EXECUTE", "{last}");
}

#[tokio::test]
async fn a_human_approval_survives_a_policy_change() {
    let dir = tempfile::tempdir().unwrap();
    let (server, policy) = server_on(dir.path(), APPROVE_SHELL);
    let (_, action) = server.submit(shell("echo hi")).await;
    let id = action["id"].as_str().unwrap();
    server.approve(&action).await;
    change_policy(&server, &policy, DENY_SHELL).await;
    let (status, started) = server.start(id).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "executing");
}
