//! A remote MCP server over Streamable HTTP: each message the relay sends is POSTed; the answer
//! (JSON, or a stream of Server-Sent Events) comes back as messages, and so does whatever the
//! server sends on its standalone stream (`GET`). The session id the server gives at
//! `initialize` goes with every later request, and the session is ended (`DELETE`) when the
//! gateway's session ends.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use super::{Connected, Stop};
use crate::config::Secret;
use crate::jsonrpc::{self, Kind, Message};
use crate::relay::FromServer;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use rmcp::model::ErrorCode;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Remote {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    server: String,
    session: Mutex<Option<HeaderValue>>,
    protocol_version: Mutex<Option<HeaderValue>>,
    to_relay: mpsc::Sender<FromServer>,
    ended: CancellationToken,
}

/// Opens the way to the server at `url` (nothing is sent until the relay sends `initialize`).
pub async fn connect(
    url: &str,
    headers: &[(String, Secret)],
    server: &str,
) -> Result<Connected, String> {
    let mut header_map = HeaderMap::new();
    for (name, Secret(value)) in headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("the header name {name:?} is not valid"))?;
        // The value is a secret: name the header, never the value.
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("the value of header {name} is not valid in HTTP"))?;
        header_map.insert(name, value);
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // A redirect could carry the headers (and their secrets) elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let (to_server, mut from_relay) = mpsc::channel::<Message>(256);
    let (to_relay, from_server) = mpsc::channel::<FromServer>(256);
    let remote = Arc::new(Remote {
        http,
        url: url.to_owned(),
        headers: header_map,
        server: server.to_owned(),
        session: Mutex::new(None),
        protocol_version: Mutex::new(None),
        to_relay,
        ended: CancellationToken::new(),
    });
    let sender = remote.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = from_relay.recv() => match message {
                    // Each in a task of its own: a long call must not hold up the others.
                    Some(message) => {
                        let remote = sender.clone();
                        tokio::spawn(async move { remote.post(message).await });
                    }
                    None => return,
                },
                () = sender.ended.cancelled() => return,
            }
        }
    });
    Ok(Connected {
        to_server,
        from_server,
        stop: Stop::Remote(Stopper { remote }),
    })
}

impl Remote {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, &self.url)
            .headers(self.headers.clone());
        if let Some(session) = lock(&self.session).clone() {
            request = request.header("mcp-session-id", session);
        }
        if let Some(version) = lock(&self.protocol_version).clone() {
            request = request.header("mcp-protocol-version", version);
        }
        request
    }

    async fn deliver(&self, message: Message) {
        let _ = self.to_relay.send(FromServer::Message(message)).await;
    }

    /// Sends one message and relays what comes back.
    async fn post(self: Arc<Self>, message: Message) {
        let request_id = match message.kind() {
            Kind::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let initialize = matches!(
            message.kind(),
            Kind::Request {
                method: "initialize",
                ..
            }
        );
        let sent = self
            .request(reqwest::Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(message.text().to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return self
                    .fail(
                        request_id.as_ref(),
                        &format!("could not be reached ({})", short(&e)),
                    )
                    .await
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && lock(&self.session).is_some() {
            let why = format!("the MCP server {} ended the session", self.server);
            let _ = self.to_relay.send(FromServer::Closed(why)).await;
            self.ended.cancel();
            return;
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(200).collect();
            return self
                .fail(
                    request_id.as_ref(),
                    &format!("answered HTTP {status}: {excerpt}"),
                )
                .await;
        }
        if initialize {
            if let Some(session) = response.headers().get("mcp-session-id") {
                *lock(&self.session) = Some(session.clone());
            }
        }
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            let mut events = response.bytes_stream().eventsource();
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) if event.data.trim().is_empty() => {}
                    Ok(event) => match Message::parse_line(&event.data) {
                        Ok(messages) => {
                            for message in messages {
                                self.learn(initialize, &message);
                                self.deliver(message).await;
                            }
                        }
                        Err(_) => {
                            tracing::warn!(server = %self.server, "the MCP server sent an event that is not JSON-RPC; ignored")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(server = %self.server, error = %e, "the MCP server's event stream broke off");
                        break;
                    }
                }
            }
        } else if status != reqwest::StatusCode::ACCEPTED {
            let body = response.text().await.unwrap_or_default();
            if !body.trim().is_empty() {
                match Message::parse_line(&body) {
                    Ok(messages) => {
                        for message in messages {
                            self.learn(initialize, &message);
                            self.deliver(message).await;
                        }
                    }
                    Err(_) => {
                        return self
                            .fail(
                                request_id.as_ref(),
                                "answered something that is not JSON-RPC",
                            )
                            .await
                    }
                }
            }
        }
        if initialize {
            let remote = self.clone();
            tokio::spawn(async move { remote.listen().await });
        }
    }

    /// Notes the protocol version the server chose at `initialize`.
    fn learn(&self, initialize: bool, message: &Message) {
        if !initialize {
            return;
        }
        if let Some(version) = message
            .value()
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::try_from(v).ok())
        {
            *lock(&self.protocol_version) = Some(version);
        }
    }

    /// The server's standalone stream, while the session lasts (a server without one answers
    /// 405, and that is fine).
    async fn listen(self: Arc<Self>) {
        let opened = self
            .request(reqwest::Method::GET)
            .header(ACCEPT, "text/event-stream")
            .send();
        let response = tokio::select! {
            r = opened => r,
            () = self.ended.cancelled() => return,
        };
        let Ok(response) = response else {
            return;
        };
        if !response.status().is_success() {
            return;
        }
        let mut events = response.bytes_stream().eventsource();
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                () = self.ended.cancelled() => return,
            };
            match event {
                Some(Ok(event)) if !event.data.trim().is_empty() => {
                    if let Ok(messages) = Message::parse_line(&event.data) {
                        for message in messages {
                            self.deliver(message).await;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    }

    /// A request the server did not answer gets an error answer, so the relay records it.
    async fn fail(&self, request_id: Option<&Value>, what: &str) {
        let text = format!("the MCP server {} at {} {what}", self.server, self.url);
        tracing::warn!(server = %self.server, "{text}");
        if let Some(id) = request_id {
            self.deliver(jsonrpc::error(id, ErrorCode::INTERNAL_ERROR, &text))
                .await;
        }
    }
}

/// Ends the remote session.
pub struct Stopper {
    remote: Arc<Remote>,
}

impl Stopper {
    pub async fn stop(self) {
        self.remote.ended.cancel();
        if lock(&self.remote.session).is_some() {
            let delete = self.remote.request(reqwest::Method::DELETE).send();
            let _ = tokio::time::timeout(Duration::from_secs(2), delete).await;
        }
    }
}

fn short(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
