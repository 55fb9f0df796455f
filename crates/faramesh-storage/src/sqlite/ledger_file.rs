//! Direct, read-only access to a SQLite ledger for offline verification
//! (`faramesh verify-log --db`), without a server and without changing the file.

use super::unavailable;
use crate::{StoreError, StoreResult};
use faramesh_core::ledger::ChainedEvent;
use rusqlite::{params, Connection, OpenFlags};
use serde_json::Value;
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

/// A ledger database opened read-only.
pub struct LedgerFile {
    conn: Connection,
    /// How events are found by action id in this file's schema version.
    by_action: &'static str,
}

impl LedgerFile {
    pub fn open(path: &Path) -> StoreResult<LedgerFile> {
        if !path.is_file() {
            return Err(StoreError::Unavailable(format!(
                "no database file at {}",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('actions', 'events')",
                [],
                |row| row.get(0),
            )
            .map_err(|e| {
                StoreError::Unavailable(format!("{} is not a SQLite database: {e}", path.display()))
            })?;
        if tables != 2 {
            return Err(StoreError::Unavailable(format!(
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
                    meta: serde_json::from_str(&meta).unwrap_or(Value::String(meta)),
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
}
