//! A shell command's whole process tree, including children that left its session or process
//! group, ends at the timeout, and when the server itself dies: nothing an approved command
//! started keeps running unsupervised.

use std::path::Path;

use crate::harness::{wait_until, Serve, Server};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{json, Value};

/// Submits a shell command, approves it with the token from the submission answer, and
/// starts it; returns the action id.
async fn approve_and_start(server: &Server, cmd: &str, context: Value) -> String {
    let (status, action) = server
        .submit(json!({"agent_id": "a", "tool": "shell", "operation": "run",
            "params": {"cmd": cmd}, "context": context}))
        .await;
    assert_eq!(action["status"], "pending_approval", "{status}: {action}");
    let id = server.approve(&action).await;
    let (status, answer) = server.start(&id).await;
    assert_eq!(status, 200, "{answer}");
    id
}

/// A command that starts `sleep 1000` in a new session (out of the shell's process group),
/// which writes its pid to `pid_file`, and then sleeps itself.
fn detached_sleeper(pid_file: &Path) -> String {
    format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 1000' </dev/null >/dev/null 2>&1 & sleep 1000",
        pid_file.display()
    )
}

fn read_pid(file: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(file).ok()?;
    // The trailing newline shows `echo` finished writing.
    let line = text.strip_suffix('\n')?;
    line.trim().parse().ok().map(Pid::from_raw)
}

/// True once `pid` no longer runs. A zombie counts as gone: when the server is killed, what
/// is left of the command is reparented to the container's init, which may never reap it.
fn gone(pid: Pid) -> bool {
    match kill(pid, None) {
        Err(Errno::ESRCH) => true,
        _ => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false),
    }
}

#[tokio::test]
async fn a_detached_child_ends_with_the_timed_out_command() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pid_file = dir.path().join("detached.pid");
    let server = Serve::default().start(dir.path());

    let id = approve_and_start(&server, &detached_sleeper(&pid_file), json!({"timeout": 1})).await;
    let finished = server.wait_finished(&id).await;
    assert_eq!(finished["status"], "timeout", "{finished}");

    // Checked at once: the outcome is recorded only after the whole tree has ended.
    let detached = read_pid(&pid_file).expect("the detached child wrote its pid");
    assert!(
        gone(detached),
        "the detached sleep {detached} outlived the timed-out action"
    );
}

#[tokio::test]
async fn a_detached_child_ends_when_the_server_dies() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pid_file = dir.path().join("detached.pid");
    let mut server = Serve::default().start(dir.path());

    let id = approve_and_start(&server, &detached_sleeper(&pid_file), json!({})).await;
    assert!(
        wait_until(|| read_pid(&pid_file).is_some()).await,
        "the command never started its detached child"
    );
    let detached = read_pid(&pid_file).expect("the detached child wrote its pid");
    let (_, action) = server.get(&format!("/v1/actions/{id}")).await;
    assert_eq!(action["status"], "executing", "{action}");

    // SIGKILL: the server gets no chance to clean up after its commands.
    server.child.kill().expect("the server can be killed");
    server.child.wait().expect("the server is reaped");
    assert!(
        wait_until(|| gone(detached)).await,
        "the detached sleep {detached} outlived the server"
    );
}
