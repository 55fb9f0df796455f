//! Operator commands against a real server: output, `--json`, id prefixes and exit codes.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::serve_with;

struct Server {
    url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    let dir = tempfile::TempDir::new().unwrap();
    let (child, url) = serve_with(dir.path(), &[("FARAMESH_EXECUTORS", "none")], &[]);
    Server {
        url,
        child,
        _dir: dir,
    }
}

fn cli(s: &Server) -> Command {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("FARAMESH_TOKEN")
        .args(["--url", &s.url]);
    cmd
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json output is JSON")
}

fn submit(s: &Server, tool: &str, op: &str, param: &str) -> Value {
    json_of(cli(s).args([
        "action", "submit", "--tool", tool, "--op", op, "--param", param,
    ]))
}

#[test]
fn submit_list_approve_start_result_and_events() {
    let s = server();
    let pending = submit(&s, "shell", "run", "cmd=ls -la");
    assert_eq!(pending["status"], "pending_approval");
    let id = pending["id"].as_str().unwrap().to_owned();
    let short = &id[..8];

    cli(&s)
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("ID        STATUS"))
        .stdout(predicate::str::contains(format!(
            "{short}  pending_approval  medium  shell"
        )))
        .stdout(predicate::str::contains(r#"{"cmd":"ls -la"}"#));
    let listed = json_of(cli(&s).args(["list", "--status", "pending_approval"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    cli(&s)
        .args(["approve", short, "--reason", "looks fine"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "✓ approved {id} → approved"
        )));
    cli(&s)
        .args(["deny", short])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is approved, not pending approval",
        ));
    cli(&s)
        .args(["start", short])
        .assert()
        .success()
        .stdout(predicate::str::contains("→ executing"));
    cli(&s)
        .args([
            "result",
            short,
            "--success",
            "--output",
            r#"{"stdout":"hi"}"#,
        ])
        .assert()
        .success();

    let shown = json_of(cli(&s).args(["get", short]));
    assert_eq!(
        (shown["status"].as_str(), shown["reason"].as_str()),
        (Some("succeeded"), Some("looks fine"))
    );
    assert_eq!(shown["result"], serde_json::json!({"stdout": "hi"}));
    cli(&s)
        .args(["get", short])
        .assert()
        .success()
        .stdout(predicate::str::contains("status           succeeded"))
        .stdout(predicate::str::contains(
            "reason_code      POLICY_REQUIRE_APPROVAL",
        ));

    let events = json_of(cli(&s).args(["events", short]));
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "created",
            "decision_made",
            "approved",
            "started",
            "succeeded"
        ]
    );
    cli(&s)
        .args(["events", short])
        .assert()
        .success()
        .stdout(predicate::str::contains("decision_made"));
}

#[test]
fn deny_records_the_reason() {
    let s = server();
    let pending = submit(&s, "shell", "run", "cmd=rm -rf /tmp/x");
    let id = pending["id"].as_str().unwrap();
    cli(&s)
        .args(["deny", id, "--reason", "too risky"])
        .assert()
        .success()
        .stdout(predicate::str::contains("→ denied"));
    let shown = json_of(cli(&s).args(["get", id]));
    assert_eq!(
        (shown["decision"].as_str(), shown["reason"].as_str()),
        (Some("deny"), Some("too risky"))
    );
}

#[test]
fn bad_ids_and_refusals_exit_1_with_one_sentence() {
    let s = server();
    cli(&s)
        .args(["get", "abc"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("at least 8 characters"));
    cli(&s)
        .args(["get", "deadbeef00"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no action id starts with deadbeef00",
        ));
    let allowed = submit(&s, "http", "get", "url=https://example.com");
    cli(&s)
        .args(["approve", allowed["id"].as_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is allowed, not pending approval"));
    cli(&s)
        .args([
            "action", "submit", "--tool", "http", "--op", "get", "--param", "novalue",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("key=value"));
}

#[test]
fn an_unreachable_server_exits_2_naming_the_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Command::cargo_bin("faramesh")
        .unwrap()
        .args(["--url", &format!("http://{closed}"), "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "cannot reach the Faramesh server at http://{closed}"
        )))
        .stderr(predicate::str::contains("faramesh serve"));
}

#[test]
fn a_protected_server_asks_for_a_token() {
    let dir = tempfile::TempDir::new().unwrap();
    let (child, url) = serve_with(dir.path(), &[("FARAMESH_TOKEN", "s3cret")], &[]);
    let s = Server {
        url,
        child,
        _dir: dir,
    };
    cli(&s)
        .arg("list")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--token"));
    cli(&s)
        .args(["--token", "s3cret", "list"])
        .assert()
        .success();
}
