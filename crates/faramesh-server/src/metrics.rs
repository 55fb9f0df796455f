//! Prometheus metrics (docs/api.md). Every label set is bounded: `endpoint` is the route template,
//! and tools and operations appear by name only when the loaded policy or profile names them
//! (anything an agent invents is counted as `other`).

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use faramesh_core::{ActionStatus, Engine, ProfileState};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::collections::HashSet;

/// Most distinct tool or operation names used as label values.
const MAX_NAMES: usize = 100;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    actions: IntCounterVec,
    duration: HistogramVec,
    approval_wait: HistogramVec,
    decisions: IntCounterVec,
    shadow: IntCounterVec,
    pending: IntGauge,
    sse_clients: IntGauge,
    reloads: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The tool and operation names that may be used as label values.
#[derive(Debug, Default, Clone)]
pub struct KnownNames {
    tools: HashSet<String>,
    operations: HashSet<String>,
}

impl KnownNames {
    /// The names the policy's rules and risk rules and the profile mention.
    pub fn of(engine: &Engine) -> KnownNames {
        let mut known = KnownNames::default();
        let mut add = |tool: Option<&String>, op: Option<&String>| {
            if let Some(t) = tool.filter(|_| known.tools.len() < MAX_NAMES) {
                known.tools.insert(t.clone());
            }
            if let Some(o) = op.filter(|_| known.operations.len() < MAX_NAMES) {
                known.operations.insert(o.clone());
            }
        };
        if let Some(policy) = engine.policy() {
            for rule in policy.rules() {
                add(rule.conditions.tool.as_ref(), rule.conditions.op.as_ref());
            }
            for rule in policy.risk_rules() {
                add(rule.conditions.tool.as_ref(), rule.conditions.op.as_ref());
            }
        }
        if let ProfileState::Loaded(profile) = engine.profile() {
            for tool in profile.hashed_form()["allowed_tools"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(t) = tool.as_str() {
                    add(Some(&t.to_owned()), None);
                }
            }
        }
        known
    }

    pub fn tool<'a>(&self, tool: &'a str) -> &'a str {
        if self.tools.contains(tool) {
            tool
        } else {
            "other"
        }
    }

    pub fn operation<'a>(&self, op: &'a str) -> &'a str {
        if self.operations.contains(op) {
            op
        } else {
            "other"
        }
    }
}

impl Metrics {
    #[allow(
        clippy::expect_used,
        reason = "the metric definitions are constants, not input; every test that starts a server builds them"
    )]
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("metric definition is valid");
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are unique");
            c
        };
        let requests = counter(
            "faramesh_requests_total",
            "HTTP requests by method, route and status",
            &["method", "endpoint", "status"],
        );
        let errors = counter(
            "faramesh_errors_total",
            "Error responses by kind",
            &["error_type"],
        );
        let actions = counter(
            "faramesh_actions_total",
            "Actions entering a status, by tool",
            &["status", "tool"],
        );
        let decisions = counter(
            "faramesh_decisions_total",
            "Decisions by outcome and reason code",
            &["outcome", "reason_code"],
        );
        let shadow = counter(
            "faramesh_shadow_decisions_total",
            "Submissions also decided by the shadow policy, by both outcomes and whether they differ",
            &["active", "shadow", "agreement"],
        );
        let reloads = counter(
            "faramesh_policy_reloads_total",
            "Policy reloads by result",
            &["result"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "faramesh_action_duration_seconds",
                "Execution time: from the started event to a final execution status",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
            ]),
            &["tool", "operation"],
        )
        .expect("metric definition is valid");
        registry
            .register(Box::new(duration.clone()))
            .expect("metric names are unique");
        let approval_wait = HistogramVec::new(
            HistogramOpts::new(
                "faramesh_approval_wait_seconds",
                "Time an action waited for a human: from submission to approved, denied or expired",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0,
                86400.0,
            ]),
            &["tool", "result"],
        )
        .expect("metric definition is valid");
        registry
            .register(Box::new(approval_wait.clone()))
            .expect("metric names are unique");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("metric definition is valid");
            registry
                .register(Box::new(g.clone()))
                .expect("metric names are unique");
            g
        };
        let pending = gauge("faramesh_pending_approvals", "Actions waiting for approval");
        let sse_clients = gauge("faramesh_sse_clients", "Connected live-stream clients");
        Metrics {
            registry,
            requests,
            errors,
            actions,
            duration,
            approval_wait,
            decisions,
            shadow,
            pending,
            sse_clients,
            reloads,
        }
    }

    pub fn action_status(&self, status: ActionStatus, tool: &str) {
        self.actions
            .with_label_values(&[status.as_str(), tool])
            .inc();
    }

    pub fn decision(&self, outcome: &str, reason_code: &str) {
        self.decisions
            .with_label_values(&[outcome, reason_code])
            .inc();
    }

    /// The shadow policy decided a submission too.
    pub fn shadow(&self, active: &str, shadow: &str, disagrees: bool) {
        let agreement = if disagrees { "disagree" } else { "agree" };
        self.shadow
            .with_label_values(&[active, shadow, agreement])
            .inc();
    }

    /// An action ran for `seconds`, from its start to its outcome.
    pub fn executed(&self, tool: &str, operation: &str, seconds: f64) {
        self.duration
            .with_label_values(&[tool, operation])
            .observe(seconds);
    }

    /// An action waited `seconds` for a human, until `result` (approved, denied or expired).
    pub fn approval_waited(&self, tool: &str, result: &str, seconds: f64) {
        self.approval_wait
            .with_label_values(&[tool, result])
            .observe(seconds);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts every request by its route template and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    state
        .metrics
        .requests
        .with_label_values(&[&method, &endpoint, status.as_str()])
        .inc();
    if status.is_client_error() || status.is_server_error() {
        let kind = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_");
        state.metrics.errors.with_label_values(&[&kind]).inc();
    }
    response
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn exposition(State(state): State<AppState>) -> Response {
    if let Ok(n) = state
        .store
        .count_with_status(ActionStatus::PendingApproval)
        .await
    {
        state
            .metrics
            .pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    state
        .metrics
        .sse_clients
        .set(i64::try_from(state.hub.client_count()).unwrap_or(i64::MAX));
    let mut text = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&state.metrics.registry.gather(), &mut text) {
        return crate::error::ApiError::Unavailable(format!("metrics could not be encoded: {e}"))
            .into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}
