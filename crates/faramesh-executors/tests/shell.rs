#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use faramesh_executors::{execute, AllowedNetworks, ExecOutcome, ExecutorKind, Limits};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{json, Map, Value};

mod common;
use common::{failed, limits, params, succeeded, text};

async fn run(value: Value, limits: &Limits) -> ExecOutcome {
    run_params(&params(value), limits).await
}

async fn run_params(params: &Map<String, Value>, limits: &Limits) -> ExecOutcome {
    execute(
        ExecutorKind::Shell,
        "run",
        params,
        limits,
        &AllowedNetworks::none(),
    )
    .await
}

/// A fresh directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "faramesh-executors-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True once `pid` no longer runs. A zombie counts as gone: it has been
/// killed and only waits for whoever inherited it (the container's init,
/// which may be slow to reap or never do so) to collect its status.
fn process_gone(pid: Pid) -> bool {
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

/// Bounded wait for a condition that another process brings about.
async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// True once `pid` has ended and been reaped: no process and no zombie. Whatever a command
/// started is reaped by the executor's own supervisor, never left to init.
fn reaped(pid: Pid) -> bool {
    kill(pid, None) == Err(Errno::ESRCH)
}

fn read_pid(file: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(file).ok()?;
    // The trailing newline shows `echo` finished writing.
    let line = text.strip_suffix('\n')?;
    line.trim().parse().ok().map(Pid::from_raw)
}

#[tokio::test]
async fn echo_succeeds_with_stdout() {
    let output = succeeded(run(json!({"cmd": "echo hello"}), &limits()).await);
    assert_eq!(text(&output, "stdout"), "hello\n");
    assert_eq!(text(&output, "stderr"), "");
    assert_eq!(output["exit_code"], json!(0));
    assert_eq!(output["stdout_truncated"], json!(false));
    assert_eq!(output["stderr_truncated"], json!(false));
    assert!(output["duration_ms"].is_number(), "{output}");
}

#[tokio::test]
async fn stderr_is_captured_separately() {
    let output = succeeded(run(json!({"cmd": "echo out; echo oops >&2"}), &limits()).await);
    assert_eq!(text(&output, "stdout"), "out\n");
    assert_eq!(text(&output, "stderr"), "oops\n");
}

#[tokio::test]
async fn nonzero_exit_fails_with_exit_code() {
    let (error, output) = failed(run(json!({"cmd": "echo partial; exit 3"}), &limits()).await);
    assert_eq!(error, "exit code 3");
    assert_eq!(output["exit_code"], json!(3));
    assert_eq!(text(&output, "stdout"), "partial\n");
}

#[tokio::test]
async fn killed_by_signal_fails_with_signal_number() {
    let (error, output) = failed(run(json!({"cmd": "kill -9 $$"}), &limits()).await);
    assert_eq!(error, "killed by signal 9");
    assert_eq!(output["exit_code"], Value::Null);
}

#[tokio::test]
async fn missing_empty_or_non_string_cmd_fails() {
    for value in [
        json!({}),
        json!({"cmd": ""}),
        json!({"cmd": "   "}),
        json!({"cmd": 5}),
        json!({"cmd": null}),
    ] {
        let (error, _) = failed(run(value.clone(), &limits()).await);
        assert_eq!(
            error, "params.cmd must be a non-empty string",
            "for {value}"
        );
    }
}

#[tokio::test]
async fn env_and_cwd_are_applied() {
    let dir = TempDir::new();
    let cwd = dir.path().to_str().expect("temp path is UTF-8");
    let output = succeeded(
        run(
            json!({"cmd": "echo $FOO; pwd -P", "cwd": cwd, "env": {"FOO": "bar baz"}}),
            &limits(),
        )
        .await,
    );
    let real = dir.path().canonicalize().expect("canonical temp dir");
    assert_eq!(
        text(&output, "stdout"),
        format!("bar baz\n{}\n", real.display())
    );
}

#[tokio::test]
async fn env_adds_to_the_inherited_environment() {
    let output = succeeded(
        run(
            json!({"cmd": "test -n \"$PATH\" && echo $FOO", "env": {"FOO": "x"}}),
            &limits(),
        )
        .await,
    );
    assert_eq!(text(&output, "stdout"), "x\n");
}

#[tokio::test]
async fn a_shell_that_cannot_be_executed_is_a_start_failure() {
    // `sh` is looked up in the command's own PATH, which holds no shell here: the exec fails
    // under the supervisor and is still reported as the spawn's failure.
    let (error, output) = failed(
        run(
            json!({"cmd": "true", "env": {"PATH": "/nonexistent"}}),
            &limits(),
        )
        .await,
    );
    assert!(error.starts_with("failed to start sh: "), "{error}");
    assert!(error.contains("No such file"), "{error}");
    assert!(output["duration_ms"].is_number(), "{output}");
}

#[tokio::test]
async fn missing_cwd_fails_naming_it() {
    let dir = TempDir::new();
    let missing = dir.path().join("no-such-dir");
    let missing = missing.to_str().expect("temp path is UTF-8");
    let (error, _) = failed(run(json!({"cmd": "true", "cwd": missing}), &limits()).await);
    assert!(error.contains(missing), "{error}");
}

#[tokio::test]
async fn non_string_env_value_fails_naming_the_key() {
    let (error, _) = failed(
        run(
            json!({"cmd": "true", "env": {"OK": "1", "COUNT": 3}}),
            &limits(),
        )
        .await,
    );
    assert!(error.contains("COUNT"), "{error}");

    let (error, _) = failed(run(json!({"cmd": "true", "env": "FOO=1"}), &limits()).await);
    assert!(error.contains("params.env"), "{error}");
}

#[tokio::test]
async fn output_is_capped_and_the_child_still_finishes() {
    let limits = Limits {
        timeout: Duration::from_secs(60),
        max_output_bytes: 1000,
    };
    // 200 kB is far beyond a pipe buffer: this only finishes if reading
    // goes on past the cap.
    let output = succeeded(run(json!({"cmd": "yes | head -c 200000"}), &limits).await);
    assert_eq!(text(&output, "stdout").len(), 1000);
    assert_eq!(output["stdout_truncated"], json!(true));
    assert_eq!(output["stderr_truncated"], json!(false));
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    let cmd = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
    let limits = Limits {
        timeout: Duration::from_millis(300),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    };

    let outcome = run(json!({ "cmd": cmd }), &limits).await;
    match &outcome {
        ExecOutcome::TimedOut { error, output } => {
            assert_eq!(error, "timed out after 300 ms");
            assert_eq!(output["exit_code"], Value::Null);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }

    let sleeper = read_pid(&pid_file).expect("the shell wrote the background pid");
    assert!(
        wait_until(|| process_gone(sleeper)).await,
        "background sleep {sleeper} survived the timeout"
    );
}

#[tokio::test]
async fn dropping_the_future_kills_the_whole_process_group() {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    let cmd = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
    let limits = limits();
    let params = params(json!({ "cmd": cmd }));

    // Boxed so that `drop` below really drops the future, not a pin.
    let mut execution = Box::pin(run_params(&params, &limits));
    let sleeper = tokio::select! {
        outcome = &mut execution => panic!("command ended before being cancelled: {outcome:?}"),
        started = wait_until(|| read_pid(&pid_file).is_some()) => {
            assert!(started, "the shell never wrote the background pid");
            read_pid(&pid_file).expect("pid file was complete")
        }
    };
    drop(execution);

    assert!(
        wait_until(|| process_gone(sleeper)).await,
        "background sleep {sleeper} survived cancellation"
    );
}

#[tokio::test]
async fn background_jobs_do_not_outlive_a_finished_command() {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    // The sleeper inherits stdout and outlasts the executor's timeout, so
    // without cleanup after the shell exits this would end as TimedOut.
    let cmd = format!("sleep 3600 & echo $! > '{}'; echo done", pid_file.display());
    let output = succeeded(run(json!({ "cmd": cmd }), &limits()).await);
    assert_eq!(text(&output, "stdout"), "done\n");

    let sleeper = read_pid(&pid_file).expect("the shell wrote the background pid");
    assert!(
        wait_until(|| process_gone(sleeper)).await,
        "background sleep {sleeper} outlived the command"
    );
}

fn seconds(secs: u64) -> Limits {
    Limits {
        timeout: Duration::from_secs(secs),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    }
}

/// A shell snippet that starts `sleep 1000` in a session of its own (so outside the shell's
/// process group), writes its pid to `pid_file`, and only then goes on.
fn detached_sleeper(pid_file: &Path) -> String {
    let file = pid_file.display();
    format!(
        "setsid sh -c 'echo $$ > {file}; exec sleep 1000' </dev/null >/dev/null 2>&1 & \
         while [ ! -s {file} ]; do sleep 0.01; done"
    )
}

#[tokio::test]
async fn timeout_ends_a_child_that_left_the_session() {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    let file = pid_file.display();
    let cmd = format!("setsid sh -c 'echo $$ > {file}; exec sleep 1000' & sleep 1000");

    let outcome = run(json!({ "cmd": cmd }), &seconds(1)).await;
    match &outcome {
        ExecOutcome::TimedOut { error, output } => {
            assert_eq!(error, "timed out after 1 s");
            assert_eq!(output["exit_code"], Value::Null);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }

    let detached = read_pid(&pid_file).expect("the detached child wrote its pid");
    assert!(
        wait_until(|| reaped(detached)).await,
        "the detached sleep {detached} survived the timeout"
    );
}

#[tokio::test]
async fn a_double_forked_daemon_does_not_outlive_a_finished_command() {
    let dir = TempDir::new();
    let pid_file = dir.path().join("pid");
    let file = pid_file.display();
    // setsid's shell backgrounds the daemon and exits at once: the daemon is orphaned,
    // in a session and process group of its own, with its stdio away from the pipes.
    let cmd = format!(
        "setsid sh -c 'sh -c \"echo \\$\\$ > {file}; exec sleep 1000\" &' \
         </dev/null >/dev/null 2>&1 & \
         while [ ! -s {file} ]; do sleep 0.01; done; echo started; exit 0"
    );

    let output = succeeded(run(json!({ "cmd": cmd }), &limits()).await);
    assert_eq!(output["exit_code"], json!(0));
    assert_eq!(text(&output, "stdout"), "started\n");

    let daemon = read_pid(&pid_file).expect("the daemon wrote its pid");
    assert!(
        wait_until(|| reaped(daemon)).await,
        "the daemon {daemon} outlived the command"
    );
}

#[tokio::test]
async fn exit_codes_and_signals_pass_through_the_supervisor() {
    let dir = TempDir::new();
    let cases = [
        ("exit 7", "exit code 7", json!(7)),
        ("exit 255", "exit code 255", json!(255)),
        ("kill -TERM $$", "killed by signal 15", Value::Null),
        ("kill -KILL $$", "killed by signal 9", Value::Null),
        // A signal that dumps core: reported the same, without a core file.
        ("kill -SEGV $$", "killed by signal 11", Value::Null),
    ];
    for (index, (end, error_text, exit_code)) in cases.into_iter().enumerate() {
        let pid_file = dir.path().join(format!("pid-{index}"));
        // A detached child is left behind each time: ending it must not change the status.
        let cmd = format!("{}; {end}", detached_sleeper(&pid_file));
        let (error, output) = failed(
            run(
                json!({ "cmd": cmd, "cwd": dir.path().to_str().expect("temp path is UTF-8") }),
                &limits(),
            )
            .await,
        );
        assert_eq!(error, error_text, "for {end:?}");
        assert_eq!(output["exit_code"], exit_code, "for {end:?}");

        let detached = read_pid(&pid_file).expect("the detached child wrote its pid");
        assert!(
            wait_until(|| reaped(detached)).await,
            "the detached sleep {detached} outlived {end:?}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read temp dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .filter(|name| !name.to_string_lossy().starts_with("pid-"))
        .collect();
    assert!(left.is_empty(), "unexpected files (core dumps?): {left:?}");
}

#[tokio::test]
async fn nothing_is_left_unreaped_when_the_outcome_is_returned() {
    let dir = TempDir::new();
    for (limits, end) in [(seconds(60), "exit 0"), (seconds(1), "sleep 1000")] {
        let pid_file = dir.path().join("pid");
        let ids_file = dir.path().join("ids");
        let _ = std::fs::remove_file(&pid_file);
        let ids = ids_file.display();
        let cmd = format!(
            "echo $$ $PPID > {ids}; {}; {end}",
            detached_sleeper(&pid_file)
        );
        let _ = run(json!({ "cmd": cmd }), &limits).await;

        // Checked at once, without waiting: by the time the outcome exists, the shell, the
        // detached child and the process between them and the executor are all reaped.
        let ids = std::fs::read_to_string(&ids_file).expect("the shell wrote its ids");
        let mut ids = ids
            .split_whitespace()
            .map(|id| Pid::from_raw(id.parse().unwrap_or_else(|e| panic!("pid {id:?}: {e}"))));
        let (Some(shell), Some(parent)) = (ids.next(), ids.next()) else {
            panic!("expected the shell's pid and its parent's pid");
        };
        let detached = read_pid(&pid_file).expect("the detached child wrote its pid");
        assert_ne!(parent, Pid::this(), "sh should run under a supervisor");
        for (what, pid) in [
            ("sh", shell),
            ("supervisor", parent),
            ("detached", detached),
        ] {
            assert!(reaped(pid), "{what} {pid} is still there after {end:?}");
        }
    }
}
