//! What the approval and notification tests share: a real `faramesh serve` whose log is kept,
//! real receivers on loopback (the webhook receivers of tests/notify in Python and Node, an
//! SMTP server with STARTTLS, a fake Slack), and bounded waits on conditions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    reason = "a test stops at the first setup step or expectation that fails; each test file uses a part"
)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// Every bounded wait of these tests.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs the fixtures' Python packages once per test process.
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let out = Command::new(repo().join("tests/notify/setup"))
            .output()
            .expect("tests/notify/setup runs");
        assert!(
            out.status.success(),
            "tests/notify/setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Waits until `f` gives a value, at most [`PATIENCE`], looking every 50 ms.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `faramesh serve` in its own directory, its log kept in `dir/server.log`.
pub struct Faramesh {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub url: String,
    env: Vec<(String, String)>,
    /// The admin token (FARAMESH_TOKEN).
    pub admin: String,
    http: reqwest::blocking::Client,
}

impl Drop for Faramesh {
    fn drop(&mut self) {
        self.kill();
    }
}

pub const ADMIN: &str = "root-secret-for-tests";

impl Faramesh {
    /// A server with `policy` and, when given, the routes file `routes`, with extra `env`.
    pub fn start(policy: &str, routes: Option<&str>, env: &[(&str, &str)]) -> Faramesh {
        Faramesh::start_in(tempfile::TempDir::new().unwrap(), policy, routes, env)
    }

    pub fn start_in(
        dir: tempfile::TempDir,
        policy: &str,
        routes: Option<&str>,
        env: &[(&str, &str)],
    ) -> Faramesh {
        std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
        if let Some(routes) = routes {
            std::fs::write(dir.path().join("notify.yaml"), routes).unwrap();
        }
        let mut server = Faramesh {
            dir,
            child: None,
            url: String::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            admin: ADMIN.to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log_path = self.dir.path().join("server.log");
        let offset = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let postgres = self.env.iter().any(|(k, _)| k == "FARA_DB_BACKEND");
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("faramesh"));
        command
            .args([
                "serve",
                "--port",
                "0",
                "--no-profile",
                "--policy",
                "policy.yaml",
            ])
            .args(if postgres {
                vec![]
            } else {
                vec!["--db", "actions.db"]
            })
            .env("RUST_LOG", "info")
            .env("FARAMESH_TOKEN", &self.admin)
            .env("FARAMESH_EXECUTORS", "none")
            .env_remove("FARAMESH_DEMO")
            .env_remove("FARAMESH_NOTIFY_FILE")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(command.spawn().expect("faramesh serve starts"));
        self.url = wait_for("the server to listen", || {
            let text = std::fs::read_to_string(&log_path).ok()?;
            let fresh = text.get(usize::try_from(offset).ok()?..)?;
            fresh
                .lines()
                .find_map(|l| l.split("listening on ").nth(1))
                .map(|url| url.trim().to_owned())
                .or_else(|| {
                    let ended = self.child.as_mut()?.try_wait().ok()??;
                    panic!("faramesh serve exited ({ended}):\n{fresh}")
                })
        });
    }

    /// Stops the server at once, as a crash would (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same directory and database.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A request with `token` as bearer; the status and the JSON body.
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The raw text of a GET, for looking for secrets.
    pub fn text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.admin)
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// Creates an API token; returns its secret.
    pub fn token(&self, name: &str, role: &str) -> String {
        let (status, body) = self.call(
            "POST",
            "/v1/tokens",
            &self.admin.clone(),
            Some(json!({"name": name, "role": role})),
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Submits an action as `token`.
    pub fn submit(&self, token: &str, tool: &str, op: &str, params: Value) -> Value {
        let (status, body) = self.call(
            "POST",
            "/v1/actions",
            token,
            Some(json!({"agent_id": "agent-7", "tool": tool, "operation": op, "params": params})),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn action(&self, id: &str) -> Value {
        let (status, body) = self.call(
            "GET",
            &format!("/v1/actions/{id}"),
            &self.admin.clone(),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Approves (or denies) as `token`, with the approval token the admin can see.
    pub fn decide(&self, id: &str, token: &str, approve: bool) -> (u16, Value) {
        let approval_token = self.action(id)["approval_token"].clone();
        self.call(
            "POST",
            &format!("/v1/actions/{id}/approval"),
            token,
            Some(json!({"token": approval_token, "approve": approve})),
        )
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let (_, body) = self.call(
            "GET",
            &format!("/v1/actions/{id}/events"),
            &self.admin.clone(),
            None,
        );
        body.as_array().cloned().unwrap_or_default()
    }

    pub fn notifications(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.call(
            "GET",
            &format!("/v1/notifications?{query}"),
            &self.admin.clone(),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap()
    }

    /// Waits until the action has `status`; returns it.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        wait_for(&format!("action {id} to be {status}"), || {
            let action = self.action(id);
            (action["status"] == status).then_some(action)
        })
    }

    /// The CLI against this server.
    pub fn cli(&self, token: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("faramesh").unwrap();
        cmd.env("NO_COLOR", "1")
            .env_remove("FARAMESH_TOKEN")
            .args(["--url", &self.url, "--token", token]);
        cmd
    }

    /// No secret appears in the server's log, in the notifications and routes the API shows,
    /// or in the web UI's page.
    pub fn assert_keeps_secrets(&self, secrets: &[&str]) {
        let shown = [
            ("the server log", self.log()),
            (
                "GET /v1/notifications",
                self.text("/v1/notifications?limit=1000"),
            ),
            (
                "GET /v1/notifications/routes",
                self.text("/v1/notifications/routes"),
            ),
            ("GET /v1/actions", self.text("/v1/actions?limit=1000")),
            ("the web UI", self.text("/")),
        ];
        for secret in secrets {
            for (place, text) in &shown {
                assert!(!text.contains(secret), "a secret shows in {place}");
            }
        }
    }
}

/// A child process that prints a ready line, killed when dropped.
pub struct Fixture {
    child: Child,
    pub address: String,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fixture {
    /// Starts `command`, which writes its records to `out` and prints `listening on <address>`
    /// once ready; `dir` lives as long as the fixture.
    pub fn spawn(mut command: Command, dir: tempfile::TempDir, out: PathBuf) -> Fixture {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the fixture starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .to_owned();
        Fixture {
            child,
            address,
            out,
            _dir: dir,
        }
    }

    /// The JSON lines the fixture recorded so far (a line still being written is left for the
    /// next read).
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a record matches `f`; returns it.
    pub fn wait_record(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, || self.records().into_iter().find(|r| f(r)))
    }
}

/// Which of the two webhook receivers (the README's signature checks, in Python and Node).
#[derive(Debug, Clone, Copy)]
pub enum Language {
    Python,
    Node,
}

/// A webhook receiver checking signatures with `secret`, on `port` (0: any), answering 503
/// to the first `fail_first` validly signed requests.
pub fn webhook_receiver(language: Language, secret: &str, port: u16, fail_first: u32) -> Fixture {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("received.jsonl");
    let mut command = match language {
        Language::Python => {
            let mut c = Command::new("python3");
            c.arg(repo().join("tests/notify/webhook_receiver.py"));
            c
        }
        Language::Node => {
            let mut c = Command::new("node");
            c.arg(repo().join("tests/notify/webhook_receiver.mjs"));
            c
        }
    };
    command
        .args([
            "--port",
            &port.to_string(),
            "--fail-first",
            &fail_first.to_string(),
        ])
        .arg("--out")
        .arg(&out)
        .env("WEBHOOK_SECRET", secret);
    Fixture::spawn(command, dir, out)
}

/// An SMTP server requiring STARTTLS and a login; `ca` is the root its certificate chains to.
pub struct Smtp {
    pub fixture: Fixture,
    pub port: u16,
    pub ca: PathBuf,
}

pub fn smtp_server(user: &str, password: &str) -> Smtp {
    setup();
    let dir = tempfile::TempDir::new().unwrap();
    let certs = dir.path().join("certs");
    let made = Command::new("python3")
        .arg(repo().join("tests/notify/smtp_server.py"))
        .arg("--make-cert")
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = dir.path().join("mail.jsonl");
    let mut command = Command::new(repo().join("target/notify-python-venv/bin/python"));
    command
        .arg(repo().join("tests/notify/smtp_server.py"))
        .arg("--cert")
        .arg(certs.join("cert.pem"))
        .arg("--key")
        .arg(certs.join("key.pem"))
        .arg("--out")
        .arg(&out)
        .env("SMTP_TEST_USER", user)
        .env("SMTP_TEST_PASSWORD", password);
    let ca = certs.join("ca.pem");
    let fixture = Fixture::spawn(command, dir, out);
    let port = fixture.address.rsplit(':').next().unwrap().parse().unwrap();
    Smtp { fixture, port, ca }
}

/// A fake Slack on loopback: it takes the messages of an incoming webhook (`/webhook`) and the
/// updates posted to a `response_url` (`/respond`), and keeps them.
pub struct FakeSlack {
    pub url: String,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeSlack {
    pub fn start() -> FakeSlack {
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let kept = received.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let keep = |path: &'static str| {
                    let kept = kept.clone();
                    move |axum::Json(body): axum::Json<Value>| {
                        let kept = kept.clone();
                        async move {
                            kept.lock().unwrap().push((path.to_owned(), body));
                            "ok"
                        }
                    }
                };
                let app = axum::Router::new()
                    .route("/webhook", axum::routing::post(keep("webhook")))
                    .route("/respond", axum::routing::post(keep("respond")));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let address = address.recv().unwrap();
        FakeSlack {
            url: format!("http://{address}"),
            received,
            _stop: stop,
        }
    }

    /// What was posted to `path` (`webhook` or `respond`) so far.
    pub fn received(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn wait_for(&self, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, || self.received(path).into_iter().find(|v| f(v)))
    }
}

/// A button press as Slack sends it: a form with the `block_actions` payload, signed with
/// `secret` at `timestamp`.
pub fn slack_press(
    server: &Faramesh,
    secret: &str,
    timestamp: i64,
    user: &str,
    action_id: &str,
    button: &str,
    response_url: &str,
) -> (u16, Value) {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "response_url": response_url,
        "actions": [{"action_id": button, "block_id": "faramesh_decision", "value": action_id, "type": "button"}],
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let timestamp = timestamp.to_string();
    // Computed here as Slack documents it, not by the code under test.
    let signature = {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{timestamp}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    };
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/integrations/slack/interactions", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Slack-Request-Timestamp", timestamp)
        .header("X-Slack-Signature", signature)
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
