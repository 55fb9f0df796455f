//! A database file deleted or replaced under a running server: nothing is acknowledged that
//! would be lost, `/ready` says so, and the server stays up.

use serde_json::{json, Value};

mod common;
use common::serve;

async fn submit(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client
        .post(format!("{url}/v1/actions"))
        .json(&json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {"url": "https://example.com/"}}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ready(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client
        .get(format!("{url}/ready"))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asserts that writes and readiness are refused with a detail naming `file`.
async fn assert_refused(client: &reqwest::Client, url: &str, file: &str) {
    let (status, body) = ready(client, url).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(file) && detail.contains("deleted or replaced"),
        "{body}"
    );
    for _ in 0..3 {
        let (status, body) = submit(client, url).await;
        assert_eq!(
            status, 503,
            "a write into a lost file must not be acknowledged: {body}"
        );
    }
    let health = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server stays up");
}

#[tokio::test]
async fn a_deleted_database_refuses_writes_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = serve(dir.path());
    let client = reqwest::Client::new();
    let (status, _) = submit(&client, &url).await;
    assert_eq!(status, 200);
    assert_eq!(ready(&client, &url).await.0, 200);

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("actions.db{suffix}")));
    }
    assert_refused(&client, &url, "actions.db").await;
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn a_replaced_database_or_log_refuses_writes_and_readiness() {
    for file in ["actions.db", "actions.db-wal"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut server, url) = serve(dir.path());
        let client = reqwest::Client::new();
        assert_eq!(submit(&client, &url).await.0, 200);
        // A copy moved over the original: same content, another file.
        let path = dir.path().join(file);
        let copy = dir.path().join("copy");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert_refused(&client, &url, file).await;
        let _ = server.kill();
        let _ = server.wait();
    }
}
