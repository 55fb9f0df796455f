//! Traces over OTLP against a real receiver on loopback (tests/otel/otlp_receiver.py, decoding
//! with the official protobuf messages): a span per request and per decision, joined to the
//! agent's trace by its W3C `traceparent`; none of it unless an endpoint is configured.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use notify_support::{repo, Fixture};
use serde_json::{json, Value};
use std::process::Command;

mod common;
mod notify_support;

/// The OTLP receiver, writing each span it receives as a JSON line.
fn receiver() -> Fixture {
    let setup = Command::new(repo().join("tests/otel/setup"))
        .output()
        .expect("tests/otel/setup runs");
    assert!(
        setup.status.success(),
        "tests/otel/setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let dir = tempfile::TempDir::new().unwrap();
    let spans = dir.path().join("spans.jsonl");
    let mut command = Command::new(repo().join("target/otel-python-venv/bin/python"));
    command
        .arg(repo().join("tests/otel/otlp_receiver.py"))
        .arg(&spans);
    Fixture::spawn(command, dir, spans)
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const AGENT_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn requests_and_decisions_are_spans_inside_the_agents_trace() {
    let receiver = receiver();
    let dir = tempfile::TempDir::new().unwrap();
    let (child, url, logged) = common::serve_logged(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.address),
            // Export each batch at once instead of every five seconds.
            ("OTEL_BSP_SCHEDULE_DELAY", "10"),
            ("FARAMESH_EXECUTORS", "none"),
        ],
        &[],
        None,
    );
    // Stopped when dropped, whatever fails below.
    let _server = common::Server {
        url: url.clone(),
        child,
        dir,
    };
    assert!(
        logged.iter().any(
            |l| l.contains("traces: a span per request and per decision")
                && l.contains(&receiver.address)
        ),
        "{logged:#?}"
    );
    let http = reqwest::blocking::Client::new();
    let traceparent = format!("00-{TRACE_ID}-{AGENT_SPAN}-01");
    let action: Value = http
        .post(format!("{url}/v1/actions"))
        .header("traceparent", &traceparent)
        .json(
            &json!({"agent_id": "traced-agent", "tool": "http", "operation": "get",
                      "params": {"url": "https://example.com"}}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = action["id"].as_str().unwrap().to_owned();
    let decided: Value = http
        .post(format!("{url}/v1/gate/decide"))
        .json(
            &json!({"agent_id": "untraced-agent", "tool": "stripe", "operation": "refund",
                      "params": {"amount": 1}}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(decided["outcome"], json!("HALT"));
    let status = http
        .get(format!("{url}/v1/actions/{id}"))
        .header("traceparent", &traceparent)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // The submission's server span is a child of the agent's span, in the agent's trace.
    let request = receiver.wait_record("POST /v1/actions", |s| {
        s["name"] == json!("POST /v1/actions")
    });
    assert_eq!(request["trace_id"], json!(TRACE_ID));
    assert_eq!(request["parent_span_id"], json!(AGENT_SPAN));
    assert_eq!(request["kind"], json!(2), "SPAN_KIND_SERVER");
    assert_eq!(request["service"], json!("faramesh"));
    assert_eq!(request["attributes"]["http.request.method"], json!("POST"));
    assert_eq!(request["attributes"]["http.route"], json!("/v1/actions"));
    assert_eq!(
        request["attributes"]["http.response.status_code"],
        json!(200)
    );
    assert_eq!(request["attributes"]["faramesh.action_id"], json!(id));

    // Its decision is a span inside it, with what was decided.
    let decision = receiver.wait_record("of the decision", |s| {
        s["name"] == json!("faramesh.decision")
            && s["attributes"]["faramesh.action_id"] == json!(id)
    });
    assert_eq!(decision["trace_id"], json!(TRACE_ID));
    assert_eq!(decision["parent_span_id"], request["span_id"]);
    assert_eq!(
        decision["attributes"],
        json!({"faramesh.action_id": id, "faramesh.agent_id": "traced-agent", "faramesh.tool": "http",
               "faramesh.operation": "get", "faramesh.outcome": "EXECUTE",
               "faramesh.reason_code": "POLICY_ALLOW", "faramesh.risk_level": "low",
               "faramesh.status": "allowed"})
    );

    // A request without a traceparent starts a trace of its own; a decision that stores
    // nothing has no action id.
    let gate = receiver.wait_record("POST /v1/gate/decide", |s| {
        s["name"] == json!("POST /v1/gate/decide")
    });
    assert_eq!(gate["parent_span_id"], json!(""));
    assert_ne!(gate["trace_id"], json!(TRACE_ID));
    let halted = receiver.wait_record("of the gate decision", |s| {
        s["name"] == json!("faramesh.decision") && s["parent_span_id"] == gate["span_id"]
    });
    assert_eq!(halted["attributes"]["faramesh.outcome"], json!("HALT"));
    assert_eq!(
        halted["attributes"]["faramesh.agent_id"],
        json!("untraced-agent")
    );
    assert!(halted["attributes"].get("faramesh.action_id").is_none());

    // Span names carry the route, never an action id.
    let read = receiver.wait_record("GET /v1/actions/{id}", |s| {
        s["name"] == json!("GET /v1/actions/{id}")
    });
    assert_eq!(read["parent_span_id"], json!(AGENT_SPAN));
    assert!(!receiver
        .records()
        .iter()
        .any(|s| s["name"].as_str().unwrap().contains(&id)));
}

#[test]
fn traces_are_off_without_an_endpoint_and_an_unsupported_protocol_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let (mut server, _, logged) = common::serve_logged(dir.path(), &[], &[], None);
    let _ = server.kill();
    let _ = server.wait();
    assert!(!logged.iter().any(|l| l.contains("traces:")), "{logged:#?}");

    let out = Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .current_dir(dir.path())
        .args(["serve", "--port", "0", "--policy"])
        .arg(repo().join("policies/default.yaml"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\" is not supported")
            && stderr.contains("http/protobuf"),
        "{stderr}"
    );
}
