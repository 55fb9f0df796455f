// The API tests' harness: a server on a socket and a database of its own, and requests to it.
// Included by each test file that drives the API, after it defines `POSTGRES` (the backend).

use faramesh_core::ledger::{verify_chain, ChainedEvent};
use faramesh_testkit as testkit;
use faramesh_server::{Backend, ServerConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use tempfile::TempDir;

struct Server {
    state: faramesh_server::AppState,
    base: String,
    client: reqwest::Client,
    dir: TempDir,
    /// Dropped (with its database) when the test ends.
    _postgres: Option<testkit::Database>,
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

async fn start_with(tokens: &[&str], policy: Option<&str>) -> Option<Server> {
    start_custom(tokens, policy, |_| {}).await
}

async fn start_custom(
    tokens: &[&str],
    policy: Option<&str>,
    adjust: impl FnOnce(&mut ServerConfig),
) -> Option<Server> {
    let dir = TempDir::new().unwrap();
    let mut postgres_database = None;
    let policy_file = match policy {
        Some(text) => {
            let path = dir.path().join("policy.yaml");
            std::fs::write(&path, text).unwrap();
            path
        }
        None => repo("policies/default.yaml"),
    };
    let mut config = ServerConfig::from_lookup(|_| None).unwrap();
    config.policy_file = policy_file;
    config.profile_file = dir.path().join("no-profile.yaml");
    config.backend = if POSTGRES {
        let (url, database) = testkit::fresh_postgres_database().await?;
        postgres_database = Some(database);
        // The signing key in the test's folder, not the working directory.
        config.log_key_file = Some(dir.path().join("log.key"));
        Backend::Postgres(url)
    } else {
        Backend::Sqlite(dir.path().join("data/actions.db"))
    };
    config.tokens = tokens.iter().map(|t| t.to_string()).collect();
    config.port = 0;
    adjust(&mut config);
    // The same start as `faramesh serve`: background work, the connection limits, all of it.
    let server = faramesh_server::Server::start(config)
        .await
        .expect("the server starts");
    let state = server.state().clone();
    let base = format!("http://{}", server.address());
    tokio::spawn(server.serve(std::future::pending()));
    Some(Server {
        state,
        base,
        client: reqwest::Client::new(),
        dir,
        _postgres: postgres_database,
    })
}

async fn start() -> Option<Server> {
    start_with(&[], None).await
}

impl Server {
    /// The Prometheus exposition text of `/metrics`.
    async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Submits an action of `agent-1`; the answer, whatever its status.
    async fn try_submit(&self, tool: &str, operation: &str, params: Value) -> (StatusCode, Value) {
        self.post(
            "/v1/actions",
            json!({"agent_id": "agent-1", "tool": tool, "operation": operation, "params": params}),
        )
        .await
    }

    /// Submits an action of `agent-1`, which must be answered with 200.
    async fn submit(&self, tool: &str, operation: &str, params: Value) -> Value {
        let (status, action) = self.try_submit(tool, operation, params).await;
        assert_eq!(status, StatusCode::OK, "{action}");
        action
    }
}

fn id(action: &Value) -> String {
    action["id"].as_str().expect("id").to_owned()
}

fn assert_chain_intact(events: &Value) {
    let list = events.as_array().expect("events array");
    let chained: Vec<ChainedEvent<'_>> = list
        .iter()
        .map(|e| ChainedEvent {
            id: e["id"].as_str().unwrap(),
            action_id: e["action_id"].as_str().unwrap(),
            event_type: e["event_type"].as_str().unwrap(),
            created_at: e["created_at"].as_str().unwrap(),
            meta: &e["meta"],
            prev_hash: e["prev_hash"].as_str(),
            record_hash: e["record_hash"].as_str().unwrap(),
        })
        .collect();
    assert_eq!(verify_chain(&chained), Ok(()));
}
