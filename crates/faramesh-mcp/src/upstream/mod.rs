//! The MCP servers behind the gateway: a child process over stdio, or a remote server over
//! Streamable HTTP. Either way the relay sees a channel of messages in and one out.

pub mod http;
pub mod stdio;

use crate::jsonrpc::Message;
use crate::relay::FromServer;
use tokio::sync::mpsc;

/// One connected upstream session.
pub struct Connected {
    pub to_server: mpsc::Sender<Message>,
    pub from_server: mpsc::Receiver<FromServer>,
    /// Ends the upstream session (the process, or the remote session) when stopped.
    pub stop: Stop,
}

/// How an upstream is ended.
pub enum Stop {
    Process(stdio::Stopper),
    Remote(http::Stopper),
}

impl Stop {
    /// Ends it, gracefully first.
    pub async fn stop(self) {
        match self {
            Stop::Process(stopper) => stopper.stop().await,
            Stop::Remote(stopper) => stopper.stop().await,
        }
    }
}
