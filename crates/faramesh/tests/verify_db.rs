//! `verify-log --all --db` reads the whole file in one pass; its verdicts must be exactly those
//! of checking each action's chain, and its row against the chain, on its own, whatever was
//! done to the file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use assert_cmd::Command;
use faramesh_core::hash::{event_record_hash, request_hash};
use faramesh_core::ledger::{verify_binding, verify_chain};
use faramesh_storage::{LedgerFile, SqliteStore};
use rusqlite::{params, Connection};
use serde_json::{json, Map, Value};
use std::path::Path;

mod common;

/// What checking each action's chain and row on its own gives, in the JSON form of
/// `verify-log`.
fn one_chain_at_a_time(db: &Path) -> Value {
    let ledger = LedgerFile::open(db).unwrap();
    let ids = ledger.action_ids().unwrap();
    let mut events = 0;
    let mut broken = Vec::new();
    let mut unbound = Vec::new();
    for id in &ids {
        let chain = ledger.chain(id).unwrap();
        events += chain.len();
        let chained: Vec<_> = chain.iter().map(|e| e.chained()).collect();
        let row = ledger.action(id).unwrap().unwrap();
        if let Err(link) = verify_chain(&chained) {
            broken.push(link);
        } else if let Err(problem) = verify_binding(&row.facts(), &chained) {
            unbound.push(problem);
        }
    }
    json!({"actions": ids.len(), "events": events, "broken": broken, "unbound": unbound})
}

/// The request_hash of the rows `fill` writes (agent, shell, run, no params, no context).
fn fill_request_hash() -> String {
    request_hash("agent", "shell", "run", &Map::new(), &Map::new()).unwrap()
}

fn verify_log(db: &Path, json: bool) -> (Option<i32>, String) {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.env("NO_COLOR", "1").env_remove("FARAMESH_TOKEN");
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .args(["verify-log", "--all", "--db"])
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Appends an event after `prev` (the action's last `record_hash`) and returns its hash.
fn append(
    conn: &Connection,
    positioned: bool,
    (pos, action_id): (i64, &str),
    n: usize,
    event_type: &str,
    prev: Option<&str>,
) -> String {
    let id = format!("{action_id}-e{n}");
    let at = format!("2026-01-01T00:00:{:02}.000000Z", n % 60);
    let mut meta = json!({"n": n, "note": "ünïcode \"quoted\"", "list": [1, 2.5, null]});
    if event_type == "decision_made" {
        // What the server records: the decision over the row's request.
        meta["outcome"] = json!("ABSTAIN");
        meta["request_hash"] = json!(fill_request_hash());
    }
    let hash = event_record_hash(&id, action_id, event_type, &at, &meta, prev).unwrap();
    if positioned {
        conn.execute(
            "INSERT INTO events (id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, action_id, pos, event_type, meta.to_string(), at, prev, hash],
        )
        .unwrap();
    } else {
        conn.execute(
            "INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, action_id, event_type, meta.to_string(), at, prev, hash],
        )
        .unwrap();
    }
    hash
}

/// `actions` actions of two to five events each, the later events of each action written
/// after other actions' events, as on a busy server; each row with the status its last event
/// implies.
fn fill(conn: &Connection, positioned: bool, actions: usize) {
    let at = "2026-01-01T00:00:00.000000Z";
    let mut open: Vec<(i64, String, usize, String)> = Vec::new();
    for a in 0..actions {
        let id = format!("a{a:04}");
        conn.execute(
            "INSERT INTO actions (id, agent_id, tool, operation, params, context, status, created_at, updated_at) \
             VALUES (?1, 'agent', 'shell', 'run', '{}', '{}', 'pending_approval', ?2, ?2)",
            params![id, at],
        )
        .unwrap();
        let pos = conn.last_insert_rowid();
        let first = append(conn, positioned, (pos, &id), 1, "created", None);
        let last = append(
            conn,
            positioned,
            (pos, &id),
            2,
            "decision_made",
            Some(&first),
        );
        open.push((pos, id, 2, last));
        // Every third step, one waiting action gets its next event.
        if a % 3 == 0 && open.len() > 4 {
            let (pos, id, n, prev) = open.remove(a % open.len());
            let hash = append(conn, positioned, (pos, &id), n + 1, "approved", Some(&prev));
            if n + 1 < 5 {
                open.push((pos, id, n + 1, hash));
            }
        }
    }
    conn.execute(
        "UPDATE actions SET status = 'approved' WHERE id IN (SELECT action_id FROM events WHERE event_type = 'approved')",
        [],
    )
    .unwrap();
}

/// Someone with write access to the file rewrites history in every way the chain must catch.
/// Returns the action that lost an event in the middle of its chain.
fn tamper(conn: &Connection) -> String {
    conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    let by_id = |sql: &str, event: &str| {
        assert_eq!(conn.execute(sql, [event]).unwrap(), 1, "{sql} {event}");
    };
    // Another meta: the record hash no longer matches.
    by_id(
        "UPDATE events SET meta = '{\"n\":1}' WHERE id = ?1",
        "a0003-e1",
    );
    // A prev_hash pointing elsewhere.
    by_id(
        "UPDATE events SET prev_hash = 'ab' || substr(prev_hash, 3) WHERE id = ?1",
        "a0007-e2",
    );
    // A removed event: the next one no longer follows.
    let middle: String = conn
        .query_row(
            "SELECT action_id FROM events WHERE id LIKE '%-e3' AND action_id BETWEEN 'a0008' AND 'a0014' ORDER BY action_id LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    by_id("DELETE FROM events WHERE id = ?1", &format!("{middle}-e2"));
    // The same hash in upper case is not the hash.
    by_id(
        "UPDATE events SET record_hash = upper(record_hash) WHERE id = ?1",
        "a0015-e1",
    );
    // A meta that is not JSON at all.
    by_id(
        "UPDATE events SET meta = 'not json' WHERE id = ?1",
        "a0019-e2",
    );
    // A removed first event.
    by_id("DELETE FROM events WHERE id = ?1", "a0023-e1");
    // A broken last event, after a removed one: only the first break is reported.
    by_id("DELETE FROM events WHERE id = ?1", "a0027-e1");
    by_id("UPDATE events SET meta = '{}' WHERE id = ?1", "a0027-e2");
    middle
}

#[test]
fn one_pass_over_the_file_gives_the_verdicts_of_one_chain_at_a_time() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("actions.db");
    drop(SqliteStore::open(&db).unwrap());
    let conn = Connection::open(&db).unwrap();
    fill(&conn, true, 120);

    let (code, intact) = verify_log(&db, true);
    assert_eq!(code, Some(0), "{intact}");
    let intact: Value = serde_json::from_str(&intact).unwrap();
    assert_eq!(intact, one_chain_at_a_time(&db));
    assert_eq!(intact["broken"], json!([]));

    let middle = tamper(&conn);
    // An event moved to another action's chain (its position rewritten) breaks that chain.
    conn.execute(
        "UPDATE events SET action_pos = (SELECT rowid FROM actions WHERE id = 'a0032') WHERE id = 'a0031-e2'",
        [],
    )
    .unwrap();
    // An event of no action is no action's chain, and an action without events is reported
    // (this one far from the others, so the actions' positions are not contiguous).
    conn.execute(
        "INSERT INTO events (id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash) \
         VALUES ('stray', 'a0040', 99999, 'created', '{}', 'now', NULL, 'x')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO actions (rowid, id, agent_id, tool, operation, params, context, status, created_at, updated_at) \
         VALUES (5000, 'empty', 'agent', 'shell', 'run', '{}', '{}', 'allowed', 'now', 'now')",
        [],
    )
    .unwrap();
    drop(conn);

    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(1), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let expected = one_chain_at_a_time(&db);
    assert_eq!(report, expected);
    let broken: Vec<(&str, u64, &str)> = report["broken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["action_id"].as_str().unwrap(),
                b["position"].as_u64().unwrap(),
                b["what"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        broken,
        [
            ("a0003", 1, "record_hash"),
            ("a0007", 2, "prev_hash"),
            (middle.as_str(), 2, "prev_hash"),
            ("a0015", 1, "record_hash"),
            ("a0019", 2, "record_hash"),
            ("a0023", 1, "prev_hash"),
            ("a0027", 1, "prev_hash"),
            // The moved event now opens a0032's chain; a link names the event's own action.
            ("a0031", 1, "prev_hash"),
        ]
    );
    // With its decision moved away, what is left of a0031's chain still holds, but nothing in
    // it vouches for the row any more; the action added without events is named too.
    assert_eq!(
        report["unbound"],
        json!([
            {"what": "no_decision", "action_id": "a0031", "events": 1},
            {"what": "no_events", "action_id": "empty"},
        ])
    );
    assert_eq!(report["actions"], 121);

    let (code, text) = verify_log(&db, false);
    assert_eq!(code, Some(1));
    assert!(
        text.contains(&format!(
            "✗ action {middle}, event {middle}-e3 (#2): prev_hash: expected "
        )),
        "{text}"
    );
    assert!(
        text.ends_with("8 of 121 action(s) have a broken chain\n"),
        "{text}"
    );
}

#[test]
fn a_file_of_an_older_schema_is_checked_the_same_way() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("actions.db");
    // Schema version 2: events found by their action's id.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(include_str!(
        "../../faramesh-storage/migrations/sqlite/0001_init.sql"
    ))
    .unwrap();
    conn.execute_batch(include_str!(
        "../../faramesh-storage/migrations/sqlite/0002_api_tokens.sql"
    ))
    .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    fill(&conn, false, 60);
    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        one_chain_at_a_time(&db)
    );
    tamper(&conn);
    drop(conn);
    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(1), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report, one_chain_at_a_time(&db));
    assert_eq!(report["broken"].as_array().unwrap().len(), 7);
}

/// A server started on a file of an older schema says it upgrades it, then serves it.
#[test]
fn serving_a_file_of_an_older_schema_says_it_upgrades_it() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("actions.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(include_str!(
        "../../faramesh-storage/migrations/sqlite/0001_init.sql"
    ))
    .unwrap();
    conn.execute_batch(include_str!(
        "../../faramesh-storage/migrations/sqlite/0002_api_tokens.sql"
    ))
    .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    fill(&conn, false, 10);
    drop(conn);
    let (mut child, url, logged) = common::serve_logged(dir.path(), &[], &[], None);
    let said = logged
        .iter()
        .any(|l| l.contains("upgrading the database schema") && l.contains("from version 2"));
    let listed = reqwest::blocking::get(format!("{url}/v1/actions?limit=100&q=agent"))
        .and_then(reqwest::blocking::Response::json::<Value>);
    let _ = child.kill();
    let _ = child.wait();
    assert!(said, "{logged:#?}");
    assert_eq!(listed.unwrap().as_array().map(Vec::len), Some(10));
    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(0), "{out}");
}

/// Rows rewritten behind the server's back, each in its own way, in a file whose chains all
/// hold: the pass names each one as checking it on its own does, and leaves the others alone.
#[test]
fn rewritten_rows_are_named_though_their_chains_hold() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("actions.db");
    drop(SqliteStore::open(&db).unwrap());
    let conn = Connection::open(&db).unwrap();
    fill(&conn, true, 40);
    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(0), "{out}");

    let rewrite = |sql: &str, id: &str| {
        assert_eq!(conn.execute(sql, [id]).unwrap(), 1, "{sql} {id}");
    };
    // Other params, and the row's own request_hash made to agree with them: the decision's
    // event still records the request that was decided.
    let forged = request_hash(
        "agent",
        "shell",
        "run",
        json!({"cmd": "rm -rf /"}).as_object().unwrap(),
        &Map::new(),
    )
    .unwrap();
    rewrite(
        &format!("UPDATE actions SET params = '{{\"cmd\":\"rm -rf /\"}}', request_hash = '{forged}' WHERE id = ?1"),
        "a0002",
    );
    rewrite(
        "UPDATE actions SET status = 'succeeded' WHERE id = ?1",
        "a0004",
    );
    rewrite("UPDATE actions SET tool = 'http' WHERE id = ?1", "a0005");
    rewrite(
        "UPDATE actions SET params = 'not json' WHERE id = ?1",
        "a0006",
    );
    rewrite(
        "UPDATE actions SET status = 'hacked' WHERE id = ?1",
        "a0008",
    );
    rewrite("UPDATE actions SET status = 42 WHERE id = ?1", "a0009");
    rewrite("UPDATE actions SET context = '[]' WHERE id = ?1", "a0010");
    conn.execute(
        "INSERT INTO actions (id, agent_id, tool, operation, params, context, status, created_at, updated_at) \
         VALUES ('ghost', 'agent', 'shell', 'run', '{}', '{}', 'allowed', 'now', 'now')",
        [],
    )
    .unwrap();
    drop(conn);

    let (code, out) = verify_log(&db, true);
    assert_eq!(code, Some(1), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report, one_chain_at_a_time(&db));
    assert_eq!(report["broken"], json!([]));
    let unbound: Vec<(&str, &str)> = report["unbound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["action_id"].as_str().unwrap(),
                p["what"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        unbound,
        [
            ("a0002", "request_hash"),
            ("a0004", "status"),
            ("a0005", "request_hash"),
            ("a0006", "request_hash"),
            ("a0008", "status"),
            ("a0009", "status"),
            ("a0010", "request_hash"),
            ("ghost", "no_events"),
        ]
    );
    let problem = &report["unbound"][0];
    assert_eq!(problem["expected"], json!(fill_request_hash()));
    assert_eq!(problem["found"], json!(forged));
    assert_eq!(problem["position"], 2);
    assert_eq!(
        report["unbound"][3]["found"]
            .as_str()
            .map(|f| f.starts_with("no hash: its params are not JSON")),
        Some(true)
    );
    assert_eq!(report["unbound"][5]["found"], "42");

    let (code, text) = verify_log(&db, false);
    assert_eq!(code, Some(1));
    assert!(
        text.contains(&format!("✗ action a0002, event a0002-e2 (#2): params/context do not hash to the request_hash of its decision_made event: expected {}, found {forged}\n", fill_request_hash())),
        "{text}"
    );
    assert!(text.contains("✗ action ghost: no events"), "{text}");
    assert!(
        text.ends_with("8 of 41 action(s) do not match their ledger: the row was changed, added or left without its events outside the server\n"),
        "{text}"
    );
}
