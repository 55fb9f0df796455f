//! The stdio wrapper: the MCP client launches `faramesh mcp wrap -- COMMAND ARGS...` in place of
//! the server; it runs the server as its child and relays the session between them. Only MCP
//! messages are written to its stdout; its logs and the server's go to stderr.

use crate::gate::Gate;
use crate::jsonrpc::Message;
use crate::relay::{FromServer, Options, Relay};
use futures::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::task::TaskTracker;

/// The longest message line accepted from either side (the MCP SDKs' own limit is similar).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How long the server gets to exit after its input is closed, and after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("cannot start the MCP server `{command}`: {reason}")]
    Spawn { command: String, reason: String },
}

/// How the wrapped session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The client closed its side: the normal end.
    ClientLeft,
    /// The server went away; why.
    ServerGone(String),
    /// SIGTERM or SIGINT.
    Signalled,
}

/// Runs `program args` as the MCP server and relays the session on this process's stdin and
/// stdout until the client or the server leaves.
pub async fn wrap<G: Gate>(
    gate: G,
    options: Options,
    program: OsString,
    args: Vec<OsString>,
) -> Result<Ended, WrapError> {
    let command_text = std::iter::once(&program)
        .chain(&args)
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so that everything it starts (npx starts node) is stopped
        // with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| WrapError::Spawn {
            command: command_text.clone(),
            reason: e.to_string(),
        })?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(WrapError::Spawn {
            command: command_text,
            reason: "its standard input and output could not be connected".into(),
        });
    };
    let (exit_tx, exit_rx) = watch::channel(None::<String>);
    tokio::spawn(async move {
        let status = match child.wait().await {
            Ok(status) => describe_exit(status),
            Err(e) => format!("could not be waited for ({e})"),
        };
        let _ = exit_tx.send(Some(status));
    });

    let (to_client, client_written) = writer(tokio::io::stdout());
    let (to_server, _) = writer(server_in);
    let from_client = client_reader(tokio::io::stdin());
    let from_server = server_reader(server_out, exit_rx.clone(), options.server.clone());
    let recording = TaskTracker::new();
    let relay = Relay::new(
        Arc::new(gate),
        options,
        to_client,
        to_server,
        recording.clone(),
    );

    let ended = tokio::select! {
        gone = relay.run(from_client, from_server) => match gone {
            None => Ended::ClientLeft,
            Some(why) => Ended::ServerGone(why),
        },
        () = terminated() => Ended::Signalled,
    };
    // What the client was last told (a crashed call's answer, say) and the outcomes being
    // recorded get a moment to go out; a client that stopped reading does not hold us up.
    recording.close();
    let _ = tokio::time::timeout(FINISH_GRACE, async {
        recording.wait().await;
        let _ = client_written.await;
    })
    .await;
    stop(group, exit_rx).await;
    Ok(ended)
}

/// How long the end of a session waits for its last answers and records.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// Stops the server: its input is already closed (the relay is gone); it gets a grace period,
/// then SIGTERM, then SIGKILL, each to its whole process group.
async fn stop(group: Option<Pid>, exit: watch::Receiver<Option<String>>) {
    let exited = || {
        let mut exit = exit.clone();
        async move { exit.wait_for(Option::is_some).await.is_ok() }
    };
    if tokio::time::timeout(EXIT_GRACE, exited()).await == Ok(true) {
        return;
    }
    let Some(group) = group else {
        return;
    };
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(EXIT_GRACE, exited()).await == Ok(true) {
        return;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "exited".to_owned(),
    }
}

async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A task writing each message as one line, in the order sent; it ends when every sender is
/// gone and all is written.
fn writer<W: AsyncWrite + Unpin + Send + 'static>(
    mut out: W,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let written = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let written = async {
                out.write_all(message.text().as_bytes()).await?;
                out.write_all(b"\n").await?;
                out.flush().await
            };
            if written.await.is_err() {
                break;
            }
        }
    });
    (tx, written)
}

fn lines<R: AsyncRead + Unpin + Send + 'static>(input: R) -> FramedRead<R, LinesCodec> {
    FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE_BYTES))
}

/// The client's messages; the channel closes when the client closes its side.
fn client_reader<R: AsyncRead + Unpin + Send + 'static>(input: R) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut lines = lines(input);
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => match Message::parse_line(&line) {
                    Ok(messages) => {
                        for message in messages {
                            if tx.send(message).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a line from the MCP client is not JSON; ignored")
                    }
                },
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    tracing::warn!("a line from the MCP client is longer than 16 MiB; ignored");
                }
                Err(LinesCodecError::Io(_)) => return,
            }
        }
    });
    rx
}

/// The server's messages, then why it is gone.
fn server_reader<R: AsyncRead + Unpin + Send + 'static>(
    output: R,
    mut exit: watch::Receiver<Option<String>>,
    server: String,
) -> mpsc::Receiver<FromServer> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut lines = lines(output);
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => match Message::parse_line(&line) {
                    Ok(messages) => {
                        for message in messages {
                            if tx.send(FromServer::Message(message)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => {
                        tracing::warn!(%server, "the MCP server wrote a line that is not JSON-RPC; ignored")
                    }
                },
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    tracing::warn!(%server, "the MCP server wrote a line longer than 16 MiB; ignored");
                }
                Err(LinesCodecError::Io(_)) => break,
            }
        }
        // Its output closed: say how it exited, if it does so soon.
        let status = tokio::time::timeout(EXIT_GRACE, exit.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|status| status.clone());
        let why = match status {
            Some(status) => format!("the MCP server {server} {status}"),
            None => format!("the MCP server {server} closed its output"),
        };
        let _ = tx.send(FromServer::Closed(why)).await;
    });
    rx
}
