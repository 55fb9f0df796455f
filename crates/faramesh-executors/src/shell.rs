//! The `shell` executor: `sh -c <cmd>` under a supervisor that ends the command's whole
//! process tree (see `supervisor`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::supervisor::{become_supervisor, Lifeline};
use crate::{duration_ms, timeout_message, CappedBuf, ExecOutcome, Limits};

pub(crate) async fn run(params: &Map<String, Value>, limits: &Limits) -> ExecOutcome {
    let spec = match ShellSpec::from_params(params) {
        Ok(spec) => spec,
        Err(error) => return ExecOutcome::failed(error),
    };
    let started = Instant::now();
    let start_failed = |error: String| ExecOutcome::Failed {
        error,
        output: json!({ "duration_ms": duration_ms(started.elapsed()) }),
    };

    let lifeline = match Lifeline::new() {
        Ok(lifeline) => lifeline,
        Err(e) => return start_failed(format!("failed to start sh: cannot create a pipe: {e}")),
    };
    let lifeline_read = lifeline.read.as_raw_fd();

    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(spec.cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The supervisor gets a group of its own, as the command had before it: signals
        // aimed at the server's group (a terminal's Ctrl-C) leave running actions to the
        // server's shutdown. `sh` makes a further group of its own.
        .process_group(0);
    if let Some(cwd) = spec.cwd {
        command.current_dir(cwd);
    }
    command.envs(spec.env);
    // SAFETY: become_supervisor only makes async-signal-safe system calls, as required
    // between fork and exec, and `lifeline_read` stays open in the server until spawn has
    // returned (it is dropped below), so the child inherits it.
    #[allow(
        unsafe_code,
        reason = "pre_exec is unsafe by contract; see the SAFETY note"
    )]
    unsafe {
        command.pre_exec(move || become_supervisor(lifeline_read));
    }

    // The spawned process is the supervisor; `sh` is its child. Not `kill_on_drop`: a
    // SIGKILLed supervisor could not clean up, and the command's processes would be
    // reparented to init. Dropping the guard below stops it properly instead.
    let spawned = command.spawn();
    let Lifeline { read, write } = lifeline;
    drop(read);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return start_failed(format!("failed to start sh: {e}")),
    };
    // Declared after `child` so it drops first: the supervisor is signalled while it is
    // still unreaped, so its pid cannot have been reused.
    let mut tree = TreeGuard::new(write, child.id());

    let mut stdout = CappedBuf::new(limits.max_output_bytes);
    let mut stderr = CappedBuf::new(limits.max_output_bytes);
    let stdout_pipe = child.stdout.take();
    let stderr_pipe = child.stderr.take();

    let finished = tokio::time::timeout(limits.timeout, async {
        let wait = async {
            // The supervisor exits only once `sh` has ended and everything it left
            // behind (which could keep the pipes below open and would run unsupervised
            // after the action is reported as done) has been killed and reaped.
            let status = child.wait().await;
            if status.is_ok() {
                tree.reaped();
            }
            status
        };
        let (status, (), ()) = tokio::join!(
            wait,
            drain(stdout_pipe, &mut stdout),
            drain(stderr_pipe, &mut stderr)
        );
        status
    })
    .await;

    let status = match finished {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(e)) => Err(format!("failed to wait for sh: {e}")),
        Err(_elapsed) => {
            tree.end();
            // The supervisor now SIGKILLs the whole tree, reaps it, and exits, so this
            // returns promptly; waiting means nothing the command started still runs when
            // the outcome is reported, and reaping the supervisor leaves no zombie.
            let status = child.wait().await.ok();
            let output = shell_output(status, &stdout, &stderr, started);
            return ExecOutcome::TimedOut {
                error: timeout_message(limits.timeout),
                output,
            };
        }
    };

    match status {
        Ok(status) => {
            let output = shell_output(Some(status), &stdout, &stderr, started);
            match (status.code(), status.signal()) {
                (Some(0), _) => ExecOutcome::Succeeded { output },
                (Some(code), _) => ExecOutcome::Failed {
                    error: format!("exit code {code}"),
                    output,
                },
                (None, Some(signal)) => ExecOutcome::Failed {
                    error: format!("killed by signal {signal}"),
                    output,
                },
                (None, None) => ExecOutcome::Failed {
                    error: format!("sh ended abnormally: {status}"),
                    output,
                },
            }
        }
        Err(error) => ExecOutcome::Failed {
            error,
            output: shell_output(None, &stdout, &stderr, started),
        },
    }
}

struct ShellSpec<'a> {
    cmd: &'a str,
    cwd: Option<&'a str>,
    env: Vec<(&'a str, &'a str)>,
}

impl<'a> ShellSpec<'a> {
    fn from_params(params: &'a Map<String, Value>) -> Result<ShellSpec<'a>, String> {
        let cmd = match params.get("cmd").and_then(Value::as_str) {
            Some(cmd) if !cmd.trim().is_empty() => cmd,
            _ => return Err("params.cmd must be a non-empty string".to_string()),
        };
        if cmd.contains('\0') {
            return Err("params.cmd must not contain a NUL byte".to_string());
        }

        let cwd = match params.get("cwd") {
            None | Some(Value::Null) => None,
            Some(Value::String(cwd)) => {
                // Checked up front because a spawn failure would only say
                // "No such file or directory" without telling which path.
                match std::fs::metadata(cwd) {
                    Ok(meta) if meta.is_dir() => Some(cwd.as_str()),
                    Ok(_) => return Err(format!("params.cwd {cwd:?} is not a directory")),
                    Err(e) => {
                        return Err(format!("params.cwd directory {cwd:?} does not exist: {e}"))
                    }
                }
            }
            Some(_) => return Err("params.cwd must be a string".to_string()),
        };

        let env = match params.get("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(vars)) => {
                let mut env = Vec::with_capacity(vars.len());
                for (key, value) in vars {
                    if key.is_empty() || key.contains(['=', '\0']) {
                        return Err(format!(
                            "params.env key {key:?} is not a valid variable name"
                        ));
                    }
                    match value.as_str() {
                        Some(v) if !v.contains('\0') => env.push((key.as_str(), v)),
                        Some(_) => {
                            return Err(format!("params.env.{key} must not contain a NUL byte"))
                        }
                        None => return Err(format!("params.env.{key} must be a string")),
                    }
                }
                env
            }
            Some(_) => return Err("params.env must be an object of string values".to_string()),
        };

        Ok(ShellSpec { cmd, cwd, env })
    }
}

/// Reads a pipe to its end, keeping at most the cap. Reading continues past
/// the cap so the child never blocks writing to a full pipe.
async fn drain<R: AsyncRead + Unpin>(pipe: Option<R>, buf: &mut CappedBuf) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.push(chunk.get(..n).unwrap_or(&chunk)),
        }
    }
}

fn shell_output(
    status: Option<ExitStatus>,
    stdout: &CappedBuf,
    stderr: &CappedBuf,
    started: Instant,
) -> Value {
    json!({
        "exit_code": status.and_then(|s| s.code()),
        "stdout": stdout.to_text(),
        "stderr": stderr.to_text(),
        "stdout_truncated": stdout.truncated,
        "stderr_truncated": stderr.truncated,
        "duration_ms": duration_ms(started.elapsed()),
    })
}

/// Ends the command's process tree when dropped (a cancelled `execute` future) or told to
/// (the timeout), by asking the supervisor to.
struct TreeGuard {
    /// The server's end of the lifeline: the supervisor ends the tree once it is closed,
    /// which also happens when the server dies.
    lifeline: Option<OwnedFd>,
    supervisor: Option<Pid>,
}

impl TreeGuard {
    fn new(lifeline: OwnedFd, child_pid: Option<u32>) -> Self {
        let supervisor = child_pid
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|&pid| pid > 0)
            .map(Pid::from_raw);
        TreeGuard {
            lifeline: Some(lifeline),
            supervisor,
        }
    }

    /// Asks the supervisor to kill the tree and exit. Closing the lifeline is enough on its
    /// own; SIGTERM is sent too because a process the server was forking at that moment may
    /// briefly hold a copy of the lifeline and so keep it open.
    fn end(&mut self) {
        self.lifeline = None;
        if let Some(pid) = self.supervisor.take() {
            // ESRCH (already gone) is the expected, harmless case.
            let _ = kill(pid, Signal::SIGTERM);
        }
    }

    /// The supervisor has exited and been reaped: its pid may be reused, so it must not be
    /// signalled any more.
    fn reaped(&mut self) {
        self.supervisor = None;
        self.lifeline = None;
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        self.end();
    }
}
