//! The HTTP gateway: each configured MCP server as a Streamable HTTP endpoint (`/mcp/{name}`)
//! of `faramesh serve`. A session starts with `initialize`; it gets an id (`Mcp-Session-Id`), an
//! upstream of its own (a fresh child, or a session with the remote server) and a relay. A
//! request is answered on a Server-Sent Events stream that carries what belongs to it (its
//! progress, then its response); what belongs to no request (log messages, requests from the
//! server such as sampling) goes to the session's standalone stream (`GET`), or, while none is
//! open, to the newest open request stream.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::config::{ServersFile, Upstream};
use crate::gate::Gate;
use crate::jsonrpc::{self, Kind, Message, RequestKey};
use crate::relay::{Options, Relay};
use crate::upstream::{self, Connected};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use rmcp::model::ErrorCode;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The largest request body accepted.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Messages kept for a session while no stream can take them.
const MAX_BACKLOG: usize = 256;
/// A session nobody used for this long is ended.
const IDLE_SESSION: Duration = Duration::from_secs(30 * 60);
/// How long the end of a session waits for its last records.
const FINISH_GRACE: Duration = Duration::from_secs(5);
/// Protocol versions with an `initialize` handshake, which sessions need.
const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Whether a browser page of an origin (the request's headers, the `Origin`) may use the
/// endpoints.
pub type OriginCheck = Box<dyn Fn(&HeaderMap, &str) -> bool + Send + Sync>;

/// How the gateway governs its sessions.
#[derive(Debug, Clone)]
pub struct Settings {
    pub approval_wait: Duration,
    pub call_timeout: Duration,
    /// Sessions open at once, over every server: each may run a process, so a client that
    /// opens sessions without end is refused (503) before it exhausts the machine.
    pub max_sessions: usize,
}

/// Who opened a session: only they may use it.
#[derive(Debug, Clone)]
pub struct Owner<G> {
    /// The identity the server authenticated (a token), compared on every request.
    pub key: String,
    pub agent_id: String,
    pub gate: G,
}

/// A configured server's state, for `GET /v1/mcp/servers`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerState {
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The command run (`stdio`) or the URL reached (`http`); never the headers or the
    /// environment, which may hold secrets.
    pub target: String,
    pub path: String,
    pub sessions: usize,
    pub sessions_started: u64,
    /// The last upstream that could not be started or reached, if any.
    pub last_error: Option<String>,
}

struct ServerEntry {
    upstream: Upstream,
    started: u64,
    last_error: Option<String>,
}

/// Every HTTP MCP endpoint of one server process.
pub struct Gateway<G: Gate + Clone> {
    servers: Mutex<HashMap<String, ServerEntry>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    settings: Settings,
    origin_allowed: OriginCheck,
    _gate: std::marker::PhantomData<fn() -> G>,
}

/// One session: its relay's input and where its output goes.
struct Session {
    server: String,
    owner_key: String,
    to_relay: mpsc::Sender<Message>,
    routes: Mutex<Routes>,
    last_seen: Mutex<Instant>,
    ended: CancellationToken,
}

#[derive(Default)]
struct Routes {
    /// Open request streams, by request id, in the order they opened.
    requests: Vec<(RequestKey, mpsc::Sender<Message>)>,
    /// Progress token (JSON text) → its request.
    tokens: HashMap<String, RequestKey>,
    standalone: Option<mpsc::Sender<Message>>,
    backlog: VecDeque<Message>,
}

impl<G: Gate + Clone> Gateway<G> {
    pub fn new(
        file: ServersFile,
        settings: Settings,
        origin_allowed: OriginCheck,
    ) -> Arc<Gateway<G>> {
        let servers = file
            .servers
            .into_iter()
            .map(|(name, upstream)| {
                let entry = ServerEntry {
                    upstream,
                    started: 0,
                    last_error: None,
                };
                (name, entry)
            })
            .collect();
        let gateway = Arc::new(Gateway {
            servers: Mutex::new(servers),
            sessions: Mutex::new(HashMap::new()),
            settings,
            origin_allowed,
            _gate: std::marker::PhantomData,
        });
        let weak = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_SESSION / 10).await;
                let Some(gateway) = weak.upgrade() else {
                    return;
                };
                gateway.end_idle_sessions();
            }
        });
        gateway
    }

    /// Whether `name` is a configured server.
    pub fn serves(&self, name: &str) -> bool {
        lock(&self.servers).contains_key(name)
    }

    /// The configured servers and their sessions, by name.
    pub fn states(&self) -> Vec<ServerState> {
        let sessions = lock(&self.sessions);
        let mut states: Vec<ServerState> = lock(&self.servers)
            .iter()
            .map(|(name, entry)| ServerState {
                name: name.clone(),
                transport: entry.upstream.transport(),
                target: match &entry.upstream {
                    Upstream::Stdio(command) => command.text(),
                    Upstream::Http { url, .. } => url.clone(),
                },
                path: format!("/mcp/{name}"),
                sessions: sessions.values().filter(|s| &s.server == name).count(),
                sessions_started: entry.started,
                last_error: entry.last_error.clone(),
            })
            .collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }

    /// Ends every session (the server is shutting down).
    pub fn shutdown(&self) {
        for (_, session) in lock(&self.sessions).drain() {
            session.ended.cancel();
        }
    }

    fn end_idle_sessions(&self) {
        let now = Instant::now();
        lock(&self.sessions).retain(|_, s| {
            let idle = now.duration_since(*lock(&s.last_seen)) > IDLE_SESSION
                && lock(&s.routes).requests.is_empty();
            if idle {
                s.ended.cancel();
            }
            !idle
        });
    }

    /// Answers one HTTP request to `/mcp/{name}`.
    pub async fn handle(
        self: &Arc<Self>,
        name: &str,
        owner: Owner<G>,
        request: Request<Body>,
    ) -> Response {
        if !self.serves(name) {
            return http_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no MCP server named {name:?} is configured; GET /v1/mcp/servers lists them"
                ),
            );
        }
        let headers = request.headers().clone();
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !(self.origin_allowed)(&headers, origin) {
                return http_error(
                    StatusCode::FORBIDDEN,
                    &format!("Origin {origin:?} may not use this MCP endpoint; list trusted origins in FARAMESH_CORS_ORIGINS"),
                );
            }
        }
        if let Some(version) = header_text(&headers, "mcp-protocol-version") {
            if !HANDSHAKE_VERSIONS.contains(&version) {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "MCP-Protocol-Version {version:?} is not supported here; supported: {}",
                        HANDSHAKE_VERSIONS.join(", ")
                    ),
                );
            }
        }
        match *request.method() {
            Method::POST => self.post(name, owner, request).await,
            Method::GET => self.get(name, &owner, &headers),
            Method::DELETE => self.delete(name, &owner, &headers),
            _ => {
                let mut response = http_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "an MCP endpoint takes POST, GET and DELETE",
                );
                if let Ok(allow) = "GET, POST, DELETE".parse() {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
        }
    }

    async fn post(
        self: &Arc<Self>,
        name: &str,
        owner: Owner<G>,
        request: Request<Body>,
    ) -> Response {
        let headers = request.headers().clone();
        if !accepts(&headers, "application/json") || !accepts(&headers, "text/event-stream") {
            return http_error(
                StatusCode::NOT_ACCEPTABLE,
                "a POST to an MCP endpoint must accept both application/json and text/event-stream",
            );
        }
        let body = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                return http_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the message is larger than 4 MiB",
                )
            }
        };
        let text = String::from_utf8_lossy(&body);
        let message = match Message::parse_line(&text) {
            Ok(mut messages) if messages.len() == 1 && !text.trim_start().starts_with('[') => {
                messages.remove(0)
            }
            Ok(_) => {
                return rpc_error_response(
                    StatusCode::BAD_REQUEST,
                    &Value::Null,
                    ErrorCode::INVALID_REQUEST,
                    "send one JSON-RPC message per POST; batches are not taken over HTTP",
                )
            }
            Err(e) => {
                return rpc_error_response(
                    StatusCode::BAD_REQUEST,
                    &Value::Null,
                    ErrorCode::PARSE_ERROR,
                    &format!("the body is not JSON: {e}"),
                )
            }
        };
        match message.kind() {
            Kind::Request {
                id,
                method: "initialize",
            } => {
                let id = id.clone();
                self.initialize(name, owner, id, message).await
            }
            Kind::Request {
                id,
                method: "server/discover",
            } if header_text(&headers, "mcp-session-id").is_none() => {
                // Sessions need the handshake: a client that asks first learns to use it.
                let text = "server/discover is not offered here; start a session with initialize";
                rpc_error_response(StatusCode::OK, id, ErrorCode::METHOD_NOT_FOUND, text)
            }
            kind => {
                let session = match self.session_of(name, &owner, &headers) {
                    Ok(session) => session,
                    Err(response) => return response,
                };
                match kind {
                    Kind::Request { id, .. } => {
                        let key = RequestKey::of(id);
                        let token = message
                            .params()
                            .and_then(|p| p.pointer("/_meta/progressToken"))
                            .map(Value::to_string);
                        let stream = session.open_request(key, token);
                        if session.to_relay.send(message).await.is_err() {
                            return http_error(
                                StatusCode::NOT_FOUND,
                                "the session has ended; start a new one with initialize",
                            );
                        }
                        sse(stream, None)
                    }
                    _ => {
                        if session.to_relay.send(message).await.is_err() {
                            return http_error(
                                StatusCode::NOT_FOUND,
                                "the session has ended; start a new one with initialize",
                            );
                        }
                        StatusCode::ACCEPTED.into_response()
                    }
                }
            }
        }
    }

    async fn initialize(
        self: &Arc<Self>,
        name: &str,
        owner: Owner<G>,
        id: Value,
        message: Message,
    ) -> Response {
        let open = lock(&self.sessions).len();
        if open >= self.settings.max_sessions {
            let text = format!(
                "{open} MCP sessions are open, the most this server keeps (FARAMESH_MCP_MAX_SESSIONS); end one (DELETE with its Mcp-Session-Id) or try again later"
            );
            return rpc_error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &id,
                ErrorCode::INTERNAL_ERROR,
                &text,
            );
        }
        let upstream_spec = match lock(&self.servers).get(name) {
            Some(entry) => entry.upstream.clone(),
            None => return http_error(StatusCode::NOT_FOUND, "no such MCP server"),
        };
        let connected = match connect(&upstream_spec, name).await {
            Ok(connected) => {
                if let Some(entry) = lock(&self.servers).get_mut(name) {
                    entry.started += 1;
                }
                connected
            }
            Err(why) => {
                tracing::warn!(server = %name, error = %why, "an MCP upstream could not be started");
                if let Some(entry) = lock(&self.servers).get_mut(name) {
                    entry.last_error = Some(why.clone());
                }
                let text = format!("the MCP server {name} could not be started: {why}");
                return rpc_error_response(StatusCode::OK, &id, ErrorCode::INTERNAL_ERROR, &text);
            }
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        let (to_client, from_relay) = mpsc::channel::<Message>(256);
        let (to_relay, from_client) = mpsc::channel::<Message>(256);
        let session = Arc::new(Session {
            server: name.to_owned(),
            owner_key: owner.key.clone(),
            to_relay,
            routes: Mutex::new(Routes::default()),
            last_seen: Mutex::new(Instant::now()),
            ended: CancellationToken::new(),
        });
        let options = Options {
            server: name.to_owned(),
            agent_id: owner.agent_id.clone(),
            approval_wait: self.settings.approval_wait,
            call_timeout: self.settings.call_timeout,
            show_denied: false,
            transport: "http",
            session_id: session_id.clone(),
        };
        let recording = TaskTracker::new();
        let relay = Relay::new(
            Arc::new(owner.gate.clone()),
            options,
            to_client,
            connected.to_server,
            recording.clone(),
        );
        lock(&self.sessions).insert(session_id.clone(), session.clone());
        tokio::spawn(route(session.clone(), from_relay));
        let gateway = Arc::downgrade(self);
        let from_server = connected.from_server;
        let stop = connected.stop;
        let ended = session.ended.clone();
        let sid = session_id.clone();
        tokio::spawn(async move {
            tokio::select! {
                gone = relay.run(from_client, from_server) => {
                    if let Some(why) = gone {
                        tracing::info!(session = %sid, "{why}");
                    }
                }
                () = ended.cancelled() => {}
            }
            if let Some(gateway) = gateway.upgrade() {
                lock(&gateway.sessions).remove(&sid);
            }
            recording.close();
            let _ = tokio::time::timeout(FINISH_GRACE, recording.wait()).await;
            stop.stop().await;
        });
        let stream = session.open_request(RequestKey::of(&id), None);
        if session.to_relay.send(message).await.is_err() {
            return http_error(StatusCode::BAD_GATEWAY, "the MCP server stopped at once");
        }
        sse(stream, Some(&session_id))
    }

    fn get(&self, name: &str, owner: &Owner<G>, headers: &HeaderMap) -> Response {
        if !accepts(headers, "text/event-stream") {
            return http_error(
                StatusCode::NOT_ACCEPTABLE,
                "a GET to an MCP endpoint must accept text/event-stream",
            );
        }
        let session = match self.session_of(name, owner, headers) {
            Ok(session) => session,
            Err(response) => return response,
        };
        let (tx, rx) = mpsc::channel(64);
        {
            let mut routes = lock(&session.routes);
            for message in routes.backlog.drain(..) {
                let _ = tx.try_send(message);
            }
            routes.standalone = Some(tx);
        }
        sse(rx, None)
    }

    fn delete(&self, name: &str, owner: &Owner<G>, headers: &HeaderMap) -> Response {
        let session = match self.session_of(name, owner, headers) {
            Ok(session) => session,
            Err(response) => return response,
        };
        if let Some(id) = header_text(headers, "mcp-session-id") {
            lock(&self.sessions).remove(id);
        }
        session.ended.cancel();
        StatusCode::NO_CONTENT.into_response()
    }

    /// The session a request names, if it is this caller's session of this server.
    #[allow(clippy::result_large_err, reason = "the error is the response itself")]
    fn session_of(
        &self,
        name: &str,
        owner: &Owner<G>,
        headers: &HeaderMap,
    ) -> Result<Arc<Session>, Response> {
        let Some(id) = header_text(headers, "mcp-session-id") else {
            return Err(http_error(
                StatusCode::BAD_REQUEST,
                "the request has no Mcp-Session-Id header; start a session with initialize",
            ));
        };
        let session = lock(&self.sessions).get(id).cloned();
        match session {
            // Another caller's session is as unknown as an ended one.
            Some(s) if s.server == name && s.owner_key == owner.key => {
                *lock(&s.last_seen) = Instant::now();
                Ok(s)
            }
            _ => Err(http_error(
                StatusCode::NOT_FOUND,
                "no such MCP session (it ended, or was never started); start a new one with initialize",
            )),
        }
    }
}

impl Session {
    fn open_request(&self, key: RequestKey, token: Option<String>) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(64);
        let mut routes = lock(&self.routes);
        if let Some(token) = token {
            routes.tokens.insert(token, key.clone());
        }
        routes.requests.retain(|(k, _)| *k != key);
        routes.requests.push((key, tx));
        rx
    }
}

/// Sends each message the relay writes for the client to the stream it belongs on.
async fn route(session: Arc<Session>, mut from_relay: mpsc::Receiver<Message>) {
    while let Some(message) = from_relay.recv().await {
        let target = {
            let mut routes = lock(&session.routes);
            match message.kind() {
                Kind::Response { id } => {
                    let key = RequestKey::of(id);
                    match routes.requests.iter().position(|(k, _)| *k == key) {
                        Some(at) => {
                            let (_, tx) = routes.requests.remove(at);
                            routes.tokens.retain(|_, k| *k != key);
                            Some(tx)
                        }
                        None => routes.elsewhere(),
                    }
                }
                Kind::Notification {
                    method: "notifications/progress",
                } => {
                    let token = message
                        .params()
                        .and_then(|p| p.get("progressToken"))
                        .map(Value::to_string);
                    let owner = token.and_then(|t| routes.tokens.get(&t).cloned());
                    owner
                        .and_then(|key| {
                            routes
                                .requests
                                .iter()
                                .find(|(k, _)| *k == key)
                                .map(|(_, tx)| tx.clone())
                        })
                        .or_else(|| routes.elsewhere())
                }
                _ => routes.elsewhere(),
            }
        };
        match target {
            Some(tx) => {
                if tx.send(message.clone()).await.is_err() {
                    // That stream was closed by the client: keep the message for the next one.
                    let mut routes = lock(&session.routes);
                    routes.keep(message);
                }
            }
            None => lock(&session.routes).keep(message),
        }
    }
    // The relay is gone: every open stream ends.
    let mut routes = lock(&session.routes);
    routes.requests.clear();
    routes.standalone = None;
}

impl Routes {
    /// Where a message that belongs to no open request goes: the standalone stream, else the
    /// newest request stream.
    fn elsewhere(&mut self) -> Option<mpsc::Sender<Message>> {
        if let Some(tx) = &self.standalone {
            if !tx.is_closed() {
                return Some(tx.clone());
            }
            self.standalone = None;
        }
        self.requests
            .iter()
            .rev()
            .find(|(_, tx)| !tx.is_closed())
            .map(|(_, tx)| tx.clone())
    }

    fn keep(&mut self, message: Message) {
        if self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(message);
    }
}

async fn connect(upstream: &Upstream, name: &str) -> Result<Connected, String> {
    match upstream {
        Upstream::Stdio(command) => upstream::stdio::spawn(command, name)
            .map_err(|e| format!("cannot run `{}`: {e}", command.text())),
        Upstream::Http { url, headers } => upstream::http::connect(url, headers, name).await,
    }
}

/// An SSE response carrying the messages of `rx` until it closes.
fn sse(rx: mpsc::Receiver<Message>, session_id: Option<&str>) -> Response {
    let events = stream::unfold(rx, |mut rx| async move {
        let message = rx.recv().await?;
        let event = Event::default().event("message").data(message.text());
        Some((Ok::<Event, std::convert::Infallible>(event), rx))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    if let Some(id) = session_id.and_then(|id| id.parse().ok()) {
        response.headers_mut().insert("mcp-session-id", id);
    }
    response
}

fn json_response(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        text.to_owned(),
    )
        .into_response()
}

fn rpc_error_response(status: StatusCode, id: &Value, code: ErrorCode, message: &str) -> Response {
    json_response(status, jsonrpc::error(id, code, message).text())
}

/// An HTTP-level refusal, as a JSON-RPC error (what MCP clients read) with the API's `detail`.
fn http_error(status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": ErrorCode::INVALID_REQUEST.0, "message": detail},
        "detail": detail,
    });
    json_response(status, &body.to_string())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|part| part.split(';').next().unwrap_or_default().trim())
        .any(|m| m.eq_ignore_ascii_case(media) || m == "*/*")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
