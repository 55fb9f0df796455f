//! Verification of the per-action hash chain of ledger events (audit.md).

use crate::hash::event_record_hash;
use serde::Serialize;
use serde_json::Value;

/// The fields of a stored event that the chain covers.
#[derive(Debug, Clone, Copy)]
pub struct ChainedEvent<'a> {
    pub id: &'a str,
    pub action_id: &'a str,
    pub event_type: &'a str,
    pub created_at: &'a str,
    pub meta: &'a Value,
    pub prev_hash: Option<&'a str>,
    pub record_hash: &'a str,
}

/// The first place a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("action {action_id}, event {event_id} (#{position}): {what}: expected {expected}, found {found}")]
pub struct BrokenLink {
    pub action_id: String,
    pub event_id: String,
    /// 1-based position of the event in its action's chain.
    pub position: usize,
    /// `prev_hash` or `record_hash`.
    pub what: &'static str,
    pub expected: String,
    pub found: String,
}

/// Recomputes the chain of one action's events, oldest first.
pub fn verify_chain(events: &[ChainedEvent<'_>]) -> Result<(), BrokenLink> {
    let mut prev: Option<&str> = None;
    for (i, e) in events.iter().enumerate() {
        let broken = |what, expected: String, found: String| BrokenLink {
            action_id: e.action_id.to_owned(),
            event_id: e.id.to_owned(),
            position: i + 1,
            what,
            expected,
            found,
        };
        if e.prev_hash != prev {
            return Err(broken("prev_hash", show(prev), show(e.prev_hash)));
        }
        let expected = event_record_hash(
            e.id,
            e.action_id,
            e.event_type,
            e.created_at,
            e.meta,
            e.prev_hash,
        )
        .map_err(|err| {
            broken(
                "record_hash",
                format!("a canonical meta ({err})"),
                e.record_hash.to_owned(),
            )
        })?;
        if expected != e.record_hash {
            return Err(broken("record_hash", expected, e.record_hash.to_owned()));
        }
        prev = Some(e.record_hash);
    }
    Ok(())
}

fn show(hash: Option<&str>) -> String {
    hash.map_or_else(|| "null".to_owned(), str::to_owned)
}
