//! A server without authentication is not a web page's: DNS rebinding and cross-origin pages
//! cannot drive it; a token setting without a token, or a `.env` that cannot be read, stops the
//! start instead of opening the API.

use crate::harness::{faramesh, run_to_end, Serve, Server};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

async fn pending_shell_action(server: &Server) -> Value {
    let (status, action) = server
        .submit(
            json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": "id"}}),
        )
        .await;
    assert_eq!(status, 200, "{action}");
    assert_eq!(action["status"], "pending_approval");
    action
}

#[tokio::test]
async fn a_cross_origin_page_cannot_list_approve_or_start_actions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::default().start(dir.path());
    let action = pending_shell_action(&server).await;
    let id = action["id"].as_str().unwrap();
    let token = action["approval_token"].as_str().unwrap();
    let client = server.client();
    let evil = "https://attacker.example";

    // The page's fetch of the pending list (with the approval tokens in it) is refused.
    let listing = client
        .get(format!("{}/v1/actions?status=pending_approval", server.url))
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 403);
    assert!(listing
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let body: Value = listing.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("Origin"),
        "{body}"
    );

    // A preflight gets no permission either.
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/actions/{id}/approval", server.url),
        )
        .header("origin", evil)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // Even with the token known, the approval and the start from that page are refused.
    let approval = client
        .post(format!("{}/v1/actions/{id}/approval", server.url))
        .header("origin", evil)
        .json(&json!({"token": token, "approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(approval.status(), 403);
    let start = client
        .post(format!("{}/v1/actions/{id}/start", server.url))
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 403);
    let (_, now) = server.get(&format!("/v1/actions/{id}")).await;
    assert_eq!(now["status"], "pending_approval");

    // The dashboard, served by the server itself, still works: same origin.
    let own = server.url.clone();
    let approval = client
        .post(format!("{}/v1/actions/{id}/approval", server.url))
        .header("origin", own)
        .json(&json!({"token": token, "approve": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(approval.status(), 200);
}

#[tokio::test]
async fn dns_rebinding_gets_nothing_from_an_open_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::default().start(dir.path());
    pending_shell_action(&server).await;
    let client = server.client();
    // A rebound name reaches the socket, but the Host header still names the attacker's site.
    for path in ["/v1/actions", "/", "/v1/events"] {
        let response = client
            .get(format!("{}{path}", server.url))
            .header("host", "attacker.example:8000")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // Probes by IP address keep working.
    let health = client
        .get(format!("{}/health", server.url))
        .header("host", "10.1.2.3:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A name the operator lists is answered.
    drop(server);
    let server = Serve {
        env: vec![("FARAMESH_ALLOWED_HOSTS", "gate.internal")],
        ..Default::default()
    }
    .start(dir.path());
    let listed = server
        .client()
        .get(format!("{}/v1/actions", server.url))
        .header("host", "gate.internal:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn cors_answers_only_listed_origins() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve {
        env: vec![("FARAMESH_CORS_ORIGINS", "https://ui.example")],
        ..Default::default()
    }
    .start(dir.path());
    let client = server.client();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/actions", server.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let listed = preflight("https://ui.example").await.unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://ui.example"
    );
    let other = preflight("https://attacker.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn a_wildcard_cors_origin_without_authentication_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = faramesh(dir.path());
    command
        .args(["serve", "--port", "0", "--allow-missing-policy"])
        .env("FARAMESH_CORS_ORIGINS", "*");
    let (code, text) = run_to_end(command);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("FARAMESH_CORS_ORIGINS"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
}

#[test]
fn a_token_setting_that_holds_no_token_stops_the_start() {
    for blank in [" , ", ",", "  "] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = faramesh(dir.path());
        command
            .args(["serve", "--port", "0", "--allow-missing-policy"])
            .env("FARAMESH_TOKEN", blank);
        let (code, text) = run_to_end(command);
        assert_eq!(code, 2, "FARAMESH_TOKEN={blank:?}: {text}");
        assert!(text.contains("FARAMESH_TOKEN"), "{text}");
        assert!(text.contains("holds no token"), "{text}");
        assert!(!text.contains("listening on"), "{text}");
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_dotenv_copied_from_init_turns_authentication_on_and_sets_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run_to_end({
        let mut command = faramesh(dir.path());
        command.arg("init");
        command
    });
    assert_eq!(code, 0, "{text}");
    let example = std::fs::read_to_string(dir.path().join(".env.example")).unwrap();
    let port = free_port();
    // What an operator does: copy the example and uncomment the lines they need.
    let env = example
        .replace("# FARAMESH_TOKEN=change-me", "FARAMESH_TOKEN=from-dotenv")
        .replace("# FARAMESH_PORT=8000", &format!("FARAMESH_PORT={port}"));
    assert_ne!(env, example, "the example has the lines to uncomment");
    std::fs::write(dir.path().join(".env"), env).unwrap();

    let mut child = faramesh(dir.path())
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l: &String| l.contains("listening on")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start:\n{}", log.join("\n"));
            }
        }
    }
    let text = log.join("\n");
    let result = async {
        assert!(
            text.contains(".env"),
            "serve says which .env it read: {text}"
        );
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://127.0.0.1:{port}/v1/actions");
        let anonymous = client.get(&url).send().await.unwrap();
        assert_eq!(
            anonymous.status(),
            401,
            "the token from .env turned auth on"
        );
        let admin = client
            .get(&url)
            .bearer_auth("from-dotenv")
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), 200);
    };
    result.await;
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_dotenv_that_cannot_be_parsed_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "\\\nFARAMESH_TOKEN=t\n").unwrap();
    let mut command = faramesh(dir.path());
    command.args(["serve", "--port", "0", "--allow-missing-policy"]);
    let (code, text) = run_to_end(command);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(".env"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
}
