use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Redirect;
use axum::routing::{any, get};
use axum::{Json, Router};
use faramesh_executors::{execute, ExecOutcome, ExecutorKind, Limits};
use serde_json::{json, Map, Value};

mod common;
use common::{failed, limits, params, succeeded, text};

async fn run(value: Value, limits: &Limits) -> ExecOutcome {
    execute(ExecutorKind::Http, &params(value), limits).await
}

/// The JSON the /echo route put in the response body.
fn echoed(output: &Value) -> Value {
    serde_json::from_str(text(output, "body")).expect("echo body is JSON")
}

async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    Json(json!({
        "method": method.as_str(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn hang() -> &'static str {
    std::future::pending::<()>().await;
    "never"
}

/// Serves the test routes on an ephemeral port for the rest of the test.
async fn server() -> SocketAddr {
    let app = Router::new()
        .route(
            "/ok",
            get(|| async { ([("x-custom", "yes")], "hello from the server") }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route("/echo", any(echo))
        .route("/hang", get(hang))
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/hop", get(|| async { Redirect::temporary("/ok") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind test server");
    let addr = listener.local_addr().expect("test server address");
    // The listener is bound before this returns, so requests made right
    // away queue in its backlog instead of racing the spawn.
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn get_is_the_default_method() {
    let addr = server().await;
    let output = succeeded(run(json!({"url": format!("http://{addr}/ok")}), &limits()).await);
    assert_eq!(output["status"], json!(200));
    assert_eq!(text(&output, "body"), "hello from the server");
    assert_eq!(output["body_truncated"], json!(false));
    assert_eq!(output["headers"]["x-custom"], json!("yes"));
    assert!(output["duration_ms"].is_number(), "{output}");

    let output = succeeded(run(json!({"url": format!("http://{addr}/echo")}), &limits()).await);
    assert_eq!(echoed(&output)["method"], json!("GET"));
}

#[tokio::test]
async fn post_with_json_body_sets_content_type() {
    let addr = server().await;
    // Parsed from text so the numbers keep their exact spelling.
    let body: Value = serde_json::from_str(r#"{"amount": 12.50, "id": 12345678901234567890}"#)
        .expect("valid JSON");
    let output = succeeded(
        run(
            json!({"url": format!("http://{addr}/echo"), "method": "post", "body": body}),
            &limits(),
        )
        .await,
    );
    let echo = echoed(&output);
    assert_eq!(echo["method"], json!("POST"));
    assert_eq!(echo["headers"]["content-type"], json!("application/json"));
    // Numbers go out exactly as given, not rounded through f64.
    assert_eq!(
        echo["body"],
        json!(r#"{"amount":12.50,"id":12345678901234567890}"#)
    );
}

#[tokio::test]
async fn string_body_is_sent_as_is_with_custom_headers() {
    let addr = server().await;
    let output = succeeded(
        run(
            json!({
                "url": format!("http://{addr}/echo"),
                "method": "PUT",
                "headers": {"X-Token": "abc", "Content-Type": "text/plain"},
                "body": "raw text",
            }),
            &limits(),
        )
        .await,
    );
    let echo = echoed(&output);
    assert_eq!(echo["method"], json!("PUT"));
    assert_eq!(echo["headers"]["x-token"], json!("abc"));
    assert_eq!(echo["headers"]["content-type"], json!("text/plain"));
    assert_eq!(echo["body"], json!("raw text"));
}

#[tokio::test]
async fn header_set_content_type_wins_over_json_default() {
    let addr = server().await;
    let output = succeeded(
        run(
            json!({
                "url": format!("http://{addr}/echo"),
                "method": "PATCH",
                "headers": {"content-type": "application/merge-patch+json"},
                "body": {"a": 1},
            }),
            &limits(),
        )
        .await,
    );
    let echo = echoed(&output);
    assert_eq!(
        echo["headers"]["content-type"],
        json!("application/merge-patch+json")
    );
    assert_eq!(echo["body"], json!(r#"{"a":1}"#));
}

#[tokio::test]
async fn non_2xx_status_fails_with_output() {
    let addr = server().await;
    let (error, output) =
        failed(run(json!({"url": format!("http://{addr}/fail")}), &limits()).await);
    assert_eq!(error, "HTTP status 500");
    assert_eq!(output["status"], json!(500));
    assert_eq!(text(&output, "body"), "boom");
}

#[tokio::test]
async fn redirects_are_followed_but_limited() {
    let addr = server().await;
    let output = succeeded(run(json!({"url": format!("http://{addr}/hop")}), &limits()).await);
    assert_eq!(text(&output, "body"), "hello from the server");

    let (error, _) = failed(run(json!({"url": format!("http://{addr}/loop")}), &limits()).await);
    assert!(error.contains("redirect"), "{error}");
}

#[tokio::test]
async fn bad_scheme_fails_naming_the_problem() {
    let (error, _) = failed(run(json!({"url": "ftp://example.com/file"}), &limits()).await);
    assert!(error.contains("ftp"), "{error}");
    assert!(error.contains("http and https"), "{error}");
}

#[tokio::test]
async fn missing_or_malformed_params_fail() {
    for (value, needle) in [
        (json!({}), "params.url"),
        (json!({"url": 5}), "params.url"),
        (json!({"url": "not a url"}), "not a url"),
        (
            json!({"url": "http://127.0.0.1:1/", "method": "GE T"}),
            "params.method",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": {"X-N": 1}}),
            "X-N",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": ["x"]}),
            "params.headers",
        ),
    ] {
        let (error, _) = failed(run(value.clone(), &limits()).await);
        assert!(
            error.contains(needle),
            "{error} should mention {needle} for {value}"
        );
    }
}

#[tokio::test]
async fn connection_refused_fails_with_duration() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);

    let url = format!("http://{addr}/");
    let (error, output) = failed(run(json!({ "url": url }), &limits()).await);
    assert!(
        error.starts_with(&format!("request to {url} failed: ")),
        "{error}"
    );
    assert!(output["duration_ms"].is_number(), "{output}");
}

#[tokio::test]
async fn password_in_url_is_not_echoed_in_errors() {
    let (error, _) =
        failed(run(json!({"url": "ftp://user:hunter2@example.com/"}), &limits()).await);
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn unanswered_request_times_out() {
    let addr = server().await;
    let limits = Limits {
        timeout: Duration::from_millis(300),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    };
    match run(json!({"url": format!("http://{addr}/hang")}), &limits).await {
        ExecOutcome::TimedOut { error, .. } => assert_eq!(error, "timed out after 300 ms"),
        other => panic!("expected TimedOut, got {other:?}"),
    }
}

#[tokio::test]
async fn body_is_capped() {
    let addr = server().await;
    let limits = Limits {
        timeout: Duration::from_secs(60),
        max_output_bytes: 1000,
    };
    let output = succeeded(run(json!({"url": format!("http://{addr}/big")}), &limits).await);
    assert_eq!(text(&output, "body"), "x".repeat(1000));
    assert_eq!(output["body_truncated"], json!(true));
}
