//! The ledger as a log others can verify, end to end with the real binary: a third party with
//! only the verifier key checks the whole ledger (from the API, the database file or an
//! export) and catches each kind of tampering; a witness accepts a growing log and reports a
//! rollback and a fork; a `kill -9` under load leaves a log that still verifies and extends
//! what was signed before.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
mod notify_support;

use notify_support::wait_for;

/// Checkpoints five times a second, so the tests wait little for one.
const QUICK: &[(&str, &str)] = &[("FARAMESH_CHECKPOINT_EVERY", "0.2")];

fn faramesh(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .args(args)
        .current_dir(dir)
        .env("FARAMESH_URL", url)
        .env_remove("FARAMESH_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .expect("faramesh runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs and asserts the exit code, returning what it printed.
fn expect(dir: &Path, url: &str, args: &[&str], code: i32) -> String {
    let output = faramesh(dir, url, args);
    let printed = text(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "faramesh {args:?} printed:\n{printed}"
    );
    printed
}

/// Submits `n` actions; returns their ids.
fn submit(url: &str, agent: &str, n: usize) -> Vec<String> {
    let client = reqwest::blocking::Client::new();
    (0..n)
        .map(|i| {
            let body = json!({"agent_id": agent, "tool": "http", "operation": "get",
                "params": {"url": format!("https://example.com/{agent}/{i}")}});
            let action: Value = client
                .post(format!("{url}/v1/actions"))
                .json(&body)
                .send()
                .unwrap()
                .json()
                .unwrap();
            action["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The server's latest checkpoint once it covers at least `size` leaves.
fn checkpoint_covering(url: &str, size: u64) -> String {
    let client = reqwest::blocking::Client::new();
    wait_for(&format!("a checkpoint of {size} leaves"), || {
        let note = client
            .get(format!("{url}/v1/log/checkpoint"))
            .send()
            .ok()?
            .text()
            .ok()?;
        let signed: u64 = note.lines().nth(1)?.parse().ok()?;
        (signed >= size).then_some(note)
    })
}

/// How many leaves the log holds: every event of every action.
fn leaves(url: &str) -> u64 {
    let client = reqwest::blocking::Client::new();
    let mut n = 0;
    loop {
        let page: Vec<Value> = client
            .get(format!("{url}/v1/log/leaves?start={n}&end={}", n + 1000))
            .send()
            .unwrap()
            .json()
            .unwrap();
        n += page.len() as u64;
        if page.len() < 1000 {
            return n;
        }
    }
}

/// A copy of the database files (the write-ahead log too) in a new folder, with the key.
fn copy_ledger(from: &Path) -> tempfile::TempDir {
    let to = tempfile::TempDir::new().unwrap();
    for name in ["actions.db", "actions.db-wal", "log.key", "log.pub"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.path().join(name)).unwrap();
        }
    }
    to
}

/// Opens a copy of the database as an attacker with write access would, past the triggers
/// that keep events append-only.
fn tamper(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join("actions.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// The seq of the event at `log_index` in the database of `dir`.
fn seq_at(dir: &Path, log_index: u64) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("actions.db")).unwrap();
    conn.query_row(
        "SELECT event_seq FROM log_leaves WHERE log_index = ?1",
        [log_index as i64],
        |r| r.get(0),
    )
    .unwrap()
}

/// Stops the server and keeps its folder.
fn stop(mut server: common::Server) -> tempfile::TempDir {
    let _ = server.child.kill();
    let _ = server.child.wait();
    std::mem::replace(&mut server.dir, tempfile::TempDir::new().unwrap())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_third_party_with_only_the_key_verifies_the_ledger_and_catches_each_tampering() {
    let server = common::server_in(tempfile::TempDir::new().unwrap(), QUICK, &[]);
    let (dir, url) = (server.dir.path().to_owned(), server.url.clone());
    let ids = submit(&url, "support-bot", 12);
    let size = leaves(&url);
    assert_eq!(size, 24, "each action's two events are leaves");
    let note = checkpoint_covering(&url, size);
    let checkpoint = write(&dir, "checkpoint.txt", &note);
    let key = dir.join("log.pub");

    // From the API, against the server's checkpoint and against the one kept.
    let report = expect(&dir, &url, &["log", "verify", "--key", "log.pub"], 0);
    assert!(report.contains("24 events read"), "{report}");
    expect(
        &dir,
        &url,
        &[
            "log",
            "verify",
            "--key",
            "log.pub",
            "--checkpoint",
            "checkpoint.txt",
        ],
        0,
    );
    // The key may also be given as its text.
    let key_text = std::fs::read_to_string(&key).unwrap();
    expect(&dir, &url, &["log", "verify", "--key", key_text.trim()], 0);
    // One action's events proved included.
    let proved = expect(
        &dir,
        &url,
        &["log", "prove", &ids[3], "--key", "log.pub"],
        0,
    );
    assert_eq!(proved.matches("is in checkpoint").count(), 2, "{proved}");
    // An export carries its checkpoint: the key is all a verifier needs besides.
    let export = expect(&dir, &url, &["audit", "export"], 0);
    write(&dir, "export.jsonl", &export);
    assert!(export
        .lines()
        .last()
        .unwrap()
        .contains("\"record\":\"checkpoint\""));
    expect(
        &dir,
        &url,
        &[
            "log",
            "verify",
            "--key",
            "log.pub",
            "--file",
            "export.jsonl",
        ],
        0,
    );
    // The events carry their place in the log.
    let events: Value = reqwest::blocking::get(format!("{url}/v1/actions/{}/events", ids[0]))
        .unwrap()
        .json()
        .unwrap();
    assert!(events[0]["log_index"].is_u64(), "{events}");

    // A checkpoint signed by another key is refused.
    expect(
        &dir,
        &url,
        &[
            "log",
            "keygen",
            "--name",
            "impostor/log",
            "--key-file",
            "other.key",
        ],
        0,
    );
    let refused = expect(
        &dir,
        &url,
        &[
            "log",
            "verify",
            "--key",
            "other.pub",
            "--checkpoint",
            "checkpoint.txt",
        ],
        1,
    );
    assert!(refused.contains("not signed by impostor/log"), "{refused}");
    // An export whose event was edited no longer verifies.
    let edited = export.replacen(
        "https://example.com/support-bot/5",
        "https://evil.example/5",
        1,
    );
    assert_ne!(edited, export);
    write(&dir, "edited.jsonl", &edited);
    let report = expect(
        &dir,
        &url,
        &[
            "log",
            "verify",
            "--key",
            "log.pub",
            "--file",
            "edited.jsonl",
        ],
        0,
    );
    // Params live in the action record, not in events: the events still verify...
    assert!(report.contains("24 events"), "{report}");
    // ...but an edited event does not.
    let first_event = export
        .lines()
        .find(|l| l.contains("\"record\":\"event\""))
        .unwrap();
    let changed = first_event.replacen(
        "\"event_type\":\"created\"",
        "\"event_type\":\"approved\"",
        1,
    );
    assert_ne!(changed, first_event);
    write(
        &dir,
        "edited.jsonl",
        &export.replacen(first_event, &changed, 1),
    );
    let report = expect(
        &dir,
        &url,
        &[
            "log",
            "verify",
            "--key",
            "log.pub",
            "--file",
            "edited.jsonl",
        ],
        1,
    );
    assert!(report.contains("was changed"), "{report}");

    let kept = stop(server);
    let dir = kept.path().to_owned();
    // Offline, straight from the database file.
    let report = expect(
        &dir,
        &url,
        &["log", "verify", "--key", "log.pub", "--db", "actions.db"],
        0,
    );
    assert!(report.contains("24 events read"), "{report}");

    let verify_copy = |copy: &Path, code: i32| {
        let db = copy.join("actions.db");
        expect(
            &dir,
            &url,
            &[
                "log",
                "verify",
                "--key",
                key.to_str().unwrap(),
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
            ],
            code,
        )
    };
    // An event's content rewritten, its record_hash left.
    let copy = copy_ledger(&dir);
    let seq = seq_at(copy.path(), 5);
    tamper(copy.path(), &format!("UPDATE events SET meta = json_set(meta, '$.reason', 'nothing to see') WHERE seq = {seq}"));
    let report = verify_copy(copy.path(), 1);
    assert!(
        report.contains("log_index 5") && report.contains("was changed"),
        "{report}"
    );

    // An event rewritten whole, its record_hash recomputed to match: the log's root gives it away.
    let copy = copy_ledger(&dir);
    let seq = seq_at(copy.path(), 7);
    let conn = rusqlite::Connection::open(copy.path().join("actions.db")).unwrap();
    let (id, action_id, event_type, created_at, prev): (
        String,
        String,
        String,
        String,
        Option<String>,
    ) = conn
        .query_row(
            "SELECT id, action_id, event_type, created_at, prev_hash FROM events WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let meta = json!({"decision": "allow", "reason": "rewritten"});
    let record = faramesh_core::hash::event_record_hash(
        &id,
        &action_id,
        &event_type,
        &created_at,
        &meta,
        prev.as_deref(),
    )
    .unwrap();
    drop(conn);
    tamper(
        copy.path(),
        &format!("UPDATE events SET meta = '{meta}', record_hash = '{record}' WHERE seq = {seq}"),
    );
    let report = verify_copy(copy.path(), 1);
    assert!(
        report.contains("was changed after it was signed"),
        "{report}"
    );

    // An event deleted.
    let copy = copy_ledger(&dir);
    let seq = seq_at(copy.path(), 9);
    tamper(
        copy.path(),
        &format!("DELETE FROM events WHERE seq = {seq}"),
    );
    let report = verify_copy(copy.path(), 1);
    assert!(report.contains("the event of leaf 9 is gone"), "{report}");

    // A whole action deleted, its events with it.
    let copy = copy_ledger(&dir);
    tamper(copy.path(), &format!(
        "PRAGMA foreign_keys = OFF; DELETE FROM events WHERE action_id = '{0}'; DELETE FROM actions WHERE id = '{0}';",
        ids[1]
    ));
    let report = verify_copy(copy.path(), 1);
    assert!(report.contains("is gone: it was deleted"), "{report}");

    // An event added behind the server's back.
    let copy = copy_ledger(&dir);
    tamper(copy.path(), "INSERT INTO events (id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash) \
        SELECT id || '-forged', action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash FROM events WHERE seq = 1");
    let report = verify_copy(copy.path(), 1);
    assert!(report.contains("1 events are not in the log"), "{report}");
}

#[test]
fn a_witness_accepts_a_growing_log_and_reports_a_rollback_and_a_fork() {
    let first = tempfile::TempDir::new().unwrap();
    let witness = tempfile::TempDir::new().unwrap();
    let state = witness.path().join("state");
    let state = state.to_str().unwrap();
    let server = common::server_in(first, QUICK, &[]);
    let (dir, url) = (server.dir.path().to_owned(), server.url.clone());
    submit(&url, "early", 3);
    checkpoint_covering(&url, 6);
    // The witness holds its own copy of the verifier key.
    std::fs::copy(dir.join("log.pub"), witness.path().join("log.pub")).unwrap();
    let key = witness.path().join("log.pub");
    let key = key.to_str().unwrap();
    let seen = expect(
        &dir,
        &url,
        &["log", "watch", "--key", key, "--state", state, "--once"],
        0,
    );
    assert!(seen.contains("first checkpoint"), "{seen}");
    let dir = stop(server);
    // A copy of the ledger as it is now: the history an attacker later falls back to.
    let snapshot = copy_ledger(dir.path());
    let server = common::server_in(dir, QUICK, &[]);
    let url = server.url.clone();
    submit(&url, "later", 3);
    let grown = checkpoint_covering(&url, 12);
    let seen = expect(
        server.dir.path(),
        &url,
        &["log", "watch", "--key", key, "--state", state, "--once"],
        0,
    );
    assert!(seen.contains("→ 12 leaves"), "{seen}");
    let accepted = std::fs::read_to_string(Path::new(state).join("checkpoint")).unwrap();
    assert_eq!(accepted, grown);
    drop(server);

    // The same key serving the old copy: the log went back.
    let forked = common::server_in(snapshot, QUICK, &[]);
    let url = forked.url.clone();
    checkpoint_covering(&url, 6);
    let report = expect(
        forked.dir.path(),
        &url,
        &["log", "watch", "--key", key, "--state", state, "--once"],
        1,
    );
    assert!(
        report.contains("rollback: the log went back from 12 to 6 leaves"),
        "{report}"
    );
    // Regrown differently, past the size the witness saw: a fork, with both checkpoints shown.
    submit(&url, "rewritten", 5);
    checkpoint_covering(&url, 16);
    let report = expect(
        forked.dir.path(),
        &url,
        &["log", "watch", "--key", key, "--state", state, "--once"],
        1,
    );
    assert!(
        report.contains("fork: the tree of 16 leaves does not extend the tree of 12"),
        "{report}"
    );
    assert!(report.contains(grown.trim_end()), "{report}");
    // The witness keeps what it accepted.
    assert_eq!(
        std::fs::read_to_string(Path::new(state).join("checkpoint")).unwrap(),
        grown
    );
    // And the forked ledger does not verify against the checkpoint the witness holds.
    write(forked.dir.path(), "accepted.txt", &grown);
    let report = expect(
        forked.dir.path(),
        &url,
        &[
            "log",
            "verify",
            "--key",
            key,
            "--checkpoint",
            "accepted.txt",
        ],
        1,
    );
    assert!(
        report.contains("was changed after it was signed"),
        "{report}"
    );
}

#[test]
fn after_kill_9_under_load_the_log_verifies_and_extends_what_was_signed_before() {
    let server = common::server_in(tempfile::TempDir::new().unwrap(), QUICK, &[]);
    let (dir, url) = (server.dir.path().to_owned(), server.url.clone());
    let witness = tempfile::TempDir::new().unwrap();
    let state = witness.path().join("state");
    let state = state.to_str().unwrap();
    std::fs::copy(dir.join("log.pub"), witness.path().join("log.pub")).unwrap();
    let key = witness.path().join("log.pub");
    let key = key.to_str().unwrap();
    let mut server = server;
    std::thread::scope(|scope| {
        let load: Vec<_> = (0..4)
            .map(|worker| {
                let url = url.clone();
                scope.spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    for i in 0..400 {
                        let body = json!({"agent_id": format!("w{worker}"), "tool": "http", "operation": "get",
                            "params": {"url": format!("https://example.com/{i}")}});
                        if client.post(format!("{url}/v1/actions")).json(&body).send().is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        // A witness looks while the load runs, then the server is killed mid-burst.
        checkpoint_covering(&url, 100);
        expect(
            &dir,
            &url,
            &["log", "watch", "--key", key, "--state", state, "--once"],
            0,
        );
        let _ = server.child.kill();
        let _ = server.child.wait();
        for worker in load {
            let _ = worker.join();
        }
    });
    let before = std::fs::read_to_string(Path::new(state).join("checkpoint")).unwrap();
    let dir = stop(server);
    let restarted = common::server_in(dir, QUICK, &[]);
    let url = restarted.url.clone();
    let size = leaves(&url);
    checkpoint_covering(&url, size);
    let dir = restarted.dir.path();
    expect(dir, &url, &["log", "verify", "--key", key], 0);
    let seen = expect(
        dir,
        &url,
        &["log", "watch", "--key", key, "--state", state, "--once"],
        0,
    );
    assert!(
        seen.contains("consistent") || seen.contains("unchanged"),
        "{seen}"
    );
    write(dir, "before.txt", &before);
    expect(
        dir,
        &url,
        &["log", "verify", "--key", key, "--checkpoint", "before.txt"],
        0,
    );
}

#[test]
fn bad_requests_to_the_log_endpoints_are_422s_that_name_the_problem() {
    let server = common::server_in(tempfile::TempDir::new().unwrap(), QUICK, &[]);
    submit(&server.url, "bot", 2);
    let client = reqwest::blocking::Client::new();
    let refused = |path: &str, naming: &str| {
        let response = client
            .get(format!("{}/v1/log/{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 422, "{path}");
        let body: Value = response.json().unwrap();
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(naming), "{path}: {detail}");
    };
    refused("proof/inclusion?index=3&size=2", "`index`=3 is not a leaf");
    refused(
        "proof/inclusion?index=0&size=99",
        "beyond the log, which holds 4 leaves",
    );
    refused(
        "proof/inclusion?index=-1&size=2",
        "`index` must be a whole number",
    );
    refused("proof/inclusion?size=2", "`index` is required");
    refused(
        "proof/inclusion?index=0&size=2&extra=1",
        "unknown query parameter `extra`",
    );
    refused("proof/consistency?from=0&to=2", "1 ≤ from ≤ to");
    refused("proof/consistency?from=3&to=2", "1 ≤ from ≤ to");
    refused("leaves?start=3&end=1", "`start`=3 is after `end`=1");
    // A range past the end is cut to the log, not refused.
    let leaves: Vec<Value> = client
        .get(format!("{}/v1/log/leaves?start=2&end=5000", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(leaves.len(), 2);
    assert_eq!(leaves[0]["log_index"], 2);
}
