//! The HTTP API over a real socket, a real SQLite file and the shipped default policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

const POSTGRES: bool = false;
include!("api/server.rs");
include!("api/suite.rs");

// SQLite only: PostgreSQL connection loss is covered by the replica tests of the CLI crate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gets_503_and_the_server_recovers_by_itself() {
    let Some(s) = start().await else { return };
    // Another process takes the write lock and keeps it longer than the writer waits for it.
    let db = s.dir.path().join("data/actions.db");
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = s
        .post(
            "/v1/actions",
            json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("database") && detail.contains("locked"),
        "{detail}"
    );
    let (_, listed) = s.get("/v1/actions").await;
    assert_eq!(listed, json!([]), "nothing was stored, nothing allowed");

    other.execute_batch("ROLLBACK").unwrap();
    let action = s.submit("http", "get", json!({})).await;
    assert_eq!(action["status"], "allowed", "the next request works again");
}
