//! Direct, read-only access to a SQLite ledger for offline verification
//! (`faramesh verify-log --db`), without a server and without changing the file.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use super::unavailable;
use crate::{StoreError, StoreResult};
use faramesh_core::ledger::{row_request_hash_of_text, ActionFacts, ChainedEvent};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// An event exactly as stored, even if it no longer parses: a tampered `meta` that is not JSON
/// is kept as its raw text, so the chain check reports a broken link instead of failing.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub action_id: String,
    pub event_type: String,
    pub meta: Value,
    pub created_at: String,
    pub prev_hash: Option<String>,
    pub record_hash: String,
}

/// `meta` as stored: its JSON value, or the raw text when it does not parse (tampering), so the
/// chain check reports a broken link instead of failing.
pub fn meta_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl StoredEvent {
    pub fn chained(&self) -> ChainedEvent<'_> {
        ChainedEvent {
            id: &self.id,
            action_id: &self.action_id,
            event_type: &self.event_type,
            created_at: &self.created_at,
            meta: &self.meta,
            prev_hash: self.prev_hash.as_deref(),
            record_hash: &self.record_hash,
        }
    }
}

/// The fields of an action row its ledger vouches for, exactly as stored: params and context
/// as their JSON text, which a tampered file may not even hold.
#[derive(Debug, Clone)]
pub struct StoredAction {
    pub id: String,
    pub agent_id: String,
    pub tool: String,
    pub operation: String,
    pub params: String,
    pub context: String,
    pub status: String,
}

impl StoredAction {
    /// The facts `faramesh_core::ledger::verify_binding` checks against the action's events.
    pub fn facts(&self) -> ActionFacts<'_> {
        ActionFacts {
            id: &self.id,
            request_hash: row_request_hash_of_text(
                &self.agent_id,
                &self.tool,
                &self.operation,
                &self.params,
                &self.context,
            ),
            status: &self.status,
        }
    }
}

/// The columns of an action row the binding check reads, each read as text by [`lossy`].
const ROW_COLUMNS: &str = "agent_id, tool, operation, params, context, status";

/// Column `i` as text, whatever a tampered file stored there (a number, NULL, bytes that are
/// not UTF-8), so that a rewritten row is reported rather than unreadable. Copied only when it
/// is not text already.
fn lossy<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Cow<'r, str>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        },
        ValueRef::Null => Cow::Borrowed(""),
        ValueRef::Integer(n) => Cow::Owned(n.to_string()),
        ValueRef::Real(x) => Cow::Owned(x.to_string()),
    })
}

/// Consecutive leaves of the Merkle log as stored, in log order, with their events (see
/// [`LedgerFile::scan_log`]).
#[derive(Debug, Default)]
pub struct LogBatch {
    /// The events of the leaves that have one, in the same order.
    pub events: Events,
    hashes: Vec<u8>,
    leaves: Vec<LeafSpans>,
    /// Events read in this stretch that no leaf holds.
    pub outside: u64,
}

#[derive(Debug, Clone, Copy)]
struct LeafSpans {
    log_index: u64,
    start: usize,
    end: usize,
    has_event: bool,
}

/// A leaf as stored: its index, the subtree roots the server stored when appending it (its
/// stored hashes but its own leaf hash), and whether its event is still there (the next of
/// [`LogBatch::events`] when it is).
#[derive(Debug, Clone, Copy)]
pub struct LeafRow<'a> {
    pub log_index: u64,
    pub nodes: &'a [u8],
    pub has_event: bool,
}

impl LogBatch {
    /// The leaves, in log order.
    pub fn leaves(&self) -> impl ExactSizeIterator<Item = LeafRow<'_>> {
        self.leaves.iter().map(|l| LeafRow {
            log_index: l.log_index,
            nodes: self.hashes.get(l.start..l.end).unwrap_or_default(),
            has_event: l.has_event,
        })
    }

    fn push_event(&mut self, e: &EventText<'_>) {
        self.events.push(e);
    }

    fn push_leaf(&mut self, row: &rusqlite::Row<'_>, has_event: bool) -> rusqlite::Result<()> {
        let index: i64 = row.get(0)?;
        let start = self.hashes.len();
        self.hashes
            .extend_from_slice(row.get_ref(2)?.as_blob().unwrap_or_default());
        self.leaves.push(LeafSpans {
            log_index: u64::try_from(index).unwrap_or(u64::MAX),
            start,
            end: self.hashes.len(),
            has_event,
        });
        Ok(())
    }
}

/// How much of the file a read-only pass maps into memory (address space, not memory).
const MMAP_BYTES: i64 = 1 << 36;

/// A ledger database opened read-only.
pub struct LedgerFile {
    conn: Connection,
    /// How events are found by action id in this file's schema version.
    by_action: &'static str,
}

impl LedgerFile {
    pub fn open(path: &Path) -> StoreResult<LedgerFile> {
        if !path.is_file() {
            return Err(StoreError::unavailable(format!(
                "no database file at {}",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            StoreError::unavailable_because(format!("cannot open {}: {e}", path.display()), e)
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        // A whole-file pass reads pages through the memory map instead of copying each one out
        // of the kernel with a read call (about 3% of `log verify` at 10 million events).
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)
            .map_err(unavailable)?;
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('actions', 'events')",
                [],
                |row| row.get(0),
            )
            .map_err(|e| {
                StoreError::unavailable(format!("{} is not a SQLite database: {e}", path.display()))
            })?;
        if tables != 2 {
            return Err(StoreError::unavailable(format!(
                "{} is not a Faramesh database (no actions and events tables)",
                path.display()
            )));
        }
        // Files written before schema version 3 index events by action id directly.
        let positioned: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'action_pos'",
                [],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        let by_action = if positioned > 0 {
            "action_pos = (SELECT rowid FROM actions WHERE id = ?1)"
        } else {
            "action_id = ?1"
        };
        Ok(LedgerFile { conn, by_action })
    }

    /// Every action id, oldest first.
    pub fn action_ids(&self) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM actions ORDER BY rowid")
            .map_err(unavailable)?;
        let ids = stmt
            .query_map([], |row| row.get(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(unavailable)?;
        Ok(ids)
    }

    /// Ids starting with `prefix`, at most `limit`.
    pub fn ids_with_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM actions WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(unavailable)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = stmt
            .query_map(params![prefix, limit], |row| row.get(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(unavailable)?;
        Ok(ids)
    }

    /// One action's events, oldest first.
    pub fn chain(&self, action_id: &str) -> StoreResult<Vec<StoredEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                &format!("SELECT id, action_id, event_type, meta, created_at, prev_hash, record_hash FROM events WHERE {} ORDER BY seq", self.by_action),
            )
            .map_err(unavailable)?;
        let events = stmt
            .query_map([action_id], |row| {
                let meta: String = row.get(3)?;
                Ok(StoredEvent {
                    id: row.get(0)?,
                    action_id: row.get(1)?,
                    event_type: row.get(2)?,
                    meta: meta_value(&meta),
                    created_at: row.get(4)?,
                    prev_hash: row.get(5)?,
                    record_hash: row.get(6)?,
                })
            })
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        Ok(events)
    }

    /// The action with this id, as stored.
    pub fn action(&self, id: &str) -> StoreResult<Option<StoredAction>> {
        self.stored_action("id = ?1", id)
    }

    /// The action at this position (rowid), as stored.
    pub fn action_at(&self, pos: i64) -> StoreResult<Option<StoredAction>> {
        self.stored_action("rowid = ?1", pos)
    }

    fn stored_action(
        &self,
        condition: &str,
        key: impl rusqlite::ToSql,
    ) -> StoreResult<Option<StoredAction>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, {ROW_COLUMNS} FROM actions WHERE {condition}"
            ))
            .map_err(unavailable)?;
        stmt.query_row([key], |row| {
            let text = |i| lossy(row, i).map(Cow::into_owned);
            Ok(StoredAction {
                id: text(0)?,
                agent_id: text(1)?,
                tool: text(2)?,
                operation: text(3)?,
                params: text(4)?,
                context: text(5)?,
                status: text(6)?,
            })
        })
        .optional()
        .map_err(unavailable)
    }

    /// Refuses a file written before the ledger had its Merkle log.
    fn log_tables(&self) -> StoreResult<()> {
        let tables: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('log_leaves', 'log_checkpoints')",
                [],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        if tables == 2 {
            Ok(())
        } else {
            Err(StoreError::unavailable(
                "this database has no Merkle log yet: start `faramesh serve` on it once, which adds its events to one",
            ))
        }
    }

    /// The signed note of the largest checkpoint kept in the file.
    pub fn latest_checkpoint_note(&self) -> StoreResult<Option<String>> {
        self.log_tables()?;
        self.conn
            .query_row(
                "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)
    }

    /// How many leaves the log holds, by its highest index.
    pub fn log_rows(&self) -> StoreResult<u64> {
        self.log_tables()?;
        let last: Option<i64> = self
            .conn
            .query_row("SELECT MAX(log_index) FROM log_leaves", [], |row| {
                row.get(0)
            })
            .map_err(unavailable)?;
        Ok(last.map_or(0, |i| u64::try_from(i).unwrap_or(0) + 1))
    }

    /// The Merkle log with its events, in log order, in batches of about `batch` leaves, over
    /// one snapshot of the file. SQLite appends events to the log in `seq` order, so both tables
    /// are read in their own order and matched as they go: an event with no leaf is counted in
    /// [`LogBatch::outside`], a leaf whose event is gone comes without one.
    pub fn scan_log(
        &self,
        batch: usize,
        mut each: impl FnMut(LogBatch) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.log_tables()?;
        self.snapshot(|ledger| {
            let mut events = ledger
                .conn
                .prepare(&format!(
                    "SELECT e.action_pos, {SCAN_COLUMNS} FROM events e ORDER BY e.seq"
                ))
                .map_err(unavailable)?;
            let mut leaves = ledger
                .conn
                .prepare("SELECT log_index, event_seq, nodes FROM log_leaves ORDER BY log_index")
                .map_err(unavailable)?;
            let mut events = events.query([]).map_err(unavailable)?;
            let mut leaves = leaves.query([]).map_err(unavailable)?;
            let mut event = events.next().map_err(unavailable)?;
            let mut leaf = leaves.next().map_err(unavailable)?;
            let mut current = LogBatch::default();
            loop {
                let event_seq = event.map(|e| e.get::<_, i64>(1)).transpose();
                let leaf_seq = leaf.map(|l| l.get::<_, i64>(1)).transpose();
                match (
                    event_seq.map_err(unavailable)?,
                    leaf_seq.map_err(unavailable)?,
                ) {
                    (None, None) => break,
                    (Some(seq), Some(of_leaf)) if seq == of_leaf => {
                        if let (Some(e), Some(l)) = (event, leaf) {
                            current.push_event(&event_text(e).map_err(unavailable)?);
                            current.push_leaf(l, true).map_err(unavailable)?;
                        }
                        event = events.next().map_err(unavailable)?;
                        leaf = leaves.next().map_err(unavailable)?;
                    }
                    (Some(seq), Some(of_leaf)) if seq < of_leaf => {
                        current.outside += 1;
                        event = events.next().map_err(unavailable)?;
                    }
                    (Some(_), None) => {
                        current.outside += 1;
                        event = events.next().map_err(unavailable)?;
                    }
                    (_, Some(_)) => {
                        if let Some(l) = leaf {
                            current.push_leaf(l, false).map_err(unavailable)?;
                        }
                        leaf = leaves.next().map_err(unavailable)?;
                    }
                }
                if current.leaves.len() >= batch || current.events.full(batch) {
                    let next = LogBatch {
                        events: current.events.sized_like(),
                        hashes: Vec::with_capacity(current.hashes.len()),
                        leaves: Vec::with_capacity(current.leaves.len()),
                        outside: 0,
                    };
                    each(std::mem::replace(&mut current, next))?;
                }
            }
            if !current.leaves.is_empty() || current.outside > 0 {
                each(current)?;
            }
            Ok(())
        })
    }

    /// Runs `read` in one read transaction: everything it reads comes from the same state of
    /// the file, even while a server writes to it.
    pub fn snapshot<T>(&self, read: impl FnOnce(&LedgerFile) -> StoreResult<T>) -> StoreResult<T> {
        if !self.conn.is_autocommit() {
            return read(self);
        }
        self.conn.execute_batch("BEGIN").map_err(unavailable)?;
        let result = read(self);
        let _ = self.conn.execute_batch("COMMIT");
        result
    }
}

/// Where one field's text lies in an [`Events`] buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The text this span marks in `text` (empty if it does not mark any: the spans are made
    /// from the same text, so that would be a bug, not a tampered file).
    fn of(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// An event of an [`Events`] batch: its action's position and its fields as spans of the
/// batch's text.
#[derive(Debug, Clone, Copy)]
struct EventSpans {
    action_pos: i64,
    seq: i64,
    id: Span,
    action_id: Span,
    event_type: Span,
    meta: Span,
    created_at: Span,
    prev_hash: Option<Span>,
    record_hash: Span,
}

/// Consecutive events of the ledger, in the order they were written. Their text is kept in one
/// buffer, so reading allocates nothing per event.
#[derive(Debug, Default)]
pub struct Events {
    text: String,
    events: Vec<EventSpans>,
}

/// One stored event exactly as stored (`meta` not parsed yet), with where it belongs.
#[derive(Debug, Clone, Copy)]
pub struct EventText<'a> {
    /// The rowid of its action: which chain it belongs to.
    pub action_pos: i64,
    /// Its position in the whole ledger.
    pub seq: i64,
    pub id: &'a str,
    pub action_id: &'a str,
    pub event_type: &'a str,
    pub meta: &'a str,
    pub created_at: &'a str,
    pub prev_hash: Option<&'a str>,
    pub record_hash: &'a str,
}

impl Events {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in the order they were written.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EventText<'_>> {
        self.events.iter().map(|e| EventText {
            action_pos: e.action_pos,
            seq: e.seq,
            id: self.slice(e.id),
            action_id: self.slice(e.action_id),
            event_type: self.slice(e.event_type),
            meta: self.slice(e.meta),
            created_at: self.slice(e.created_at),
            prev_hash: e.prev_hash.map(|p| self.slice(p)),
            record_hash: self.slice(e.record_hash),
        })
    }

    fn slice(&self, span: Span) -> &str {
        span.of(&self.text)
    }

    fn push_text(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        // A batch is cut long before 4 GiB of text (`MAX_BATCH_TEXT`).
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
        }
    }

    fn push(&mut self, e: &EventText<'_>) {
        let spans = EventSpans {
            action_pos: e.action_pos,
            seq: e.seq,
            id: self.push_text(e.id),
            action_id: self.push_text(e.action_id),
            event_type: self.push_text(e.event_type),
            meta: self.push_text(e.meta),
            created_at: self.push_text(e.created_at),
            prev_hash: e.prev_hash.map(|p| self.push_text(p)),
            record_hash: self.push_text(e.record_hash),
        };
        self.events.push(spans);
    }

    fn full(&self, events: usize) -> bool {
        self.events.len() >= events || self.text.len() >= MAX_BATCH_TEXT
    }

    /// An empty batch with room for as much as this one holds: the next batch is filled
    /// without growing (and copying) its buffers step by step.
    fn sized_like(&self) -> Events {
        Events {
            text: String::with_capacity(self.text.len()),
            events: Vec::with_capacity(self.events.len()),
        }
    }
}

/// Text one batch holds at most.
const MAX_BATCH_TEXT: usize = 256 << 20;

/// Reads one row of `SCAN_COLUMNS` without copying its text.
fn event_text<'r>(row: &'r rusqlite::Row<'_>) -> rusqlite::Result<EventText<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> {
        row.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(EventText {
        action_pos: row.get(0)?,
        seq: row.get(1)?,
        id: text(2)?,
        action_id: text(3)?,
        event_type: text(4)?,
        meta: text(5)?,
        created_at: text(6)?,
        prev_hash: match row.get_ref(7)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(text(7)?),
        },
        record_hash: text(8)?,
    })
}

/// What a scan reads of each event (after its action's position).
const SCAN_COLUMNS: &str =
    "e.seq, e.id, e.action_id, e.event_type, e.meta, e.created_at, e.prev_hash, e.record_hash";

impl LedgerFile {
    /// The highest event sequence number (0 for an empty ledger): about how many events
    /// a scan reads.
    pub fn last_seq(&self) -> StoreResult<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(unavailable)
    }

    /// The whole ledger in one pass over one consistent snapshot of the file: first the
    /// position (rowid) of every action, in order; then the rows themselves (the fields their
    /// ledger vouches for), in batches of about `batch`, in the same order; then every event in
    /// the order it was written (the table's own order, read sequentially), in batches of about
    /// `batch`. An event belongs to the chain of the action at its position. Stops at the first
    /// error a callback returns.
    pub fn scan(
        &self,
        batch: usize,
        actions: impl FnOnce(Vec<i64>) -> StoreResult<()>,
        mut rows: impl FnMut(ActionRows) -> StoreResult<()>,
        mut events: impl FnMut(Events) -> StoreResult<()>,
    ) -> StoreResult<()> {
        // One read transaction for every query: the same snapshot even if a server writes.
        self.snapshot(|ledger| ledger.scan_in_snapshot(batch, actions, &mut rows, &mut events))
    }

    fn scan_in_snapshot(
        &self,
        batch_size: usize,
        actions: impl FnOnce(Vec<i64>) -> StoreResult<()>,
        rows: &mut impl FnMut(ActionRows) -> StoreResult<()>,
        events: &mut impl FnMut(Events) -> StoreResult<()>,
    ) -> StoreResult<()> {
        // Any index of the table holds every rowid and is far smaller than the table.
        let mut positions = self
            .conn
            .prepare("SELECT rowid FROM actions")
            .map_err(unavailable)?
            .query_map([], |row| row.get::<_, i64>(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<i64>, _>>()
            .map_err(unavailable)?;
        positions.sort_unstable();
        actions(positions)?;
        // The table in its own (rowid) order: one sequential read.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT rowid, {ROW_COLUMNS} FROM actions ORDER BY rowid"
            ))
            .map_err(unavailable)?;
        let mut found = stmt.query([]).map_err(unavailable)?;
        let mut batch = ActionRows::default();
        while let Some(row) = found.next().map_err(unavailable)? {
            batch.push(row).map_err(unavailable)?;
            if batch.full(batch_size) {
                let next = batch.sized_like();
                rows(std::mem::replace(&mut batch, next))?;
            }
        }
        if !batch.is_empty() {
            rows(batch)?;
        }
        // Files written before schema version 3 have no `action_pos`: their events are placed
        // by action id instead.
        let sql = if self.by_action.starts_with("action_pos") {
            format!("SELECT e.action_pos, {SCAN_COLUMNS} FROM events e ORDER BY e.seq")
        } else {
            format!(
                "SELECT a.rowid, {SCAN_COLUMNS} FROM events e JOIN actions a ON a.id = e.action_id ORDER BY e.seq"
            )
        };
        let mut stmt = self.conn.prepare(&sql).map_err(unavailable)?;
        let mut found = stmt.query([]).map_err(unavailable)?;
        let mut batch = Events::default();
        while let Some(row) = found.next().map_err(unavailable)? {
            batch.push(&event_text(row).map_err(unavailable)?);
            if batch.full(batch_size) {
                let next = batch.sized_like();
                events(std::mem::replace(&mut batch, next))?;
            }
        }
        if !batch.is_empty() {
            events(batch)?;
        }
        Ok(())
    }
}

/// Consecutive action rows, in rowid order, with the fields their ledger vouches for. Their
/// text is kept in one buffer, so reading allocates nothing per row.
#[derive(Debug, Default)]
pub struct ActionRows {
    text: String,
    rows: Vec<(i64, [Span; 6])>,
}

/// One action row of an [`ActionRows`] batch, as stored (params and context as JSON text).
#[derive(Debug, Clone, Copy)]
pub struct ActionText<'a> {
    /// Its rowid: the position its events name.
    pub pos: i64,
    pub agent_id: &'a str,
    pub tool: &'a str,
    pub operation: &'a str,
    pub params: &'a str,
    pub context: &'a str,
    pub status: &'a str,
}

impl ActionRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in rowid order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ActionText<'_>> {
        self.rows.iter().map(|(pos, spans)| {
            let [agent_id, tool, operation, params, context, status] =
                spans.map(|span| span.of(&self.text));
            ActionText {
                pos: *pos,
                agent_id,
                tool,
                operation,
                params,
                context,
                status,
            }
        })
    }

    /// Appends a row of `SELECT rowid, ROW_COLUMNS`.
    fn push(&mut self, row: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let pos = row.get(0)?;
        let mut spans = [Span { start: 0, end: 0 }; 6];
        for (i, span) in spans.iter_mut().enumerate() {
            let text = lossy(row, i + 1)?;
            let start = self.text.len();
            self.text.push_str(&text);
            // A batch is cut long before 4 GiB of text (`MAX_BATCH_TEXT`).
            *span = Span {
                start: u32::try_from(start).unwrap_or(u32::MAX),
                end: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
            };
        }
        self.rows.push((pos, spans));
        Ok(())
    }

    fn full(&self, rows: usize) -> bool {
        self.rows.len() >= rows || self.text.len() >= MAX_BATCH_TEXT
    }

    /// An empty batch with room for as much as this one holds (see `Events::sized_like`).
    fn sized_like(&self) -> ActionRows {
        ActionRows {
            text: String::with_capacity(self.text.len()),
            rows: Vec::with_capacity(self.rows.len()),
        }
    }
}
