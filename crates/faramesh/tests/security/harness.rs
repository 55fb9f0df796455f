//! Starting the real `faramesh` binary for the security suite: the release build named by
//! `FARAMESH_BIN` (set by `scripts/test`), or this workspace's debug build otherwise.
#![allow(dead_code, reason = "each attack uses a different subset")]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The binary under test.
pub fn bin() -> PathBuf {
    match std::env::var_os("FARAMESH_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => assert_cmd::cargo::cargo_bin("faramesh"),
    }
}

/// The repository's root (for the shipped policies).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `faramesh` command with a clean environment: no token, no demo, no `.env` surprises.
pub fn faramesh(dir: &Path) -> Command {
    let mut command = Command::new(bin());
    command
        .current_dir(dir)
        .env_remove("FARAMESH_TOKEN")
        .env_remove("FARA_AUTH_TOKEN")
        .env_remove("FARAMESH_DEMO")
        .env_remove("FARAMESH_URL")
        .env("NO_COLOR", "1");
    command
}

/// A running `faramesh serve`, stopped (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Every line the server wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options of one server start.
#[derive(Default)]
pub struct Serve<'a> {
    pub env: Vec<(&'a str, &'a str)>,
    pub flags: Vec<&'a str>,
    /// Policy file; the shipped `policies/default.yaml` when `None`.
    pub policy: Option<PathBuf>,
}

impl Serve<'_> {
    /// Starts the server in `dir` (its database lives there) and waits until it listens.
    pub fn start(self, dir: &Path) -> Server {
        let policy = self
            .policy
            .unwrap_or_else(|| repo().join("policies/default.yaml"));
        let mut child = faramesh(dir)
            .arg("serve")
            .args(["--port", "0"])
            .arg("--db")
            .arg(dir.join("actions.db"))
            .arg("--policy")
            .arg(policy)
            .arg("--profile")
            .arg(dir.join("no-profile.yaml"))
            .args(&self.flags)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("faramesh serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not report where it listens; its log:\n{}",
                    log.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
                );
            }
        };
        Server { child, url, log }
    }
}

impl Server {
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client")
    }

    /// `POST /v1/actions` with `body`; the status and the JSON answer.
    pub async fn submit(&self, body: Value) -> (u16, Value) {
        self.post("/v1/actions", body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls the action until `done` holds for it (bounded: 30 s), and returns it.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, action) = self.get(&format!("/v1/actions/{id}")).await;
            if done(&action) {
                return action;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "action {id} never reached the expected state; last seen: {action}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the action leaves `executing` (and `allowed`/`approved`).
    pub async fn wait_finished(&self, id: &str) -> Value {
        self.wait_for(id, |a| {
            matches!(
                a["status"].as_str(),
                Some("succeeded" | "failed" | "timeout" | "denied")
            )
        })
        .await
    }
}

impl Server {
    /// Approves a pending action with the token its submission answer carried.
    pub async fn approve(&self, action: &Value) -> String {
        let id = action["id"]
            .as_str()
            .expect("the action has an id")
            .to_owned();
        let token = action["approval_token"]
            .as_str()
            .expect("an open server shows the approval token");
        let (status, answer) = self
            .post(
                &format!("/v1/actions/{id}/approval"),
                serde_json::json!({"token": token, "approve": true}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        id
    }

    /// `POST /v1/actions/{id}/start`; the status and the answer.
    pub async fn start(&self, id: &str) -> (u16, Value) {
        self.post(&format!("/v1/actions/{id}/start"), serde_json::json!({}))
            .await
    }
}

/// Runs `command` to its end (bounded: 30 s), returning its exit code and everything it
/// printed. For commands that must refuse to start.
pub fn run_to_end(mut command: Command) -> (i32, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faramesh runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the command kept running (it should have refused to start):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Bounded wait (10 s) for a condition another process brings about.
pub async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A one-file policy written into `dir`.
pub fn policy_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("the policy is written");
    path
}
