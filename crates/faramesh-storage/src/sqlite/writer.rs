//! The single writer: group commit of many requests per transaction.
//!
//! The thread takes the first waiting request, then every request already queued (up to
//! [`MAX_BATCH`]), applies each inside its own savepoint so that one failing request does not
//! undo the others, commits once, and only then answers every request of the batch. A failed
//! commit answers all of them with an error: nothing is acknowledged that is not durable.
//!
//! After a failed commit (disk full, read-only file system, lock held elsewhere) the
//! transaction is rolled back and the connection is used again as it is: SQLite leaves its
//! error state once the transaction is over, so the first batch after the disk is writable
//! again commits. Until then the writer keeps a flag up that makes `ping` prove a real write.

use super::files::DatabaseFiles;
use super::{rows, unavailable, SqliteFailure};
use crate::model::now_timestamp;
use crate::{
    ActionRecord, Created, EventRecord, NewAction, NewEvent, StoreError, StoreResult,
    TransitionUpdate,
};
use faramesh_core::{ActionStatus, Transition};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests committed together.
const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before senders are slowed down.
const QUEUE: usize = 4096;

pub(super) enum WriteOp {
    Create(Box<NewAction>, oneshot::Sender<StoreResult<Created>>),
    Transition {
        id: String,
        transition: Transition,
        update: Box<TransitionUpdate>,
        reply: oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    },
    /// An approval under a rule (see [`crate::Store::approve`]).
    Approve {
        id: String,
        vote: Box<crate::ApprovalVote>,
        reply: oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    },
    /// An escalation (see [`crate::Store::escalate`]).
    Escalate {
        id: String,
        escalation: Box<crate::Escalation>,
        reply: oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    },
    /// Limit charges (see [`crate::Store::charge_limits`]).
    ChargeLimits {
        action_id: String,
        charges: Vec<faramesh_core::policy::limits::LimitCharge>,
        now: chrono::DateTime<chrono::Utc>,
        mode: crate::ChargeMode,
        reply: oneshot::Sender<StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>>>,
    },
    /// Gives back what an action counted (see [`crate::Store::release_limits`]).
    ReleaseLimits {
        action_id: String,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    /// A write that changes nothing lasting but goes to disk with the size the refused writes
    /// needed (see [`probe_space`]): answers whether the database takes them now.
    Probe(oneshot::Sender<StoreResult<()>>),
}

impl WriteOp {
    /// About what the request adds to the write-ahead log, which takes whole pages: a few
    /// pages per row and index touched, and the text of params and context.
    fn size(&self) -> usize {
        const PAGE: usize = 4096;
        match self {
            WriteOp::Create(new, _) => {
                6 * PAGE + 2 * (new.action.params.text().len() + new.action.context.text().len())
            }
            WriteOp::Transition { .. } | WriteOp::Approve { .. } | WriteOp::Escalate { .. } => {
                4 * PAGE
            }
            WriteOp::ChargeLimits { charges, .. } => 2 * PAGE * charges.len(),
            WriteOp::ReleaseLimits { .. } => 2 * PAGE,
            WriteOp::Probe(_) => 0,
        }
    }
}

/// An applied request whose answer waits for the commit.
enum Pending {
    Create(StoreResult<Created>, oneshot::Sender<StoreResult<Created>>),
    Transition(
        StoreResult<(ActionRecord, EventRecord)>,
        oneshot::Sender<StoreResult<(ActionRecord, EventRecord)>>,
    ),
    Probe(StoreResult<()>, oneshot::Sender<StoreResult<()>>),
    Limits(
        StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>>,
        oneshot::Sender<StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>>>,
    ),
}

impl Pending {
    /// The database's refusal that failed this request, if that is why it failed.
    fn refusal(&self) -> Option<rusqlite::Error> {
        let failure = match self {
            Pending::Create(result, _) => result.as_ref().err(),
            Pending::Transition(result, _) => result.as_ref().err(),
            Pending::Probe(result, _) => result.as_ref().err(),
            Pending::Limits(result, _) => result.as_ref().err(),
        };
        match failure {
            Some(StoreError::Refused { cause, .. }) => super::refusal_error(cause),
            _ => None,
        }
    }

    /// Replaces the request's result with `why` the database refused it.
    fn refused(&mut self, why: &str) {
        let err = || StoreError::unavailable(why.to_owned());
        match self {
            Pending::Create(result, _) => *result = Err(err()),
            Pending::Transition(result, _) => *result = Err(err()),
            Pending::Probe(result, _) => *result = Err(err()),
            Pending::Limits(result, _) => *result = Err(err()),
        }
    }
}

/// Starts the writer thread over `conn`, the connection to the database at `path`. The thread
/// sets `failing` after every batch that the database itself refused and clears it after every
/// batch that committed without such trouble.
pub(super) fn spawn(
    conn: Connection,
    path: PathBuf,
    failing: Arc<AtomicBool>,
    files: Arc<DatabaseFiles>,
    tail: super::log::LogTail,
) -> StoreResult<mpsc::Sender<WriteOp>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("faramesh-sqlite-writer".into())
        .spawn(move || run(conn, &path, &failing, &files, rx, tail))
        .map_err(|e| {
            StoreError::unavailable_because(format!("cannot start the database writer: {e}"), e)
        })?;
    Ok(tx)
}

fn run(
    mut conn: Connection,
    path: &Path,
    failing: &AtomicBool,
    files: &DatabaseFiles,
    mut rx: mpsc::Receiver<WriteOp>,
    mut tail: super::log::LogTail,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The size of the writes the database refused since the last batch it took.
    let mut needed = 0;
    // Ends when every sender is gone: the store was dropped.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // A write into a file that is no longer the database would be acknowledged and lost.
        if let Err(why) = files.check() {
            for op in batch.drain(..) {
                fail(op, &why);
            }
            failing.store(true, Ordering::Release);
            continue;
        }
        let probing = batch.iter().any(|op| matches!(op, WriteOp::Probe(_)));
        let size: usize = batch.iter().map(WriteOp::size).sum();
        PROBE_BYTES.with(|bytes| bytes.set(probe_size(needed)));
        let trouble = commit_batch(&mut conn, path, &mut batch, &mut tail);
        if trouble {
            // What the next probe must write to prove this batch would fit now.
            needed = needed.max(size);
        } else {
            needed = 0;
            if probing {
                // The probe's bytes proved their point; they need not stay. If this fails,
                // the next probe replaces them anyway.
                let _ = conn.execute("DELETE FROM write_probe", []);
            }
        }
        failing.store(trouble, Ordering::Release);
    }
}

/// The least and most a probe writes.
const MIN_PROBE_BYTES: usize = 64 * 1024;
const MAX_PROBE_BYTES: usize = 16 * 1024 * 1024;

/// What a probe writes to prove that writes of `needed` bytes of requests fit. A request
/// writes more than its own bytes: its row and its events, index pages and the log's frame
/// headers; so the probe writes the refused size three times over (and at least 64 KiB), and a
/// request that was refused is not answered "ready" by a probe that fits where it would not.
fn probe_size(needed: usize) -> usize {
    needed
        .saturating_mul(3)
        .clamp(MIN_PROBE_BYTES, MAX_PROBE_BYTES)
}

std::thread_local! {
    /// How much the writer thread's next probe writes (see [`probe_space`]).
    static PROBE_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(MIN_PROBE_BYTES) };
}

/// Applies `batch` in one transaction, commits it and answers every request. Returns whether
/// the database itself refused (locked, disk full, read-only, I/O error), as opposed to
/// requests refused for their own reasons. Once it refuses a request, the rest of the batch is
/// answered with the same reason at once instead of each waiting to be refused in turn.
fn commit_batch(
    conn: &mut Connection,
    path: &Path,
    batch: &mut Vec<WriteOp>,
    tail: &mut super::log::LogTail,
) -> bool {
    // The raw handle only reads the operating system's reason for the last I/O error.
    // SAFETY: `conn` outlives every use below, all on this thread.
    #[allow(
        unsafe_code,
        reason = "SQLite keeps the system errno only behind its raw handle"
    )]
    let handle = unsafe { conn.handle() };
    let describe = |e: rusqlite::Error| {
        // SAFETY: `handle` is the open connection `conn` (see above).
        #[allow(
            unsafe_code,
            reason = "SQLite keeps the system errno only behind its raw handle"
        )]
        let os_errno = unsafe { rusqlite::ffi::sqlite3_system_errno(handle) };
        SqliteFailure::new(e, Some(path), os_errno).to_string()
    };
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let why = describe(e);
            for op in batch.drain(..) {
                fail(op, &why);
            }
            return true;
        }
    };
    let mut pending = Vec::with_capacity(batch.len());
    let mut refused = None;
    let mut ops = batch.drain(..);
    for op in ops.by_ref() {
        pending.push(match op {
            WriteOp::Create(new, reply) => {
                Pending::Create(in_savepoint(&mut tx, |c| create(c, *new)), reply)
            }
            WriteOp::Transition {
                id,
                transition,
                update,
                reply,
            } => Pending::Transition(
                in_savepoint(&mut tx, |c| apply_transition(c, &id, transition, *update)),
                reply,
            ),
            WriteOp::Approve { id, vote, reply } => Pending::Transition(
                in_savepoint(&mut tx, |c| super::approvals::approve(c, &id, *vote)),
                reply,
            ),
            WriteOp::Escalate {
                id,
                escalation,
                reply,
            } => Pending::Transition(
                in_savepoint(&mut tx, |c| super::approvals::escalate(c, &id, *escalation)),
                reply,
            ),
            WriteOp::ChargeLimits {
                action_id,
                charges,
                now,
                mode,
                reply,
            } => Pending::Limits(
                in_savepoint(&mut tx, |c| {
                    super::limits::charge(c, &action_id, &charges, now, mode)
                }),
                reply,
            ),
            WriteOp::ReleaseLimits { action_id, reply } => Pending::Probe(
                in_savepoint(&mut tx, |c| super::limits::release(c, &action_id)),
                reply,
            ),
            WriteOp::Probe(reply) => Pending::Probe(in_savepoint(&mut tx, probe_space), reply),
        });
        let refusal = pending.last().and_then(Pending::refusal);
        // After some errors (disk full or an I/O error while SQLite wrote pages out before the
        // commit) SQLite rolls the whole transaction back itself: what was applied is gone,
        // and a later request must not run outside a transaction.
        if refusal.is_some() || tx.is_autocommit() {
            let why = refusal.map_or_else(
                || {
                    format!(
                        "the transaction on the database {} was rolled back",
                        path.display()
                    )
                },
                describe,
            );
            if let Some(last) = pending.last_mut() {
                last.refused(&why);
            }
            refused = Some(why);
            break;
        }
    }
    if let Some(why) = &refused {
        for op in ops {
            fail(op, why);
        }
    }
    // The batch's events join the Merkle log in the same transaction, so no committed event is
    // ever missing from it. A log that cannot be appended to refuses the whole batch.
    let logged = match &refused {
        Some(_) => Ok(None),
        None => tail.integrate(&tx, i64::MAX).map_err(|e| e.to_string()),
    };
    let committed = match (&refused, &logged) {
        (Some(why), _) if tx.is_autocommit() => Err(why.clone()),
        (_, Err(why)) => Err(why.clone()),
        _ => tx.commit().map_err(describe),
    };
    if let (Ok(()), Ok(Some(next))) = (&committed, logged) {
        *tail = next;
    }
    let trouble = refused.is_some() || committed.is_err();
    // A caller that went away (timed out, disconnected) no longer needs its answer.
    for p in pending {
        match p {
            Pending::Create(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
            Pending::Transition(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
            Pending::Probe(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
            Pending::Limits(result, reply) => {
                let _ = reply.send(after_commit(result, &committed));
            }
        }
    }
    trouble
}

fn after_commit<T>(result: StoreResult<T>, committed: &Result<(), String>) -> StoreResult<T> {
    match (result, committed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(why)) => Err(StoreError::unavailable(why.clone())),
        (Err(e), _) => Err(e),
    }
}

fn fail(op: WriteOp, why: &str) {
    let err = || StoreError::unavailable(why.to_owned());
    match op {
        WriteOp::Create(_, reply) => {
            let _ = reply.send(Err(err()));
        }
        WriteOp::Transition { reply, .. }
        | WriteOp::Approve { reply, .. }
        | WriteOp::Escalate { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        WriteOp::Probe(reply) => {
            let _ = reply.send(Err(err()));
        }
        WriteOp::ChargeLimits { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        WriteOp::ReleaseLimits { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
    }
}

/// Writes as many bytes as the writes refused last needed (at least 64 KiB), so the commit
/// proves the disk takes a write of that size now; a small write could fit into space the
/// files already hold while a real one does not.
fn probe_space(conn: &Connection) -> StoreResult<()> {
    let bytes = i64::try_from(PROBE_BYTES.with(std::cell::Cell::get)).unwrap_or(i64::MAX);
    conn.prepare_cached("INSERT OR REPLACE INTO write_probe (id, filler) VALUES (1, zeroblob(?1))")
        .map_err(unavailable)?
        .execute([bytes])
        .map(|_| ())
        .map_err(unavailable)
}

/// Runs `f` in a savepoint: its writes stay only if it succeeds.
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let sp = tx.savepoint().map_err(unavailable)?;
    let result = f(&sp);
    if result.is_ok() {
        sp.commit().map_err(unavailable)?;
    }
    // Dropping an uncommitted savepoint rolls it back.
    result
}

fn create(conn: &Connection, new: NewAction) -> StoreResult<Created> {
    if let Some((key, body_hash)) = &new.idempotency {
        let seen: Option<(String, String)> = conn
            .prepare_cached("SELECT body_hash, action_id FROM idempotency_keys WHERE key = ?1")
            .map_err(unavailable)?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(unavailable)?;
        if let Some((seen_hash, action_id)) = seen {
            if &seen_hash != body_hash {
                return Err(StoreError::IdempotencyMismatch {
                    key: key.clone(),
                    action_id,
                });
            }
            let action = rows::get_action(conn, &action_id)?
                .ok_or_else(|| StoreError::NotFound(action_id.clone()))?;
            return Ok(Created {
                action,
                events: Vec::new(),
                replayed: true,
            });
        }
    }
    let now = now_timestamp();
    let mut action = new.action;
    action.created_at.clone_from(&now);
    action.updated_at = now;
    rows::insert_action(conn, &action)?;
    let mut events = Vec::with_capacity(new.events.len());
    let mut prev: Option<String> = None;
    for event in new.events {
        let record = append(conn, &action.id, event, prev.take())?;
        prev = Some(record.record_hash.clone());
        events.push(record);
    }
    if let Some((key, body_hash)) = &new.idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (key, body_hash, action_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(unavailable)?
        .execute(params![key, body_hash, action.id])
        .map_err(unavailable)?;
    }
    if let Some(deadline) = &new.approval_deadline {
        super::approvals::insert_deadline(conn, &action.id, deadline)?;
    }
    super::outbox::insert(conn, Some(&action.id), &new.notifications)?;
    if let Some(shadow) = &new.shadow {
        super::shadow::insert(conn, &action.id, shadow, &action.created_at)?;
    }
    Ok(Created {
        action,
        events,
        replayed: false,
    })
}

/// Writes one event after `prev_hash`, computing its `record_hash`.
pub(super) fn append(
    conn: &Connection,
    action_id: &str,
    event: NewEvent,
    prev_hash: Option<String>,
) -> StoreResult<EventRecord> {
    let mut record = EventRecord::next(action_id, event, prev_hash)?;
    record.seq = rows::insert_event(conn, &record)?;
    Ok(record)
}

fn apply_transition(
    conn: &Connection,
    id: &str,
    transition: Transition,
    update: TransitionUpdate,
) -> StoreResult<(ActionRecord, EventRecord)> {
    let from = transition.from();
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("?{}", i + 7)).collect();
    let sql = format!(
        "UPDATE actions SET status = ?1, decision = COALESCE(?2, decision), reason = COALESCE(?3, reason), \
         result = COALESCE(?4, result), approval_token = NULL, updated_at = ?5 \
         WHERE id = ?6 AND status IN ({})",
        placeholders.join(", ")
    );
    let result = update
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let now = now_timestamp();
    let mut args: Vec<rusqlite::types::Value> = vec![
        transition.to().as_str().to_owned().into(),
        update.decision.map(|d| d.as_str().to_owned()).into(),
        update.reason.into(),
        result.into(),
        now.into(),
        id.to_owned().into(),
    ];
    args.extend(
        from.iter()
            .map(|s| rusqlite::types::Value::from(s.as_str().to_owned())),
    );
    let changed = conn
        .prepare_cached(&sql)
        .map_err(unavailable)?
        .execute(rusqlite::params_from_iter(args))
        .map_err(unavailable)?;
    if changed == 0 {
        let status: Option<String> = conn
            .prepare_cached("SELECT status FROM actions WHERE id = ?1")
            .map_err(unavailable)?
            .query_row([id], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        return Err(match status {
            None => StoreError::NotFound(id.to_owned()),
            Some(s) => StoreError::Conflict {
                id: id.to_owned(),
                status: ActionStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {s}")))?,
                attempted: crate::transition_name(transition),
            },
        });
    }
    super::outbox::insert(conn, Some(id), &update.notifications)?;
    let prev = rows::last_record_hash(conn, id)?;
    let event = append(
        conn,
        id,
        NewEvent {
            event_type: transition.event(),
            meta: update.meta,
        },
        prev,
    )?;
    let action = rows::get_action(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    Ok((action, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionRecord;
    use faramesh_core::json::ReceivedObject;
    use faramesh_core::policy::Effect;
    use faramesh_core::{EventType, Outcome, RiskLevel};
    use serde_json::{json, Map};

    fn new_action(id: &str) -> NewAction {
        NewAction {
            action: ActionRecord {
                id: id.to_owned(),
                agent_id: "a".into(),
                tool: "http".into(),
                operation: "get".into(),
                params: ReceivedObject::from_map(Map::new()).unwrap(),
                context: ReceivedObject::from_map(Map::new()).unwrap(),
                status: ActionStatus::Allowed,
                decision: Some(Effect::Allow),
                reason: None,
                risk_level: Some(RiskLevel::Low),
                approval_token: None,
                policy_version: None,
                outcome: Some(Outcome::Execute),
                reason_code: None,
                reason_details: None,
                request_hash: None,
                policy_hash: None,
                profile_id: None,
                profile_version: None,
                profile_hash: None,
                runtime_version: None,
                provenance_id: None,
                result: None,
                demo: false,
                created_at: String::new(),
                updated_at: String::new(),
            },
            events: vec![NewEvent {
                event_type: EventType::Created,
                meta: json!({}),
            }],
            idempotency: None,
            approval_deadline: None,
            notifications: Vec::new(),
            shadow: None,
        }
    }

    #[test]
    fn one_failing_request_leaves_the_rest_of_its_batch_committed() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let mut replies = Vec::new();
        let mut batch = Vec::new();
        // The second request reuses the first one's id, so its insert fails inside the batch.
        for id in ["a1", "a1", "a2"] {
            let (reply, answer) = oneshot::channel();
            batch.push(WriteOp::Create(Box::new(new_action(id)), reply));
            replies.push(answer);
        }
        let mut tail = super::super::log::LogTail::load(&conn).unwrap();
        let trouble = commit_batch(&mut conn, &dir.path().join("db"), &mut batch, &mut tail);
        assert!(
            !trouble,
            "a request's own failure is no trouble of the database"
        );
        let results: Vec<bool> = replies
            .into_iter()
            .map(|mut r| matches!(r.try_recv(), Ok(Ok(_))))
            .collect();
        assert_eq!(results, [true, false, true]);
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM actions", [], |row| row.get(0))
            .unwrap();
        let events: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            (stored, events),
            (2, 2),
            "the failed request left no half-written rows"
        );
    }

    #[test]
    fn a_probe_writes_a_frame_to_the_wal_and_changes_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let wal = dir.path().join("db-wal");
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();

        let (reply, mut answer) = oneshot::channel();
        let mut tail = super::super::log::LogTail::load(&conn).unwrap();
        let trouble = commit_batch(
            &mut conn,
            &path,
            &mut vec![WriteOp::Probe(reply)],
            &mut tail,
        );
        assert!(!trouble);
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "the probe's commit went to the WAL"
        );
        let after: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(after, version, "the schema version is unchanged");
    }

    #[test]
    fn a_full_disk_refuses_the_whole_batch_at_once_and_the_next_batch_commits() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        // The file may not grow: a request that needs a new page gets SQLITE_FULL.
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let mut tail = super::super::log::LogTail::load(&conn).unwrap();
        let big = |id: &str| {
            let mut new = new_action(id);
            let mut params = Map::new();
            params.insert("blob".into(), json!("x".repeat(100_000)));
            new.action.params = ReceivedObject::from_map(params).unwrap();
            Box::new(new)
        };
        let mut replies = Vec::new();
        let mut batch = Vec::new();
        for id in ["a1", "a2", "a3"] {
            let (reply, answer) = oneshot::channel();
            batch.push(WriteOp::Create(big(id), reply));
            replies.push(answer);
        }
        assert!(
            commit_batch(&mut conn, &path, &mut batch, &mut tail),
            "the database refused"
        );
        for mut answer in replies {
            let Ok(Err(StoreError::Unavailable { reason: why, .. })) = answer.try_recv() else {
                panic!("every request of the batch is refused");
            };
            assert_eq!(
                why,
                format!(
                    "the disk holding the database {} is full; free space on it",
                    path.display()
                )
            );
        }
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM actions", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 0);

        conn.pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        let (reply, mut answer) = oneshot::channel();
        let trouble = commit_batch(
            &mut conn,
            &path,
            &mut vec![WriteOp::Create(big("a4"), reply)],
            &mut tail,
        );
        assert!(!trouble);
        assert!(
            matches!(answer.try_recv(), Ok(Ok(_))),
            "the next batch commits"
        );
        // The refused batch left no leaf and no hole: the log holds exactly the events.
        let (leaves, last, events): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM log_leaves), (SELECT MAX(log_index) FROM log_leaves), (SELECT COUNT(*) FROM events)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((leaves, last + 1), (events, events));
        assert_eq!(tail.size(), events as u64);
    }
}
