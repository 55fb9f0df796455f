//! What the MCP gateway's tests share: a Faramesh server with the test policy (and, for the
//! HTTP gateway, a servers file), and the official MCP clients driven by JSON scenarios
//! (tests/mcp/clients) through either way in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    reason = "a test stops at the first setup step or expectation that fails; each test file uses a part"
)]

use super::common;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const POLICY: &str = r#"rules:
  - match: {tool: toy, op: echo}
    allow: true
  - match: {tool: toy, op: write_file, path_starts_with: /etc}
    deny: true
    description: Nothing is written under /etc
  - match: {tool: toy, op: write_file}
    require_approval: true
    description: Writes need a human
  - match: {tool: toy, op: delete_repository}
    deny: true
  - match: {tool: toy, op: "*"}
    allow: true
  - match: {tool: everything, op: "*"}
    allow: true
"#;

/// Every bounded wait of these tests.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn python() -> PathBuf {
    repo().join("target/mcp-python-venv/bin/python")
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sdk {
    Python,
    TypeScript,
}

pub const BOTH: [Sdk; 2] = [Sdk::Python, Sdk::TypeScript];

/// A Faramesh server with the test policy, in a directory of its own.
pub struct Faramesh {
    pub dir: tempfile::TempDir,
    server: Child,
    pub url: String,
    /// The admin token, when the server was started with one.
    pub token: Option<String>,
}

impl Drop for Faramesh {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Faramesh {
    pub fn start() -> Faramesh {
        Faramesh::start_with(|_| None, &[])
    }

    /// With the servers file `servers` writes (given the server's directory), and extra
    /// environment.
    pub fn start_with(servers: impl Fn(&Path) -> Option<String>, env: &[(&str, &str)]) -> Faramesh {
        let setup = Command::new(repo().join("tests/mcp/setup"))
            .status()
            .expect("tests/mcp/setup runs");
        assert!(setup.success(), "tests/mcp/setup failed");
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY).unwrap();
        let mut flags = vec!["--policy".to_owned(), policy.display().to_string()];
        if let Some(text) = servers(dir.path()) {
            let file = dir.path().join("mcp.yaml");
            std::fs::write(&file, text).unwrap();
            flags.push("--mcp-config".into());
            flags.push(file.display().to_string());
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (server, url) = common::serve_with(dir.path(), env, &flags);
        let token = env
            .iter()
            .find(|(k, _)| *k == "FARAMESH_TOKEN")
            .map(|(_, v)| (*v).to_owned());
        Faramesh {
            dir,
            server,
            url,
            token,
        }
    }

    /// The servers file entry running the toy server, logging its calls to `<name>.calls`.
    pub fn toy_entry(dir: &Path, name: &str) -> String {
        format!(
            "  {name}:\n    command: {}\n    args: [{}]\n    env: {{TOY_CALL_LOG: {}}}\n",
            python().display(),
            repo().join("tests/mcp/servers/toy_server.py").display(),
            dir.join(format!("{name}.calls")).display()
        )
    }

    fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::new()
    }

    fn authorized(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Creates an API token with `role` and returns its secret.
    pub fn create_token(&self, name: &str, role: &str) -> String {
        let response = self
            .authorized(self.client().post(format!("{}/v1/tokens", self.url)))
            .json(&json!({"name": name, "role": role}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn calls_log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.calls"))
    }

    /// The tools/call requests the toy server received, from its log.
    pub fn calls(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.calls_log(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The wrapper around the toy server, as a client's configuration would launch it.
    pub fn wrapped_toy(&self, extra: &[&str]) -> Vec<String> {
        let faramesh = assert_cmd::cargo::cargo_bin("faramesh");
        let mut command = vec![
            faramesh.display().to_string(),
            "mcp".into(),
            "wrap".into(),
            "--name".into(),
            "toy".into(),
            "--url".into(),
            self.url.clone(),
        ];
        command.extend(extra.iter().map(|s| s.to_string()));
        command.push("--".into());
        command.push(python().display().to_string());
        command.push(
            repo()
                .join("tests/mcp/servers/toy_server.py")
                .display()
                .to_string(),
        );
        command
    }

    pub fn actions(&self) -> Vec<Value> {
        let body = self
            .authorized(
                self.client()
                    .get(format!("{}/v1/actions?limit=1000", self.url)),
            )
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap();
        body.as_array().unwrap().clone()
    }

    pub fn events(&self, id: &str) -> Vec<String> {
        let body = self
            .authorized(
                self.client()
                    .get(format!("{}/v1/actions/{id}/events", self.url)),
            )
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap();
        body.as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until an action that `wanted` accepts is pending approval, and returns it.
    pub fn pending_where(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .actions()
                .into_iter()
                .find(|a| a["status"] == "pending_approval" && wanted(a));
            if let Some(action) = found {
                return action;
            }
            assert!(Instant::now() < deadline, "no such pending action");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until an action of `operation` is pending approval, and returns it.
    pub fn pending(&self, operation: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .actions()
                .into_iter()
                .find(|a| a["operation"] == operation && a["status"] == "pending_approval");
            if let Some(action) = found {
                return action;
            }
            assert!(Instant::now() < deadline, "no pending {operation} action");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn decide(&self, action: &Value, approve: bool, reason: &str) {
        let response = reqwest::blocking::Client::new()
            .post(format!(
                "{}/v1/actions/{}/approval",
                self.url,
                action["id"].as_str().unwrap()
            ))
            .json(&json!({"token": action["approval_token"], "approve": approve, "reason": reason}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    }
}

/// How a client reaches the server: by launching a command (the wrapper) over stdio, or at a
/// Streamable HTTP URL with headers.
#[derive(Debug, Clone)]
pub enum Way {
    Stdio(Vec<String>),
    Http { url: String, headers: Vec<String> },
}

impl Way {
    fn args(&self) -> Vec<String> {
        match self {
            Way::Stdio(command) => {
                let mut args = vec!["--stdio".to_owned(), "--".to_owned()];
                args.extend(command.iter().cloned());
                args
            }
            Way::Http { url, headers } => {
                let mut args = vec!["--url".to_owned(), url.clone()];
                for header in headers {
                    args.push("--header".into());
                    args.push(header.clone());
                }
                args
            }
        }
    }
}

impl From<&Vec<String>> for Way {
    fn from(command: &Vec<String>) -> Way {
        Way::Stdio(command.clone())
    }
}

/// A client driver running a scenario; its stdout lines are the steps' results.
pub struct Driver {
    child: Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Driver {
    pub fn start(sdk: Sdk, scenario: &Value, way: impl Into<Way>, env: &[(&str, &Path)]) -> Driver {
        Driver::start_with(sdk, scenario, way, env, &[])
    }

    pub fn start_with(
        sdk: Sdk,
        scenario: &Value,
        way: impl Into<Way>,
        env: &[(&str, &Path)],
        flags: &[&str],
    ) -> Driver {
        let way: Way = way.into();
        let mut command = match sdk {
            Sdk::Python => {
                let mut c = Command::new(python());
                c.arg(repo().join("tests/mcp/clients/py_client.py"));
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new("node");
                c.arg(repo().join("tests/mcp/clients/ts_client.mjs"));
                c
            }
        };
        command
            .arg("--scenario")
            .arg(scenario.to_string())
            .args(flags)
            .args(way.args())
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("the client driver starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap());
            }
        });
        Driver { child, lines }
    }

    /// The next step's result, as soon as the driver prints it.
    pub fn next(&self) -> Value {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("the client driver prints the next step's result")
    }

    /// The remaining steps' results, once the scenario ends (killed after PATIENCE).
    pub fn results(self) -> Vec<Value> {
        let mut results = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => results.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return results,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the client driver did not finish within {PATIENCE:?}")
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(sdk: Sdk, scenario: Value, way: impl Into<Way>, calls: &Path) -> Vec<Value> {
    Driver::start(sdk, &scenario, way, &[("TOY_CALL_LOG", calls)]).results()
}

pub fn text_of(result: &Value) -> String {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
