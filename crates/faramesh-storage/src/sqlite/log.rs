//! The Merkle log on SQLite. The one writer appends, in the transaction of each batch, every
//! event written since the last one it appended: SQLite has one writer, so ledger order is
//! `seq` order and nothing can be skipped.

use super::unavailable;
use crate::log::{self, LogLeaf, StoredCheckpoint};
use crate::StoreResult;
use faramesh_tlog::{tree, Frontier, Hash};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;

/// Leaves written by one statement.
const INSERT_ROWS: usize = 64;

fn insert_rows_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?)"; rows].join(", ");
    format!("INSERT INTO log_leaves (log_index, event_seq, nodes) VALUES {values}")
}

/// The log's right edge, which the one writer keeps between batches: read from the leaves at
/// start, then carried from batch to batch, so a batch writes only its new leaves.
#[derive(Debug, Clone)]
pub(super) struct LogTail {
    frontier: Frontier,
    /// The `seq` of the last event appended (0 for an empty log).
    last_seq: i64,
}

impl LogTail {
    /// The tail of the log as stored.
    pub(super) fn load(conn: &Connection) -> StoreResult<LogTail> {
        let last: Option<(i64, i64)> = conn
            .query_row(
                "SELECT log_index, event_seq FROM log_leaves ORDER BY log_index DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        let Some((last_index, last_seq)) = last else {
            return Ok(LogTail {
                frontier: Frontier::empty(),
                last_seq: 0,
            });
        };
        let size = last_index + 1;
        let roots = hashes(conn, &tree::tree_hash_indexes(size as u64))?;
        Ok(LogTail {
            frontier: log::frontier(size, &roots.concat())?,
            last_seq,
        })
    }

    /// Appends the events after the last one appended, at most `limit` of them, in the
    /// transaction `conn` is in; returns the tail after them, to keep once that commits, or
    /// `None` when there were none.
    pub(super) fn integrate(&self, conn: &Connection, limit: i64) -> StoreResult<Option<LogTail>> {
        let mut leaves: Vec<(i64, Hash)> = Vec::new();
        {
            let mut read = conn
                .prepare_cached(
                    "SELECT seq, record_hash FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(unavailable)?;
            let mut rows = read
                .query(params![self.last_seq, limit])
                .map_err(unavailable)?;
            while let Some(row) = rows.next().map_err(unavailable)? {
                let seq: i64 = row.get(0).map_err(unavailable)?;
                let record_hash = row
                    .get_ref(1)
                    .and_then(|v| Ok(v.as_str()?))
                    .map_err(unavailable)?;
                leaves.push((seq, log::leaf_of(record_hash)?));
            }
        }
        let Some(&(last_seq, _)) = leaves.last() else {
            return Ok(None);
        };
        let appended = log::append_leaves(self.frontier.clone(), leaves);
        // Many rows per statement: a batch of a few hundred events is a few statements.
        let mut chunks = appended.rows.chunks_exact(INSERT_ROWS);
        let mut insert_many = conn
            .prepare_cached(&insert_rows_sql(INSERT_ROWS))
            .map_err(unavailable)?;
        for chunk in chunks.by_ref() {
            let values = chunk.iter().flat_map(|(index, seq, nodes)| {
                [
                    rusqlite::types::ToSqlOutput::from(*index),
                    rusqlite::types::ToSqlOutput::from(*seq),
                    rusqlite::types::ToSqlOutput::from(nodes.as_slice()),
                ]
            });
            insert_many
                .execute(params_from_iter(values))
                .map_err(unavailable)?;
        }
        let mut insert_one = conn
            .prepare_cached(&insert_rows_sql(1))
            .map_err(unavailable)?;
        for (index, seq, nodes) in chunks.remainder() {
            insert_one
                .execute(params![index, seq, nodes])
                .map_err(unavailable)?;
        }
        Ok(Some(LogTail {
            frontier: appended.frontier,
            last_seq,
        }))
    }

    /// How many leaves the log holds.
    pub(super) fn size(&self) -> u64 {
        self.frontier.size()
    }
}

/// Appends every event not in the log yet, in transactions of a bounded size: the first start
/// on a ledger written before the log existed. Returns the tail after them.
pub(super) fn catch_up(conn: &mut Connection, path: &std::path::Path) -> StoreResult<LogTail> {
    const CHUNK: i64 = 100_000;
    let mut tail = LogTail::load(conn)?;
    let mut total = 0;
    loop {
        let tx = conn.transaction().map_err(unavailable)?;
        let Some(next) = tail.integrate(&tx, CHUNK)? else {
            break;
        };
        tx.commit().map_err(unavailable)?;
        total += next.size() - tail.size();
        tail = next;
        tracing::info!(database = %path.display(), events = total, "adding the ledger's events to its Merkle log");
    }
    Ok(tail)
}

/// How many leaves the log holds.
pub(super) fn size(conn: &Connection) -> StoreResult<u64> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(log_index) FROM log_leaves")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unavailable)?;
    Ok(last.map_or(0, |i| u64::try_from(i).unwrap_or(0) + 1))
}

/// The stored hashes at `indexes`.
pub(super) fn hashes(conn: &Connection, indexes: &[u64]) -> StoreResult<Vec<Hash>> {
    let rows = log::rows_of(indexes);
    let mut found = HashMap::with_capacity(rows.len());
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.nodes, e.record_hash FROM log_leaves l JOIN events e ON e.seq = l.event_seq \
             WHERE l.log_index = ?1",
        )
        .map_err(unavailable)?;
    for row in rows {
        if let Some((nodes, record_hash)) = stmt
            .query_row([row], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .optional()
            .map_err(unavailable)?
        {
            found.insert(row, log::full_row(&record_hash, &nodes)?);
        }
    }
    log::pick(indexes, &found)
}

/// The leaves `[start, end)`.
pub(super) fn leaves(conn: &Connection, start: u64, end: u64) -> StoreResult<Vec<LogLeaf>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.log_index, e.record_hash FROM log_leaves l JOIN events e ON e.seq = l.event_seq \
             WHERE l.log_index >= ?1 AND l.log_index < ?2 ORDER BY l.log_index",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![start as i64, end as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(unavailable)?;
    rows.map(|row| {
        let (index, record_hash) = row.map_err(unavailable)?;
        Ok(LogLeaf {
            log_index: index as u64,
            record_hash,
        })
    })
    .collect()
}

/// The log indexes of the events with these sequence numbers that the log holds.
pub(super) fn indexes_of(conn: &Connection, seqs: &[i64]) -> StoreResult<HashMap<i64, u64>> {
    if seqs.is_empty() {
        return Ok(HashMap::new());
    }
    let marks = vec!["?"; seqs.len()].join(", ");
    let sql = format!("SELECT event_seq, log_index FROM log_leaves WHERE event_seq IN ({marks})");
    let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(seqs), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(unavailable)?;
    rows.map(|row| {
        let (seq, index) = row.map_err(unavailable)?;
        Ok((seq, index as u64))
    })
    .collect()
}

/// Keeps a signed checkpoint; one of the same size already kept stays.
pub(super) fn add_checkpoint(conn: &Connection, c: &StoredCheckpoint) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (size) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![c.size as i64, c.root, c.note, c.created_at]))
    .map_err(unavailable)?;
    Ok(())
}

/// The checkpoint of the largest size kept.
pub(super) fn latest_checkpoint(conn: &Connection) -> StoreResult<Option<StoredCheckpoint>> {
    conn.prepare_cached(
        "SELECT size, root, note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row([], |r| {
            Ok(StoredCheckpoint {
                size: r.get::<_, i64>(0)? as u64,
                root: r.get(1)?,
                note: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
        .optional()
    })
    .map_err(unavailable)
}
