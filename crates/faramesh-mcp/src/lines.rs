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
pub fn client_reader<R: AsyncRead + Unpin + Send + 'static>(input: R) -> mpsc::Receiver<Message> {
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
                        tracing::warn!(error = %e, "a line from the MCP client is not JSON; ignored");
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
