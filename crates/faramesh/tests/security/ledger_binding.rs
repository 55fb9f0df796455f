//! Someone with write access to the database rewrites an action row (params, status) or adds
//! one, leaving the ledger's events as they were: every chain still verifies, yet the row is not
//! what was decided. Every verification (the file, the server, an export) must name it.

use crate::harness::{faramesh, Serve, Server};
use serde_json::{json, Value};
use std::path::Path;

const GHOST: &str = "0000abcd-0000-8000-8000-000000000001";

fn serve(dir: &Path) -> Server {
    Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        ..Default::default()
    }
    .start(dir)
}

/// `faramesh` with `args` in `dir`: exit code and stdout.
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = faramesh(dir).args(args).output().expect("faramesh runs");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The three actions the attack starts from: one pending (its params get rewritten), one
/// started (its status gets rewritten), one left alone.
async fn actions(server: &Server) -> [String; 3] {
    let submit = |body: Value| async move {
        let (status, action) = server.submit(body).await;
        assert_eq!(status, 200, "{action}");
        action["id"].as_str().expect("an id").to_owned()
    };
    let pending = submit(
        json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": "ls"}}),
    )
    .await;
    let started = submit(
        json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {"url": "https://a"}}),
    )
    .await;
    let (status, answer) = server
        .post(&format!("/v1/actions/{started}/start"), json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let untouched = submit(
        json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {"url": "https://b"}}),
    )
    .await;
    [pending, started, untouched]
}

/// What every verification must say about the rewritten file.
fn names_each(out: &str, pending: &str, started: &str) {
    assert!(
        out.contains(&format!("✗ action {pending}, event ")),
        "the rewritten params are not named:\n{out}"
    );
    assert!(
        out.contains("params/context do not hash to the request_hash of its decision_made event"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "✗ action {started}: status is `succeeded` but its last event `started` implies `executing`"
        )),
        "the rewritten status is not named:\n{out}"
    );
    assert!(
        out.contains(&format!("✗ action {GHOST}: no events")),
        "the added action is not named:\n{out}"
    );
    assert!(
        out.contains("3 of 4 action(s) do not match their ledger"),
        "{out}"
    );
}

#[tokio::test]
async fn a_row_rewritten_in_the_database_is_named_by_every_verification() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("actions.db");
    let db_arg = db.to_str().unwrap();
    let server = serve(dir.path());
    let [pending, started, untouched] = actions(&server).await;
    drop(server);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let rewrite = |sql: &str, id: &str| {
        assert_eq!(conn.execute(sql, [id]).unwrap(), 1, "{sql}");
    };
    rewrite(
        r#"UPDATE actions SET params = '{"cmd":"rm -rf /"}' WHERE id = ?1"#,
        &pending,
    );
    rewrite(
        "UPDATE actions SET status = 'succeeded' WHERE id = ?1",
        &started,
    );
    conn.execute(
        "INSERT INTO actions (id, agent_id, tool, operation, params, context, status, created_at, updated_at) \
         VALUES (?1, 'a', 'shell', 'run', '{\"cmd\":\"rm -rf /\"}', '{}', 'allowed', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
        [GHOST],
    )
    .unwrap();
    drop(conn);

    // Straight from the file, without a server.
    let (code, out) = run(dir.path(), &["verify-log", "--all", "--db", db_arg]);
    assert_eq!(code, Some(1), "{out}");
    names_each(&out, &pending, &started);
    assert!(!out.contains(&format!("action {untouched}")), "{out}");
    let (code, out) = run(dir.path(), &["verify-log", &pending, "--db", db_arg]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("do not hash to the request_hash"), "{out}");
    let (code, out) = run(dir.path(), &["verify-log", &untouched, "--db", db_arg]);
    assert_eq!(code, Some(0), "{out}");

    // Against the restarted server.
    let server = serve(dir.path());
    let (code, out) = run(dir.path(), &["--url", &server.url, "verify-log", "--all"]);
    assert_eq!(code, Some(1), "{out}");
    names_each(&out, &pending, &started);
    let (code, out) = run(dir.path(), &["--url", &server.url, "verify-log", &started]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("status is `succeeded`"), "{out}");

    // The server's own check, which the web UI shows.
    for (id, what) in [
        (&pending, "request_hash"),
        (&started, "status"),
        (&GHOST.to_owned(), "no_events"),
    ] {
        let (status, chain) = server.get(&format!("/v1/actions/{id}/chain")).await;
        assert_eq!(status, 200, "{chain}");
        assert_eq!(chain["verified"], false, "{chain}");
        assert_eq!(chain["broken_link"], Value::Null, "{chain}");
        assert_eq!(chain["binding_problem"]["what"], what, "{chain}");
        assert!(
            chain["problem"]
                .as_str()
                .is_some_and(|p| p.contains(id.as_str())),
            "{chain}"
        );
    }
    let (_, chain) = server.get(&format!("/v1/actions/{pending}/chain")).await;
    let (_, events) = server.get(&format!("/v1/actions/{pending}/events")).await;
    assert_eq!(
        chain["binding_problem"]["expected"], events[1]["meta"]["request_hash"],
        "{chain}"
    );
    let (_, chain) = server.get(&format!("/v1/actions/{untouched}/chain")).await;
    assert_eq!(chain["verified"], true, "{chain}");

    // An export carries the rows' fields, so checking it names them too.
    let (code, out) = verify_export(dir.path(), &server);
    assert_eq!(code, Some(1), "{out}");
    names_each(&out, &pending, &started);
}

/// Exports the ledger from `server` and verifies the export file: the exit code and output.
fn verify_export(dir: &Path, server: &Server) -> (Option<i32>, String) {
    let (code, export) = run(dir, &["--url", &server.url, "audit", "export"]);
    assert_eq!(code, Some(0), "{export}");
    let file = dir.join("export.jsonl");
    std::fs::write(&file, export).unwrap();
    run(dir, &["verify-log", "--file", file.to_str().unwrap()])
}

#[tokio::test]
async fn an_untouched_ledger_is_intact_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("actions.db");
    let server = serve(dir.path());
    let [pending, started, _] = actions(&server).await;
    // An approval and a result move the rows on; each is still the one its chain describes.
    let (_, action) = server.get(&format!("/v1/actions/{pending}")).await;
    server.approve(&action).await;
    let (status, answer) = server
        .post(
            &format!("/v1/actions/{started}/result"),
            json!({"success": true, "output": {"status": 200}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    let intact = "3 action(s), 9 event(s): every chain is intact and every action is the one its chain describes";
    let (code, out) = run(dir.path(), &["--url", &server.url, "verify-log", "--all"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(intact), "{out}");
    let (code, out) = verify_export(dir.path(), &server);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(intact), "{out}");
    for id in [&pending, &started] {
        let (_, chain) = server.get(&format!("/v1/actions/{id}/chain")).await;
        assert_eq!(chain["verified"], true, "{chain}");
    }
    drop(server);
    let (code, out) = run(
        dir.path(),
        &["verify-log", "--all", "--db", db.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(intact), "{out}");
}
