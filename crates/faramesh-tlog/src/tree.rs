//! RFC 9162 Merkle trees over the ledger, kept as *stored hashes*.
//!
//! A leaf is `SHA-256(0x00 ‖ data)`, an interior node `SHA-256(0x01 ‖ left ‖ right)`, the empty
//! tree's root `SHA-256("")` (RFC 9162 §2.1.1). Appending leaf `n` stores its hash and the hash
//! of every complete subtree it finishes, in one dense sequence (the layout of Go's
//! `golang.org/x/mod/sumdb/tlog`, just under two hashes per leaf on average). Any tree head,
//! inclusion proof or consistency proof then needs at most a few dozen stored hashes, whatever
//! the size of the log.
//!
//! Each operation comes in two halves, so a caller whose storage is asynchronous can read in
//! between: `*_indexes` names the stored hashes needed, and the function of the same name
//! without the suffix computes the result from them. [`HashReader`] joins the two for storage
//! that can be read synchronously.
//!
//! The algorithms follow `tlog.go` (BSD-3-Clause, The Go Authors) step for step, because its
//! layout and proofs are the ones third-party tools already check.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof cannot be made or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes or indexes asked for do not name a proof (an index beyond the tree, say).
    #[error("{0}")]
    Invalid(String),
    /// The stored hashes could not be read, or fewer came back than were asked for.
    #[error("cannot read the log's stored hashes: {0}")]
    Read(String),
    /// The proof does not lead to the hashes it should.
    #[error("the proof does not verify")]
    Failed,
}

/// Storage of the stored hashes, by their index in the sequence.
pub trait HashReader {
    /// The hashes at `indexes`, in that order.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ProofError>;
}

/// Where the `n`th hash of `level` is stored (level 0: leaves).
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // Level L's n'th hash is written right after level L+1's (2n+1)'th hash.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    // Level 0's n'th hash is at n + n/2 + n/4 + ...
    let mut i = 0;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

/// How many hashes are stored for a tree of `n` leaves.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// The stored hashes that appending leaf `n` (0-based) reads: the roots of the complete
/// subtrees it finishes, left of it.
pub fn stored_hashes_indexes(n: u64) -> Vec<u64> {
    let m = (n + 1).trailing_zeros();
    // Sorted ascending: level m-1 first.
    (0..m)
        .rev()
        .map(|i| stored_hash_index(i, (n >> i) - 1))
        .collect()
}

/// The hashes to store, from `stored_hash_index(0, n)` on, when appending leaf `n` whose leaf
/// hash is `leaf`; `old` holds the hashes at [`stored_hashes_indexes`]`(n)`.
pub fn stored_hashes(n: u64, leaf: Hash, old: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let m = (n + 1).trailing_zeros() as usize;
    if old.len() != m {
        return Err(ProofError::Read(format!(
            "appending leaf {n} needs {m} stored hashes, {} were read",
            old.len()
        )));
    }
    let mut hashes = Vec::with_capacity(m + 1);
    let mut h = leaf;
    hashes.push(h);
    // `old` is ordered from the highest level down; combine from the lowest up.
    for left in old.iter().rev() {
        h = node_hash(left, &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// k, the largest power of two smaller than `n` (n ≥ 2), and log₂ k.
fn max_pow2_below(n: u64) -> (u64, u32) {
    let mut level = 0;
    while (1u64 << (level + 1)) < n {
        level += 1;
    }
    (1 << level, level)
}

fn sub_tree_indexes(mut lo: u64, hi: u64, need: &mut Vec<u64>) {
    while lo < hi {
        let (k, level) = max_pow2_below(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// The hash of leaves `[lo, hi)` from the front of `hashes` (as [`sub_tree_indexes`] named
/// them); the rest is returned.
fn sub_tree_hash(mut lo: u64, hi: u64, hashes: &[Hash]) -> Result<(Hash, &[Hash]), ProofError> {
    let mut count = 0;
    while lo < hi {
        let (k, _) = max_pow2_below(hi - lo + 1);
        count += 1;
        lo += k;
    }
    let (mine, rest) = split(hashes, count)?;
    let mut iter = mine.iter().rev();
    let mut h = *iter.next().ok_or_else(|| short(1, 0))?;
    for left in iter {
        h = node_hash(left, &h);
    }
    Ok((h, rest))
}

fn split(hashes: &[Hash], count: usize) -> Result<(&[Hash], &[Hash]), ProofError> {
    if hashes.len() < count {
        return Err(short(count, hashes.len()));
    }
    Ok(hashes.split_at(count))
}

fn short(needed: usize, got: usize) -> ProofError {
    ProofError::Read(format!("{needed} stored hashes needed, {got} read"))
}

fn leftover(rest: &[Hash]) -> Result<(), ProofError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ProofError::Read(format!(
            "{} stored hashes too many",
            rest.len()
        )))
    }
}

/// The stored hashes the root of the tree of size `n` is computed from.
pub fn tree_hash_indexes(n: u64) -> Vec<u64> {
    let mut need = Vec::new();
    sub_tree_indexes(0, n, &mut need);
    need
}

/// The root of the tree of size `n`, from the hashes at [`tree_hash_indexes`]`(n)`.
pub fn tree_hash(n: u64, hashes: &[Hash]) -> Result<Hash, ProofError> {
    if n == 0 {
        return Ok(empty_root());
    }
    let (h, rest) = sub_tree_hash(0, n, hashes)?;
    leftover(rest)?;
    Ok(h)
}

fn check_inclusion_inputs(size: u64, index: u64) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Invalid(format!(
            "leaf {index} is not in a tree of {size} leaves"
        )));
    }
    Ok(())
}

fn leaf_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if lo + 1 >= hi {
        return;
    }
    let (k, _) = max_pow2_below(hi - lo);
    if n < lo + k {
        leaf_proof_indexes(lo, lo + k, n, need);
        sub_tree_indexes(lo + k, hi, need);
    } else {
        sub_tree_indexes(lo, lo + k, need);
        leaf_proof_indexes(lo + k, hi, n, need);
    }
}

fn leaf_proof(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &[Hash],
) -> Result<(Vec<Hash>, &[Hash]), ProofError> {
    if lo + 1 >= hi {
        return Ok((Vec::new(), hashes));
    }
    let (k, _) = max_pow2_below(hi - lo);
    let (mut proof, sibling, rest) = if n < lo + k {
        let (proof, rest) = leaf_proof(lo, lo + k, n, hashes)?;
        let (sibling, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (proof, sibling, rest)
    } else {
        let (sibling, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (proof, rest) = leaf_proof(lo + k, hi, n, rest)?;
        (proof, sibling, rest)
    };
    proof.push(sibling);
    Ok((proof, rest))
}

/// The stored hashes the inclusion proof of leaf `index` in the tree of `size` needs.
pub fn inclusion_proof_indexes(size: u64, index: u64) -> Result<Vec<u64>, ProofError> {
    check_inclusion_inputs(size, index)?;
    let mut need = Vec::new();
    leaf_proof_indexes(0, size, index, &mut need);
    Ok(need)
}

/// The inclusion proof (RFC 9162 §2.1.3, the audit path from the leaf up) of leaf `index` in
/// the tree of `size`, from the hashes at [`inclusion_proof_indexes`].
pub fn inclusion_proof(size: u64, index: u64, hashes: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    check_inclusion_inputs(size, index)?;
    let (proof, rest) = leaf_proof(0, size, index, hashes)?;
    leftover(rest)?;
    Ok(proof)
}

fn run_inclusion(proof: &[Hash], lo: u64, hi: u64, n: u64, leaf: Hash) -> Result<Hash, ProofError> {
    if lo + 1 >= hi {
        return if proof.is_empty() {
            Ok(leaf)
        } else {
            Err(ProofError::Failed)
        };
    }
    let Some((last, rest)) = proof.split_last() else {
        return Err(ProofError::Failed);
    };
    let (k, _) = max_pow2_below(hi - lo);
    if n < lo + k {
        Ok(node_hash(&run_inclusion(rest, lo, lo + k, n, leaf)?, last))
    } else {
        Ok(node_hash(last, &run_inclusion(rest, lo + k, hi, n, leaf)?))
    }
}

/// Checks that `proof` shows leaf `index` with hash `leaf` in the tree of `size` and `root`.
pub fn check_inclusion(
    proof: &[Hash],
    size: u64,
    root: &Hash,
    index: u64,
    leaf: &Hash,
) -> Result<(), ProofError> {
    check_inclusion_inputs(size, index)?;
    if run_inclusion(proof, 0, size, index, *leaf)? == *root {
        Ok(())
    } else {
        Err(ProofError::Failed)
    }
}

fn check_consistency_inputs(from: u64, to: u64) -> Result<(), ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::Invalid(format!(
            "no consistency proof from a tree of {from} to one of {to} leaves (1 ≤ from ≤ to)"
        )));
    }
    Ok(())
}

fn tree_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_indexes(lo, hi, need);
        }
        return;
    }
    let (k, _) = max_pow2_below(hi - lo);
    if n <= lo + k {
        tree_proof_indexes(lo, lo + k, n, need);
        sub_tree_indexes(lo + k, hi, need);
    } else {
        sub_tree_indexes(lo, lo + k, need);
        tree_proof_indexes(lo + k, hi, n, need);
    }
}

fn tree_proof(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &[Hash],
) -> Result<(Vec<Hash>, &[Hash]), ProofError> {
    if n == hi {
        if lo == 0 {
            return Ok((Vec::new(), hashes));
        }
        let (h, rest) = sub_tree_hash(lo, hi, hashes)?;
        return Ok((vec![h], rest));
    }
    let (k, _) = max_pow2_below(hi - lo);
    let (mut proof, sibling, rest) = if n <= lo + k {
        let (proof, rest) = tree_proof(lo, lo + k, n, hashes)?;
        let (sibling, rest) = sub_tree_hash(lo + k, hi, rest)?;
        (proof, sibling, rest)
    } else {
        let (sibling, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let (proof, rest) = tree_proof(lo + k, hi, n, rest)?;
        (proof, sibling, rest)
    };
    proof.push(sibling);
    Ok((proof, rest))
}

/// The stored hashes the consistency proof from size `from` to size `to` needs.
pub fn consistency_proof_indexes(from: u64, to: u64) -> Result<Vec<u64>, ProofError> {
    check_consistency_inputs(from, to)?;
    let mut need = Vec::new();
    tree_proof_indexes(0, to, from, &mut need);
    Ok(need)
}

/// The consistency proof (RFC 9162 §2.1.4) that the tree of `to` leaves extends the tree of
/// `from`, from the hashes at [`consistency_proof_indexes`].
pub fn consistency_proof(from: u64, to: u64, hashes: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    check_consistency_inputs(from, to)?;
    let (proof, rest) = tree_proof(0, to, from, hashes)?;
    leftover(rest)?;
    Ok(proof)
}

fn run_consistency(
    proof: &[Hash],
    lo: u64,
    hi: u64,
    n: u64,
    old: Hash,
) -> Result<(Hash, Hash), ProofError> {
    if n == hi {
        if lo == 0 {
            return if proof.is_empty() {
                Ok((old, old))
            } else {
                Err(ProofError::Failed)
            };
        }
        return match proof {
            [only] => Ok((*only, *only)),
            _ => Err(ProofError::Failed),
        };
    }
    let Some((last, rest)) = proof.split_last() else {
        return Err(ProofError::Failed);
    };
    let (k, _) = max_pow2_below(hi - lo);
    if n <= lo + k {
        let (old_hash, new_hash) = run_consistency(rest, lo, lo + k, n, old)?;
        Ok((old_hash, node_hash(&new_hash, last)))
    } else {
        let (old_hash, new_hash) = run_consistency(rest, lo + k, hi, n, old)?;
        Ok((node_hash(last, &old_hash), node_hash(last, &new_hash)))
    }
}

/// Checks that `proof` shows the tree of `to` leaves and root `to_root` extends the tree of
/// `from` leaves and root `from_root`.
pub fn check_consistency(
    proof: &[Hash],
    from: u64,
    from_root: &Hash,
    to: u64,
    to_root: &Hash,
) -> Result<(), ProofError> {
    check_consistency_inputs(from, to)?;
    let (old, new) = run_consistency(proof, 0, to, from, *from_root)?;
    if old == *from_root && new == *to_root {
        Ok(())
    } else {
        Err(ProofError::Failed)
    }
}

/// The root of the tree of `n` leaves, read through `reader`.
pub fn read_tree_hash(n: u64, reader: &impl HashReader) -> Result<Hash, ProofError> {
    tree_hash(n, &reader.read_hashes(&tree_hash_indexes(n))?)
}

/// The inclusion proof of leaf `index` in the tree of `size`, read through `reader`.
pub fn read_inclusion_proof(
    size: u64,
    index: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, ProofError> {
    let hashes = reader.read_hashes(&inclusion_proof_indexes(size, index)?)?;
    inclusion_proof(size, index, &hashes)
}

/// The consistency proof from `from` to `to` leaves, read through `reader`.
pub fn read_consistency_proof(
    from: u64,
    to: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, ProofError> {
    let hashes = reader.read_hashes(&consistency_proof_indexes(from, to)?)?;
    consistency_proof(from, to, &hashes)
}

/// The hashes to store when appending leaf `n`, read through `reader`.
pub fn read_stored_hashes(
    n: u64,
    leaf: Hash,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, ProofError> {
    let old = reader.read_hashes(&stored_hashes_indexes(n))?;
    stored_hashes(n, leaf, &old)
}
