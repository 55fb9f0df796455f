//! A typed client of the Faramesh HTTP API (docs/api.md). The `faramesh` CLI makes every API call
//! through it.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

mod stream;

pub use stream::{Followed, StreamFilter, StreamMessage, Subscription};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use faramesh_api::{
    Action, LedgerEvent as Event, McpServer, NewToken, Notification, ShadowReport, Submission,
    TokenInfo,
};

/// An id or prefix as typed, normalized; too short a prefix is refused.
pub fn normalize_prefix(id_or_prefix: &str) -> ClientResult<String> {
    let wanted = id_or_prefix.trim().to_ascii_lowercase();
    if wanted.len() < 8 {
        return Err(ClientError::PrefixTooShort(wanted));
    }
    if !wanted.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ClientError::Usage {
            detail: format!(
                "{id_or_prefix:?} is not an action id: ids hold only hex digits and dashes"
            ),
        });
    }
    Ok(wanted)
}

/// The one id among those `prefix` matched: none or several is an error naming them.
pub fn one_match(prefix: String, mut ids: Vec<String>) -> ClientResult<String> {
    match ids.len() {
        0 => Err(ClientError::NoMatch { prefix }),
        1 => Ok(ids.remove(0)),
        _ => Err(ClientError::Ambiguous {
            prefix,
            candidates: ids,
        }),
    }
}

/// Filters of the action list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    /// Only actions whose agent, tool or operation contains this, ignoring case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// Filters of `GET /v1/notifications`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotificationFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// What went wrong, phrased for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Faramesh server at {url} ({reason}); start one with `faramesh serve` or pass --url")]
    Unreachable { url: String, reason: String },
    #[error("the server refused the token ({detail}); pass one with --token or FARAMESH_TOKEN")]
    Unauthorized { detail: String },
    #[error("not allowed: {detail}")]
    Forbidden { detail: String },
    #[error("{detail}")]
    NotFound { detail: String },
    #[error("{detail}")]
    Conflict {
        detail: String,
        status: Option<String>,
    },
    #[error("the request was refused: {detail}")]
    Invalid { detail: String },
    /// The input cannot be used; nothing was sent.
    #[error("{detail}")]
    Usage { detail: String },
    #[error("the server answered {status}: {detail}")]
    Server { status: u16, detail: String },
    #[error("no action id starts with {prefix}")]
    NoMatch { prefix: String },
    #[error("{prefix} matches several actions: {}; give more characters", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("an action id or prefix needs at least 8 characters, not {0:?}")]
    PrefixTooShort(String),
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    #[error("the server URL {url:?} cannot be used ({reason}); pass one such as http://127.0.0.1:8000 with --url")]
    BadUrl { url: String, reason: String },
    #[error("lost the live stream: {0}")]
    StreamLost(String),
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    /// `base` parsed once, or why it cannot be used (said at the first call).
    parsed: Result<reqwest::Url, String>,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `base` such as `http://127.0.0.1:8000`.
    pub fn new(base: &str, token: Option<String>) -> Client {
        let base = base.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| e.to_string());
        Client {
            base,
            parsed,
            token,
            http: reqwest::Client::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether the server URL can be used at all, before any request (every request would
    /// fail with [`ClientError::BadUrl`] otherwise).
    pub fn check_url(&self) -> ClientResult<()> {
        self.endpoint(&[]).map(|_| ())
    }

    /// The URL of an endpoint, each path segment percent-encoded (an id or a token name is
    /// always one segment, whatever it holds).
    fn endpoint(&self, segments: &[&str]) -> ClientResult<reqwest::Url> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: self.base.clone(),
            reason: reason.to_owned(),
        };
        let mut url = self.parsed.clone().map_err(|why| bad(&why))?;
        url.path_segments_mut()
            .map_err(|()| bad("it cannot have a path"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&Value>,
        query: Option<&ListFilter>,
    ) -> ClientResult<T> {
        let url = self.endpoint(path)?;
        let mut request = self.http.request(method, url);
        if let Some(query) = query {
            request = request.query(query);
        }
        self.send(request, body).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        body: Option<&Value>,
    ) -> ClientResult<T> {
        let text = self.send_text(request, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Decode(format!("{e} in {}", truncate(&text))))
    }

    /// Sends the request; the body of a success as text, or the error the server answered.
    async fn send_text(
        &self,
        mut request: reqwest::RequestBuilder,
        body: Option<&Value>,
    ) -> ClientResult<String> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: short_reason(&e),
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status.is_success() {
            return Ok(text);
        }
        let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let text_field = |key: &str| error.get(key).and_then(Value::as_str);
        let detail = text_field("detail").map_or_else(|| truncate(&text), str::to_owned);
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized { detail },
            StatusCode::FORBIDDEN => ClientError::Forbidden { detail },
            StatusCode::NOT_FOUND => ClientError::NotFound { detail },
            StatusCode::CONFLICT => ClientError::Conflict {
                detail,
                status: text_field("status").map(str::to_owned),
            },
            StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::BAD_REQUEST => ClientError::Invalid { detail },
            other => ClientError::Server {
                status: other.as_u16(),
                detail,
            },
        })
    }

    pub async fn submit(&self, submission: &Submission) -> ClientResult<Action> {
        let body =
            serde_json::to_value(submission).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, &["v1", "actions"], Some(&body), None)
            .await
    }

    /// Submits an action under an `Idempotency-Key`: the same key and body again return the
    /// action the first submission made instead of a second one.
    pub async fn submit_once(&self, submission: &Submission, key: &str) -> ClientResult<Action> {
        let body =
            serde_json::to_value(submission).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .http
            .post(self.endpoint(&["v1", "actions"])?)
            .header("Idempotency-Key", key);
        self.send(request, Some(&body)).await
    }

    /// Submits an action and, when it is allowed, starts it in the same write
    /// (`POST /v1/actions?start=true`): the answer is then `executing`.
    pub async fn submit_and_start(&self, submission: &Submission) -> ClientResult<Action> {
        let body =
            serde_json::to_value(submission).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .http
            .post(self.endpoint(&["v1", "actions"])?)
            .query(&[("start", "true")]);
        self.send(request, Some(&body)).await
    }

    pub async fn get(&self, id: &str) -> ClientResult<Action> {
        self.call(Method::GET, &["v1", "actions", id], None, None)
            .await
    }

    pub async fn list(&self, filter: &ListFilter) -> ClientResult<Vec<Action>> {
        self.call(Method::GET, &["v1", "actions"], None, Some(filter))
            .await
    }

    /// Every action, newest first, fetched page by page.
    pub async fn list_all(&self) -> ClientResult<Vec<Action>> {
        let mut all = Vec::new();
        loop {
            let offset = u32::try_from(all.len()).unwrap_or(u32::MAX);
            let page = self
                .list(&ListFilter {
                    limit: Some(1000),
                    offset: Some(offset),
                    ..Default::default()
                })
                .await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// The log's verifier key (`GET /v1/log/key`), in note format.
    pub async fn log_key(&self) -> ClientResult<String> {
        let request = self.http.get(self.endpoint(&["v1", "log", "key"])?);
        Ok(self.send_text(request, None).await?.trim().to_owned())
    }

    /// The latest signed checkpoint (`GET /v1/log/checkpoint`), a signed note.
    pub async fn log_checkpoint(&self) -> ClientResult<String> {
        let request = self.http.get(self.endpoint(&["v1", "log", "checkpoint"])?);
        self.send_text(request, None).await
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> ClientResult<faramesh_api::InclusionProof> {
        let request = self
            .http
            .get(self.endpoint(&["v1", "log", "proof", "inclusion"])?)
            .query(&[("index", index), ("size", size)]);
        self.send(request, None).await
    }

    /// The proof that the tree of `to` leaves extends the tree of `from`.
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> ClientResult<faramesh_api::ConsistencyProof> {
        let request = self
            .http
            .get(self.endpoint(&["v1", "log", "proof", "consistency"])?)
            .query(&[("from", from), ("to", to)]);
        self.send(request, None).await
    }

    /// The log's leaves from `start` up to `end` (exclusive), at most 1,000.
    pub async fn log_leaves(
        &self,
        start: u64,
        end: u64,
    ) -> ClientResult<Vec<faramesh_api::LogLeaf>> {
        let request = self
            .http
            .get(self.endpoint(&["v1", "log", "leaves"])?)
            .query(&[("start", start), ("end", end)]);
        self.send(request, None).await
    }

    pub async fn events(&self, id: &str) -> ClientResult<Vec<Event>> {
        self.call(Method::GET, &["v1", "actions", id, "events"], None, None)
            .await
    }

    /// Approves (`approve = true`) or denies a pending action, fetching its approval token first.
    pub async fn decide_approval(
        &self,
        id: &str,
        approve: bool,
        reason: Option<&str>,
    ) -> ClientResult<Action> {
        let action = self.get(id).await?;
        let token = match (action.status.as_str(), action.approval_token) {
            ("pending_approval", Some(token)) => token,
            // Hidden from this token's role: the server's 403 says which role may approve.
            ("pending_approval", None) => String::new(),
            (status, _) => {
                return Err(ClientError::Conflict {
                    detail: format!("Action {id} is {status}, not pending approval"),
                    status: Some(status.to_owned()),
                })
            }
        };
        let body = json!({"token": token, "approve": approve, "reason": reason});
        self.call(
            Method::POST,
            &["v1", "actions", id, "approval"],
            Some(&body),
            None,
        )
        .await
    }

    /// Creates an API token (admin only); the answer holds its secret, shown this once.
    pub async fn create_token(&self, name: &str, role: &str) -> ClientResult<NewToken> {
        let body = json!({"name": name, "role": role});
        self.call(Method::POST, &["v1", "tokens"], Some(&body), None)
            .await
    }

    /// Every token, revoked ones included (admin only).
    pub async fn list_tokens(&self) -> ClientResult<Vec<TokenInfo>> {
        self.call(Method::GET, &["v1", "tokens"], None, None).await
    }

    /// Revokes the token in use with this name or id (admin only).
    pub async fn revoke_token(&self, name_or_id: &str) -> ClientResult<TokenInfo> {
        self.revoke_token_forced(name_or_id, false).await
    }

    /// Revokes a token; with `force`, even the last admin token.
    pub async fn revoke_token_forced(
        &self,
        name_or_id: &str,
        force: bool,
    ) -> ClientResult<TokenInfo> {
        let url = self.endpoint(&["v1", "tokens", name_or_id])?;
        let mut request = self.http.delete(url);
        if force {
            request = request.query(&[("force", "true")]);
        }
        self.send(request, None).await
    }

    pub async fn start(&self, id: &str) -> ClientResult<Action> {
        self.call(
            Method::POST,
            &["v1", "actions", id, "start"],
            Some(&json!({})),
            None,
        )
        .await
    }

    /// Takes back a pending action (`POST /v1/actions/{id}/withdraw`).
    pub async fn withdraw(&self, id: &str, reason: &str) -> ClientResult<Action> {
        let body = json!({"reason": reason});
        self.call(
            Method::POST,
            &["v1", "actions", id, "withdraw"],
            Some(&body),
            None,
        )
        .await
    }

    pub async fn report_result(
        &self,
        id: &str,
        success: bool,
        error: Option<&str>,
        output: Option<Value>,
    ) -> ClientResult<Action> {
        let body = json!({"success": success, "error": error, "output": output});
        self.call(
            Method::POST,
            &["v1", "actions", id, "result"],
            Some(&body),
            None,
        )
        .await
    }

    /// Opens the live stream (`GET /v1/events`), resuming after `last_event_id` when given.
    pub(crate) async fn open_stream(
        &self,
        last_event_id: Option<u64>,
        status: Option<&str>,
        agent_id: Option<&str>,
    ) -> ClientResult<reqwest::Response> {
        let mut request = self.http.get(self.endpoint(&["v1", "events"])?);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let query: Vec<(&str, &str)> = [("status", status), ("agent_id", agent_id)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let response =
            request
                .query(&query)
                .send()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: self.base.clone(),
                    reason: short_reason(&e),
                })?;
        match response.status() {
            s if s.is_success() => Ok(response),
            StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized {
                detail: "the live stream needs a token".into(),
            }),
            s => Err(ClientError::Server {
                status: s.as_u16(),
                detail: "the live stream could not be opened".into(),
            }),
        }
    }

    /// Decides a submission without storing it (`POST /v1/gate/decide`).
    pub async fn gate_decide(&self, submission: &Submission) -> ClientResult<Value> {
        let body =
            serde_json::to_value(submission).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, &["v1", "gate", "decide"], Some(&body), None)
            .await
    }

    /// A decision with the policy's limits taken at the usage given (limit name → usage; 0 for
    /// the others) instead of the usage now: how a recorded decision is replayed.
    pub async fn gate_decide_at_usage(
        &self,
        submission: &Submission,
        usage: &serde_json::Map<String, Value>,
    ) -> ClientResult<Value> {
        let body =
            serde_json::to_value(submission).map_err(|e| ClientError::Decode(e.to_string()))?;
        let url = self.endpoint(&["v1", "gate", "decide"])?;
        let usage = Value::Object(usage.clone()).to_string();
        self.send(self.http.post(url).query(&[("usage", usage)]), Some(&body))
            .await
    }

    /// Which of `operations` of `tool` the server's policy denies for every call by
    /// `agent_id` (`POST /v1/gate/denied`).
    pub async fn denied_operations(
        &self,
        agent_id: &str,
        tool: &str,
        operations: Vec<String>,
    ) -> ClientResult<Vec<String>> {
        let query = faramesh_api::DeniedQuery {
            agent_id: agent_id.to_owned(),
            tool: tool.to_owned(),
            operations,
        };
        let body = serde_json::to_value(query).map_err(|e| ClientError::Decode(e.to_string()))?;
        let answer: faramesh_api::DeniedOperations = self
            .call(Method::POST, &["v1", "gate", "denied"], Some(&body), None)
            .await?;
        Ok(answer.denied)
    }

    /// The MCP servers of the server's gateway (`GET /v1/mcp/servers`).
    pub async fn mcp_servers(&self) -> ClientResult<Vec<faramesh_api::McpServer>> {
        let answer: faramesh_api::McpServers = self
            .call(Method::GET, &["v1", "mcp", "servers"], None, None)
            .await?;
        Ok(answer.servers)
    }

    /// The notification outbox, newest first (`GET /v1/notifications`).
    pub async fn notifications(
        &self,
        filter: &NotificationFilter,
    ) -> ClientResult<Vec<faramesh_api::Notification>> {
        let url = self.endpoint(&["v1", "notifications"])?;
        self.send(self.http.get(url).query(filter), None).await
    }

    /// The routes of the server's routes file.
    pub async fn notification_routes(&self) -> ClientResult<Vec<faramesh_api::RouteInfo>> {
        self.call(Method::GET, &["v1", "notifications", "routes"], None, None)
            .await
    }

    /// Queues a test message through `route`.
    pub async fn test_notification(&self, route: &str) -> ClientResult<faramesh_api::Notification> {
        let body = json!({"route": route});
        self.call(
            Method::POST,
            &["v1", "notifications", "test"],
            Some(&body),
            None,
        )
        .await
    }

    /// One notification of the latest thousand, by id.
    pub async fn notification(&self, id: &str) -> ClientResult<Option<faramesh_api::Notification>> {
        let filter = NotificationFilter {
            limit: Some(1000),
            ..NotificationFilter::default()
        };
        Ok(self
            .notifications(&filter)
            .await?
            .into_iter()
            .find(|n| n.id == id))
    }

    /// What the shadow policy would have decided otherwise (`GET /v1/policy/shadow`).
    pub async fn shadow_report(
        &self,
        policy_hash: Option<&str>,
        latest: u32,
    ) -> ClientResult<faramesh_api::ShadowReport> {
        let url = self.endpoint(&["v1", "policy", "shadow"])?;
        let mut query = vec![("latest", latest.to_string())];
        if let Some(hash) = policy_hash {
            query.push(("policy_hash", hash.to_owned()));
        }
        self.send(self.http.get(url).query(&query), None).await
    }

    pub async fn policy_info(&self) -> ClientResult<Value> {
        self.call(Method::GET, &["v1", "policy", "info"], None, None)
            .await
    }

    /// The full id for an id or a unique prefix of at least 8 characters.
    pub async fn resolve(&self, id_or_prefix: &str) -> ClientResult<String> {
        let wanted = normalize_prefix(id_or_prefix)?;
        if wanted.len() == 36 {
            return Ok(wanted);
        }
        let filter = ListFilter {
            id_prefix: Some(wanted.clone()),
            limit: Some(20),
            ..Default::default()
        };
        let found = self.list(&filter).await?;
        one_match(wanted, found.into_iter().map(|a| a.id).collect())
    }
}

pub(crate) fn short_reason(e: &reqwest::Error) -> String {
    // The kind of failure is only in the chain of causes: name a host that does not resolve
    // as such, not as a refused connection.
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains("failed to lookup address")
            || text.contains("Name or service not known")
            || text.contains("nodename nor servname")
        {
            return "its host name does not resolve".to_owned();
        }
        cause = c.source();
    }
    if e.is_connect() {
        "connection refused".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}
