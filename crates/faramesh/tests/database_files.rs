//! A database file deleted or replaced under a running server: nothing is acknowledged that
//! would be lost, `/ready` says so, and the server stays up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use serde_json::{json, Value};

mod common;
use common::serve;

async fn submit(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client
        .post(format!("{url}/v1/actions"))
        .json(&json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {"url": "https://example.com/"}}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ready(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client
        .get(format!("{url}/ready"))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asserts that writes and readiness are refused with a detail naming `file`.
async fn assert_refused(client: &reqwest::Client, url: &str, file: &str) {
    let (status, body) = ready(client, url).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(file) && detail.contains("deleted or replaced"),
        "{body}"
    );
    for _ in 0..3 {
        let (status, body) = submit(client, url).await;
        assert_eq!(
            status, 503,
            "a write into a lost file must not be acknowledged: {body}"
        );
    }
    let health = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server stays up");
}

#[tokio::test]
async fn a_deleted_database_refuses_writes_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = serve(dir.path());
    let client = reqwest::Client::new();
    let (status, _) = submit(&client, &url).await;
    assert_eq!(status, 200);
    assert_eq!(ready(&client, &url).await.0, 200);

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("actions.db{suffix}")));
    }
    assert_refused(&client, &url, "actions.db").await;
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn a_replaced_database_or_log_refuses_writes_and_readiness() {
    for file in ["actions.db", "actions.db-wal"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut server, url) = serve(dir.path());
        let client = reqwest::Client::new();
        assert_eq!(submit(&client, &url).await.0, 200);
        // A copy moved over the original: same content, another file.
        let path = dir.path().join(file);
        let copy = dir.path().join("copy");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert_refused(&client, &url, file).await;
        let _ = server.kill();
        let _ = server.wait();
    }
}

/// A small tmpfs, unmounted when dropped (after the server using it has stopped).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test suite runs as root in CI)"
        );
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the disk is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test]
async fn a_full_disk_makes_ready_503_until_space_is_freed() {
    let disk = SmallDisk::mount("4m");
    let (server, url) = serve(disk.dir.path());
    // Stopped before the disk is unmounted, also when an assertion fails.
    let _server = Stopped(server);
    let client = reqwest::Client::new();
    // A write-ahead log with room in it, as after a while of normal work.
    for _ in 0..400 {
        assert_eq!(submit(&client, &url).await.0, 200);
    }
    let filler = disk.dir.path().join("filler");
    fill(&filler);
    // Writes larger than the room left in the files are refused.
    let text = "x".repeat(9_000);
    let large = json!({"agent_id": "a", "tool": "http", "operation": "get",
        "params": {"url": "https://example.com/", "a": text, "b": text, "c": text, "d": text, "e": text}});
    let mut refused = None;
    for _ in 0..200 {
        let response = client
            .post(format!("{url}/v1/actions"))
            .json(&large)
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            refused = Some(response.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("a write is refused once the disk is full");
    assert!(
        refused["detail"].as_str().unwrap().contains("full"),
        "{refused}"
    );
    // Readiness proves what the refused write needed, not a small write that still fits.
    let (status, body) = ready(&client, &url).await;
    assert_eq!(status, 503, "/ready while writes are refused: {body}");
    assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(
        ready(&client, &url).await.0,
        200,
        "ready once space is free"
    );
    let response = client
        .post(format!("{url}/v1/actions"))
        .json(&large)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "a large write once space is free: {body}");
}

/// A server process killed when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes a file immutable (`chattr +i`) until dropped.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: std::path::PathBuf) -> Immutable {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .expect("chattr runs");
        assert!(
            status.success(),
            "chattr +i needs root and a file system with attributes (the test suite runs as root in CI)"
        );
        Immutable(path)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn an_unwritable_shared_memory_file_gets_503_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = serve(dir.path());
    let mut server = Stopped(server);
    let client = reqwest::Client::new();
    let (status, before) = submit(&client, &url).await;
    assert_eq!(status, 200);
    // The next write into the mapped index faults (SIGBUS), which used to end the process.
    let immutable = Immutable::set(dir.path().join("actions.db-shm"));
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for _ in 0..20 {
        let (status, body) = submit(&client, &url).await;
        match status {
            200 => acknowledged.push(body["id"].as_str().unwrap().to_owned()),
            503 => {
                refusal = Some(body);
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let refusal = refusal.expect("writes are refused once the index cannot be written");
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("actions.db-shm"),
        "{refusal}"
    );
    let (status, body) = ready(&client, &url).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("actions.db-shm"),
        "{body}"
    );
    let health = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server stays up");
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server is running"
    );
    // Reads still work, and whatever was acknowledged is kept: after the file is fixed and the
    // server restarted, every acknowledged action is there.
    let listed = client
        .get(format!("{url}/v1/actions"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    drop(server);
    drop(immutable);
    let (restarted, url) = serve(dir.path());
    let _restarted = Stopped(restarted);
    acknowledged.push(before["id"].as_str().unwrap().to_owned());
    for id in acknowledged {
        let response = client
            .get(format!("{url}/v1/actions/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged action {id} was kept");
    }
    assert_eq!(submit(&client, &url).await.0, 200);
}
