//! `faramesh hook`: Claude Code's and Cursor's documented hook payloads fed to the real
//! binary against a real server with the shipped coding-agent policy; the answers and the
//! recorded actions are checked. No coding agent runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use assert_cmd::Command;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
mod notify_support;
use common::{server_in, Server};

fn policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/examples/coding-agent.yaml")
}

fn server() -> Server {
    let policy = policy();
    server_in(
        tempfile::TempDir::new().unwrap(),
        &[("FARAMESH_EXECUTORS", "none")],
        &["--policy", policy.to_str().unwrap()],
    )
}

/// The hook command for `agent` against the server, keeping its call files in the server's
/// directory.
fn hook(s: &Server, agent: &str, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("FARAMESH_TOKEN")
        .env("FARAMESH_HOOK_STATE_DIR", s.dir.path().join("hook-state"))
        .args(["--url", &s.url, "hook", agent])
        .args(args);
    cmd
}

/// Runs the hook on `payload`: its exit code and its answer (stdout as JSON, or Null).
fn run(s: &Server, agent: &str, args: &[&str], payload: &Value) -> (i32, Value, String) {
    let out = hook(s, agent, args)
        .write_stdin(payload.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("the answer is JSON: {stdout}"))
    };
    (
        out.status.code().unwrap(),
        answer,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pre_tool_use(tool: &str, input: Value, call: &str) -> Value {
    json!({
        "session_id": "session-1",
        "transcript_path": "/home/dev/.claude/projects/app/session-1.jsonl",
        "cwd": "/work/app",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": input,
        "tool_use_id": call,
    })
}

fn decision(answer: &Value) -> (&str, &str) {
    let out = &answer["hookSpecificOutput"];
    assert_eq!(out["hookEventName"], json!("PreToolUse"), "{answer}");
    (
        out["permissionDecision"].as_str().unwrap(),
        out["permissionDecisionReason"].as_str().unwrap(),
    )
}

fn actions(s: &Server, query: &str) -> Vec<Value> {
    let body: Value = reqwest::blocking::get(format!("{}/v1/actions?limit=100&{query}", s.url))
        .unwrap()
        .json()
        .unwrap();
    body.as_array().unwrap().clone()
}

fn action(s: &Server, id: &str) -> Value {
    reqwest::blocking::get(format!("{}/v1/actions/{id}", s.url))
        .unwrap()
        .json()
        .unwrap()
}

/// The one action whose params hold `text`.
fn action_with(s: &Server, text: &str) -> Value {
    let found: Vec<Value> = actions(s, "")
        .into_iter()
        .filter(|a| a["params"].to_string().contains(text))
        .collect();
    assert_eq!(found.len(), 1, "one action holds {text}: {found:#?}");
    found.into_iter().next().unwrap()
}

/// Waits until an action whose params hold `text` is pending approval.
fn pending_with(s: &Server, text: &str) -> Value {
    notify_support::wait_for(&format!("a pending action holding {text}"), || {
        actions(s, "status=pending_approval")
            .into_iter()
            .find(|a| a["params"].to_string().contains(text))
    })
}

fn decide(s: &Server, id: &str, approve: bool, reason: &str) {
    Command::cargo_bin("faramesh")
        .unwrap()
        .env_remove("FARAMESH_TOKEN")
        .args([
            "--url",
            &s.url,
            if approve { "approve" } else { "deny" },
            id,
            "--reason",
            reason,
        ])
        .assert()
        .success();
}

/// Starts the hook on `payload` in the background.
fn spawn(s: &Server, agent: &str, args: &[&str], payload: &Value) -> std::process::Child {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .env_remove("FARAMESH_TOKEN")
        .env("FARAMESH_HOOK_STATE_DIR", s.dir.path().join("hook-state"))
        .args(["--url", &s.url, "hook", agent])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.to_string().as_bytes())
        .unwrap();
    child
}

fn answer_of(child: std::process::Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn claude_code_reads_are_allowed_and_their_outcome_is_recorded_on_the_same_action() {
    let s = server();
    let read = pre_tool_use(
        "Read",
        json!({"file_path": "/work/app/src/main.rs"}),
        "toolu_read",
    );
    let (code, answer, _) = run(&s, "claude-code", &[], &read);
    assert_eq!(code, 0);
    let (allow, reason) = decision(&answer);
    assert_eq!(allow, "allow");
    assert!(reason.contains("Reading and searching files"), "{reason}");

    let recorded = action_with(&s, "/work/app/src/main.rs");
    assert_eq!(recorded["agent_id"], json!("claude-code"));
    assert_eq!(recorded["tool"], json!("claude-code"));
    assert_eq!(recorded["operation"], json!("Read"));
    assert_eq!(recorded["status"], json!("allowed"));
    assert_eq!(
        recorded["context"],
        json!({"session_id": "session-1", "cwd": "/work/app", "permission_mode": "default",
               "tool_use_id": "toolu_read", "hook_event": "PreToolUse"})
    );
    // The same call asked again (a retried hook) is the same action.
    let (_, again, _) = run(&s, "claude-code", &[], &read);
    assert_eq!(decision(&again).0, "allow");
    assert_eq!(actions(&s, "q=Read").len(), 1);

    let mut done = read.clone();
    done["hook_event_name"] = json!("PostToolUse");
    done["tool_response"] = json!({"type": "text", "file": {"content": "fn main() {}"}});
    let (code, answer, stderr) = run(&s, "claude-code", &[], &done);
    assert_eq!((code, answer), (0, Value::Null), "{stderr}");
    let finished = action(&s, recorded["id"].as_str().unwrap());
    assert_eq!(finished["status"], json!("succeeded"));
    assert_eq!(finished["result"], done["tool_response"], "{finished}");

    // A call that failed is recorded as failed, with its error.
    let edit = pre_tool_use(
        "Edit",
        json!({"file_path": "/work/app/src/lib.rs", "old_string": "a", "new_string": "b"}),
        "toolu_edit",
    );
    assert_eq!(decision(&run(&s, "claude-code", &[], &edit).1).0, "allow");
    let failure = json!({"session_id": "session-1", "cwd": "/work/app", "hook_event_name": "PostToolUseFailure",
                         "tool_name": "Edit", "tool_input": edit["tool_input"], "tool_use_id": "toolu_edit",
                         "error": "String to replace not found in file."});
    assert_eq!(run(&s, "claude-code", &[], &failure).0, 0);
    let failed = action_with(&s, "/work/app/src/lib.rs");
    assert_eq!(failed["status"], json!("failed"));
    assert_eq!(
        failed["reason"],
        json!("String to replace not found in file.")
    );

    // Files of calls that never reported are swept after a day, with their empty sessions.
    let state = s.dir.path().join("hook-state/claude-code");
    std::fs::create_dir_all(state.join("old-session")).unwrap();
    let stale = state.join("old-session/toolu_gone");
    std::fs::write(&stale, "some-action").unwrap();
    for path in [&stale, &state.join(".swept")] {
        let touched = std::process::Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(path)
            .status()
            .unwrap();
        assert!(touched.success());
    }
    let fresh = pre_tool_use(
        "Read",
        json!({"file_path": "/work/app/b.rs"}),
        "toolu_fresh",
    );
    assert_eq!(decision(&run(&s, "claude-code", &[], &fresh).1).0, "allow");
    assert!(!stale.exists() && !state.join("old-session").exists());
    assert!(state.join("session-1/toolu_fresh").exists());

    // An outcome for a call the hook never saw is said, not invented.
    let mut unknown = done.clone();
    unknown["tool_use_id"] = json!("toolu_never_seen");
    let (code, _, stderr) = run(&s, "claude-code", &[], &unknown);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no Faramesh action is known for tool call toolu_never_seen"),
        "{stderr}"
    );
}

/// Ids the agent sends name files in the hook's state folder; ids made to climb out of it
/// (`../`, absolute paths) are hashed into plain names, and the outcome is still recorded.
#[test]
fn hostile_session_and_call_ids_never_reach_outside_the_state_folder() {
    let s = server();
    let outside = s.dir.path().join("escaped");
    let mut read = pre_tool_use(
        "Read",
        json!({"file_path": "/work/app/c.rs"}),
        "../../escaped/call",
    );
    read["session_id"] = json!("../../escaped");
    assert_eq!(decision(&run(&s, "claude-code", &[], &read).1).0, "allow");
    assert!(
        !outside.exists(),
        "nothing was written outside the state folder"
    );
    let state = s.dir.path().join("hook-state/claude-code");
    let sessions: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0].len() == 64 && sessions[0].bytes().all(|b| b.is_ascii_hexdigit()),
        "{sessions:?}"
    );
    let hashed = |name: &str| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let calls: Vec<String> = std::fs::read_dir(state.join(&sessions[0]))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(calls.len() == 1 && hashed(&calls[0]), "{calls:?}");
    assert!(!s.dir.path().join("hook-state/escaped").exists());

    let mut done = read.clone();
    done["hook_event_name"] = json!("PostToolUse");
    done["tool_response"] = json!({"ok": true});
    let (code, _, stderr) = run(&s, "claude-code", &[], &done);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        action_with(&s, "/work/app/c.rs")["status"],
        json!("succeeded")
    );
}

#[test]
fn claude_code_secrets_are_denied_with_the_reason_shown_to_the_model() {
    let s = server();
    let (code, answer, _) = run(
        &s,
        "claude-code",
        &[],
        &pre_tool_use(
            "Bash",
            json!({"command": "cat .env", "description": "Show env"}),
            "toolu_env",
        ),
    );
    assert_eq!(code, 0);
    assert_eq!(
        decision(&answer),
        (
            "deny",
            "Faramesh denied this call: Secrets are off limits to the coding agent"
        )
    );
    assert_eq!(action_with(&s, "cat .env")["status"], json!("denied"));
}

#[test]
fn claude_code_approvals_are_asked_in_the_agent_or_waited_for_in_faramesh() {
    let s = server();
    // Without --wait the agent's own prompt decides, and Faramesh withdraws its request.
    let push = pre_tool_use(
        "Bash",
        json!({"command": "git push origin main"}),
        "toolu_push_1",
    );
    let (_, answer, _) = run(&s, "claude-code", &[], &push);
    let (ask, reason) = decision(&answer);
    assert_eq!(ask, "ask");
    assert_eq!(
        reason,
        "Faramesh requires approval for this call: Pushes and deploys need a human"
    );
    let withdrawn = action_with(&s, "git push origin main");
    assert_eq!(withdrawn["status"], json!("denied"));
    assert!(
        withdrawn["reason"].as_str().unwrap().contains("--wait 0"),
        "{withdrawn}"
    );

    // With --wait the hook answers once a human approves in Faramesh, then records the outcome.
    let push = pre_tool_use(
        "Bash",
        json!({"command": "git push origin release"}),
        "toolu_push_2",
    );
    let child = spawn(&s, "claude-code", &["--wait", "60"], &push);
    let pending = pending_with(&s, "git push origin release");
    decide(&s, pending["id"].as_str().unwrap(), true, "release day");
    let (allow, reason) = {
        let answer = answer_of(child);
        let (a, r) = decision(&answer);
        (a.to_owned(), r.to_owned())
    };
    assert_eq!(allow, "allow");
    assert!(
        reason.starts_with("Approved in Faramesh: release day"),
        "{reason}"
    );
    let mut pushed = push.clone();
    pushed["hook_event_name"] = json!("PostToolUse");
    pushed["tool_response"] = json!({"stdout": "ok", "stderr": "", "interrupted": false});
    assert_eq!(run(&s, "claude-code", &[], &pushed).0, 0);
    let done = action(&s, pending["id"].as_str().unwrap());
    assert_eq!(done["status"], json!("succeeded"));

    // A human's denial reaches the model.
    let deploy = pre_tool_use(
        "Bash",
        json!({"command": "kubectl apply -f prod.yaml"}),
        "toolu_deploy",
    );
    let child = spawn(&s, "claude-code", &["--wait", "60"], &deploy);
    let pending = pending_with(&s, "kubectl apply -f prod.yaml");
    decide(
        &s,
        pending["id"].as_str().unwrap(),
        false,
        "not during the freeze",
    );
    let answer = answer_of(child);
    assert_eq!(
        decision(&answer),
        ("deny", "Faramesh denied this call: not during the freeze")
    );

    // Nobody decides in time: denied, and the request is taken back.
    let publish = pre_tool_use("Bash", json!({"command": "npm publish"}), "toolu_publish");
    let (_, answer, _) = run(&s, "claude-code", &["--wait", "1"], &publish);
    let (deny, reason) = decision(&answer);
    assert_eq!(deny, "deny");
    assert!(
        reason.starts_with("Nobody approved this call in Faramesh within 1 s"),
        "{reason}"
    );
    let expired = action_with(&s, "npm publish");
    assert_eq!(expired["status"], json!("denied"));
    assert!(
        expired["reason"]
            .as_str()
            .unwrap()
            .contains("No decision within 1 s"),
        "{expired}"
    );
}

#[test]
fn the_hook_fails_closed() {
    let s = server();
    let read = pre_tool_use("Read", json!({"file_path": "/work/app/a.rs"}), "toolu_a");
    // A server that is not there: denied, or left to the agent's prompt when asked to.
    for (args, expected) in [(&[][..], "deny"), (&["--on-unreachable", "ask"][..], "ask")] {
        let out = Command::cargo_bin("faramesh")
            .unwrap()
            .env_remove("FARAMESH_TOKEN")
            .env("FARAMESH_HOOK_STATE_DIR", s.dir.path().join("hook-state"))
            .args(["--url", "http://127.0.0.1:1", "hook", "claude-code"])
            .args(args)
            .write_stdin(read.to_string())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (what, reason) = decision(&answer);
        assert_eq!(what, expected);
        assert!(
            reason.starts_with("Faramesh at http://127.0.0.1:1 cannot be asked"),
            "{reason}"
        );
    }
    // Input that is not a hook payload: exit 2, which Claude Code takes as a refusal.
    for bad in ["not json", "[]", r#"{"hook_event_name": "PreToolUse"}"#] {
        let out = hook(&s, "claude-code", &[])
            .write_stdin(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("the call is refused"));
    }
    // Cursor lets a call through when its hook fails, so the refusal is in the answer.
    let (code, answer, _) = run(
        &s,
        "cursor",
        &[],
        &json!({"hook_event_name": "beforeShellExecution"}),
    );
    assert_eq!(code, 0);
    assert_eq!(answer["permission"], json!("deny"));
    assert!(answer["agent_message"]
        .as_str()
        .unwrap()
        .contains("has no command"));
    // Events that decide nothing are answered with nothing.
    let (code, answer, _) = run(
        &s,
        "claude-code",
        &[],
        &json!({"hook_event_name": "Stop", "session_id": "s"}),
    );
    assert_eq!((code, answer), (0, Value::Null));
}

#[test]
fn cursor_shell_mcp_and_file_reads_are_decided() {
    let s = server();
    let base = json!({"conversation_id": "conv-1", "generation_id": "gen-1", "workspace_roots": ["/work/app"]});
    let with = |fields: Value| {
        let mut payload = base.clone();
        payload
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        payload
    };
    let (_, answer, _) = run(
        &s,
        "cursor",
        &[],
        &with(
            json!({"hook_event_name": "beforeShellExecution", "command": "cargo test", "cwd": "/work/app"}),
        ),
    );
    assert_eq!(answer["permission"], json!("allow"));
    let (_, answer, _) = run(
        &s,
        "cursor",
        &[],
        &with(
            json!({"hook_event_name": "beforeShellExecution", "command": "rm -rf ~", "cwd": "/work/app"}),
        ),
    );
    assert_eq!(answer["permission"], json!("deny"));
    assert_eq!(
        answer["agent_message"],
        json!("Faramesh denied this call: Recursive delete outside the project is blocked")
    );
    assert_eq!(answer["user_message"], answer["agent_message"]);
    let (_, answer, _) = run(
        &s,
        "cursor",
        &[],
        &with(
            json!({"hook_event_name": "beforeReadFile", "file_path": "/work/app/.env", "content": "TOKEN=hunter2"}),
        ),
    );
    assert_eq!(answer, json!({"permission": "deny"}));
    let (_, answer, _) = run(
        &s,
        "cursor",
        &[],
        &with(
            json!({"hook_event_name": "beforeMCPExecution", "tool_name": "create_issue", "tool_input": "{\"title\": \"bug\"}", "command": "npx github-mcp"}),
        ),
    );
    assert_eq!(answer["permission"], json!("ask"));

    let shell = action_with(&s, "cargo test");
    assert_eq!(
        (shell["tool"].as_str(), shell["operation"].as_str()),
        (Some("cursor"), Some("shell"))
    );
    assert_eq!(shell["agent_id"], json!("cursor"));
    assert_eq!(shell["context"]["conversation_id"], json!("conv-1"));
    let read = action_with(&s, "/work/app/.env");
    assert_eq!(read["operation"], json!("read_file"));
    assert!(
        !read.to_string().contains("hunter2"),
        "the file's content is never recorded"
    );
    let mcp = action_with(&s, "bug");
    assert_eq!(mcp["operation"], json!("mcp__create_issue"));
    assert_eq!(mcp["params"], json!({"title": "bug"}));
}

#[test]
fn install_adds_the_hook_once_keeps_other_settings_and_the_installed_command_works() {
    let s = server();
    let project = tempfile::TempDir::new().unwrap();
    let settings = project.path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"model": "opus", "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint.sh"}]}]}}"#,
    )
    .unwrap();
    let install = |dir: &Path, args: &[&str]| {
        Command::cargo_bin("faramesh")
            .unwrap()
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("HOME", dir.join("home"))
            .args(["--url", &s.url, "hook", "install"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = install(project.path(), &["claude-code", "--wait", "120"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added the Faramesh hook to "));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(written["model"], json!("opus"));
    let pre = written["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0]["hooks"][0]["command"], json!("./lint.sh"));
    assert_eq!(pre[1]["matcher"], json!("*"));
    assert_eq!(pre[1]["hooks"][0]["timeout"], json!(150));
    let command = pre[1]["hooks"][0]["command"].as_str().unwrap().to_owned();
    assert!(
        command.ends_with(&format!("--url {} hook claude-code --wait 120", s.url)),
        "{command}"
    );
    for event in ["PostToolUse", "PostToolUseFailure"] {
        assert_eq!(
            written["hooks"][event][0]["hooks"][0]["command"],
            json!(command)
        );
    }

    // Again: nothing changes.
    let before = std::fs::read_to_string(&settings).unwrap();
    let out = install(project.path(), &["claude-code", "--wait", "120"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already in"));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), before);

    // The installed command, run by a shell the way Claude Code runs it, answers.
    let read = pre_tool_use(
        "Read",
        json!({"file_path": "/work/app/Cargo.toml"}),
        "toolu_installed",
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .env_remove("FARAMESH_TOKEN")
        .env("FARAMESH_HOOK_STATE_DIR", s.dir.path().join("hook-state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(read.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision(&answer).0, "allow");

    // The user's Cursor hooks, from HOME.
    let out = install(project.path(), &["cursor", "--user", "--wait", "0"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cursor: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join("home/.cursor/hooks.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cursor["version"], json!(1));
    for event in [
        "beforeShellExecution",
        "beforeMCPExecution",
        "beforeReadFile",
    ] {
        let command = cursor["hooks"][event][0]["command"].as_str().unwrap();
        assert!(command.ends_with("hook cursor --wait 0"), "{command}");
    }

    // A settings file that is not JSON is left alone.
    let broken = tempfile::TempDir::new().unwrap();
    std::fs::create_dir_all(broken.path().join(".claude")).unwrap();
    std::fs::write(broken.path().join(".claude/settings.json"), "{ not json").unwrap();
    let out = install(broken.path(), &["claude-code"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is not valid JSON"));
    assert_eq!(
        std::fs::read_to_string(broken.path().join(".claude/settings.json")).unwrap(),
        "{ not json"
    );
}
