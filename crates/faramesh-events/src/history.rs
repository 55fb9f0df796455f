//! Messages older than the replay buffer, for a client resuming with `Last-Event-ID`.

use futures::future::BoxFuture;
use serde_json::Value;

use crate::hub::EventKind;

/// One message rebuilt from the ledger: its id (the ledger position), kind and data.
#[derive(Debug, Clone, PartialEq)]
pub struct PastMessage {
    pub id: u64,
    pub kind: EventKind,
    pub data: Value,
}

/// Where messages the buffer no longer holds come from: the ledger. The message ids of a
/// server with history are ledger positions, so "after id N" is a ledger query.
pub trait History: Send + Sync + 'static {
    /// Messages with `after < id < before`, in id order, at most `limit`.
    fn between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PastMessage>, String>>;

    /// The messages with these ids, in any order; an id that is not a message is left out.
    fn with_ids<'a>(&'a self, ids: &'a [u64]) -> BoxFuture<'a, Result<Vec<PastMessage>, String>>;
}
