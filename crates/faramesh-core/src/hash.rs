//! The hashes of docs/audit.md: SHA-256 over canonical JSON, lower-case hex.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::json::{write_canonical, CanonicalError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hex of a 32-byte digest, through a stack buffer (this runs twice per decision).
fn to_hex(digest: &[u8]) -> String {
    let mut buf = [0u8; 64];
    match hex::encode_to_slice(digest, &mut buf) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => hex::encode(digest),
    }
}

thread_local! {
    /// Scratch space for the text being hashed, reused so that hashing on the hot path does
    /// not grow a new buffer each time.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Largest scratch buffer kept between calls; a bigger one is released after use.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Hashes the text that `write` produces, in the thread's scratch buffer.
fn hash_written(
    write: impl FnOnce(&mut String) -> Result<(), CanonicalError>,
) -> Result<String, CanonicalError> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut text) => {
            text.clear();
            let result = write(&mut text).map(|()| sha256_hex(text.as_bytes()));
            if text.capacity() > SCRATCH_KEEP {
                *text = String::new();
            }
            result
        }
        // Only reachable if `write` itself hashes; fall back to a fresh buffer.
        Err(_) => {
            let mut text = String::new();
            write(&mut text).map(|()| sha256_hex(text.as_bytes()))
        }
    })
}

/// Lower-case hex SHA-256 of the canonical text of `value`.
pub fn canonical_sha256(value: &Value) -> Result<String, CanonicalError> {
    hash_written(|text| write_canonical(text, value))
}

/// `request_hash`: SHA-256 of the canonical `{"agent_id","tool","operation","params","context"}`.
///
/// The object is written directly in canonical key order rather than built as a `Value`,
/// because this runs on every decision.
pub fn request_hash(
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &Map<String, Value>,
    context: &Map<String, Value>,
) -> Result<String, CanonicalError> {
    hash_written(|text| request_canonical_into(text, agent_id, tool, operation, params, context))
}

/// The canonical text `request_hash` is computed over.
pub fn request_canonical(
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &Map<String, Value>,
    context: &Map<String, Value>,
) -> Result<String, CanonicalError> {
    let mut text = String::with_capacity(256);
    request_canonical_into(&mut text, agent_id, tool, operation, params, context)?;
    Ok(text)
}

fn request_canonical_into(
    out: &mut String,
    agent_id: &str,
    tool: &str,
    operation: &str,
    params: &Map<String, Value>,
    context: &Map<String, Value>,
) -> Result<(), CanonicalError> {
    use crate::json::write_string;
    // Keys in code-point order: agent_id < context < operation < params < tool.
    out.push_str("{\"agent_id\":");
    write_string(out, agent_id);
    out.push_str(",\"context\":");
    write_object(out, context)?;
    out.push_str(",\"operation\":");
    write_string(out, operation);
    out.push_str(",\"params\":");
    write_object(out, params)?;
    out.push_str(",\"tool\":");
    write_string(out, tool);
    out.push('}');
    Ok(())
}

fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<(), CanonicalError> {
    crate::json::canonical::write_object(out, map)
}

/// `provenance_id`: SHA-256 of `request_hash|policy_hash|profile_hash|runtime_version`,
/// a missing field written as the empty string.
pub fn provenance_id(
    request_hash: Option<&str>,
    policy_hash: Option<&str>,
    profile_hash: Option<&str>,
    runtime_version: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request_hash.unwrap_or("").as_bytes());
    hasher.update(b"|");
    hasher.update(policy_hash.unwrap_or("").as_bytes());
    hasher.update(b"|");
    hasher.update(profile_hash.unwrap_or("").as_bytes());
    hasher.update(b"|");
    hasher.update(runtime_version.as_bytes());
    to_hex(&hasher.finalize())
}

/// `record_hash` of a ledger event: SHA-256 of the canonical
/// `{"id","action_id","event_type","created_at","meta"}` followed by `prev_hash` when present.
pub fn event_record_hash(
    id: &str,
    action_id: &str,
    event_type: &str,
    created_at: &str,
    meta: &Value,
    prev_hash: Option<&str>,
) -> Result<String, CanonicalError> {
    let mut text = String::with_capacity(256);
    let digest = event_record_digest(
        &mut text, id, action_id, event_type, created_at, meta, prev_hash,
    )?;
    Ok(to_hex(&digest))
}

/// [`event_record_hash`] as its 32 bytes, written through `text` (cleared first): for passes
/// over millions of events, which reuse one buffer and compare bytes.
pub fn event_record_digest(
    text: &mut String,
    id: &str,
    action_id: &str,
    event_type: &str,
    created_at: &str,
    meta: &Value,
    prev_hash: Option<&str>,
) -> Result<[u8; 32], CanonicalError> {
    record_text_before_meta(text, id, action_id, event_type, created_at);
    write_canonical(text, meta)?;
    Ok(record_digest_after_meta(text, prev_hash))
}

/// [`event_record_digest`] of an event whose `meta` is given in canonical form already: a pass
/// that meets the same meta in many events canonicalizes it once.
pub fn event_record_digest_of_canonical_meta(
    text: &mut String,
    id: &str,
    action_id: &str,
    event_type: &str,
    created_at: &str,
    canonical_meta: &str,
    prev_hash: Option<&str>,
) -> [u8; 32] {
    record_text_before_meta(text, id, action_id, event_type, created_at);
    text.push_str(canonical_meta);
    record_digest_after_meta(text, prev_hash)
}

fn record_text_before_meta(
    text: &mut String,
    id: &str,
    action_id: &str,
    event_type: &str,
    created_at: &str,
) {
    use crate::json::write_string;
    text.clear();
    // Keys in code-point order: action_id < created_at < event_type < id < meta.
    text.push_str("{\"action_id\":");
    write_string(text, action_id);
    text.push_str(",\"created_at\":");
    write_string(text, created_at);
    text.push_str(",\"event_type\":");
    write_string(text, event_type);
    text.push_str(",\"id\":");
    write_string(text, id);
    text.push_str(",\"meta\":");
}

fn record_digest_after_meta(text: &mut String, prev_hash: Option<&str>) -> [u8; 32] {
    text.push('}');
    if let Some(prev) = prev_hash {
        text.push_str(prev);
    }
    Sha256::digest(text.as_bytes()).into()
}
