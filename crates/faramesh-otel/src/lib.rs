//! Traces over OpenTelemetry: a server span per API request and a span per decision, exported
//! over OTLP/HTTP (protobuf) as the standard `OTEL_*` variables say. A request that carries a
//! W3C `traceparent` becomes a child of the agent's span, so the governance of a tool call
//! shows inside the agent's own trace.
//!
//! Off unless an OTLP endpoint is configured; then the server installs none of this, and a
//! request or a decision costs nothing more than without it.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

pub use opentelemetry::context::FutureExt;

/// Tracing cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{variable}={value:?} is not supported: Faramesh exports traces over OTLP/HTTP with protobuf; set it to http/protobuf or leave it unset")]
    Protocol {
        variable: &'static str,
        value: String,
    },
    #[error(
        "OTEL_TRACES_EXPORTER={0:?} is not supported: set it to otlp, or none to turn traces off"
    )]
    Exporter(String),
    #[error("cannot create the OTLP exporter: {0}")]
    Build(String),
}

/// The tracer, while traces are exported.
pub struct Telemetry {
    endpoint: String,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

/// Where the traces go, for the server's start-up line.
fn endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

impl Telemetry {
    /// From the standard variables: `None` unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and not when `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`. The exporter reads the rest itself (headers, timeout,
    /// `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`).
    pub fn from_env() -> Result<Option<Telemetry>, TelemetryError> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("") | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => return Err(TelemetryError::Exporter(other.to_owned())),
        }
        let Some(endpoint) = endpoint() else {
            return Ok(None);
        };
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = var(variable).filter(|v| !v.is_empty()) {
                if value != "http/protobuf" {
                    return Err(TelemetryError::Protocol { variable, value });
                }
            }
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TelemetryError::Build(e.to_string()))?;
        let mut resource = Resource::builder();
        if var("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
            resource = resource.with_service_name("faramesh");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("faramesh");
        Ok(Some(Telemetry {
            endpoint,
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        }))
    }

    /// The endpoint traces are sent to, as configured.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Starts the server span of a request: a child of its `traceparent` when it has a valid
    /// one, else the root of a new trace. Run the request's future `with_context` of the
    /// result, and end it with [`end_request`].
    pub fn start_request(&self, headers: &http::HeaderMap, method: &str, route: &str) -> Context {
        let parent = self.propagator.extract(&Headers(headers));
        let span = self
            .tracer
            .span_builder(format!("{method} {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("http.route", route.to_owned()),
            ])
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    /// Starts a decision's span, a child of the request being served (the current context).
    pub fn start_decision(&self) -> DecisionSpan {
        let parent = Context::current();
        let span = self
            .tracer
            .span_builder("faramesh.decision")
            .with_kind(SpanKind::Internal)
            .start_with_context(&self.tracer, &parent);
        DecisionSpan(parent.with_span(span))
    }

    /// Exports what is still buffered and stops.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

/// Ends a request's span with the response's status.
pub fn end_request(cx: &Context, status: u16) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    span.end();
}

/// What a decision decided, as span attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decided<'a> {
    /// None for a decision that stores nothing (`/v1/gate/decide`).
    pub action_id: Option<&'a str>,
    pub agent_id: &'a str,
    pub tool: &'a str,
    pub operation: &'a str,
    pub outcome: &'a str,
    pub reason_code: &'a str,
    pub risk_level: Option<&'a str>,
    /// The status the action was stored with.
    pub status: Option<&'a str>,
}

/// A decision's span, open until [`DecisionSpan::finish`].
pub struct DecisionSpan(Context);

impl DecisionSpan {
    /// Ends the span with what was decided, and names the action on the request's span too.
    pub fn finish(self, decided: &Decided<'_>) {
        let mut attributes = vec![
            KeyValue::new("faramesh.agent_id", decided.agent_id.to_owned()),
            KeyValue::new("faramesh.tool", decided.tool.to_owned()),
            KeyValue::new("faramesh.operation", decided.operation.to_owned()),
            KeyValue::new("faramesh.outcome", decided.outcome.to_owned()),
            KeyValue::new("faramesh.reason_code", decided.reason_code.to_owned()),
        ];
        if let Some(risk) = decided.risk_level {
            attributes.push(KeyValue::new("faramesh.risk_level", risk.to_owned()));
        }
        if let Some(status) = decided.status {
            attributes.push(KeyValue::new("faramesh.status", status.to_owned()));
        }
        if let Some(id) = decided.action_id {
            attributes.push(KeyValue::new("faramesh.action_id", id.to_owned()));
            Context::current()
                .span()
                .set_attribute(KeyValue::new("faramesh.action_id", id.to_owned()));
        }
        let span = self.0.span();
        span.set_attributes(attributes);
        span.end();
    }

    /// Ends the span of a decision that failed before it was made or stored.
    pub fn fail(self, error: &str) {
        let span = self.0.span();
        span.set_status(Status::error(error.to_owned()));
        span.end();
    }
}

/// A request's headers, read by the W3C propagator.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
