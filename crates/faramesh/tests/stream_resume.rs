#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
// Resuming the live stream with `Last-Event-ID` from a message the server's buffer no longer
// holds (here: the server restarted in between) continues from the ledger, with no gap.

use faramesh_client::{Client, StreamFilter, StreamMessage, Subscription};
use serde_json::{json, Value};
use std::time::Duration;

mod common;

/// The next `wanted` changes of `subscription`.
async fn messages(subscription: &mut Subscription, wanted: usize) -> Vec<StreamMessage> {
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while found.len() < wanted {
        let message = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("{wanted} messages within 30 s; got {found:?}"))
            .expect("the stream is open")
            .expect("the stream is readable");
        found.push(message);
    }
    found
}

async fn submit(client: &reqwest::Client, url: &str, n: usize) -> String {
    let action: Value = client
        .post(format!("{url}/v1/actions"))
        .json(&json!({"agent_id": format!("agent-{n}"), "tool": "http", "operation": "get", "params": {"url": "https://example.com"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    action["id"].as_str().unwrap().to_owned()
}

fn stop(mut child: std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn a_resume_across_a_restart_gets_every_change_from_the_ledger() {
    let dir = tempfile::TempDir::new().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (child, url) = common::serve(dir.path());
    let mut stream = Client::new(&url, None)
        .subscribe(&StreamFilter::default())
        .await
        .unwrap();
    let first = submit(&client, &url, 0).await;
    let seen = messages(&mut stream, 1).await;
    assert_eq!(seen[0].data["id"], first);
    let last_seen = seen[0].id;
    // Changes the client does not see: it is gone, then the server restarts.
    let mut missed = Vec::new();
    for n in 1..=5 {
        missed.push(submit(&client, &url, n).await);
    }
    stop(child);
    let (child, url) = common::serve(dir.path());
    let after_restart = submit(&client, &url, 6).await;
    let mut resumed = Client::new(&url, None)
        .subscribe(&StreamFilter {
            after: Some(last_seen),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = messages(&mut resumed, 6).await;
    let ids: Vec<&str> = got.iter().map(|m| m.data["id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = missed.iter().map(String::as_str).collect();
    expected.push(&after_restart);
    assert_eq!(
        ids, expected,
        "every change after the last one seen, once, in order"
    );
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    assert!(got.iter().all(|m| m.id > last_seen));
    stop(child);
}
