//! The tree against RFC 9162, with everything the answers are checked by written here from the
//! RFC's own definitions (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF) and verification
//! algorithms (§2.1.3.2, §2.1.4.2), not taken from the code under test: every tree head, every
//! inclusion proof and every consistency proof of the trees of 0 to 300 leaves.

#![allow(
    clippy::needless_range_loop,
    reason = "sizes and indexes are the subject: the loops name them as the RFC does"
)]

use faramesh_tlog::tree::{self, Hash, HashReader, ProofError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

fn leaf(data: &[u8]) -> Hash {
    sha256(&[&[0], data])
}

fn node(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[1], left, right])
}

/// The largest power of two smaller than n (n > 1).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 by definition, memoized over the ranges it visits.
struct Reference {
    leaves: Vec<Hash>,
    memo: HashMap<(usize, usize), Hash>,
}

impl Reference {
    /// MTH(D[lo:hi]).
    fn mth(&mut self, lo: usize, hi: usize) -> Hash {
        if let Some(h) = self.memo.get(&(lo, hi)) {
            return *h;
        }
        let h = match hi - lo {
            0 => sha256(&[]),
            1 => self.leaves[lo],
            n => {
                let k = split_point(n);
                let left = self.mth(lo, lo + k);
                let right = self.mth(lo + k, hi);
                node(&left, &right)
            }
        };
        self.memo.insert((lo, hi), h);
        h
    }

    /// PATH(m, D[lo:hi]).
    fn path(&mut self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
        let n = hi - lo;
        if n == 1 {
            return Vec::new();
        }
        let k = split_point(n);
        if m < k {
            let mut p = self.path(m, lo, lo + k);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.path(m - k, lo + k, hi);
            p.push(self.mth(lo, lo + k));
            p
        }
    }

    /// SUBPROOF(m, D[lo:hi], b).
    fn subproof(&mut self, m: usize, lo: usize, hi: usize, complete: bool) -> Vec<Hash> {
        let n = hi - lo;
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![self.mth(lo, hi)]
            };
        }
        let k = split_point(n);
        if m <= k {
            let mut p = self.subproof(m, lo, lo + k, complete);
            p.push(self.mth(lo + k, hi));
            p
        } else {
            let mut p = self.subproof(m - k, lo + k, hi, false);
            p.push(self.mth(lo, lo + k));
            p
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some((c0, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (*c0, *c0);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_root && sr == *second_root && s == 0
}

/// The stored hashes, in memory.
struct Stored(Vec<Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, ProofError> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(*i as usize)
                    .copied()
                    .ok_or(ProofError::Read(format!("no hash {i}")))
            })
            .collect()
    }
}

const MAX: usize = 300;

#[test]
fn every_head_and_proof_of_trees_up_to_300_leaves_matches_rfc_9162() {
    // Leaves as the ledger makes them: the 32 bytes of an event's record hash.
    let leaves: Vec<Hash> = (0..MAX)
        .map(|i| leaf(&sha256(&[format!("event {i}").as_bytes()])))
        .collect();
    let mut reference = Reference {
        leaves: leaves.clone(),
        memo: HashMap::new(),
    };
    let mut stored = Stored(Vec::new());
    let mut roots = vec![tree::read_tree_hash(0, &stored).unwrap()];
    assert_eq!(roots[0], reference.mth(0, 0), "the empty tree");
    for (n, data) in (0..MAX).map(|i| (i as u64, sha256(&[format!("event {i}").as_bytes()]))) {
        assert_eq!(tree::stored_hash_index(0, n), stored.0.len() as u64);
        let new = tree::read_stored_hashes(n, tree::leaf_hash(&data), &stored).unwrap();
        stored.0.extend(new);
        assert_eq!(tree::stored_hash_count(n + 1), stored.0.len() as u64);
        let root = tree::read_tree_hash(n + 1, &stored).unwrap();
        assert_eq!(
            root,
            reference.mth(0, n as usize + 1),
            "root of {} leaves",
            n + 1
        );
        roots.push(root);
    }

    for size in 1..=MAX {
        for index in 0..size {
            let proof = tree::read_inclusion_proof(size as u64, index as u64, &stored).unwrap();
            assert_eq!(
                proof,
                reference.path(index, 0, size),
                "inclusion of {index} in {size}"
            );
            assert!(verify_inclusion(
                index as u64,
                size as u64,
                &leaves[index],
                &proof,
                &roots[size]
            ));
            tree::check_inclusion(
                &proof,
                size as u64,
                &roots[size],
                index as u64,
                &leaves[index],
            )
            .unwrap();
        }
    }

    for to in 1..=MAX {
        for from in 1..=to {
            let proof = tree::read_consistency_proof(from as u64, to as u64, &stored).unwrap();
            assert_eq!(
                proof,
                reference.subproof(from, 0, to, true),
                "consistency {from} → {to}"
            );
            assert!(
                verify_consistency(from as u64, to as u64, &roots[from], &roots[to], &proof),
                "RFC verifier, {from} → {to}"
            );
            tree::check_consistency(&proof, from as u64, &roots[from], to as u64, &roots[to])
                .unwrap();
        }
    }
}

#[test]
fn altered_proofs_and_roots_do_not_verify() {
    let mut stored = Stored(Vec::new());
    let leaves: Vec<Hash> = (0..100u8).map(|i| leaf(&[i])).collect();
    for (n, l) in leaves.iter().enumerate() {
        let new = tree::read_stored_hashes(n as u64, *l, &stored).unwrap();
        stored.0.extend(new);
    }
    let root = tree::read_tree_hash(100, &stored).unwrap();
    let old_root = tree::read_tree_hash(37, &stored).unwrap();
    let proof = tree::read_inclusion_proof(100, 42, &stored).unwrap();
    for i in 0..proof.len() {
        let mut bad = proof.clone();
        bad[i][0] ^= 1;
        assert_eq!(
            tree::check_inclusion(&bad, 100, &root, 42, &leaves[42]),
            Err(ProofError::Failed)
        );
        assert!(!verify_inclusion(42, 100, &leaves[42], &bad, &root));
    }
    // Another leaf, another index, a shorter or longer path.
    assert!(tree::check_inclusion(&proof, 100, &root, 42, &leaves[43]).is_err());
    assert!(tree::check_inclusion(&proof, 100, &root, 43, &leaves[42]).is_err());
    assert!(tree::check_inclusion(&proof[1..], 100, &root, 42, &leaves[42]).is_err());
    let mut longer = proof.clone();
    longer.push(root);
    assert!(tree::check_inclusion(&longer, 100, &root, 42, &leaves[42]).is_err());

    let consistency = tree::read_consistency_proof(37, 100, &stored).unwrap();
    tree::check_consistency(&consistency, 37, &old_root, 100, &root).unwrap();
    for i in 0..consistency.len() {
        let mut bad = consistency.clone();
        bad[i][31] ^= 0x80;
        assert!(tree::check_consistency(&bad, 37, &old_root, 100, &root).is_err());
        assert!(!verify_consistency(37, 100, &old_root, &root, &bad));
    }
    // A different history of the same size: a fork.
    let mut forked = old_root;
    forked[0] ^= 1;
    assert!(tree::check_consistency(&consistency, 37, &forked, 100, &root).is_err());

    // Sizes that name no proof are refused, not a panic.
    assert!(matches!(
        tree::read_inclusion_proof(100, 100, &stored),
        Err(ProofError::Invalid(_))
    ));
    assert!(matches!(
        tree::read_consistency_proof(0, 100, &stored),
        Err(ProofError::Invalid(_))
    ));
    assert!(matches!(
        tree::read_consistency_proof(101, 100, &stored),
        Err(ProofError::Invalid(_))
    ));
    // A tree larger than what is stored: the reader says so.
    assert!(matches!(
        tree::read_tree_hash(1000, &stored),
        Err(ProofError::Read(_))
    ));
}
