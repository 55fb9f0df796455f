#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use faramesh_executors::{execute, AllowedNetworks, ExecOutcome, ExecutorKind, Limits};
use serde_json::{json, Map, Value};

mod common;
use common::{failed, limits, params, succeeded, text};

/// The test servers listen on loopback, which the executor refuses unless told otherwise.
fn loopback() -> AllowedNetworks {
    AllowedNetworks::parse("127.0.0.1/32,::1/128").expect("valid networks")
}

async fn run(operation: &str, value: Value, limits: &Limits) -> ExecOutcome {
    run_with(operation, value, limits, &loopback()).await
}

async fn run_with(
    operation: &str,
    value: Value,
    limits: &Limits,
    networks: &AllowedNetworks,
) -> ExecOutcome {
    execute(
        ExecutorKind::Http,
        operation,
        &params(value),
        limits,
        networks,
    )
    .await
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
        .route("/hop", get(|| async { Redirect::temporary("/ok") }));
    serve(app).await
}

async fn serve(app: Router) -> SocketAddr {
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

/// A server that records every request it gets ("METHOD target") and answers each with
/// `answer`.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(answer: fn() -> Response) -> Receiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{method} {uri}"));
                answer()
            }
        });
        Receiver {
            addr: serve(app).await,
            seen,
        }
    }

    async fn ok() -> Receiver {
        Receiver::start(|| "received".into_response()).await
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[tokio::test]
async fn operation_get_sends_a_get() {
    let addr = server().await;
    let output = succeeded(
        run(
            "get",
            json!({"url": format!("http://{addr}/ok")}),
            &limits(),
        )
        .await,
    );
    assert_eq!(output["status"], json!(200));
    assert_eq!(text(&output, "body"), "hello from the server");
    assert_eq!(output["body_truncated"], json!(false));
    assert_eq!(output["headers"]["x-custom"], json!("yes"));
    assert!(output["duration_ms"].is_number(), "{output}");

    let output = succeeded(
        run(
            "get",
            json!({"url": format!("http://{addr}/echo")}),
            &limits(),
        )
        .await,
    );
    assert_eq!(echoed(&output)["method"], json!("GET"));
}

#[tokio::test]
async fn the_method_is_the_operation_whatever_params_say() {
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/item", receiver.addr);
    // Submission refuses a params.method that disagrees; an action stored before that check
    // (or reaching the executor any other way) still sends only what its operation says.
    succeeded(run("get", json!({"url": url, "method": "DELETE"}), &limits()).await);
    for operation in ["post", "PUT", "Patch", "delete", "head", "options"] {
        succeeded(run(operation, json!({"url": url, "method": "GET"}), &limits()).await);
    }
    assert_eq!(
        receiver.seen(),
        [
            "GET /item",
            "POST /item",
            "PUT /item",
            "PATCH /item",
            "DELETE /item",
            "HEAD /item",
            "OPTIONS /item"
        ]
    );
}

#[tokio::test]
async fn an_operation_that_is_not_a_method_is_never_guessed() {
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/", receiver.addr);
    for operation in ["fetch", "trace", "connect", "GET ", "request"] {
        let (error, _) = failed(run(operation, json!({"url": url}), &limits()).await);
        assert!(
            error.contains(&format!("operation {operation:?} is not an HTTP method")),
            "{error}"
        );
        assert!(
            error.contains("get, post, put, patch, delete, head or options"),
            "{error}"
        );
    }
    assert_eq!(receiver.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn a_body_or_method_override_with_a_read_is_refused() {
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/", receiver.addr);
    for operation in ["get", "HEAD"] {
        let (error, _) = failed(
            run(
                operation,
                json!({"url": url, "body": {"drop": "all"}}),
                &limits(),
            )
            .await,
        );
        assert!(error.contains("params.body"), "{error}");
    }
    // Nor may a header ask the server to read the request as another method.
    let (error, _) = failed(
        run(
            "get",
            json!({"url": url, "headers": {"X-HTTP-Method-Override": "DELETE"}}),
            &limits(),
        )
        .await,
    );
    assert!(
        error.contains("params.headers.X-HTTP-Method-Override"),
        "{error}"
    );
    assert_eq!(receiver.seen(), Vec::<String>::new());
    // An explicit null is no body.
    succeeded(run("get", json!({"url": url, "body": null}), &limits()).await);
}

#[test]
fn submission_check_refuses_params_that_contradict_the_operation() {
    use faramesh_executors::check_http_params;
    let ok = |op: &str, value: Value| check_http_params(op, &params(value));
    assert_eq!(ok("get", json!({"url": "http://x/"})), Ok(()));
    assert_eq!(ok("get", json!({"method": "GET"})), Ok(()));
    assert_eq!(ok("DELETE", json!({"method": "delete"})), Ok(()));
    assert_eq!(ok("post", json!({"body": {"a": 1}})), Ok(()));
    assert_eq!(ok("get", json!({"body": null})), Ok(()));
    for (op, value, field) in [
        ("get", json!({"method": "DELETE"}), "params.method"),
        ("get", json!({"method": "post"}), "params.method"),
        ("get", json!({"method": " get "}), "params.method"),
        ("get", json!({"method": 1}), "params.method"),
        ("fetch", json!({"method": "GET"}), "params.method"),
        ("get", json!({"body": "x"}), "params.body"),
        ("head", json!({"body": {}}), "params.body"),
        (
            "get",
            json!({"headers": {"X-HTTP-Method-Override": "DELETE"}}),
            "params.headers.X-HTTP-Method-Override",
        ),
    ] {
        let error = ok(op, value.clone()).expect_err("refused");
        assert!(
            error.starts_with(field),
            "{error} should name {field} for {value}"
        );
    }
    assert_eq!(
        ok(
            "post",
            json!({"headers": {"x-http-method-override": "POST"}})
        ),
        Ok(())
    );
}

#[tokio::test]
async fn post_with_json_body_sets_content_type() {
    let addr = server().await;
    // Parsed from text so the numbers keep their exact spelling.
    let body: Value = serde_json::from_str(r#"{"amount": 12.50, "id": 12345678901234567890}"#)
        .expect("valid JSON");
    let output = succeeded(
        run(
            "post",
            json!({"url": format!("http://{addr}/echo"), "body": body}),
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
            "put",
            json!({
                "url": format!("http://{addr}/echo"),
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
            "patch",
            json!({
                "url": format!("http://{addr}/echo"),
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
    let (error, output) = failed(
        run(
            "get",
            json!({"url": format!("http://{addr}/fail")}),
            &limits(),
        )
        .await,
    );
    assert_eq!(error, "HTTP status 500");
    assert_eq!(output["status"], json!(500));
    assert_eq!(text(&output, "body"), "boom");
}

#[tokio::test]
async fn a_redirect_is_recorded_not_followed() {
    let target = Receiver::ok().await;
    // The redirecting server only knows its target once the target listens; a static keeps
    // `answer` a plain fn.
    static TARGET: Mutex<String> = Mutex::new(String::new());
    *TARGET.lock().unwrap_or_else(|p| p.into_inner()) = format!("http://{}/next", target.addr);
    let redirecting = Receiver::start(|| {
        let location = TARGET.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (
            StatusCode::FOUND,
            [(header::LOCATION, location)],
            "moved elsewhere",
        )
            .into_response()
    })
    .await;

    let url = format!("http://{}/start", redirecting.addr);
    let (error, output) = failed(run("get", json!({ "url": url }), &limits()).await);
    let location = format!("http://{}/next", target.addr);
    assert!(
        error.contains(&format!(
            "the redirect to {location} was not followed because only the original URL was decided"
        )),
        "{error}"
    );
    assert_eq!(output["status"], json!(302));
    assert_eq!(output["headers"]["location"], json!(location));
    assert_eq!(text(&output, "body"), "moved elsewhere");
    assert_eq!(redirecting.seen(), ["GET /start"]);
    assert_eq!(
        target.seen(),
        Vec::<String>::new(),
        "the redirect was followed"
    );

    // A relative Location is shown resolved against the original URL.
    let addr = server().await;
    let (error, output) = failed(
        run(
            "get",
            json!({"url": format!("http://{addr}/hop")}),
            &limits(),
        )
        .await,
    );
    assert!(
        error.contains(&format!(
            "the redirect to http://{addr}/ok was not followed"
        )),
        "{error}"
    );
    assert_eq!(output["status"], json!(307));
}

#[tokio::test]
async fn loopback_is_refused_unless_the_setting_lists_it() {
    let receiver = Receiver::ok().await;
    let url = format!("http://{}/", receiver.addr);
    let (error, _) = get_refused(&url).await;
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(error.contains("loopback"), "{error}");
    assert!(error.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"), "{error}");
    assert_eq!(receiver.seen(), Vec::<String>::new());

    let only_this = AllowedNetworks::parse("127.0.0.1/32").expect("valid");
    succeeded(run_with("get", json!({ "url": url }), &limits(), &only_this).await);
    assert_eq!(receiver.seen(), ["GET /"]);
}

/// A GET of `url` with no inward network allowed, which must fail; its error and output.
async fn get_refused(url: &str) -> (String, Value) {
    failed(
        run_with(
            "get",
            json!({ "url": url }),
            &limits(),
            &AllowedNetworks::none(),
        )
        .await,
    )
}

#[tokio::test]
async fn a_name_that_resolves_inward_is_refused() {
    let receiver = Receiver::ok().await;
    let url = format!("http://localhost:{}/", receiver.addr.port());
    let (error, output) = get_refused(&url).await;
    assert!(
        error.starts_with("refused to connect to localhost at "),
        "{error}"
    );
    assert!(error.contains("loopback"), "{error}");
    assert!(error.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"), "{error}");
    assert!(output["duration_ms"].is_number(), "{output}");
    assert_eq!(receiver.seen(), Vec::<String>::new());

    // Listing the address lets the name through, to that address only.
    let only_this = AllowedNetworks::parse("127.0.0.1/32").expect("valid");
    succeeded(run_with("get", json!({ "url": url }), &limits(), &only_this).await);
    assert_eq!(receiver.seen(), ["GET /"]);
}

#[tokio::test]
async fn an_ipv4_mapped_literal_is_judged_as_its_ipv4_address() {
    let receiver = Receiver::ok().await;
    let url = format!("http://[::ffff:127.0.0.1]:{}/", receiver.addr.port());
    let (error, _) = get_refused(&url).await;
    assert!(error.contains("::ffff:127.0.0.1"), "{error}");
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(receiver.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn inward_literals_are_refused_before_any_connection() {
    // A short timeout: a connection attempt to these would hang or fail differently; the
    // refusal comes before any.
    let limits = Limits {
        timeout: Duration::from_secs(2),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    };
    for (url, address, kind) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
            "link-local",
        ),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://10.0.0.1/", "10.0.0.1", "private"),
        ("http://172.16.5.4/", "172.16.5.4", "private"),
        ("http://192.168.1.1/", "192.168.1.1", "private"),
        ("http://[fd00::1]/", "fd00::1", "private"),
        ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
        ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
        ("http://[::]/", "::", "unspecified"),
        ("http://[::1]/", "::1", "loopback"),
        ("http://2130706433/", "127.0.0.1", "loopback"),
        ("http://0x7f.1/", "127.0.0.1", "loopback"),
        (
            "http://[::127.0.0.1]/",
            "::7f00:1 (IPv4 127.0.0.1)",
            "loopback",
        ),
        (
            "http://[::ffff:a9fe:a9fe]/",
            "::ffff:169.254.169.254",
            "link-local",
        ),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ("http://255.255.255.255/", "255.255.255.255", "broadcast"),
    ] {
        let outcome = run_with(
            "get",
            json!({ "url": url }),
            &limits,
            &AllowedNetworks::none(),
        )
        .await;
        let ExecOutcome::Failed { error, .. } = outcome else {
            panic!("{url}: expected a refusal, got {outcome:?}");
        };
        assert!(
            error.starts_with("refused to connect to "),
            "{url}: {error}"
        );
        assert!(
            error.contains(&format!(" at {address}: ")),
            "{url}: {error}"
        );
        assert!(error.contains(kind), "{url}: {error}");
        assert!(
            error.contains("FARAMESH_HTTP_ALLOWED_NETWORKS"),
            "{url}: {error}"
        );
    }
}

/// Run in a child process by `proxy_settings_in_the_environment_are_ignored`, with proxy
/// variables set; a process of its own, because the environment is shared by all threads.
#[tokio::test]
#[ignore = "run by proxy_settings_in_the_environment_are_ignored with proxy variables set"]
async fn proxy_child_request() {
    let Ok(url) = std::env::var("FARAMESH_TEST_PROXY_TARGET") else {
        return;
    };
    succeeded(run("get", json!({ "url": url }), &limits()).await);
}

#[tokio::test]
async fn proxy_settings_in_the_environment_are_ignored() {
    let proxy = Receiver::ok().await;
    let target = Receiver::ok().await;
    let proxy_url = format!("http://{}", proxy.addr);
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = tokio::process::Command::new(exe);
    child
        .args(["proxy_child_request", "--exact", "--ignored", "--nocapture"])
        .env(
            "FARAMESH_TEST_PROXY_TARGET",
            format!("http://{}/direct", target.addr),
        )
        // Under CGI (REQUEST_METHOD set) HTTP_PROXY is ignored anyway, and NO_PROXY could
        // exempt loopback: neither may hide a proxy being used.
        .env_remove("REQUEST_METHOD")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for variable in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        child.env(variable, &proxy_url);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.output())
        .await
        .expect("the child test finishes within 60 s")
        .expect("the child test runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("1 passed"),
        "the child test did not run: {log}"
    );
    assert_eq!(proxy.seen(), Vec::<String>::new(), "the proxy was used");
    assert_eq!(target.seen(), ["GET /direct"]);
}

#[tokio::test]
async fn bad_scheme_fails_naming_the_problem() {
    let (error, _) = failed(run("get", json!({"url": "ftp://example.com/file"}), &limits()).await);
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
            json!({"url": "http://127.0.0.1:1/", "headers": {"X-N": 1}}),
            "X-N",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": ["x"]}),
            "params.headers",
        ),
    ] {
        let (error, _) = failed(run("get", value.clone(), &limits()).await);
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
    let (error, output) = failed(run("get", json!({ "url": url }), &limits()).await);
    assert!(
        error.starts_with(&format!("request to {url} failed: ")),
        "{error}"
    );
    assert!(output["duration_ms"].is_number(), "{output}");
}

#[tokio::test]
async fn password_in_url_is_not_echoed_in_errors() {
    let (error, _) = failed(
        run(
            "get",
            json!({"url": "ftp://user:hunter2@example.com/"}),
            &limits(),
        )
        .await,
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn unanswered_request_times_out() {
    let addr = server().await;
    let limits = Limits {
        timeout: Duration::from_millis(300),
        max_output_bytes: Limits::DEFAULT_MAX_OUTPUT,
    };
    match run(
        "get",
        json!({"url": format!("http://{addr}/hang")}),
        &limits,
    )
    .await
    {
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
    let output = succeeded(run("get", json!({"url": format!("http://{addr}/big")}), &limits).await);
    assert_eq!(text(&output, "body"), "x".repeat(1000));
    assert_eq!(output["body_truncated"], json!(true));
}
