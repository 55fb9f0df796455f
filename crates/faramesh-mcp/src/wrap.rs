//! The stdio wrapper: the MCP client launches `faramesh mcp wrap -- COMMAND ARGS...` in place of
//! the server; it runs the server as its child and relays the session between them. Only MCP
//! messages are written to its stdout; its logs and the server's go to stderr.

use crate::gate::Gate;
use crate::lines;
use crate::relay::{Options, Relay};
use crate::upstream::stdio::{self, Command};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

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

/// How long the end of a session waits for its last answers and records.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// Runs `command` as the MCP server and relays the session on this process's stdin and stdout
/// until the client or the server leaves.
pub async fn wrap<G: Gate>(
    gate: G,
    options: Options,
    command: Command,
) -> Result<Ended, WrapError> {
    let upstream = stdio::spawn(&command, &options.server).map_err(|e| WrapError::Spawn {
        command: command.text(),
        reason: e.to_string(),
    })?;
    let (to_client, client_written) = lines::stdout_writer();
    let from_client = lines::stdin_reader();
    let recording = TaskTracker::new();
    let relay = Relay::new(
        Arc::new(gate),
        options,
        to_client,
        upstream.to_server,
        recording.clone(),
    );
    let ended = tokio::select! {
        gone = relay.run(from_client, upstream.from_server) => match gone {
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
    upstream.stop.stop().await;
    Ok(ended)
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
