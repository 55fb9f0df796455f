//! The SQLite store keeps the promises of the `Store` trait, plus what is SQLite's own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod common;

use common::{action, assert_chain, submission, Backend};
use faramesh_core::ledger::verify_chain;
use faramesh_core::ActionStatus;
use faramesh_storage::{SqliteStore, Store};
use std::sync::Arc;
use tempfile::TempDir;

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("data/actions.db")).expect("store opens")
}

/// A fresh database file; the directory lives as long as the backend.
async fn sqlite() -> Option<Backend> {
    let dir = Arc::new(TempDir::new().unwrap());
    Some(Backend {
        open: Box::new(move || {
            let dir = dir.clone();
            Box::pin(async move { Arc::new(open(&dir)) as Arc<dyn Store> })
        }),
    })
}

contract_tests!(sqlite());

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_events() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let id = store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap()
        .action
        .id;
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let update = conn
        .execute("UPDATE events SET meta = '{}' WHERE action_id = ?1", [&id])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = conn
        .execute("DELETE FROM events WHERE action_id = ?1", [&id])
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
}

#[tokio::test]
async fn a_ledger_file_opens_read_only_and_shows_a_tampered_event() {
    use faramesh_storage::LedgerFile;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("data/actions.db");
    let store = open(&dir);
    let first = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action;
    store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap();
    drop(store);

    let ledger = LedgerFile::open(&path).unwrap();
    let ids = ledger.action_ids().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ledger.ids_with_prefix(&first.id[..8], 5).unwrap(),
        vec![first.id.clone()]
    );
    for id in &ids {
        let chain = ledger.chain(id).unwrap();
        let chained: Vec<_> = chain.iter().map(|e| e.chained()).collect();
        assert_eq!(verify_chain(&chained), Ok(()));
    }
    drop(ledger);

    // Someone edits an event behind the server's back (dropping the append-only trigger first).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER events_no_update").unwrap();
    conn.execute(
        "UPDATE events SET meta = '{\"decision\":\"allow\"}' WHERE action_id = ?1 AND event_type = 'created'",
        [&first.id],
    )
    .unwrap();
    drop(conn);
    let ledger = LedgerFile::open(&path).unwrap();
    let chain = ledger.chain(&first.id).unwrap();
    let chained: Vec<_> = chain.iter().map(|e| e.chained()).collect();
    let broken = verify_chain(&chained).unwrap_err();
    assert_eq!((broken.position, broken.what), (1, "record_hash"));

    assert!(LedgerFile::open(&dir.path().join("missing.db")).is_err());
    std::fs::write(dir.path().join("not.db"), "hello").unwrap();
    assert!(LedgerFile::open(&dir.path().join("not.db")).is_err());
}

#[tokio::test]
async fn a_ledger_written_by_an_older_schema_is_migrated_intact() {
    use faramesh_core::hash::event_record_hash;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("data/actions.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Schema version 2, as an earlier release left it, holding one action and its chain.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(include_str!("../migrations/sqlite/0001_init.sql"))
        .unwrap();
    old.execute_batch(include_str!("../migrations/sqlite/0002_api_tokens.sql"))
        .unwrap();
    old.pragma_update(None, "user_version", 2).unwrap();
    let at = "2026-01-01T00:00:00.000000Z";
    old.execute(
        "INSERT INTO actions (id, agent_id, tool, operation, params, context, status, created_at, updated_at) \
         VALUES ('a-1', 'agent', 'shell', 'run', '{}', '{}', 'pending_approval', ?1, ?1)",
        [at],
    )
    .unwrap();
    let mut prev: Option<String> = None;
    for (seq, (id, kind)) in [("e-1", "created"), ("e-2", "decision_made")]
        .into_iter()
        .enumerate()
    {
        let meta = serde_json::json!({"n": seq});
        let hash = event_record_hash(id, "a-1", kind, at, &meta, prev.as_deref()).unwrap();
        old.execute(
            "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) VALUES (?1, 'a-1', ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![id, kind, meta.to_string(), at, prev, hash],
        )
        .unwrap();
        prev = Some(hash);
    }
    drop(old);

    let store = open(&dir);
    let events = store.events("a-1").await.unwrap();
    let kept: Vec<(i64, &str)> = events.iter().map(|e| (e.seq, e.id.as_str())).collect();
    assert_eq!(
        kept,
        [(1, "e-1"), (2, "e-2")],
        "every event kept, with its seq"
    );
    assert_chain(&events);
    let next = store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap();
    assert_eq!(next.events[0].seq, 3, "seq continues after the old ledger");
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let unique_index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'sqlite_autoindex%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unique_index, 0, "no index on the random event ids any more");
    let refused = conn.execute("UPDATE events SET meta = '{}'", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
}
