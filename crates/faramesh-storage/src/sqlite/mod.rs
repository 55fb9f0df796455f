//! The embedded default: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that commits many requests in one transaction
//! (group commit), each request answered only after that commit. Reads use a small pool of
//! their own connections and never wait for the writer.

mod approvals;
mod files;
mod ledger_file;
mod limits;
mod log;
mod outbox;
mod rows;
mod shadow;
mod shm_fault;
mod tokens;
mod writer;

pub use ledger_file::{
    meta_value, ActionRows, ActionText, EventText, Events, LeafRow, LedgerFile, LogBatch,
    StoredAction, StoredEvent,
};

use crate::{
    ActionFilter, ActionRecord, AtVersion, Change, Created, EventRecord, NameColumn, NewAction,
    NewToken, Store, StoreError, StoreResult, TokenRecord, TransitionUpdate,
};
use async_trait::async_trait;
use faramesh_core::{ActionStatus, Transition};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use writer::WriteOp;

/// The schema, one migration per step; applied on open and recorded in `user_version`.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/sqlite/0001_init.sql")),
        M::up(include_str!("../../migrations/sqlite/0002_api_tokens.sql")),
        M::up(include_str!(
            "../../migrations/sqlite/0003_events_by_action_position.sql"
        )),
        M::up(include_str!(
            "../../migrations/sqlite/0004_listing_by_status.sql"
        )),
        M::up(include_str!("../../migrations/sqlite/0005_write_probe.sql")),
        M::up(include_str!(
            "../../migrations/sqlite/0006_approvals_and_notifications.sql"
        )),
        M::up(include_str!(
            "../../migrations/sqlite/0007_shadow_decisions.sql"
        )),
        M::up(include_str!("../../migrations/sqlite/0008_limit_usage.sql")),
        M::up(include_str!(
            "../../migrations/sqlite/0009_limit_totals.sql"
        )),
        M::up(include_str!(
            "../../migrations/sqlite/0010_search_by_operation.sql"
        )),
        M::up(include_str!("../../migrations/sqlite/0011_merkle_log.sql")),
    ])
}

/// Connection settings for every connection: wait for locks instead of failing at once,
/// enforce foreign keys.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// WAL pages after which the writer checkpoints. The checkpoint runs in the writer after a
/// commit and holds up the next batch; smaller, more frequent ones keep that pause short
/// (p99 of durable submissions about 6 ms at 400 pages against about 9 ms at SQLite's 1,000).
const CHECKPOINT_PAGES: i64 = 400;

/// Actions and events in a SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<WriteOp>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// Set by the writer when a write failed for want of the database (locked, disk full, I/O
    /// error), cleared by its next successful commit. While set, `ping` proves a real write.
    write_failing: Arc<AtomicBool>,
    /// The files opened at start, to notice when they are deleted or replaced.
    files: Arc<files::DatabaseFiles>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, with its parent directory, and
    /// brings the schema up to date.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::unavailable(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| {
            StoreError::unavailable(format!("cannot open database {}: {e}", path.display()))
        })?;
        configure(&conn).map_err(unavailable)?;
        // WAL lets readers work while the writer commits; FULL makes each commit durable
        // before any request it contains is answered.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        // Each request of a group commit runs in its own savepoint, which first copies every
        // page it changes to a sub-journal: a temporary file unless temporary storage is in
        // memory. With the file, that was a 4 KiB write per index page touched per request.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(unavailable)?;
        let migrations = migrations();
        let before: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(unavailable)?;
        let pending = migrations.pending_migrations(&conn).unwrap_or(0);
        if before > 0 && pending > 0 {
            // A new index over a ledger of millions of actions takes a while to build.
            tracing::info!(
                database = %path.display(),
                "upgrading the database schema ({pending} step(s) from version {before}); on a large ledger this can take a minute"
            );
        }
        migrations.to_latest(&mut conn).map_err(|e| {
            StoreError::unavailable(format!("cannot migrate database {}: {e}", path.display()))
        })?;

        let tail = log::catch_up(&mut conn, path)?;

        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .build(manager)
            .map_err(|e| {
                StoreError::unavailable(format!("cannot open database {}: {e}", path.display()))
            })?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
            .map_err(unavailable)?;
        let write_failing = Arc::new(AtomicBool::new(false));
        shm_fault::install();
        let files = Arc::new(files::DatabaseFiles::new(path).map_err(|e| {
            StoreError::unavailable(format!("cannot read database {}: {e}", path.display()))
        })?);
        let writer = writer::spawn(
            conn,
            path.to_owned(),
            Arc::clone(&write_failing),
            Arc::clone(&files),
            tail,
        )?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            readers,
            write_failing,
            files,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteOp,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(op(reply))
            .await
            .map_err(|_| StoreError::unavailable("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the database writer has stopped"))?
    }

    /// Runs `f` on a pooled connection. Besides reads, rare writes outside the action ledger
    /// (API tokens) use it too, so they never wait behind a group commit.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool
                .get()
                .map_err(|e| StoreError::unavailable_because(e.to_string(), e))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::unavailable_because(format!("database read failed: {e}"), e))?
    }
}

/// A SQLite error as callers see it: a refusal of the database itself (see
/// [`SqliteFailure::is_refusal`]) stays whole, so the writer can tell it from a request's own failure
/// and name the file and the operating system's reason.
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    let refused = matches!(&e, rusqlite::Error::SqliteFailure(failure, _) if SqliteFailure::is_refusal(failure.code));
    let trouble = SqliteFailure::new(e, None, 0);
    let reason = trouble.to_string();
    if refused {
        StoreError::Refused {
            reason,
            cause: Box::new(trouble),
        }
    } else {
        StoreError::unavailable_because(reason, trouble)
    }
}

/// The SQLite error under a refusal made by [`unavailable`].
pub(crate) fn refusal_error(cause: &crate::Cause) -> Option<rusqlite::Error> {
    match cause.downcast_ref::<SqliteFailure>()?.sqlite() {
        rusqlite::Error::SqliteFailure(failure, message) => {
            Some(rusqlite::Error::SqliteFailure(*failure, message.clone()))
        }
        _ => None,
    }
}

/// Why SQLite could not do what was asked, in words that say what to do about it, with
/// SQLite's own error as its source.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct SqliteFailure {
    what: What,
    #[source]
    sqlite: rusqlite::Error,
}

#[derive(Debug, thiserror::Error)]
enum What {
    #[error("{db} is locked by another connection; retry once it is released")]
    Locked { db: Db },
    #[error("the disk holding {db} is full; free space on it")]
    DiskFull { db: Db },
    #[error("{db} could not be written: {why}; check that its disk is attached and its file system is mounted writable")]
    NotWritten { db: Db, why: String },
    #[error("{db} could not be read: {why}; check its disk")]
    NotRead { db: Db, why: String },
    #[error("{db} is read-only: {why}; check the permissions of the file and its directory")]
    ReadOnly { db: Db, why: String },
    #[error("{0}")]
    Other(String),
}

/// The database in a message: named by its path when known.
#[derive(Debug)]
pub(crate) struct Db(Option<PathBuf>);

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(path) => write!(f, "the database {}", path.display()),
            None => f.write_str("the database"),
        }
    }
}

impl SqliteFailure {
    /// Whether an error with this code is the database refusing any write right now (locked,
    /// disk full, read-only, I/O error), rather than one request's own fault.
    pub(crate) fn is_refusal(code: rusqlite::ErrorCode) -> bool {
        use rusqlite::ErrorCode;
        matches!(
            code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
        )
    }

    /// Classifies `e`; `os_errno` (0 when unknown) is the operating system's reason for an I/O
    /// error, as `sqlite3_system_errno` reports it.
    pub(crate) fn new(e: rusqlite::Error, path: Option<&Path>, os_errno: i32) -> SqliteFailure {
        use rusqlite::ffi;
        use rusqlite::ErrorCode;
        let db = Db(path.map(Path::to_owned));
        let what = match &e {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let sqlite_says = || message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => What::Locked { db },
                    ErrorCode::DiskFull => What::DiskFull { db },
                    ErrorCode::ReadOnly => What::ReadOnly {
                        db,
                        why: sqlite_says(),
                    },
                    ErrorCode::SystemIoFailure => {
                        // SQLite records the operating system's error only for I/O errors.
                        let why = if os_errno > 0 {
                            std::io::Error::from_raw_os_error(os_errno).to_string()
                        } else {
                            sqlite_says()
                        };
                        match failure.extended_code {
                            ffi::SQLITE_IOERR_READ | ffi::SQLITE_IOERR_SHORT_READ => {
                                What::NotRead { db, why }
                            }
                            _ => What::NotWritten { db, why },
                        }
                    }
                    _ => What::Other(e.to_string()),
                }
            }
            _ => What::Other(e.to_string()),
        };
        SqliteFailure { what, sqlite: e }
    }

    /// SQLite's own error.
    pub(crate) fn sqlite(&self) -> &rusqlite::Error {
        &self.sqlite
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_action(&self, new: NewAction) -> StoreResult<Created> {
        self.write(|reply| WriteOp::Create(Box::new(new), reply))
            .await
    }

    async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let id = id.to_owned();
        self.write(|reply| WriteOp::Transition {
            id,
            transition,
            update: Box::new(update),
            reply,
        })
        .await
    }

    async fn get_action(&self, id: &str) -> StoreResult<Option<ActionRecord>> {
        let id = id.to_owned();
        self.read(move |conn| rows::get_action(conn, &id)).await
    }

    async fn approve(
        &self,
        id: &str,
        vote: crate::ApprovalVote,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let id = id.to_owned();
        self.write(|reply| WriteOp::Approve {
            id,
            vote: Box::new(vote),
            reply,
        })
        .await
    }

    async fn approvals_of(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<crate::Approval>>> {
        let ids = ids.to_vec();
        self.read(move |conn| approvals::approvals_of(conn, &ids))
            .await
    }

    async fn approvals_due(&self, now: &str, limit: usize) -> StoreResult<Vec<crate::DueApproval>> {
        let now = now.to_owned();
        self.read(move |conn| approvals::approvals_due(conn, &now, limit))
            .await
    }

    async fn escalate(
        &self,
        id: &str,
        escalation: crate::Escalation,
    ) -> StoreResult<(ActionRecord, EventRecord)> {
        let id = id.to_owned();
        self.write(|reply| WriteOp::Escalate {
            id,
            escalation: Box::new(escalation),
            reply,
        })
        .await
    }

    async fn enqueue_notifications(
        &self,
        notifications: Vec<crate::NewNotification>,
    ) -> StoreResult<Vec<String>> {
        self.read(move |conn| outbox::insert(conn, None, &notifications))
            .await
    }

    async fn claim_notifications(
        &self,
        now: &str,
        lease_until: &str,
        limit: usize,
    ) -> StoreResult<Vec<crate::NotificationRecord>> {
        let (now, lease_until) = (now.to_owned(), lease_until.to_owned());
        self.read(move |conn| outbox::claim(conn, &now, &lease_until, limit))
            .await
    }

    async fn finish_notification(&self, id: &str, attempt: crate::Attempt) -> StoreResult<()> {
        let id = id.to_owned();
        self.read(move |conn| outbox::finish(conn, &id, &attempt))
            .await
    }

    async fn charge_limits(
        &self,
        action_id: &str,
        charges: Vec<faramesh_core::policy::limits::LimitCharge>,
        now: chrono::DateTime<chrono::Utc>,
        mode: crate::ChargeMode,
    ) -> StoreResult<Option<faramesh_core::policy::limits::LimitExceeded>> {
        if charges.is_empty() {
            return Ok(None);
        }
        let action_id = action_id.to_owned();
        self.write(|reply| WriteOp::ChargeLimits {
            action_id,
            charges,
            now,
            mode,
            reply,
        })
        .await
    }

    async fn release_limits(&self, action_id: &str) -> StoreResult<()> {
        let action_id = action_id.to_owned();
        self.write(|reply| WriteOp::ReleaseLimits { action_id, reply })
            .await
    }

    async fn limit_usage(
        &self,
        limits: &[(String, u64)],
        now: chrono::DateTime<chrono::Utc>,
        per_limit: usize,
    ) -> StoreResult<Vec<crate::LimitUsage>> {
        let limits = limits.to_vec();
        self.read(move |conn| limits::usage(conn, &limits, now, per_limit))
            .await
    }

    async fn shadow_summary(
        &self,
        policy_hash: &str,
        latest: usize,
    ) -> StoreResult<crate::ShadowSummary> {
        let policy_hash = policy_hash.to_owned();
        self.read(move |conn| shadow::summary(conn, &policy_hash, latest))
            .await
    }

    async fn list_notifications(
        &self,
        filter: &crate::NotificationFilter,
    ) -> StoreResult<Vec<crate::NotificationRecord>> {
        let filter = filter.clone();
        self.read(move |conn| outbox::list(conn, &filter)).await
    }

    async fn ids_with_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        // `LIKE` treats % and _ as wildcards; ids are hex and dashes, so refuse anything else.
        if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        let pattern = format!("{prefix}%");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM actions WHERE id LIKE ?1 ORDER BY id LIMIT ?2")
                .map_err(unavailable)?;
            let ids = stmt
                .query_map(params![pattern, limit], |row| row.get(0))
                .map_err(unavailable)?;
            ids.collect::<Result<Vec<String>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn list_actions(&self, filter: &ActionFilter) -> StoreResult<Vec<ActionRecord>> {
        let filter = filter.clone();
        self.read(move |conn| rows::list_actions(conn, &filter))
            .await
    }

    async fn names_containing(&self, column: NameColumn, text: &str) -> StoreResult<Vec<String>> {
        let text = text.to_owned();
        self.read(move |conn| rows::names_containing(conn, column, &text))
            .await
    }

    async fn events(&self, action_id: &str) -> StoreResult<Vec<EventRecord>> {
        let id = action_id.to_owned();
        self.read(move |conn| {
            let mut events = rows::events(conn, &id)?;
            let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
            let indexes = log::indexes_of(conn, &seqs)?;
            for e in &mut events {
                e.log_index = indexes.get(&e.seq).copied();
            }
            Ok(events)
        })
        .await
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.read(log::size).await
    }

    async fn log_hashes(&self, indexes: Vec<u64>) -> StoreResult<Vec<faramesh_tlog::Hash>> {
        self.read(move |conn| log::hashes(conn, &indexes)).await
    }

    async fn log_leaves(&self, start: u64, end: u64) -> StoreResult<Vec<crate::LogLeaf>> {
        let end = end.min(start.saturating_add(crate::MAX_LEAVES));
        self.read(move |conn| log::leaves(conn, start, end)).await
    }

    async fn add_checkpoint(&self, checkpoint: crate::StoredCheckpoint) -> StoreResult<()> {
        self.read(move |conn| log::add_checkpoint(conn, &checkpoint))
            .await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<crate::StoredCheckpoint>> {
        self.read(log::latest_checkpoint).await
    }

    async fn changes_between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        self.read(move |conn| rows::changes_between(conn, after, before, limit))
            .await
    }

    async fn changes_with_seqs(&self, seqs: &[u64]) -> StoreResult<Vec<Change>> {
        let seqs = seqs.to_vec();
        self.read(move |conn| rows::changes_with_seqs(conn, &seqs))
            .await
    }

    async fn pending_since_before(&self, created_before: &str) -> StoreResult<Vec<String>> {
        let before = created_before.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM actions WHERE status = ?1 AND created_at < ?2 ORDER BY rowid",
                )
                .map_err(unavailable)?;
            let ids = stmt
                .query_map(
                    params![ActionStatus::PendingApproval.as_str(), before],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            ids.collect::<Result<Vec<String>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn last_event_seq(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let seq: Option<i64> = conn
                .query_row("SELECT MAX(seq) FROM events", [], |row| row.get(0))
                .map_err(unavailable)?;
            Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
        })
        .await
    }

    async fn count_with_status(&self, status: ActionStatus) -> StoreResult<u64> {
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM actions WHERE status = ?1")
                .map_err(unavailable)?
                .query_row([status.as_str()], |row| row.get(0))
                .map_err(unavailable)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        self.read(move |conn| tokens::create(conn, new)).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.read(tokens::list).await
    }

    async fn revoke_token(&self, name_or_id: &str) -> StoreResult<Option<TokenRecord>> {
        let key = name_or_id.to_owned();
        self.read(move |conn| tokens::revoke(conn, &key)).await
    }

    async fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<AtVersion<Option<TokenRecord>>> {
        let hash = secret_hash.to_owned();
        let token = self.read(move |conn| tokens::by_hash(conn, &hash)).await?;
        // One process owns the database: it makes every token change itself.
        Ok(AtVersion {
            version: 0,
            value: token,
        })
    }

    /// Reads; and after a write failed, writes too (see [`WriteOp::Probe`]), so that a disk
    /// that is full or read-only keeps the server unready until a write succeeds again.
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(unavailable)?;
            Ok(())
        })
        .await?;
        self.files.check().map_err(StoreError::unavailable)?;
        if self.write_failing.load(Ordering::Acquire) {
            self.write(WriteOp::Probe).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod cause_tests {
    use super::{refusal_error, unavailable};
    use crate::StoreError;
    use std::error::Error;

    #[test]
    fn a_refusal_keeps_sqlites_error_underneath() {
        let full = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL);
        let err = unavailable(rusqlite::Error::SqliteFailure(full, None));
        let StoreError::Refused { cause, .. } = &err else {
            panic!("a full disk is a refusal: {err:?}");
        };
        assert!(err.to_string().contains("is full"), "{err}");
        let sqlite = err.source().and_then(Error::source);
        assert!(
            sqlite.is_some_and(|e| e.downcast_ref::<rusqlite::Error>().is_some()),
            "{err:?}"
        );
        assert!(matches!(
            refusal_error(cause),
            Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::DiskFull
        ));
    }

    #[test]
    fn another_failure_is_unavailable_with_its_cause() {
        let err = unavailable(rusqlite::Error::InvalidQuery);
        assert!(matches!(
            &err,
            StoreError::Unavailable { cause: Some(_), .. }
        ));
        assert!(err.source().is_some());
    }
}
