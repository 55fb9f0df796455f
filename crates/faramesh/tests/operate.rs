//! Operator commands against a real server: output, `--json`, id prefixes and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::{serve_with, server_in, Server};

fn server() -> Server {
    server_in(
        tempfile::TempDir::new().unwrap(),
        &[("FARAMESH_EXECUTORS", "none")],
        &[],
    )
}

/// The binary run in `dir`, without colour.
fn in_dir(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    cmd
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
            "{short}  pending_approval  medium  cli    shell"
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
fn get_shows_an_mcp_call_as_server_tool_client_and_session() {
    let s = server();
    let action = json_of(cli(&s).args([
        "action",
        "submit",
        "--tool",
        "files",
        "--op",
        "write_file",
        "--param",
        "path=/srv/a.txt",
        "--context",
        r#"mcp={"transport":"stdio","server":"files","session":"s-42","client":{"name":"claude-code","version":"2.1"}}"#,
    ]));
    let id = action["id"].as_str().unwrap();
    let shown = cli(&s).args(["get", id]).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    let line = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(label))
            .map(|l| l[label.len()..].trim().to_owned())
    };
    assert_eq!(
        line("mcp call").as_deref(),
        Some("server files / tool write_file (stdio)"),
        "{text}"
    );
    assert_eq!(
        line("mcp client").as_deref(),
        Some("claude-code 2.1 (session s-42)"),
        "{text}"
    );
    assert_eq!(
        line("arguments").as_deref(),
        Some(r#"{"path":"/srv/a.txt"}"#),
        "{text}"
    );
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
fn bad_ids_exit_2_and_refusals_exit_1_with_one_sentence() {
    let s = server();
    // A mistake in the input: nothing is sent, exit 2.
    cli(&s)
        .args(["get", "abc"])
        .assert()
        .code(2)
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
        .code(2)
        .stderr(predicate::str::contains("key=value"));
}

#[test]
fn an_id_cannot_reach_another_endpoint() {
    let s = server();
    // 36 characters, so it is taken as a whole id; sent as written, `..` would climb from
    // /v1/actions/… to /v1/tokens and the CLI would act on whatever answered there.
    let climbing = "aaaaaaaa-aaa/../../tokens/../actions";
    assert_eq!(climbing.len(), 36);
    // Refused before anything is sent: an id holds only hex digits and dashes.
    cli(&s)
        .args(["get", climbing])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{climbing:?} is not an action id"
        )));
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
    let s = server_in(dir, &[("FARAMESH_TOKEN", "s3cret")], &[]);
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

#[test]
fn explain_names_the_rule_and_its_line() {
    let s = server();
    let pending = submit(&s, "shell", "run", "cmd=ls");
    let id = pending["id"].as_str().unwrap();
    cli(&s)
        .args(["explain", &id[..8]])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "decided by       policy rule 2 (line 49 of default.yaml)",
        ))
        .stdout(predicate::str::contains(
            "reason_code      POLICY_REQUIRE_APPROVAL",
        ));
    let denied = submit(&s, "ftp", "put", "path=/x");
    let explained = json_of(cli(&s).args(["explain", denied["id"].as_str().unwrap()]));
    assert_eq!(explained["decided_by"]["kind"], "policy_rule");
    assert_eq!(explained["decided_by"]["number"], 3);
}

#[test]
fn curl_replay_and_apply() {
    let s = server();
    let allowed = submit(&s, "http", "get", "url=https://example.com");
    let id = allowed["id"].as_str().unwrap();
    cli(&s)
        .args(["curl", &id[..8]])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "curl -s {}/v1/actions/{id}/events",
            s.url
        )));

    let copy = json_of(cli(&s).args(["replay", id]));
    assert_ne!(copy["id"], allowed["id"]);
    assert_eq!(copy["context"]["replayed_from"], allowed["id"]);
    assert_eq!(copy["params"], allowed["params"]);
    let pending = submit(&s, "shell", "run", "cmd=ls");
    cli(&s)
        .args(["replay", pending["id"].as_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "only allowed, approved or succeeded",
        ));

    let file = s.dir.path().join("action.yaml");
    std::fs::write(
        &file,
        "agent_id: ops\ntool: stripe\noperation: refund\nparams:\n  amount: 5000\n",
    )
    .unwrap();
    let applied = json_of(cli(&s).arg("apply").arg(&file));
    assert_eq!(
        (applied["agent_id"].as_str(), applied["tool"].as_str()),
        (Some("ops"), Some("stripe"))
    );
    std::fs::write(&file, "params: {}\n").unwrap();
    // A file that describes no action is a bad argument (exit 2), as README's exit codes say.
    cli(&s)
        .arg("apply")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`tool` is required"));
}

#[test]
fn apply_refuses_what_it_would_otherwise_drop() {
    let s = server();
    let file = s.dir.path().join("action.yaml");
    let refused = |yaml: &str, says: &str| {
        std::fs::write(&file, yaml).unwrap();
        cli(&s)
            .arg("apply")
            .arg(&file)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says.to_owned()));
    };
    refused(
        "tool: shell\noperation: run\nparams: {}\ncontxt:\n  ticket: 7\n",
        "action.yaml:4:1: unknown key `contxt`; an action file holds only agent_id, tool, operation (or op), params and context; did you mean `context`?",
    );
    refused(
        "tool: shell\noperation: run\npriority: high\n",
        "unknown key `priority`; an action file holds only agent_id, tool, operation (or op), params and context\n",
    );
    refused(
        "tool: shell\noperation: run\nparams: rm -rf /\n",
        "`params` must be a mapping of names to values, not text",
    );
    refused(
        "tool: shell\noperation: run\nop: get\n",
        "give `operation` or its short form `op`, not both",
    );
    refused(
        "tool: [shell]\noperation: run\n",
        "`tool` must be text, not a list",
    );
    refused(
        "- tool: shell\n",
        "must hold a mapping with tool, operation and params, not a list",
    );
    // None of them reached the server.
    assert_eq!(json_of(cli(&s).arg("list")), Value::Array(Vec::new()));
    // The short form alone is still the operation.
    std::fs::write(&file, "tool: http\nop: get\nparams:\n  url: https://a\n").unwrap();
    let applied = json_of(cli(&s).arg("apply").arg(&file));
    assert_eq!(applied["operation"], "get");
}

#[test]
fn verify_log_detects_a_tampered_event() {
    let s = server();
    let a = submit(&s, "http", "get", "url=https://a");
    let b = submit(&s, "shell", "run", "cmd=ls");
    cli(&s)
        .args(["verify-log", "--all"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 action(s), 4 event(s): every chain is intact",
        ));

    // Someone with access to the database file rewrites history.
    let db = rusqlite::Connection::open(s.dir.path().join("actions.db")).unwrap();
    db.execute_batch("DROP TRIGGER events_no_update").unwrap();
    db.execute("UPDATE events SET meta = '{\"decision\":\"allow\"}' WHERE action_id = ?1 AND event_type = 'created'", [b["id"].as_str().unwrap()]).unwrap();

    let b_id = b["id"].as_str().unwrap();
    cli(&s)
        .args(["verify-log", "--all"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("action {b_id}")))
        .stdout(predicate::str::contains("record_hash"))
        .stdout(predicate::str::contains(
            "1 of 2 action(s) have a broken chain",
        ));
    cli(&s)
        .args(["verify-log", &a["id"].as_str().unwrap()[..8]])
        .assert()
        .success();
    let out = cli(&s)
        .args(["--json", "verify-log", b_id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["broken"][0]["position"].as_u64(),
            report["broken"][0]["what"].as_str()
        ),
        (Some(1), Some("record_hash"))
    );

    // The same verdicts straight from the database file, without the server.
    let db_file = s.dir.path().join("actions.db");
    let db_arg = db_file.to_str().unwrap();
    cli(&s)
        .args(["verify-log", "--all", "--db", db_arg])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("action {b_id}")))
        .stdout(predicate::str::contains(
            "1 of 2 action(s) have a broken chain",
        ));
    cli(&s)
        .args([
            "verify-log",
            &a["id"].as_str().unwrap()[..8],
            "--db",
            db_arg,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "1 action(s), 2 event(s): every chain is intact",
        ));
    // Nothing to check is not a finding: exit 2.
    in_dir(s.dir.path())
        .args(["verify-log", "--all", "--db", "missing.db"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no database file at missing.db"));
    // And the server's own chain check agrees.
    let chain = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::get_json(
            &reqwest::Client::new(),
            format!("{}/v1/actions/{b_id}/chain", s.url),
        ));
    assert_eq!(chain["verified"], false);
    assert_eq!(chain["broken_link"]["what"], "record_hash");
}

#[test]
fn init_writes_the_starter_files_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let run = || in_dir(dir.path()).arg("init").assert().success();
    run()
        .stdout(predicate::str::contains("wrote policies/default.yaml"))
        .stdout(predicate::str::contains("faramesh serve"));
    std::fs::write(dir.path().join("policies/default.yaml"), "rules: []\n").unwrap();
    run().stdout(predicate::str::contains(
        "policies/default.yaml exists; left as it is",
    ));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("policies/default.yaml")).unwrap(),
        "rules: []\n"
    );
    assert!(
        dir.path().join("profiles/default.yaml").exists()
            && dir.path().join(".env.example").exists()
    );
}

#[test]
fn completions_are_generated() {
    Command::cargo_bin("faramesh")
        .unwrap()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_faramesh()"));
}

#[test]
fn tail_follows_changes_across_a_server_restart_and_exits_0_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let start = || {
        serve_with(
            dir.path(),
            &[("FARAMESH_EXECUTORS", "none")],
            &["--port", port.as_str()],
        )
    };
    let (first, url) = start();
    let mut s = Server {
        url: url.clone(),
        child: first,
        dir: tempfile::TempDir::new().unwrap(),
    };

    let mut tail = std::process::Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .args(["--url", &url, "tail"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("tail prints the change");
        if line.contains(needle) {
            return line;
        }
    };

    let before = submit(&s, "shell", "run", "cmd=ls");
    let short = &before["id"].as_str().unwrap()[..8];
    assert!(wait_for(short).contains("pending_approval"));

    // Restart the server on the same port and database: tail reconnects by itself.
    let _ = s.child.kill();
    let _ = s.child.wait();
    let (second, _) = start();
    s.child = second;
    let after = submit(&s, "http", "get", "url=https://x");
    let line = wait_for(&after["id"].as_str().unwrap()[..8]);
    assert!(
        line.contains("allowed") && line.contains("http/get"),
        "{line}"
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(tail.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(tail.wait().unwrap().code(), Some(0));
}

#[test]
fn logs_show_the_status_transitions() {
    let s = server();
    let pending = submit(&s, "shell", "run", "cmd=ls");
    let id = pending["id"].as_str().unwrap();
    cli(&s)
        .args(["deny", id, "--reason", "no"])
        .assert()
        .success();
    cli(&s)
        .args(["logs", &id[..8]])
        .assert()
        .success()
        .stdout(predicate::str::contains("submitted"))
        .stdout(predicate::str::contains(
            "decided: require_approval  (Shell commands require approval)",
        ))
        .stdout(predicate::str::contains("denied  (no)  by anonymous"));
}

#[test]
fn replay_decision_is_identical_until_the_policy_changes() {
    let dir = tempfile::TempDir::new().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "rules:\n  - match: {tool: http}\n    allow: true\n",
    )
    .unwrap();
    let policy_arg = policy.display().to_string();
    let s = server_in(
        dir,
        &[("FARAMESH_EXECUTORS", "none")],
        &["--policy", policy_arg.as_str()],
    );
    let action = submit(&s, "http", "get", "url=https://x");
    let id = action["id"].as_str().unwrap();
    cli(&s)
        .args(["replay-decision", &id[..8]])
        .assert()
        .success()
        .stdout(predicate::str::contains("the decision replays identically"));

    std::fs::write(&policy, "rules:\n  - match: {tool: http}\n    deny: true\n").unwrap();
    let reloaded = reload_policy(&s.url);
    assert_eq!(reloaded, 200);
    cli(&s)
        .args(["replay-decision", id])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("policy_hash"))
        .stdout(predicate::str::contains(
            "the policy changed since this decision",
        ))
        .stdout(predicate::str::contains("EXECUTE → HALT"));
}

#[test]
fn init_docker_writes_dockerfile_and_compose_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let run = || in_dir(dir.path()).arg("init-docker").assert().success();
    run()
        .stdout(predicate::str::contains("wrote Dockerfile"))
        .stdout(predicate::str::contains("wrote docker-compose.yaml"));
    let compose = std::fs::read_to_string(dir.path().join("docker-compose.yaml")).unwrap();
    assert!(compose.contains("postgres") && compose.contains("FARA_DB_BACKEND: postgres"));
    run().stdout(predicate::str::contains("Dockerfile exists; left as it is"));
}

use reload::reload_policy;

mod reload {
    /// POST /v1/policy/reload and return the status code.
    pub fn reload_policy(url: &str) -> u16 {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            ::reqwest::Client::new()
                .post(format!("{url}/v1/policy/reload"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }
}

#[test]
fn audit_export_is_verifiable_offline_and_tampering_shows() {
    let s = server();
    submit(&s, "http", "get", "url=https://a");
    let pending = submit(&s, "shell", "run", "cmd=ls");
    cli(&s)
        .args(["approve", pending["id"].as_str().unwrap()])
        .assert()
        .success();
    let out = cli(&s).args(["audit", "export"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "action",
            "event",
            "event",
            "action",
            "event",
            "event",
            "event",
            "checkpoint"
        ],
        "each action with its events, then the log's signed checkpoint"
    );

    let file = verify_export(&s, &text, "2 action(s), 5 event(s): every chain is intact");

    let tampered = text.replacen(
        r#""decision":"require_approval""#,
        r#""decision":"allow""#,
        1,
    );
    assert_ne!(tampered, text);
    std::fs::write(&file, tampered).unwrap();
    cli(&s)
        .arg("verify-log")
        .arg("--file")
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("broken chain"));

    let later = cli(&s)
        .args(["audit", "export", "--since", "2999-01-01"])
        .output()
        .unwrap();
    assert!(later.status.success() && later.stdout.is_empty());
}

#[test]
fn audit_export_keeps_params_as_sent() {
    let s = server();
    let sent = r#"{"n":1E2,"m":[1.50,-0,2E-3],"big":123456789012345678901234567890}"#;
    let body = format!(
        r#"{{"agent_id":"a","tool":"t","operation":"o","params":{sent},"context":{{"c":1E+2}}}}"#
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        ::reqwest::Client::new()
            .post(format!("{}/v1/actions", s.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    let out = cli(&s).args(["audit", "export"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let action = text.lines().next().unwrap();
    assert!(
        action.contains(&format!(r#""params":{sent},"context":{{"c":1E+2}},"#)),
        "{action}"
    );
    assert!(action.ends_with(r#","record":"action"}"#), "{action}");

    verify_export(&s, &text, "1 action(s), 2 event(s): every chain is intact");
}

/// Writes an export to a file and checks `verify-log --file` on it says `intact`; returns the
/// file.
fn verify_export(s: &Server, text: &str, intact: &str) -> std::path::PathBuf {
    let file = s.dir.path().join("export.jsonl");
    std::fs::write(&file, text).unwrap();
    cli(s)
        .arg("verify-log")
        .arg("--file")
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains(intact));
    file
}

#[test]
fn doctor_reports_each_check_with_its_fix() {
    let dir = tempfile::TempDir::new().unwrap();
    let doctor = |port: &str| {
        in_dir(dir.path())
            .env_remove("FARAMESH_TOKEN")
            .env_remove("FARA_POLICY_FILE")
            .args(["doctor", "--port", port])
            .assert()
    };
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    doctor(&free)
        .code(1)
        .stdout(predicate::str::contains(
            "✗ policy policies/default.yaml cannot be read",
        ))
        .stdout(predicate::str::contains("fix: run `faramesh init`"));

    in_dir(dir.path()).arg("init").assert().success();
    doctor(&free)
        .code(0)
        .stdout(predicate::str::contains(
            "✓ policy policies/default.yaml is valid (3 rules",
        ))
        .stdout(predicate::str::contains(
            "✓ execution profile profiles/default.yaml is valid",
        ))
        .stdout(predicate::str::contains(format!(
            "✓ 127.0.0.1:{free} is free"
        )))
        .stdout(predicate::str::contains("! no FARAMESH_TOKEN"))
        .stdout(predicate::str::contains(
            "✓ web UI assets are built into this binary",
        ));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    doctor(&busy_port).code(1).stdout(predicate::str::contains(
        "and what listens there is not a Faramesh server",
    ));
}

#[test]
fn tokens_have_roles_and_an_agent_cannot_approve() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = server_in(
        dir,
        &[
            ("FARAMESH_EXECUTORS", "none"),
            ("FARAMESH_TOKEN", "root-secret"),
        ],
        &[],
    );
    let as_token = |token: &str| {
        let mut cmd = cli(&s);
        cmd.args(["--token", token]);
        cmd
    };
    // The secret goes to stdout alone, so scripts can capture it; the advice goes to stderr.
    let out = as_token("root-secret")
        .args(["token", "create", "--name", "ci-agent", "--role", "agent"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(agent.starts_with("fm_"), "{agent}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only this once"));
    let created = json_of(
        as_token("root-secret").args(["token", "create", "--name", "alice", "--role", "approver"]),
    );
    let approver = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "approver");

    let action = json_of(as_token(&agent).args([
        "action", "submit", "--tool", "shell", "--op", "run", "--param", "cmd=ls",
    ]));
    assert_eq!(action["status"], "pending_approval");
    assert_eq!(action["approval_token"], Value::Null);
    let id = action["id"].as_str().unwrap();
    as_token(&agent)
        .args(["approve", &id[..8]])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("agent role"))
        .stderr(predicate::str::contains("approve or deny"));
    as_token(&agent)
        .args(["token", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("may not manage API tokens"));
    as_token(&approver)
        .args(["approve", &id[..8], "--reason", "checked"])
        .assert()
        .success();
    as_token(&approver)
        .args(["logs", id])
        .assert()
        .success()
        .stdout(predicate::str::contains("by alice"));

    as_token("root-secret")
        .args(["token", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ci-agent"))
        .stdout(predicate::str::contains("approver"))
        .stdout(predicate::str::contains("fm_").not());
    as_token("root-secret")
        .args(["token", "revoke", "ci-agent"])
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked token \"ci-agent\""));
    as_token(&agent)
        .args(["list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--token or FARAMESH_TOKEN"));
    as_token("root-secret")
        .args(["token", "revoke", "ci-agent"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("No token in use named"));
}

/// Table layouts, with ids, hashes and times masked: columns, order and wording are the contract.
#[test]
fn tables_keep_their_layout() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = server_in(
        dir,
        &[("FARAMESH_EXECUTORS", "none"), ("FARAMESH_TOKEN", "root")],
        &[],
    );
    let run = |args: &[&str]| -> String {
        let out = cli(&s)
            .args(["--token", "root"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "action",
        "submit",
        "--tool",
        "shell",
        "--op",
        "run",
        "--param",
        "cmd=ls -la",
    ]);
    let http = run(&[
        "--json",
        "action",
        "submit",
        "--tool",
        "http",
        "--op",
        "get",
        "--param",
        "url=https://example.com",
    ]);
    let http: Value = serde_json::from_str(&http).unwrap();
    run(&["token", "create", "--name", "ci-agent", "--role", "agent"]);
    run(&["token", "create", "--name", "alice", "--role", "approver"]);
    run(&["token", "revoke", "alice"]);

    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+Z)?", "[time]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    );
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[hash]");
    settings.add_filter(r"\b[0-9a-f]{8}\b", "[id]");
    settings.bind(|| {
        insta::assert_snapshot!("list", run(&["list"]));
        insta::assert_snapshot!("events", run(&["events", http["id"].as_str().unwrap()]));
        insta::assert_snapshot!("token_list", run(&["token", "list"]));
    });
}

#[test]
fn doctor_checks_the_postgres_dsn() {
    let dir = tempfile::TempDir::new().unwrap();
    in_dir(dir.path())
        .env("FARA_DB_BACKEND", "postgres")
        // Nothing listens on port 1.
        .env("FARA_POSTGRES_DSN", "postgres://postgres@127.0.0.1:1/none")
        .args(["doctor"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("✗ PostgreSQL (FARA_POSTGRES_DSN)"))
        .stdout(predicate::str::contains("fix: check that the server runs"));
    let Some((dsn, _database)) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(faramesh_testkit::fresh_postgres_database())
    else {
        return;
    };
    in_dir(dir.path())
        .env("FARA_DB_BACKEND", "postgres")
        .env("FARA_POSTGRES_DSN", &dsn)
        .args(["doctor"])
        .assert()
        .stdout(predicate::str::contains(
            "✓ PostgreSQL (FARA_POSTGRES_DSN) answers and its schema is up to date",
        ));
}

#[test]
fn no_profile_decides_with_the_policy_alone() {
    let dir = tempfile::TempDir::new().unwrap();
    // A profile that allows no tool at all would halt every action if it were loaded.
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
    std::fs::write(
        dir.path().join("profiles/default.yaml"),
        "id: locked\nversion: \"1\"\nallowed_tools: [nothing]\n",
    )
    .unwrap();
    let s = server_in(dir, &[], &["--no-profile"]);
    let action = submit(&s, "http", "get", "url=https://a");
    assert_eq!(action["status"], "allowed", "{action}");
    assert_eq!(action["profile_id"], Value::Null);
}

#[test]
fn serve_refuses_approval_rules_naming_routes_it_does_not_have() {
    let dir = tempfile::TempDir::new().unwrap();
    let policy = dir.path().join("two-people.yaml");
    std::fs::write(
        &policy,
        "rules:\n  - match: {tool: stripe, op: refund}\n    require_approval: {approvers: 2, notify: [payments-oncall]}\n",
    )
    .unwrap();
    // The policy language reads it...
    in_dir(dir.path())
        .args(["policy", "validate"])
        .arg(&policy)
        .assert()
        .success();
    // ...but a server that could not tell the route refuses to run it.
    in_dir(dir.path())
        .args(["serve", "--port", "0", "--no-profile", "--db"])
        .arg(dir.path().join("a.db"))
        .arg("--policy")
        .arg(&policy)
        .env_remove("FARAMESH_TOKEN")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "rule 1 (line 2) notifies route \"payments-oncall\", but no routes file is loaded",
        ));
}

/// `list --search` (and `GET /v1/actions?q=`) finds actions by a piece of their agent, tool or
/// operation name, ignoring case, newest first; a search too broad to list is refused with
/// what to do instead.
#[test]
fn list_search_finds_actions_by_a_piece_of_agent_tool_or_operation() {
    let s = server();
    let submitted = |agent: &str, tool: &str, op: &str| -> String {
        json_of(cli(&s).args([
            "action", "submit", "--agent", agent, "--tool", tool, "--op", op, "--param", "n=1",
        ]))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let support = submitted("Support-Bot-EU", "http", "get");
    let refund = submitted("billing", "stripe", "refund");
    let deploy = submitted("deploy-bot", "shell", "run");
    let post = submitted("billing", "http", "post");

    let found = |args: &[&str]| -> Vec<String> {
        let listed = json_of(cli(&s).args(["list"]).args(args));
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        found(&["--search", "BOT"]),
        [deploy.as_str(), support.as_str()]
    );
    assert_eq!(found(&["--search", "ref"]), [refund.as_str()]);
    // "http" is a tool of two actions; "get" an operation; "bill" an agent of two.
    assert_eq!(
        found(&["--search", "http"]),
        [post.as_str(), support.as_str()]
    );
    assert_eq!(
        found(&["--search", "bill", "--tool", "http"]),
        [post.as_str()]
    );
    assert_eq!(
        found(&["--search", "t", "--status", "pending_approval"]).len(),
        found(&["--status", "pending_approval"]).len(),
        "every action here has a name with a t, so the search keeps every pending one"
    );
    assert!(found(&["--search", "nothing-like-this"]).is_empty());
    assert!(found(&["--search", "%"]).is_empty(), "no wildcards");

    // Thirty-three agents with "fleet" in their names are too many to list by.
    for i in 0..33 {
        submitted(&format!("fleet-{i:02}"), "http", "get");
    }
    cli(&s)
        .args(["list", "--search", "fleet"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("\"fleet\" is in 33 agent, tool and operation names")
                .and(predicate::str::contains("type more of the name")),
        );
    assert_eq!(found(&["--search", "fleet-3"]).len(), 3);
    let long = "x".repeat(201);
    cli(&s)
        .args(["list", "--search", &long])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`q` may be at most 200 characters",
        ));
}
