//! The ledger as the live stream's history.

use faramesh_events::EventKind;
use faramesh_storage::{Change, Store};
use std::sync::Arc;

/// The ledger as the live stream's history: what a client resuming from a message older than
/// the stream's buffer missed.
pub struct LedgerHistory(pub Arc<dyn Store>);

fn past_messages(changes: Vec<Change>) -> Vec<faramesh_events::PastMessage> {
    changes
        .into_iter()
        .map(|change| faramesh_events::PastMessage {
            id: change.seq,
            kind: if change.created {
                EventKind::Created
            } else {
                EventKind::Updated
            },
            data: serde_json::to_value(change.action).unwrap_or(serde_json::Value::Null),
        })
        .collect()
}

impl faramesh_events::History for LedgerHistory {
    fn with_ids<'a>(
        &'a self,
        ids: &'a [u64],
    ) -> futures::future::BoxFuture<'a, Result<Vec<faramesh_events::PastMessage>, String>> {
        Box::pin(async move {
            let changes = self
                .0
                .changes_with_seqs(ids)
                .await
                .map_err(|e| e.to_string())?;
            Ok(past_messages(changes))
        })
    }

    fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> futures::future::BoxFuture<'_, Result<Vec<faramesh_events::PastMessage>, String>> {
        Box::pin(async move {
            let changes = self
                .0
                .changes_between(after, before, limit)
                .await
                .map_err(|e| e.to_string())?;
            Ok(past_messages(changes))
        })
    }
}
