//! An agent cannot overwrite the outcome of an action a built-in executor is running.

use crate::harness::Serve;
use serde_json::json;

#[tokio::test]
async fn a_reported_result_cannot_replace_the_shell_executors_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::default().start(dir.path());
    let (_, action) = server
        .submit(json!({"agent_id": "a", "tool": "shell", "operation": "run",
            "params": {"cmd": "sleep 1; exit 3"}}))
        .await;
    let id = server.approve(&action).await;
    let (status, started) = server.start(&id).await;
    assert_eq!(status, 200, "{started}");

    // The agent claims success while the command runs (or, on a slow machine, after it ended):
    // either way the claim is refused.
    let (status, refused) = server
        .post(
            &format!("/v1/actions/{id}/result"),
            json!({"success": true, "output": {"exit_code": 0}}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");

    let finished = server.wait_finished(&id).await;
    assert_eq!(finished["status"], "failed", "{finished}");
    assert_eq!(finished["result"]["exit_code"], 3, "{finished}");
    let (_, events) = server.get(&format!("/v1/actions/{id}/events")).await;
    let started = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "started")
        .unwrap();
    assert_eq!(started["meta"]["executor"], "shell");
}

#[tokio::test]
async fn without_a_built_in_executor_the_agent_reports_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        ..Default::default()
    }
    .start(dir.path());
    let (_, action) = server
        .submit(json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": "true"}}))
        .await;
    let id = server.approve(&action).await;
    let (status, _) = server.start(&id).await;
    assert_eq!(status, 200);
    let (status, done) = server
        .post(
            &format!("/v1/actions/{id}/result"),
            json!({"success": true}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "succeeded");
}
