//! The Merkle log on SQLite. The one writer appends, in the transaction of each batch, every
//! event written since the last one it appended: SQLite has one writer, so ledger order is
//! `seq` order and nothing can be skipped.

use super::unavailable;
use crate::log::{self, LogLeaf, StoredCheckpoint};
use crate::StoreResult;
use faramesh_tlog::Hash;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;

/// Appends to the log the events after the last one appended, at most `limit` of them; returns
/// how many.
pub(super) fn integrate(conn: &Connection, limit: i64) -> StoreResult<usize> {
    let (size, last_seq, bytes): (i64, i64, Vec<u8>) = conn
        .prepare_cached("SELECT size, last_seq, frontier FROM log_state WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(unavailable)?;
    let frontier = log::frontier(size, &bytes)?;
    let events: Vec<(i64, String)> = conn
        .prepare_cached("SELECT seq, record_hash FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .and_then(|mut s| {
            s.query_map(params![last_seq, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(unavailable)?;
    let Some(&(last, _)) = events.last() else {
        return Ok(0);
    };
    let appended = log::append(frontier, events.iter().map(|(s, h)| (*s, h.as_str())))?;
    let mut insert = conn
        .prepare_cached("INSERT INTO log_leaves (log_index, event_seq, hashes) VALUES (?1, ?2, ?3)")
        .map_err(unavailable)?;
    for (index, seq, hashes) in &appended.rows {
        insert
            .execute(params![index, seq, hashes])
            .map_err(unavailable)?;
    }
    conn.prepare_cached(
        "UPDATE log_state SET size = ?1, last_seq = ?2, frontier = ?3 WHERE id = 1",
    )
    .and_then(|mut s| {
        s.execute(params![
            appended.frontier.size() as i64,
            last,
            appended.frontier.to_bytes()
        ])
    })
    .map_err(unavailable)?;
    Ok(events.len())
}

/// Appends every event not in the log yet, in transactions of a bounded size: the first start
/// on a ledger written before the log existed.
pub(super) fn catch_up(conn: &mut Connection, path: &std::path::Path) -> StoreResult<()> {
    const CHUNK: i64 = 100_000;
    let mut total = 0;
    loop {
        let tx = conn.transaction().map_err(unavailable)?;
        let n = integrate(&tx, CHUNK)?;
        tx.commit().map_err(unavailable)?;
        total += n;
        if n < CHUNK as usize {
            break;
        }
        tracing::info!(database = %path.display(), events = total, "adding the ledger's events to its Merkle log");
    }
    if total > 0 {
        tracing::info!(database = %path.display(), events = total, "added the ledger's events to its Merkle log");
    }
    Ok(())
}

/// How many leaves the log holds.
pub(super) fn size(conn: &Connection) -> StoreResult<u64> {
    let size: i64 = conn
        .prepare_cached("SELECT size FROM log_state WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unavailable)?;
    u64::try_from(size).map_err(|e| crate::decode::corrupt("the log's size", e))
}

/// The stored hashes at `indexes`.
pub(super) fn hashes(conn: &Connection, indexes: &[u64]) -> StoreResult<Vec<Hash>> {
    let rows = log::rows_of(indexes);
    let mut found = HashMap::with_capacity(rows.len());
    let mut stmt = conn
        .prepare_cached("SELECT hashes FROM log_leaves WHERE log_index = ?1")
        .map_err(unavailable)?;
    for row in rows {
        if let Some(hashes) = stmt
            .query_row([row], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(unavailable)?
        {
            found.insert(row, hashes);
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
