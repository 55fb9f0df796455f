//! The Merkle log as both backends keep it: one row per leaf holding the roots of the subtrees
//! appending it finished (its own hash is its event's `record_hash`'s), the tree's right edge
//! ([`faramesh_tlog::Frontier`]), and the signed checkpoints.

use crate::decode::corrupt;
use crate::{StoreError, StoreResult};
use faramesh_tlog::tree::leaf_hash;
use faramesh_tlog::{stored_hash_location, Frontier, Hash};
use std::collections::HashMap;

/// Most leaves one read of [`crate::Store::log_leaves`] returns.
pub const MAX_LEAVES: u64 = 1000;

/// A leaf of the log: the event at `log_index`, by its record hash (the leaf's data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    pub log_index: u64,
    pub record_hash: String,
}

/// A signed checkpoint as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it commits to.
    pub size: u64,
    /// The tree's root at that size, hex.
    pub root: String,
    /// The signed note.
    pub note: String,
    pub created_at: String,
}

/// The leaf hash of the event whose `record_hash` (64 hex digits) is given.
pub(crate) fn leaf_of(record_hash: &str) -> StoreResult<Hash> {
    let mut data = [0u8; 32];
    hex::decode_to_slice(record_hash, &mut data)
        .map_err(|e| corrupt("an event's record_hash", e))?;
    Ok(leaf_hash(&data))
}

/// The frontier stored for a tree of `size` leaves.
pub(crate) fn frontier(size: i64, bytes: &[u8]) -> StoreResult<Frontier> {
    let size = u64::try_from(size).map_err(|e| corrupt("the log's size", e))?;
    Frontier::from_bytes(size, bytes).map_err(|e| corrupt("the log's frontier", e))
}

/// The leaf rows holding the stored hashes at `indexes`, ascending, each once.
pub(crate) fn rows_of(indexes: &[u64]) -> Vec<i64> {
    let mut rows: Vec<i64> = indexes
        .iter()
        .map(|&i| stored_hash_location(i).0 as i64)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// A leaf's stored hashes as a row: its leaf hash, from its event's `record_hash`, then the
/// `nodes` the row keeps.
pub(crate) fn full_row(record_hash: &str, nodes: &[u8]) -> StoreResult<Vec<u8>> {
    let mut row = Vec::with_capacity(32 + nodes.len());
    row.extend_from_slice(&leaf_of(record_hash)?);
    row.extend_from_slice(nodes);
    Ok(row)
}

/// The stored hashes at `indexes`, from the leaf rows [`rows_of`] named (see [`full_row`]).
pub(crate) fn pick(indexes: &[u64], rows: &HashMap<i64, Vec<u8>>) -> StoreResult<Vec<Hash>> {
    indexes
        .iter()
        .map(|&index| {
            let (leaf, offset) = stored_hash_location(index);
            let hashes = rows.get(&(leaf as i64)).ok_or_else(|| {
                StoreError::Corrupt(format!("the log has no row for leaf {leaf}"))
            })?;
            hashes
                .get(offset * 32..offset * 32 + 32)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the log's row for leaf {leaf} holds no hash at position {offset}"
                    ))
                })
        })
        .collect()
}

/// What appending a run of events writes: per event, its log index, sequence number and the
/// subtree roots it finished (its stored hashes but its own leaf hash, which its event gives);
/// and the frontier after them.
pub(crate) struct Appended {
    pub rows: Vec<(i64, i64, Vec<u8>)>,
    pub frontier: Frontier,
}

/// Appends the events `(seq, record_hash)`, in this order, to the tree `frontier`.
pub(crate) fn append<'a>(
    frontier: Frontier,
    events: impl IntoIterator<Item = (i64, &'a str)>,
) -> StoreResult<Appended> {
    let leaves = events
        .into_iter()
        .map(|(seq, record_hash)| Ok((seq, leaf_of(record_hash)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(append_leaves(frontier, leaves))
}

/// Appends the leaves `(seq, leaf hash)`, in this order, to the tree `frontier`.
pub(crate) fn append_leaves(
    mut frontier: Frontier,
    leaves: impl IntoIterator<Item = (i64, Hash)>,
) -> Appended {
    let leaves = leaves.into_iter();
    let mut rows = Vec::with_capacity(leaves.size_hint().0);
    let mut stored = Vec::with_capacity(64);
    for (seq, leaf) in leaves {
        stored.clear();
        let index = frontier.append(leaf, &mut stored);
        // The leaf's own hash is its event's: the row keeps only the subtree roots.
        rows.push((
            index as i64,
            seq,
            stored.get(32..).unwrap_or_default().to_vec(),
        ));
    }
    Appended { rows, frontier }
}
