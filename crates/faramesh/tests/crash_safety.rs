//! `kill -9` in the middle of a burst of submissions loses nothing that was acknowledged.

use faramesh_core::ledger::{verify_chain, ChainedEvent};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `faramesh serve` on a free port and returns it with its base URL, once it listens.
fn serve(dir: &Path) -> (Child, String) {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.yaml");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .args(["serve", "--port", "0", "--db"])
        .arg(dir.join("actions.db"))
        .arg("--policy")
        .arg(&policy)
        .arg("--profile")
        .arg(dir.join("no-profile.yaml"))
        .env("RUST_LOG", "info")
        .env_remove("FARAMESH_TOKEN")
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("faramesh serve starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports where it listens");
    (child, url)
}

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
            let action: Value = client
                .get(format!("{url}/v1/actions/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                action["id"].as_str(),
                Some(id.as_str()),
                "acknowledged action {id} is stored"
            );
            let events: Value = client
                .get(format!("{url}/v1/actions/{id}/events"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                events.as_array().map(Vec::len),
                Some(2),
                "action {id} has both events"
            );
            assert_eq!(chain_of(&events), Ok(()));
        }
        // No half-written rows: every stored action, acknowledged or not, has both events.
        let all: Value = client
            .get(format!("{url}/v1/actions?limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut offset = 0;
        let mut page = all;
        loop {
            let list = page.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                break;
            }
            for a in &list {
                let id = a["id"].as_str().unwrap_or_default();
                let events: Value = client
                    .get(format!("{url}/v1/actions/{id}/events"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(
                    events.as_array().map(Vec::len),
                    Some(2),
                    "stored action {id} is complete"
                );
            }
            offset += list.len();
            page = client
                .get(format!("{url}/v1/actions?limit=1000&offset={offset}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
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
