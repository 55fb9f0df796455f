//! What every request handler shares.

use crate::changes::Changes;
use crate::config::ServerConfig;
use crate::policy_files::Loaded;
use arc_swap::ArcSwap;
use faramesh_core::Transition;
use faramesh_events::EventHub;
use faramesh_storage::{ActionRecord, Store, StoreError, TransitionUpdate};
use std::sync::Arc;

/// What every request handler shares. One `Arc`: the middleware layers clone the state for
/// every request, and one reference count costs less than one per field (perf put cloning and
/// dropping a state of ten `Arc`s at about 10% of the decide route's samples).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The server's parts; see [`AppState`].
pub struct Shared {
    /// The storage, wrapped in [`ReportingStore`]: every action it creates or transitions is
    /// reported to [`Changes`], whoever asked for it.
    pub store: Arc<dyn Store>,
    pub loaded: Arc<ArcSwap<Loaded>>,
    pub config: Arc<ServerConfig>,
    /// The live stream every state change is announced on.
    pub hub: Arc<EventHub>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where every change of an action is counted and announced.
    pub changes: Arc<Changes>,
    /// Built-in executors enabled for `start`.
    pub executors: faramesh_executors::ExecutorSet,
    /// The bearer tokens accepted, with their roles.
    pub tokens: Arc<crate::auth::Tokens>,
    /// Whether other servers may share this database (PostgreSQL), so tokens and actions can
    /// appear that this process did not write.
    pub shared_database: bool,
    /// With a shared database: how a cached API token is confirmed not to have been revoked by
    /// another server (see [`crate::auth`]).
    pub confirmations: Option<Arc<crate::auth::Confirmations>>,
    /// The MCP gateway (`/mcp/{name}`), with no servers unless some are configured.
    pub mcp: Arc<crate::mcp::McpGateway>,
    /// The key the log's checkpoints are signed with.
    pub log_signer: Arc<crate::transparency::LogSigner>,
}

impl AppState {
    /// Applies a transition; the store reports it to [`Changes`].
    pub async fn transition(
        &self,
        id: &str,
        transition: Transition,
        update: TransitionUpdate,
    ) -> Result<ActionRecord, StoreError> {
        let (action, _) = self.store.transition(id, transition, update).await?;
        Ok(action)
    }
}
