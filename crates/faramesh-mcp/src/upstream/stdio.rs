//! An MCP server run as a child process over stdio, in a process group of its own.

use super::{Connected, Stop};
use crate::lines;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::watch;

/// How long the server gets to exit after its input is closed, and after SIGTERM.
pub const EXIT_GRACE: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Set on top of the gateway's own environment.
    pub env: BTreeMap<String, String>,
}

impl Command {
    /// The command line, for messages.
    pub fn text(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Starts `command`; its stderr goes to the gateway's.
pub fn spawn(command: &Command, server: &str) -> std::io::Result<Connected> {
    let mut child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .envs(&command.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so that everything it starts (npx starts node) is stopped
        // with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(std::io::Error::other(
            "its standard input and output could not be connected",
        ));
    };
    let (exit_tx, exit_rx) = watch::channel(None::<String>);
    tokio::spawn(async move {
        let status = match child.wait().await {
            Ok(status) => describe_exit(status),
            Err(e) => format!("could not be waited for ({e})"),
        };
        let _ = exit_tx.send(Some(status));
    });
    let (to_server, _) = lines::writer(server_in);
    let from_server =
        lines::server_reader(server_out, exit_rx.clone(), EXIT_GRACE, server.to_owned());
    Ok(Connected {
        to_server,
        from_server,
        stop: Stop::Process(Stopper {
            group,
            exit: exit_rx,
        }),
    })
}

/// Ends a child: its input is closed once the relay lets go of it; then a grace period,
/// SIGTERM, and SIGKILL, each to its whole process group.
pub struct Stopper {
    group: Option<Pid>,
    exit: watch::Receiver<Option<String>>,
}

impl Stopper {
    pub async fn stop(self) {
        let exited = || {
            let mut exit = self.exit.clone();
            async move { exit.wait_for(Option::is_some).await.is_ok() }
        };
        if tokio::time::timeout(EXIT_GRACE, exited()).await == Ok(true) {
            return;
        }
        let Some(group) = self.group else {
            return;
        };
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(EXIT_GRACE, exited()).await == Ok(true) {
            return;
        }
        let _ = killpg(group, Signal::SIGKILL);
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "exited".to_owned(),
    }
}
