//! The CLI's contract as a table: each mistake a person makes gets exit code 2 ("could not
//! run") with a sentence naming the problem and nothing sent; what the server refuses gets 1;
//! `--json` gives JSON for every command that prints something.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod common;
use common::Server;

use assert_cmd::Command;
use serde_json::Value;

fn server() -> Server {
    common::server_in(
        tempfile::TempDir::new().unwrap(),
        &[("FARAMESH_EXECUTORS", "none")],
        &[],
    )
}

fn cli(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("FARAMESH_TOKEN")
        .args(["--url", url]);
    cmd
}

#[test]
fn mistakes_exit_2_and_refusals_exit_1_each_with_one_sentence() {
    let s = server();
    let submitted = cli(&s.url)
        .args([
            "--json", "action", "submit", "--tool", "shell", "--op", "run", "--param", "cmd=ls",
        ])
        .output()
        .unwrap();
    let action: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let id = action["id"].as_str().unwrap().to_owned();
    let missing = format!("{}-0000-0000-0000-000000000000", &id[..8]);
    // (arguments, exit code, what stderr says)
    let table: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["get", "abc"], 2, "needs at least 8 characters"),
        (
            vec!["get", "zzzzzzzzzz"],
            2,
            "ids hold only hex digits and dashes",
        ),
        (
            vec!["list", "--status", "bogus"],
            2,
            "possible values: allowed, denied, pending_approval",
        ),
        (vec!["list", "--limit", "0"], 2, "0 is not in 1..=1000"),
        (vec!["tail", "--status", "nope"], 2, "possible values"),
        (vec!["result", &id], 2, "<--success|--failure>"),
        (vec!["apply", "missing.yaml"], 2, "cannot read missing.yaml"),
        (
            vec!["verify-log", "--file", "/nonexistent"],
            2,
            "cannot read /nonexistent",
        ),
        (
            vec!["audit", "export", "--since", "yesterday"],
            2,
            "is not a time",
        ),
        (
            vec!["audit", "export", "--since", "2026-13-45"],
            2,
            "is not a time",
        ),
        (
            vec![
                "action", "submit", "--tool", "t", "--op", "o", "--param", "novalue",
            ],
            2,
            "--param",
        ),
        (vec!["get", &missing], 1, "not found"),
        (vec!["start", &id], 1, "pending_approval"),
    ];
    for (args, code, says) in &table {
        let out = cli(&s.url).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "faramesh {args:?}: {stderr}"
        );
        assert!(stderr.contains(says), "faramesh {args:?} said: {stderr}");
        assert!(
            !stderr.contains("the request was refused") || *code == 1,
            "faramesh {args:?}: nothing was sent, yet: {stderr}"
        );
    }
    // No request went out for the mistakes: the server still holds only the one action.
    let listed = cli(&s.url).args(["--json", "list"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // The events stream refuses a status no action has, instead of staying silent forever.
    let answer = reqwest::blocking::get(format!("{}/v1/events?status=nope", s.url)).unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    // A host that does not resolve is said to be so.
    cli("http://nonexistent.invalid:1")
        .arg("list")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not resolve"));
}

#[test]
fn every_printing_command_honours_json() {
    let s = server();
    let submitted = cli(&s.url)
        .args([
            "--json",
            "action",
            "submit",
            "--tool",
            "http",
            "--op",
            "get",
            "--param",
            "url=https://example.com",
        ])
        .output()
        .unwrap();
    let id = serde_json::from_slice::<Value>(&submitted.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        vec!["list"],
        vec!["get", &id],
        vec!["events", &id],
        vec!["logs", &id],
        vec!["curl", &id],
        vec!["explain", &id],
        vec!["replay-decision", &id],
        vec!["notify", "routes"],
        vec!["notify", "list"],
    ] {
        let out = cli(&s.url).arg("--json").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "faramesh --json {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: Result<Value, _> = serde_json::from_slice(&out.stdout);
        assert!(
            parsed.is_ok(),
            "faramesh --json {args:?} printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let logs: Value = serde_json::from_slice(
        &cli(&s.url)
            .args(["--json", "logs", &id])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(logs[1]["event"], "decision_made");
}

#[test]
fn serve_without_a_policy_says_to_run_init_and_leaves_nothing_behind() {
    let dir = tempfile::TempDir::new().unwrap();
    Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("FARA_POLICY_FILE")
        .args(["serve", "--port", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("run `faramesh init`"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
}

#[test]
fn the_last_admin_token_is_kept_unless_forced() {
    let server = server();
    let url = server.url.clone();
    // With authentication off, the first token must be an admin.
    let created = cli(&url)
        .args([
            "--json", "token", "create", "--name", "root", "--role", "admin",
        ])
        .output()
        .unwrap();
    let secret = serde_json::from_slice::<Value>(&created.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    cli(&url)
        .args(["--token", &secret, "token", "revoke", "root"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("is the last admin token"));
    cli(&url)
        .args(["--token", &secret, "token", "revoke", "root", "--force"])
        .assert()
        .success();
}

#[test]
fn suggestions_can_be_pasted_and_a_profile_is_named_as_such() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut new = Command::cargo_bin("faramesh").unwrap();
    new.current_dir(dir.path())
        .args(["policy", "new", "a b"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "faramesh policy validate 'policies/a b.yaml'",
        ));
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/default.yaml");
    Command::cargo_bin("faramesh")
        .unwrap()
        .args(["policy", "validate"])
        .arg(&profile)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("looks like an execution profile"));
}

#[test]
fn doctor_checks_a_running_server_instead_of_failing_and_creates_nothing() {
    let s = server();
    let port = s.url.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::TempDir::new().unwrap();
    let out = Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("FARAMESH_TOKEN")
        .args(["--json", "doctor", "--port", &port])
        .output()
        .unwrap();
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("a Faramesh server is running at")
                && t.contains("healthy and ready")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("does not exist yet")),
        "{texts:?}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "doctor created no file"
    );
}
