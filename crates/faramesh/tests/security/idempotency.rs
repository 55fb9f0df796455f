//! Idempotency keys belong to their caller: another token sending the same key gets an action
//! of its own, never the first caller's.

use crate::harness::Serve;
use serde_json::{json, Value};

async fn submit(server: &crate::harness::Server, token: &str, key: &str, cmd: &str) -> Value {
    let response = server
        .client()
        .post(format!("{}/v1/actions", server.url))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(
            &json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": cmd}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_same_key_from_another_token_is_another_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve {
        env: vec![
            ("FARAMESH_TOKEN", "root-one,root-two"),
            ("FARAMESH_EXECUTORS", "none"),
        ],
        ..Default::default()
    }
    .start(dir.path());
    let mut agents = Vec::new();
    for name in ["agent-a", "agent-b"] {
        let response = server
            .client()
            .post(format!("{}/v1/tokens", server.url))
            .bearer_auth("root-one")
            .json(&json!({"name": name, "role": "agent"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        agents.push(body["token"].as_str().unwrap().to_owned());
    }

    let first = submit(&server, &agents[0], "order-42", "echo a").await;
    // The same caller retrying gets its own action back.
    let retry = submit(&server, &agents[0], "order-42", "echo a").await;
    assert_eq!(retry["id"], first["id"]);
    // Another token guessing the key gets nothing of the first caller's: not its action, not
    // a conflict revealing that the key is in use.
    let same_body = submit(&server, &agents[1], "order-42", "echo a").await;
    assert_ne!(same_body["id"], first["id"]);
    let other_body = submit(&server, &agents[1], "order-43", "echo b").await;
    let first_43 = submit(&server, &agents[0], "order-43", "echo c").await;
    assert_ne!(first_43["id"], other_body["id"]);
    assert_eq!(first_43["params"]["cmd"], "echo c");
    // Two admin tokens are two callers too.
    let admin_one = submit(&server, "root-one", "k", "echo x").await;
    let admin_two = submit(&server, "root-two", "k", "echo x").await;
    assert_ne!(admin_one["id"], admin_two["id"]);
}
