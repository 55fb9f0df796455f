//! An `allowed` action is decided again at `start` when the policy changed since its decision.

use crate::harness::{policy_file, Serve};
use serde_json::{json, Value};

const ALLOW_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    allow: true\n    risk: low\n    description: shell allowed\n";
const DENY_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    deny: true\n    description: shell is no longer allowed\n";
const APPROVE_SHELL: &str = "rules:\n  - match: {tool: shell, op: run}\n    require_approval: true\n    description: shell needs approval\n";
const ALLOW_SHELL_REWORDED: &str = "rules:\n  - match: {tool: shell, op: run}\n    allow: true\n    risk: low\n    description: shell still allowed\n";

fn shell(cmd: &str) -> Value {
    json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": cmd}})
}

#[tokio::test]
async fn an_allowed_action_does_not_start_after_the_policy_was_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), "policy.yaml", ALLOW_SHELL);
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        policy: Some(policy.clone()),
        ..Default::default()
    }
    .start(dir.path());
    let (_, first) = server.submit(shell("echo one")).await;
    let (_, second) = server.submit(shell("echo two")).await;
    assert_eq!(first["status"], "allowed");

    for (tightened, expected) in [(DENY_SHELL, "deny"), (APPROVE_SHELL, "require_approval")] {
        std::fs::write(&policy, tightened).unwrap();
        let (status, _) = server.post("/v1/policy/reload", json!({})).await;
        assert_eq!(status, 200);
        let action = if expected == "deny" { &first } else { &second };
        let id = action["id"].as_str().unwrap();
        let (status, refused) = server
            .post(&format!("/v1/actions/{id}/start"), json!({}))
            .await;
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
    let policy = policy_file(dir.path(), "policy.yaml", ALLOW_SHELL);
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        policy: Some(policy.clone()),
        ..Default::default()
    }
    .start(dir.path());
    let (_, action) = server.submit(shell("echo hi")).await;
    let id = action["id"].as_str().unwrap();
    std::fs::write(&policy, ALLOW_SHELL_REWORDED).unwrap();
    server.post("/v1/policy/reload", json!({})).await;
    let (status, started) = server
        .post(&format!("/v1/actions/{id}/start"), json!({}))
        .await;
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
    let policy = policy_file(dir.path(), "policy.yaml", APPROVE_SHELL);
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        policy: Some(policy.clone()),
        ..Default::default()
    }
    .start(dir.path());
    let (_, action) = server.submit(shell("echo hi")).await;
    let id = action["id"].as_str().unwrap();
    let token = action["approval_token"].as_str().unwrap();
    server
        .post(
            &format!("/v1/actions/{id}/approval"),
            json!({"token": token, "approve": true}),
        )
        .await;
    std::fs::write(&policy, DENY_SHELL).unwrap();
    server.post("/v1/policy/reload", json!({})).await;
    let (status, started) = server
        .post(&format!("/v1/actions/{id}/start"), json!({}))
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "executing");
}
