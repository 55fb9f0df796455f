//! The `shell` executor: `sh -c <cmd>` in its own process group.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::{duration_ms, timeout_message, CappedBuf, ExecOutcome, Limits};

pub(crate) async fn run(params: &Map<String, Value>, limits: &Limits) -> ExecOutcome {
    let spec = match ShellSpec::from_params(params) {
        Ok(spec) => spec,
        Err(error) => return ExecOutcome::failed(error),
    };
    let started = Instant::now();

    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(spec.cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own lets us kill everything the command started,
        // not just the shell, on timeout or cancellation.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = spec.cwd {
        command.current_dir(cwd);
    }
    command.envs(spec.env);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ExecOutcome::Failed {
                error: format!("failed to start sh: {e}"),
                output: json!({ "duration_ms": duration_ms(started.elapsed()) }),
            }
        }
    };
    // Declared after `child` so it drops first: the group is killed while the
    // shell is still unreaped, so its pid (= pgid) cannot have been reused.
    let mut group = GroupGuard::new(child.id());

    let mut stdout = CappedBuf::new(limits.max_output_bytes);
    let mut stderr = CappedBuf::new(limits.max_output_bytes);
    let stdout_pipe = child.stdout.take();
    let stderr_pipe = child.stderr.take();

    let finished = tokio::time::timeout(limits.timeout, async {
        let wait = async {
            let status = child.wait().await;
            // Background jobs the shell left behind would keep the pipes open
            // (so the reads below would never end) and run unsupervised after
            // the action is reported as done.
            group.kill();
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
            group.kill();
            // The shell got SIGKILL, so this returns promptly; reaping it
            // avoids leaving a zombie behind.
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

/// SIGKILLs the child's process group when dropped, so a cancelled
/// `execute` future does not leave the command's descendants running
/// (`kill_on_drop` alone only reaches the shell itself).
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn new(child_pid: Option<u32>) -> Self {
        let pgid = child_pid
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|&pid| pid > 0)
            .map(Pid::from_raw);
        GroupGuard { pgid }
    }

    /// Kills the group once; later calls (and the drop) do nothing, which
    /// keeps us from signalling a process group id that may since have been
    /// reused.
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (group already gone) is the expected, harmless case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
