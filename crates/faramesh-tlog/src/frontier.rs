//! Appending to a log kept as one row per leaf.
//!
//! A storage backend keeps, for each leaf, the hashes that appending it stores (its leaf hash,
//! then the root of every complete subtree it finishes, lowest first: see
//! [`crate::tree::stored_hashes`]), and the [`Frontier`]: the roots of the complete subtrees
//! on the tree's right edge. Appending a leaf needs only the frontier, so a writer reads it
//! once per transaction, appends every event of that transaction, and writes it back.

use crate::tree::{node_hash, stored_hash_index, Hash, ProofError};

/// The tree's size and the roots of its maximal complete subtrees, left to right (one per bit
/// set in the size, the largest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn empty() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from the bytes [`Frontier::to_bytes`] wrote.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, ProofError> {
        let expected = size.count_ones() as usize;
        if bytes.len() != expected * 32 {
            return Err(ProofError::Read(format!(
                "the frontier of a tree of {size} leaves holds {expected} hashes, not {} bytes",
                bytes.len()
            )));
        }
        let roots = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Frontier { size, roots })
    }

    /// The frontier's roots, concatenated.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.roots.concat()
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root (RFC 9162 MTH).
    pub fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        let Some(mut h) = roots.next().copied() else {
            return crate::tree::empty_root();
        };
        for left in roots {
            h = node_hash(left, &h);
        }
        h
    }

    /// Appends the leaf whose hash is `leaf` (see [`crate::tree::leaf_hash`]); returns its
    /// index and appends to `stored` the hashes it stores, concatenated, lowest level first.
    pub fn append(&mut self, leaf: Hash, stored: &mut Vec<u8>) -> u64 {
        let index = self.size;
        let mut h = leaf;
        stored.extend_from_slice(&h);
        // Each trailing one bit of the index is a complete subtree this leaf finishes.
        let mut finished = index;
        while finished & 1 == 1 {
            // A one bit in the size always has its root on the frontier.
            let Some(left) = self.roots.pop() else { break };
            h = node_hash(&left, &h);
            stored.extend_from_slice(&h);
            finished >>= 1;
        }
        self.roots.push(h);
        self.size += 1;
        index
    }
}

/// Where the stored hash at `index` is kept: the leaf whose row holds it, and its position
/// among that row's hashes.
pub fn stored_hash_location(index: u64) -> (u64, usize) {
    // The leaf n whose hashes start at or before `index`: stored_hash_index(0, n) is
    // 2n - popcount(n), so n is at least index/2; step forward from there (a few steps).
    let mut n = index / 2;
    let mut start = stored_hash_index(0, n);
    loop {
        let next = start + 1 + u64::from((n + 1).trailing_zeros());
        if next > index {
            break;
        }
        n += 1;
        start = next;
    }
    let offset = index - start;
    (n, offset as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{
        leaf_hash, stored_hashes, stored_hashes_indexes, tree_hash, tree_hash_indexes,
    };

    #[test]
    fn appending_stores_what_the_tree_layout_says_and_the_root_matches() {
        let mut frontier = Frontier::empty();
        let mut all: Vec<Hash> = Vec::new();
        for n in 0..300u64 {
            let leaf = leaf_hash(&n.to_be_bytes());
            let old: Vec<Hash> = stored_hashes_indexes(n)
                .iter()
                .map(|&i| all[i as usize])
                .collect();
            let expected = stored_hashes(n, leaf, &old).unwrap();
            let mut row = Vec::new();
            assert_eq!(frontier.append(leaf, &mut row), n);
            assert_eq!(row, expected.concat(), "leaf {n}");
            for (offset, h) in expected.iter().enumerate() {
                let index = all.len() as u64;
                assert_eq!(
                    stored_hash_location(index),
                    (n, offset),
                    "stored hash {index}"
                );
                all.push(*h);
            }
            let size = n + 1;
            let roots: Vec<Hash> = tree_hash_indexes(size)
                .iter()
                .map(|&i| all[i as usize])
                .collect();
            assert_eq!(frontier.root(), tree_hash(size, &roots).unwrap());
            let again = Frontier::from_bytes(size, &frontier.to_bytes()).unwrap();
            assert_eq!(again, frontier);
        }
    }

    #[test]
    fn a_frontier_of_the_wrong_length_is_refused() {
        assert!(Frontier::from_bytes(3, &[0u8; 32]).is_err());
        assert_eq!(
            Frontier::from_bytes(0, &[]).unwrap().root(),
            crate::tree::empty_root()
        );
    }
}
