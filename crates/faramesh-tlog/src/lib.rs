//! The ledger as a transparency log, to the formats Certificate Transparency and Go's checksum
//! database use, so that a third party can verify it with their own tools:
//!
//! - [`tree`]: RFC 9162 Merkle tree hashing; the *stored hashes* a log appends for each leaf
//!   (the layout of Go's `golang.org/x/mod/sumdb/tlog`), from which any tree head, inclusion
//!   proof and consistency proof is computed with O(log n) reads; and the checks of both proofs.
//! - [`frontier`]: appending leaves with only the right edge of the tree at hand, and where a
//!   stored hash is kept when each leaf's row holds the hashes appending it stored.
//! - [`note`]: C2SP `tlog-checkpoint` checkpoints, signed as C2SP signed notes with Ed25519.
//!
//! Pure: no I/O. The caller keeps the stored hashes (a table, a file) behind [`HashReader`].

pub mod frontier;
pub mod note;
pub mod tree;

pub use frontier::{stored_hash_location, Frontier};
pub use note::{Checkpoint, NoteError, Signer, Verifier};
pub use tree::{Hash, HashReader, ProofError};
