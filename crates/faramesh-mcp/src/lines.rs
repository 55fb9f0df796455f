//! Newline-delimited JSON-RPC over a byte stream, as MCP's stdio transport frames it.

use crate::jsonrpc::Message;
use crate::relay::FromServer;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

/// The longest message line accepted from either side (the MCP SDKs' own limit is similar).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A task writing each message as one line, in the order sent; it ends when every sender is
/// gone and all is written, or when the output fails.
pub fn writer<W: AsyncWrite + Unpin + Send + 'static>(
    mut out: W,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let written = tokio::spawn(async move {
        let mut line = Vec::new();
        while let Some(message) = rx.recv().await {
            // One write per message: the line and its newline together.
            line.clear();
            line.extend_from_slice(message.text().as_bytes());
            line.push(b'\n');
            let written = async {
                out.write_all(&line).await?;
                out.flush().await
            };
            if written.await.is_err() {
                break;
            }
        }
    });
    (tx, written)
}

/// The messages of one line, or none (with a warning) when it is not JSON: a stray line must
/// not end the session.
fn messages_of(line: &str, from: &str) -> Vec<Message> {
    if line.trim().is_empty() {
        return Vec::new();
    }
    Message::parse_line(line).unwrap_or_else(|_| {
        tracing::warn!("a line from {from} is not JSON-RPC; ignored");
        Vec::new()
    })
}

fn lines<R: AsyncRead + Unpin + Send + 'static>(input: R) -> FramedRead<R, LinesCodec> {
    FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE_BYTES))
}

/// The server's messages, then why it is gone: `exit` says how the process ended, if it does
/// within `grace` of closing its output.
pub fn server_reader<R: AsyncRead + Unpin + Send + 'static>(
    output: R,
    mut exit: watch::Receiver<Option<String>>,
    grace: std::time::Duration,
    server: String,
) -> mpsc::Receiver<FromServer> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut lines = lines(output);
        let from = format!("the MCP server {server}");
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) => {
                    for message in messages_of(&line, &from) {
                        if tx.send(FromServer::Message(message)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    tracing::warn!(%server, "the MCP server wrote a line longer than 16 MiB; ignored");
                }
                Err(LinesCodecError::Io(_)) => break,
            }
        }
        let status = tokio::time::timeout(grace, exit.wait_for(Option::is_some))
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

/// This process's stdout as a message writer on a thread of its own. Tokio's stdout hands
/// every write and flush to its blocking pool, a round trip between threads each; a thread that
/// owns stdout writes each message (and its newline) with one call. Measured by `cargo xtask
/// mcp`: it is on the path of every answer the wrapper relays.
/// The receiver resolves once everything sent is written (or stdout failed).
pub fn stdout_writer() -> (mpsc::Sender<Message>, tokio::sync::oneshot::Receiver<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // If the thread cannot start, the sender drops and the receiver resolves at once.
    let _ = std::thread::Builder::new()
        .name("mcp-stdout".into())
        .spawn(move || {
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut line = Vec::new();
            while let Some(message) = rx.blocking_recv() {
                line.clear();
                line.extend_from_slice(message.text().as_bytes());
                line.push(b'\n');
                if out.write_all(&line).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
            let _ = done_tx.send(());
        });
    (tx, done_rx)
}

/// This process's stdin as the client's messages, read on a thread of its own (see
/// [`stdout_writer`]). The thread ends with stdin.
pub fn stdin_reader() -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(256);
    let _ = std::thread::Builder::new()
        .name("mcp-stdin".into())
        .spawn(move || {
            use std::io::{BufRead, Read};
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                // At most one byte past the limit is kept, so an endless line cannot grow the
                // buffer without bound.
                match (&mut input)
                    .take(MAX_LINE_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line.len() > MAX_LINE_BYTES {
                    tracing::warn!("a line from the MCP client is longer than 16 MiB; ignored");
                    // Skip the rest of it.
                    let mut rest = Vec::new();
                    if input.read_until(b'\n', &mut rest).unwrap_or(0) == 0 {
                        return;
                    }
                    continue;
                }
                for message in messages_of(&String::from_utf8_lossy(&line), "the MCP client") {
                    if tx.blocking_send(message).is_err() {
                        return;
                    }
                }
            }
        });
    rx
}
