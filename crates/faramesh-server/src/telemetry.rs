//! Traces of requests and decisions, when `faramesh serve` runs with an OTLP endpoint (see the
//! `faramesh-otel` crate). Without one none of this is installed.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use faramesh_otel::{FutureExt, Telemetry};
use std::sync::Arc;

/// Runs the request inside its server span, a child of the agent's `traceparent`.
pub async fn trace_request(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    // The route's pattern, never the raw path: ids and names stay out of span names.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let cx = telemetry.start_request(request.headers(), request.method().as_str(), &route);
    let response = next.run(request).with_context(cx.clone()).await;
    faramesh_otel::end_request(&cx, response.status().as_u16());
    response
}

/// A decision's span, when traces are on.
pub fn start_decision(telemetry: Option<&Arc<Telemetry>>) -> Option<faramesh_otel::DecisionSpan> {
    telemetry.map(|t| t.start_decision())
}
