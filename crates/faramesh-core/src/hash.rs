//! The hashes of audit.md: SHA-256 over canonical JSON, lower-case hex.

use crate::json::{write_canonical, CanonicalError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of the canonical text of `value`.
pub fn canonical_sha256(value: &Value) -> Result<String, CanonicalError> {
    let mut text = String::with_capacity(256);
    write_canonical(&mut text, value)?;
    Ok(sha256_hex(text.as_bytes()))
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
    let mut text = String::with_capacity(256);
    request_canonical_into(&mut text, agent_id, tool, operation, params, context)?;
    Ok(sha256_hex(text.as_bytes()))
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
    hex::encode(hasher.finalize())
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
    use crate::json::write_string;
    let mut text = String::with_capacity(256);
    // Keys in code-point order: action_id < created_at < event_type < id < meta.
    text.push_str("{\"action_id\":");
    write_string(&mut text, action_id);
    text.push_str(",\"created_at\":");
    write_string(&mut text, created_at);
    text.push_str(",\"event_type\":");
    write_string(&mut text, event_type);
    text.push_str(",\"id\":");
    write_string(&mut text, id);
    text.push_str(",\"meta\":");
    write_canonical(&mut text, meta)?;
    text.push('}');
    if let Some(prev) = prev_hash {
        text.push_str(prev);
    }
    Ok(sha256_hex(text.as_bytes()))
}
