//! One MCP session between a client and a server, with Faramesh in between. Every message is
//! relayed as it came, except:
//!
//! - `tools/call` requests, each submitted as an action and forwarded only once it may run
//!   (see [`crate::govern`]);
//! - the answers to `tools/list`, from which tools denied for every call are removed;
//! - `notifications/cancelled` for a call still waiting for a decision, which ends the wait
//!   (the server never saw the call);
//! - the server's answers to governed calls, recorded as the action's result;
//! - progress notifications of a call that waited for approval, shifted to stay above the
//!   progress the gateway sent while it waited.
//!
//! The relay owns the session's state alone; the tasks that govern calls report back to it
//! through a channel.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::gate::Gate;
use crate::govern::{self, Governed, Waiting};
use crate::jsonrpc::{self, Kind, Message, RequestKey};
use crate::results;
use rmcp::model::{CallToolRequestParams, ErrorCode};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a session is governed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The MCP server's name: the actions' `tool`.
    pub server: String,
    pub agent_id: String,
    /// How long a call waits for a human before the client is told to repeat it.
    pub approval_wait: Duration,
    /// How long a forwarded call may take before it is failed and cancelled upstream.
    pub call_timeout: Duration,
    /// Keep tools denied for every call in `tools/list`.
    pub show_denied: bool,
    /// `stdio` or `http`, recorded in `context.mcp.transport`.
    pub transport: &'static str,
    pub session_id: String,
}

/// What the server side of a session yields.
#[derive(Debug)]
pub enum FromServer {
    Message(Message),
    /// The server is gone (exited, closed its output); why, in words.
    Closed(String),
}

/// Reports of the tasks that govern calls.
#[derive(Debug)]
pub(crate) enum Report {
    /// The call may run: forward it.
    Forward {
        key: RequestKey,
        message: Message,
        action_id: String,
        /// The client's progress token and the last progress the gateway sent with it.
        progress: Option<(Value, f64)>,
    },
    /// The call was answered by the gateway (denied, refused, failed closed).
    Answered { key: RequestKey },
    /// Still pending when the wait ended: a repeat of the same call attaches to it.
    Parked {
        key: RequestKey,
        call: CallKey,
        action_id: String,
    },
    /// A forwarded call took longer than the call timeout.
    Expired { key: RequestKey },
}

/// The same call: the same tool with the same arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CallKey(String);

impl CallKey {
    fn of(tool: &str, arguments: &Map<String, Value>) -> CallKey {
        let arguments = Value::Object(arguments.clone());
        let text = faramesh_core::json::canonical_string(&arguments)
            .unwrap_or_else(|_| arguments.to_string());
        CallKey(format!("{tool}\u{0}{text}"))
    }
}

/// A call forwarded to the server, waiting for its answer.
#[derive(Debug)]
struct Running {
    /// The request's id, as the client sent it.
    id: Value,
    action_id: String,
    /// The progress token whose values are shifted, if the call waited with one.
    shifted_token: Option<String>,
    /// The timer that fails the call after the call timeout; stopped once the call is over.
    expiry: tokio::task::AbortHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.expiry.abort();
    }
}

/// What the client said of itself.
#[derive(Debug, Clone, Default)]
struct ClientFacts {
    name: Option<String>,
    version: Option<String>,
    protocol_version: Option<String>,
}

/// The first protocol version whose results carry `resultType`.
const TYPED_RESULTS_VERSION: &str = "2026-07-28";

pub struct Relay<G: Gate> {
    gate: Arc<G>,
    options: Arc<Options>,
    to_client: mpsc::Sender<Message>,
    to_server: mpsc::Sender<Message>,
    reports: mpsc::Sender<Report>,
    report_rx: mpsc::Receiver<Report>,
    client: ClientFacts,
    /// Calls being decided or waiting for approval, and why their wait was ended.
    waiting: HashMap<RequestKey, (CancellationToken, Arc<std::sync::OnceLock<&'static str>>)>,
    running: HashMap<RequestKey, Running>,
    listing: HashSet<RequestKey>,
    parked: HashMap<CallKey, String>,
    /// `requestState` of an answer that asked the client for input → the action it continues.
    continuations: HashMap<String, String>,
    /// Progress token (as JSON text) → what to add to the server's progress values.
    offsets: HashMap<String, f64>,
    /// Outcomes being recorded: the session's end waits for them.
    recording: TaskTracker,
}

impl<G: Gate> Relay<G> {
    pub fn new(
        gate: Arc<G>,
        options: Options,
        to_client: mpsc::Sender<Message>,
        to_server: mpsc::Sender<Message>,
        recording: TaskTracker,
    ) -> Relay<G> {
        let (reports, report_rx) = mpsc::channel(64);
        Relay {
            gate,
            options: Arc::new(options),
            to_client,
            to_server,
            reports,
            report_rx,
            client: ClientFacts::default(),
            waiting: HashMap::new(),
            running: HashMap::new(),
            listing: HashSet::new(),
            parked: HashMap::new(),
            continuations: HashMap::new(),
            offsets: HashMap::new(),
            recording,
        }
    }

    /// Relays until the client or the server is gone. Returns why the server is gone, when it
    /// was the server.
    pub async fn run(
        mut self,
        mut from_client: mpsc::Receiver<Message>,
        mut from_server: mpsc::Receiver<FromServer>,
    ) -> Option<String> {
        loop {
            tokio::select! {
                message = from_client.recv() => match message {
                    Some(message) => self.on_client_message(message).await,
                    None => {
                        self.stop_waiting();
                        return None;
                    }
                },
                message = from_server.recv() => match message {
                    Some(FromServer::Message(message)) => self.on_server_message(message).await,
                    Some(FromServer::Closed(why)) => {
                        self.server_gone(&why).await;
                        return Some(why);
                    }
                    None => {
                        let why = "the MCP server closed the connection".to_owned();
                        self.server_gone(&why).await;
                        return Some(why);
                    }
                },
                Some(report) = self.report_rx.recv() => self.on_report(report).await,
            }
        }
    }

    async fn on_client_message(&mut self, message: Message) {
        match message.kind() {
            Kind::Request { id, method } => {
                let id = id.clone();
                match method {
                    "initialize" => {
                        self.learn_client(message.params(), true);
                        self.send_to_server(message).await;
                    }
                    "tools/call" => self.call(id, message).await,
                    "tools/list" => {
                        self.learn_client(message.params(), false);
                        self.listing.insert(RequestKey::of(&id));
                        self.send_to_server(message).await;
                    }
                    _ => {
                        self.learn_client(message.params(), false);
                        self.send_to_server(message).await;
                    }
                }
            }
            Kind::Notification {
                method: "notifications/cancelled",
            } => {
                let cancelled = message
                    .params()
                    .and_then(|p| p.get("requestId"))
                    .map(RequestKey::of);
                if let Some(key) = cancelled {
                    if let Some((wait, why)) = self.waiting.remove(&key) {
                        // The server never saw the call: nothing to forward.
                        let _ = why.set("the MCP client cancelled the call");
                        wait.cancel();
                        return;
                    }
                    if let Some(running) = self.running.remove(&key) {
                        self.end_shift(running.shifted_token.as_deref());
                        self.finish(
                            running.action_id.clone(),
                            results::finished_without_answer("cancelled by the MCP client"),
                        );
                    }
                }
                self.send_to_server(message).await;
            }
            _ => self.send_to_server(message).await,
        }
    }

    /// A `tools/call`: continued, attached to an earlier action, or submitted.
    async fn call(&mut self, id: Value, message: Message) {
        let key = RequestKey::of(&id);
        let params = message
            .params()
            .cloned()
            .map(serde_json::from_value::<CallToolRequestParams>);
        let params = match params {
            Some(Ok(params)) => params,
            Some(Err(e)) => {
                let text = format!("invalid tools/call params: {e}");
                self.send_to_client(jsonrpc::error(&id, ErrorCode::INVALID_PARAMS, &text))
                    .await;
                return;
            }
            None => {
                let text = "invalid tools/call params: a call needs params with a tool name";
                self.send_to_client(jsonrpc::error(&id, ErrorCode::INVALID_PARAMS, text))
                    .await;
                return;
            }
        };
        self.learn_meta(params.meta.as_ref().map(|m| &m.0 .0));
        // The second half of a call that asked the client for input runs under the action the
        // first half was decided and started as.
        if let Some(action_id) = params
            .request_state
            .as_ref()
            .and_then(|state| self.continuations.remove(state))
        {
            self.start_running(key, id, action_id, None);
            self.send_to_server(message).await;
            return;
        }
        let arguments = params.arguments.clone().unwrap_or_default();
        let call_key = CallKey::of(&params.name, &arguments);
        let attach = self.parked.remove(&call_key);
        let progress = params
            .meta
            .as_ref()
            .and_then(|m| m.0 .0.get("progressToken"))
            .cloned();
        let cancel = CancellationToken::new();
        let why = Arc::new(std::sync::OnceLock::new());
        self.waiting
            .insert(key.clone(), (cancel.clone(), why.clone()));
        let governed = Governed {
            gate: self.gate.clone(),
            options: self.options.clone(),
            to_client: self.to_client.clone(),
            reports: self.reports.clone(),
            key,
            id,
            message,
            call_key,
            waiting: Waiting {
                progress,
                cancel,
                why,
                typed_results: self.typed_results(),
            },
        };
        let call = crate::gate::Call {
            agent_id: self.options.agent_id.clone(),
            server: self.options.server.clone(),
            tool: params.name.to_string(),
            arguments,
            context: self.context(),
        };
        self.recording.spawn(govern::govern(governed, call, attach));
    }

    async fn on_server_message(&mut self, mut message: Message) {
        match message.kind() {
            Kind::Response { id } => {
                let key = RequestKey::of(id);
                if self.listing.remove(&key) {
                    if !self.options.show_denied {
                        self.filter_tools(message);
                        return;
                    }
                } else if let Some(running) = self.running.remove(&key) {
                    self.end_shift(running.shifted_token.as_deref());
                    let value = message.value();
                    // An answer asking the client for input: the call goes on in a second
                    // request that carries this state.
                    let state = value
                        .pointer("/result/resultType")
                        .and_then(Value::as_str)
                        .filter(|t| *t == "input_required")
                        .and_then(|_| value.pointer("/result/requestState"))
                        .and_then(Value::as_str);
                    match state {
                        Some(state) => {
                            self.continuations
                                .insert(state.to_owned(), running.action_id.clone());
                        }
                        None => {
                            let finished = results::finished_from_response(value);
                            self.finish(running.action_id.clone(), finished);
                        }
                    }
                }
            }
            Kind::Notification {
                method: "notifications/progress",
            } if !self.offsets.is_empty() => {
                message = self.shift_progress(message);
            }
            _ => {}
        }
        self.send_to_client(message).await;
    }

    async fn on_report(&mut self, report: Report) {
        match report {
            Report::Forward {
                key,
                message,
                action_id,
                progress,
            } => {
                if self.waiting.remove(&key).is_none() {
                    // Cancelled meanwhile; the task saw it too late. The action was started:
                    // record that it did not run.
                    self.finish(
                        action_id,
                        results::finished_without_answer("cancelled by the MCP client"),
                    );
                    return;
                }
                let shifted_token = progress.map(|(token, last)| {
                    let token = token.to_string();
                    self.offsets.insert(token.clone(), last);
                    token
                });
                let id = message.value().get("id").cloned().unwrap_or(Value::Null);
                self.start_running(key, id, action_id, shifted_token);
                self.send_to_server(message).await;
            }
            Report::Answered { key } => {
                self.waiting.remove(&key);
            }
            Report::Parked {
                key,
                call,
                action_id,
            } => {
                self.waiting.remove(&key);
                self.parked.insert(call, action_id);
            }
            Report::Expired { key } => {
                let Some(running) = self.running.remove(&key) else {
                    return;
                };
                self.end_shift(running.shifted_token.as_deref());
                let seconds = self.options.call_timeout.as_secs();
                let why = format!(
                    "The MCP server {} did not answer within {seconds} s; the call was cancelled (action {})",
                    self.options.server, running.action_id
                );
                self.finish(
                    running.action_id.clone(),
                    results::finished_without_answer(&why),
                );
                let cancel = jsonrpc::notification(
                    "notifications/cancelled",
                    json!({"requestId": running.id, "reason": "timed out in the Faramesh gateway"}),
                );
                self.send_to_server(cancel).await;
                let answer =
                    jsonrpc::response(&running.id, results::refusal(why, self.typed_results()));
                self.send_to_client(answer).await;
            }
        }
    }

    /// The server is gone: every call it was running fails, and every waiting call stops.
    async fn server_gone(&mut self, why: &str) {
        self.stop_waiting();
        let running: Vec<Running> = self.running.drain().map(|(_, r)| r).collect();
        for running in running {
            let text = format!(
                "The MCP server {} stopped before answering ({why}); the call may not have run (action {})",
                self.options.server, running.action_id
            );
            self.finish(
                running.action_id.clone(),
                results::finished_without_answer(&text),
            );
            let answer =
                jsonrpc::response(&running.id, results::refusal(text, self.typed_results()));
            self.send_to_client(answer).await;
        }
    }

    fn stop_waiting(&mut self) {
        for (_, (wait, why)) in self.waiting.drain() {
            let _ = why.set("the MCP session ended before anybody decided");
            wait.cancel();
        }
    }

    /// Removes the tools denied for every call from a `tools/list` answer, asking Faramesh in
    /// a task of its own so the session goes on meanwhile. If Faramesh cannot be asked, the
    /// list is passed on whole: every call is still governed, and fails closed.
    fn filter_tools(&self, message: Message) {
        let gate = self.gate.clone();
        let options = self.options.clone();
        let to_client = self.to_client.clone();
        tokio::spawn(async move {
            let names: Vec<String> = message
                .value()
                .pointer("/result/tools")
                .and_then(Value::as_array)
                .map(|tools| {
                    tools
                        .iter()
                        .filter_map(|t| t.get("name").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if names.is_empty() {
                let _ = to_client.send(message).await;
                return;
            }
            let denied = match gate
                .denied_tools(&options.agent_id, &options.server, names)
                .await
            {
                Ok(denied) => denied,
                Err(e) => {
                    tracing::warn!(server = %options.server, error = %e, "tools/list passed on unfiltered: Faramesh could not be asked");
                    let _ = to_client.send(message).await;
                    return;
                }
            };
            if denied.is_empty() {
                let _ = to_client.send(message).await;
                return;
            }
            let mut value = message.value().clone();
            if let Some(tools) = value
                .pointer_mut("/result/tools")
                .and_then(Value::as_array_mut)
            {
                tools.retain(|t| {
                    t.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(|name| !denied.contains(name))
                });
            }
            let _ = to_client.send(Message::from_value(value)).await;
        });
    }

    /// Adds the offset of its token to a progress notification of a call that waited.
    fn shift_progress(&self, message: Message) -> Message {
        let Some(token) = message.params().and_then(|p| p.get("progressToken")) else {
            return message;
        };
        let Some(offset) = self.offsets.get(&token.to_string()) else {
            return message;
        };
        let mut value = message.value().clone();
        for field in ["progress", "total"] {
            if let Some(number) = value
                .pointer_mut(&format!("/params/{field}"))
                .filter(|n| n.is_number())
            {
                let shifted = number.as_f64().unwrap_or(0.0) + offset;
                *number = json!(shifted);
            }
        }
        Message::from_value(value)
    }

    fn end_shift(&mut self, token: Option<&str>) {
        if let Some(token) = token {
            self.offsets.remove(token);
        }
    }

    /// Notes a call forwarded to the server, with a timer that fails it after the call
    /// timeout (stopped when its answer comes, see [`Running`]'s drop).
    fn start_running(
        &mut self,
        key: RequestKey,
        id: Value,
        action_id: String,
        shifted_token: Option<String>,
    ) {
        let reports = self.reports.clone();
        let timeout = self.options.call_timeout;
        let expired = key.clone();
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = reports.send(Report::Expired { key: expired }).await;
        })
        .abort_handle();
        self.running.insert(
            key,
            Running {
                id,
                action_id,
                shifted_token,
                expiry,
            },
        );
    }

    fn finish(&self, action_id: String, finished: crate::gate::Finished) {
        let gate = self.gate.clone();
        self.recording.spawn(async move {
            if let Err(e) = gate.finish(&action_id, finished).await {
                tracing::warn!(action = %action_id, error = %e, "the outcome of an MCP call was not recorded");
            }
        });
    }

    /// Notes the client's name, version and protocol version from `initialize`, or from the
    /// `_meta` a client that skips `initialize` sends with every request.
    fn learn_client(&mut self, params: Option<&Value>, initialize: bool) {
        let Some(params) = params else {
            return;
        };
        if initialize {
            let info = params.get("clientInfo");
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
            self.client.name = text(info.and_then(|i| i.get("name")));
            self.client.version = text(info.and_then(|i| i.get("version")));
            self.client.protocol_version = text(params.get("protocolVersion"));
        } else if let Some(Value::Object(meta)) = params.get("_meta") {
            self.learn_meta(Some(meta));
        }
    }

    fn learn_meta(&mut self, meta: Option<&Map<String, Value>>) {
        let Some(meta) = meta else {
            return;
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        if let Some(version) = text(meta.get("io.modelcontextprotocol/protocolVersion")) {
            self.client.protocol_version = Some(version);
        }
        if let Some(info) = meta.get("io.modelcontextprotocol/clientInfo") {
            self.client.name = text(info.get("name")).or(self.client.name.take());
            self.client.version = text(info.get("version")).or(self.client.version.take());
        }
    }

    fn typed_results(&self) -> bool {
        self.client
            .protocol_version
            .as_deref()
            .is_some_and(|v| v >= TYPED_RESULTS_VERSION)
    }

    /// `{"mcp": {...}}` of the actions of this session.
    fn context(&self) -> Map<String, Value> {
        let mut mcp = Map::new();
        mcp.insert("transport".into(), json!(self.options.transport));
        mcp.insert("server".into(), json!(self.options.server));
        mcp.insert("session".into(), json!(self.options.session_id));
        let client = json!({"name": self.client.name, "version": self.client.version});
        mcp.insert("client".into(), client);
        if let Some(version) = &self.client.protocol_version {
            mcp.insert("protocol_version".into(), json!(version));
        }
        let mut context = Map::new();
        context.insert("mcp".into(), Value::Object(mcp));
        context
    }

    async fn send_to_server(&self, message: Message) {
        // A closed channel means the server is gone; the relay learns it from the server's side.
        let _ = self.to_server.send(message).await;
    }

    async fn send_to_client(&self, message: Message) {
        let _ = self.to_client.send(message).await;
    }
}

impl<G: Gate> Drop for Relay<G> {
    /// A session that ends (or is dropped) ends its waits.
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_call_is_the_same_whatever_the_key_order() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"path": "/a", "mode": 1}"#).unwrap_or_default();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"mode": 1, "path": "/a"}"#).unwrap_or_default();
        assert_eq!(CallKey::of("write", &a), CallKey::of("write", &b));
        assert_ne!(CallKey::of("write", &a), CallKey::of("read", &a));
    }
}
