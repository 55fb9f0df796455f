//! The built-in `http` executor sends exactly what was decided: the decided operation is the
//! method, a redirect is not followed (not even to the gatekeeper's own API), and an address
//! inside the gatekeeper's network is refused however the URL names it, unless
//! `FARAMESH_HTTP_ALLOWED_NETWORKS` lists it.

use crate::harness::{faramesh, run_to_end, Serve, Server};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A server on loopback that records every request it gets ("METHOD target") and answers each
/// with `answer`.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(answer: impl Fn() -> Response + Clone + Send + Sync + 'static) -> Receiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            let record = record.clone();
            let answer = answer.clone();
            async move {
                record
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{method} {uri}"));
                answer()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, seen }
    }

    async fn ok() -> Receiver {
        Receiver::start(|| "received".into_response()).await
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn http_server(dir: &std::path::Path, allowed_networks: Option<&str>) -> Server {
    let mut env = vec![("FARAMESH_EXECUTORS", "http")];
    if let Some(networks) = allowed_networks {
        env.push(("FARAMESH_HTTP_ALLOWED_NETWORKS", networks));
    }
    Serve {
        env,
        ..Default::default()
    }
    .start(dir)
}

/// Submits an `http` action the default policy allows (`http get`), starts it and waits until
/// the executor has finished with it.
async fn run_allowed(server: &Server, params: Value) -> Value {
    let (status, action) = server
        .submit(json!({"agent_id": "a", "tool": "http", "operation": "get", "params": params}))
        .await;
    assert_eq!(status, 200, "{action}");
    assert_eq!(action["status"], "allowed", "{action}");
    let id = action["id"].as_str().expect("an id").to_owned();
    let (status, started) = server
        .post(&format!("/v1/actions/{id}/start"), json!({}))
        .await;
    assert_eq!(status, 200, "{started}");
    server.wait_finished(&id).await
}

#[tokio::test]
async fn a_method_in_params_that_contradicts_the_operation_is_refused_at_submission() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = http_server(dir.path(), Some("127.0.0.1/32"));
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/record", receiver.addr);

    let (status, body) = server
        .submit(json!({"agent_id": "a", "tool": "http", "operation": "get",
            "params": {"url": url, "method": "DELETE"}}))
        .await;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().expect("a detail");
    assert!(detail.contains("params.method"), "{detail}");
    assert!(detail.contains("DELETE"), "{detail}");
    assert_eq!(receiver.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn a_post_sneaked_into_a_decided_get_never_reaches_the_receiver() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = http_server(dir.path(), Some("127.0.0.1/32"));
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/record", receiver.addr);

    // Every way params could turn the decided GET into a write is refused at submission.
    for (params, field) in [
        (
            json!({"url": url, "method": "POST", "body": {"transfer": 100}}),
            "params.method",
        ),
        (json!({"url": url, "method": " post "}), "params.method"),
        (
            json!({"url": url, "body": {"transfer": 100}}),
            "params.body",
        ),
        (
            json!({"url": url, "headers": {"X-HTTP-Method-Override": "POST"}}),
            "params.headers.X-HTTP-Method-Override",
        ),
    ] {
        let (status, body) = server
            .submit(json!({"agent_id": "a", "tool": "http", "operation": "get", "params": params}))
            .await;
        assert_eq!(status, 422, "{params}: {body}");
        let detail = body["detail"].as_str().expect("a detail");
        assert!(detail.contains(field), "{params}: {detail}");
    }

    // A params.method that agrees with the operation is fine, and what is sent is a GET.
    let finished = run_allowed(&server, json!({"url": url, "method": "GET"})).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(receiver.seen(), ["GET /record"]);
}

#[tokio::test]
async fn a_redirect_to_the_gatekeepers_own_api_is_not_followed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = http_server(dir.path(), Some("127.0.0.1/32"));
    let own_api = format!("{}/v1/actions", server.url);
    let location = own_api.clone();
    let receiver = Receiver::start(move || {
        (
            StatusCode::FOUND,
            [(header::LOCATION, location.clone())],
            "see the gatekeeper",
        )
            .into_response()
    })
    .await;

    let finished = run_allowed(
        &server,
        json!({"url": format!("http://{}/innocent", receiver.addr)}),
    )
    .await;
    assert_eq!(finished["status"], "failed", "{finished}");
    assert_eq!(finished["result"]["status"], 302, "{finished}");
    assert_eq!(
        finished["result"]["headers"]["location"], own_api,
        "{finished}"
    );
    let reason = finished["reason"].as_str().expect("a reason");
    assert!(
        reason.contains(&format!("the redirect to {own_api} was not followed")),
        "{reason}"
    );
    assert!(
        reason.contains("only the original URL was decided"),
        "{reason}"
    );
    assert_eq!(receiver.seen(), ["GET /innocent"]);

    // The test itself only ever POSTs to /v1/actions; a GET there came from the executor.
    let metrics = server
        .client()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .expect("the server answers")
        .text()
        .await
        .expect("the metrics are text");
    let followed: Vec<&str> = metrics
        .lines()
        .filter(|line| {
            line.starts_with("faramesh_requests_total{")
                && line.contains("endpoint=\"/v1/actions\"")
                && line.contains("method=\"GET\"")
        })
        .collect();
    assert!(
        followed.is_empty(),
        "the gatekeeper got a request from its own executor: {followed:?}"
    );
}

#[tokio::test]
async fn an_allowed_name_that_resolves_to_loopback_is_refused_unless_listed() {
    let receiver = Receiver::ok().await;
    let url = format!("http://localhost:{}/", receiver.addr.port());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = http_server(dir.path(), None);
    let finished = run_allowed(&server, json!({ "url": url })).await;
    assert_eq!(finished["status"], "failed", "{finished}");
    let reason = finished["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("refused to connect to localhost at "),
        "{reason}"
    );
    assert!(
        reason.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"),
        "{reason}"
    );
    assert_eq!(receiver.seen(), Vec::<String>::new());
    drop(server);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = http_server(dir.path(), Some("127.0.0.1/32"));
    let finished = run_allowed(&server, json!({ "url": url })).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(receiver.seen(), ["GET /"]);
}

#[test]
fn a_bad_allowed_networks_setting_stops_the_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = faramesh(dir.path());
    command
        .args(["serve", "--port", "0", "--db"])
        .arg(dir.path().join("actions.db"))
        .arg("--policy")
        .arg(crate::harness::repo().join("policies/default.yaml"))
        .env("FARAMESH_EXECUTORS", "http")
        .env("FARAMESH_HTTP_ALLOWED_NETWORKS", "127.0.0.1/32,intranet");
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"),
        "{stderr}"
    );
    assert!(stderr.contains("\"intranet\""), "{stderr}");
}
