//! `kill -9` in the middle of a burst of submissions loses nothing that was acknowledged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::ledger::{verify_chain, ChainedEvent};
use serde_json::{json, Value};
use std::time::Duration;

mod common;
use common::{get_json, serve, serve_with};

fn chain_of(events: &Value) -> Result<(), faramesh_core::ledger::BrokenLink> {
    let chained: Vec<ChainedEvent<'_>> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| ChainedEvent {
            id: e["id"].as_str().unwrap_or(""),
            action_id: e["action_id"].as_str().unwrap_or(""),
            event_type: e["event_type"].as_str().unwrap_or(""),
            created_at: e["created_at"].as_str().unwrap_or(""),
            meta: &e["meta"],
            prev_hash: e["prev_hash"].as_str(),
            record_hash: e["record_hash"].as_str().unwrap_or(""),
        })
        .collect();
    verify_chain(&chained)
}

/// The acknowledged action `id` is stored with both its events, and their chain holds.
async fn assert_stored_whole(client: &reqwest::Client, url: &str, id: &str) {
    let action: Value = get_json(client, format!("{url}/v1/actions/{id}")).await;
    assert_eq!(
        action["id"].as_str(),
        Some(id),
        "acknowledged action {id} is stored"
    );
    let events: Value = get_json(client, format!("{url}/v1/actions/{id}/events")).await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(2),
        "action {id} has both events"
    );
    assert_eq!(chain_of(&events), Ok(()));
}

#[test]
fn acknowledged_submissions_survive_kill_9() {
    let dir = tempfile::TempDir::new().unwrap();
    let (mut server, url) = serve(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acknowledged: Vec<String> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let (client, url, ack_tx) = (client.clone(), url.clone(), ack_tx.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    let body = json!({"agent_id": format!("w{worker}"), "tool": "shell", "operation": "run", "params": {"cmd": format!("echo {i}")}});
                    match client.post(format!("{url}/v1/actions")).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            if let Ok(action) = r.json::<Value>().await {
                                let _ = ack_tx.send(action["id"].as_str().unwrap_or_default().to_owned());
                            }
                        }
                        // Once the server is gone every request fails; stop this worker.
                        _ => return,
                    }
                }
            }));
        }
        drop(ack_tx);
        // Kill the server in the middle of the burst: after 300 acknowledgements.
        let mut ids = Vec::new();
        while let Some(id) = ack_rx.recv().await {
            ids.push(id);
            if ids.len() == 300 {
                server.kill().expect("SIGKILL the server");
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        ids
    });
    let _ = server.wait();
    assert!(
        acknowledged.len() >= 300,
        "the burst was cut while running ({} acknowledged)",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < 16 * 200,
        "the server was killed before the burst ended"
    );

    let (mut restarted, url) = serve(dir.path());
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for id in &acknowledged {
            assert_stored_whole(&client, &url, id).await;
        }
        // No half-written rows: every stored action, acknowledged or not, has both events.
        let all: Value = get_json(&client, format!("{url}/v1/actions?limit=1000")).await;
        let mut offset = 0;
        let mut page = all;
        loop {
            let list = page.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                break;
            }
            for a in &list {
                let id = a["id"].as_str().unwrap_or_default();
                let events: Value =
                    get_json(&client, format!("{url}/v1/actions/{id}/events")).await;
                assert_eq!(
                    events.as_array().map(Vec::len),
                    Some(2),
                    "stored action {id} is complete"
                );
            }
            offset += list.len();
            page = get_json(
                &client,
                format!("{url}/v1/actions?limit=1000&offset={offset}"),
            )
            .await;
        }
        assert!(offset >= acknowledged.len());
    });
    let _ = restarted.kill();
    let _ = restarted.wait();
}

#[test]
fn sigterm_with_a_live_stream_open_exits_cleanly() {
    let dir = tempfile::TempDir::new().unwrap();
    let (mut server, url) = serve(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut stream = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/v1/events")).await.unwrap();
        assert!(response.status().is_success());
        response
    });
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // The open stream ends instead of holding the shutdown forever.
    let ended = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(_)) = stream.chunk().await {}
        })
        .await
    });
    if ended.is_err() {
        let _ = server.kill();
        panic!("the live stream was not closed at shutdown");
    }
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// SIGTERM while a request is in flight (its body only half sent) and a burst of submissions
/// runs: the request in flight is finished and acknowledged, every answer that arrives is a
/// 200, new connections are refused, the server exits 0, and everything acknowledged is there.
#[test]
fn sigterm_finishes_requests_in_flight_and_exits_0() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::TempDir::new().unwrap();
    let (mut server, url) = serve(dir.path());
    let address = url.trim_start_matches("http://").to_owned();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (slow_id, acknowledged) = runtime.block_on(async {
        // The request in flight: headers and half of the body now, the rest after SIGTERM.
        let body = json!({"agent_id": "slow", "tool": "http", "operation": "get", "params": {"url": "https://example.com"}}).to_string();
        let (first, rest) = body.split_at(body.len() / 2);
        let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /v1/actions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        slow.write_all(head.as_bytes()).await.unwrap();
        slow.write_all(first.as_bytes()).await.unwrap();

        // A burst from other clients; every answer that arrives must be a 200.
        let client = reqwest::Client::new();
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut burst = Vec::new();
        for worker in 0..8 {
            let (client, url, ack_tx) = (client.clone(), url.clone(), ack_tx.clone());
            burst.push(tokio::spawn(async move {
                loop {
                    let body = json!({"agent_id": format!("w{worker}"), "tool": "http", "operation": "get", "params": {}});
                    let Ok(response) = client.post(format!("{url}/v1/actions")).json(&body).send().await else {
                        // Refused or closed: the server stopped accepting.
                        return;
                    };
                    let status = response.status();
                    let Ok(action) = response.json::<Value>().await else { return };
                    assert!(status.is_success(), "during shutdown: {status} {action}");
                    let _ = ack_tx.send(action["id"].as_str().unwrap_or_default().to_owned());
                }
            }));
        }
        drop(ack_tx);
        let mut ids = Vec::new();
        while let Some(id) = ack_rx.recv().await {
            ids.push(id);
            if ids.len() == 100 {
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
                break;
            }
        }
        // The server no longer accepts connections once shutdown has begun; wait for that,
        // then finish the request in flight.
        tokio::time::timeout(Duration::from_secs(30), async {
            while tokio::net::TcpStream::connect(&address).await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the server kept accepting connections after SIGTERM");
        slow.write_all(rest.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer))
            .await
            .expect("no answer to the request in flight")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "request in flight: {answer}");
        let json_start = answer.find('{').expect("a JSON body");
        let action: Value = serde_json::from_str(answer[json_start..].trim_end()).unwrap_or_else(|e| panic!("{e}: {answer}"));
        while let Some(id) = ack_rx.recv().await {
            ids.push(id);
        }
        for task in burst {
            task.await.expect("a client saw an answer other than 200");
        }
        (action["id"].as_str().unwrap_or_default().to_owned(), ids)
    });
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");

    let (mut restarted, url) = serve(dir.path());
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for id in acknowledged.iter().chain([&slow_id]) {
            assert_stored_whole(&client, &url, id).await;
        }
    });
    let _ = restarted.kill();
    let _ = restarted.wait();
}

#[test]
fn flags_override_the_environment_which_overrides_dot_env() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "FARAMESH_TOKEN=from-dotenv\nFARAMESH_DEMO=1\n",
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let status = |url: String, token: &'static str| {
        let client = client.clone();
        runtime.block_on(async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };

    // .env alone: its token is required and its demo flag seeds actions.
    let (mut server, url) = serve_with(dir.path(), &[], &[]);
    assert_eq!(status(format!("{url}/v1/actions"), "from-dotenv"), 200);
    assert_eq!(status(format!("{url}/v1/actions"), "wrong"), 401);
    let seeded: Value = runtime.block_on(async {
        client
            .get(format!("{url}/v1/actions"))
            .bearer_auth("from-dotenv")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(
        seeded.as_array().map(Vec::len),
        Some(4),
        "FARAMESH_DEMO=1 from .env seeded the demo actions"
    );
    let _ = server.kill();
    let _ = server.wait();

    // The environment wins over .env.
    let (mut server, url) = serve_with(dir.path(), &[("FARAMESH_TOKEN", "from-env")], &[]);
    assert_eq!(status(format!("{url}/v1/actions"), "from-env"), 200);
    assert_eq!(status(format!("{url}/v1/actions"), "from-dotenv"), 401);
    let _ = server.kill();
    let _ = server.wait();

    // A flag wins over both: --port given explicitly is the one listened on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_text = port.to_string();
    let (mut server, url) = serve_with(
        dir.path(),
        &[("FARAMESH_PORT", "1")],
        &["--port", port_text.as_str()],
    );
    assert!(url.ends_with(&format!(":{port}")), "{url}");
    let _ = server.kill();
    let _ = server.wait();
}
