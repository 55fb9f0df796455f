//! The Merkle log on PostgreSQL. Every transaction that writes events locks the log's one state
//! row just before it commits, appends its events in `seq` order and writes the row back: the
//! writers of every replica take turns there, so there is one log, in commit order, and a
//! rolled-back transaction leaves no leaf behind.

use super::unavailable;
use crate::decode::corrupt;
use crate::log::{self, Appended, LogLeaf, StoredCheckpoint};
use crate::StoreResult;
use deadpool_postgres::GenericClient;
use faramesh_tlog::Hash;
use std::collections::HashMap;
use tokio_postgres::Statement;

const LOCK: &str = "SELECT size, frontier FROM log_state WHERE id = 1 FOR UPDATE";
const INSERT: &str = "INSERT INTO log_leaves (log_index, event_seq, nodes) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])";
const UPDATE: &str = "UPDATE log_state SET size = $1, frontier = $2 WHERE id = 1";

/// What appending wrote, ready to store with statements already prepared, so that [`write`]
/// sends them the moment it is first polled (before a `COMMIT` pipelined after it).
pub(super) struct LogWrite {
    appended: Appended,
    insert: Statement,
    update: Statement,
}

/// Waits for the log, then appends the events `(seq, record_hash)` (in `seq` order) to the
/// tree it holds; [`write`] stores the result in the same transaction.
pub(super) async fn lock_and_append(
    client: &impl GenericClient,
    events: &[(i64, &str)],
) -> StoreResult<LogWrite> {
    let (lock, insert, update) = futures::join!(
        client.prepare_cached(LOCK),
        client.prepare_cached(INSERT),
        client.prepare_cached(UPDATE)
    );
    let lock = lock.map_err(unavailable)?;
    let row = client.query_one(&lock, &[]).await.map_err(unavailable)?;
    let size: i64 = row.try_get(0).map_err(|e| corrupt("the log's size", e))?;
    let bytes: Vec<u8> = row
        .try_get(1)
        .map_err(|e| corrupt("the log's frontier", e))?;
    let mut sorted = events.to_vec();
    sorted.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(LogWrite {
        appended: log::append(log::frontier(size, &bytes)?, sorted)?,
        insert: insert.map_err(unavailable)?,
        update: update.map_err(unavailable)?,
    })
}

/// Stores what [`lock_and_append`] appended.
pub(super) async fn write(client: &impl GenericClient, pending: &LogWrite) -> StoreResult<()> {
    let LogWrite {
        appended,
        insert,
        update,
    } = pending;
    let mut indexes = Vec::with_capacity(appended.rows.len());
    let mut seqs = Vec::with_capacity(appended.rows.len());
    let mut hashes = Vec::with_capacity(appended.rows.len());
    for (index, seq, stored) in &appended.rows {
        indexes.push(*index);
        seqs.push(*seq);
        hashes.push(stored.as_slice());
    }
    let size = appended.frontier.size() as i64;
    let frontier = appended.frontier.to_bytes();
    let leaves: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&indexes, &seqs, &hashes];
    let state: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&size, &frontier];
    let (inserted, updated) = futures::join!(
        client.execute(insert, &leaves),
        client.execute(update, &state),
    );
    inserted.map_err(unavailable)?;
    updated.map_err(unavailable)?;
    Ok(())
}

/// Appends `events` to the log, in the transaction `client` is in.
pub(super) async fn append(client: &impl GenericClient, events: &[(i64, &str)]) -> StoreResult<()> {
    let appended = lock_and_append(client, events).await?;
    write(client, &appended).await
}

/// Appends the events written before the log existed, once, before this server writes any.
pub(super) async fn backfill(client: &mut deadpool_postgres::Object) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(unavailable)?;
    let done: bool = tx
        .query_one(
            "SELECT backfilled FROM log_state WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(|e| corrupt("the log's state", e))?;
    if done {
        return Ok(());
    }
    let rows = tx
        .query(
            "SELECT e.seq, e.record_hash FROM events e \
             WHERE NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.event_seq = e.seq) ORDER BY e.seq",
            &[],
        )
        .await
        .map_err(unavailable)?;
    let events = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<(i64, String)>, tokio_postgres::Error>>()
        .map_err(|e| corrupt("an event", e))?;
    if !events.is_empty() {
        tracing::info!(
            events = events.len(),
            "adding the ledger's events to its Merkle log"
        );
        let borrowed: Vec<(i64, &str)> = events.iter().map(|(s, h)| (*s, h.as_str())).collect();
        for chunk in borrowed.chunks(10_000) {
            append(&tx, chunk).await?;
        }
    }
    tx.execute("UPDATE log_state SET backfilled = true WHERE id = 1", &[])
        .await
        .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)
}

pub(super) async fn size(client: &impl GenericClient) -> StoreResult<u64> {
    let size: i64 = client
        .query_one("SELECT size FROM log_state WHERE id = 1", &[])
        .await
        .map_err(unavailable)?
        .try_get(0)
        .map_err(|e| corrupt("the log's size", e))?;
    u64::try_from(size).map_err(|e| corrupt("the log's size", e))
}

pub(super) async fn hashes(client: &impl GenericClient, indexes: &[u64]) -> StoreResult<Vec<Hash>> {
    let rows = log::rows_of(indexes);
    let found = client
        .query(
            "SELECT l.log_index, l.nodes, e.record_hash FROM log_leaves l \
             JOIN events e ON e.seq = l.event_seq WHERE l.log_index = ANY($1)",
            &[&rows],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<(i64, Vec<u8>, String)>, tokio_postgres::Error>>()
        .map_err(|e| corrupt("the log's stored hashes", e))?;
    let found = found
        .into_iter()
        .map(|(index, nodes, record_hash)| Ok((index, log::full_row(&record_hash, &nodes)?)))
        .collect::<StoreResult<HashMap<i64, Vec<u8>>>>()?;
    log::pick(indexes, &found)
}

pub(super) async fn leaves(
    client: &impl GenericClient,
    start: u64,
    end: u64,
) -> StoreResult<Vec<LogLeaf>> {
    let (start, end) = (start as i64, end as i64);
    client
        .query(
            "SELECT l.log_index, e.record_hash FROM log_leaves l JOIN events e ON e.seq = l.event_seq \
             WHERE l.log_index >= $1 AND l.log_index < $2 ORDER BY l.log_index",
            &[&start, &end],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| {
            Ok(LogLeaf {
                log_index: r.try_get::<_, i64>(0)? as u64,
                record_hash: r.try_get(1)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| corrupt("a leaf of the log", e))
}

pub(super) async fn indexes_of(
    client: &impl GenericClient,
    seqs: &[i64],
) -> StoreResult<HashMap<i64, u64>> {
    client
        .query(
            "SELECT event_seq, log_index FROM log_leaves WHERE event_seq = ANY($1)",
            &[&seqs],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| corrupt("a leaf of the log", e))
}

pub(super) async fn add_checkpoint(
    client: &impl GenericClient,
    c: &StoredCheckpoint,
) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
            &[&(c.size as i64), &c.root, &c.note, &c.created_at],
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn latest_checkpoint(
    client: &impl GenericClient,
) -> StoreResult<Option<StoredCheckpoint>> {
    client
        .query_opt(
            "SELECT size, root, note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(unavailable)?
        .map(|r| {
            Ok(StoredCheckpoint {
                size: r.try_get::<_, i64>(0)? as u64,
                root: r.try_get(1)?,
                note: r.try_get(2)?,
                created_at: r.try_get(3)?,
            })
        })
        .transpose()
        .map_err(|e: tokio_postgres::Error| corrupt("a checkpoint", e))
}
