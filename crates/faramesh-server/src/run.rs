//! The server's whole life: open storage and load the policy, start the background work, bind,
//! serve until told to stop, then end the live streams and the connections within the shutdown
//! bound. `faramesh serve` and the API tests start the server through here.

use crate::{build_state, demo, expiry, hot_reload, AppState, Backend, ServerConfig, StartError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often hot reload looks at the policy and profile files.
const HOT_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// A server that is ready and listening, not yet answering.
pub struct Server {
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Starts the server on `config` and serves until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Server::start(config).await?.serve(shutdown).await;
    Ok(())
}

impl Server {
    /// Opens storage, loads policy and profile, seeds the demo, starts hot reload and approval
    /// expiry as configured, and binds `host:port` (port 0 picks a free one).
    pub async fn start(config: ServerConfig) -> Result<Server, StartError> {
        let state = build_state(config).await?;
        let config = state.config.clone();
        log_loaded(&state);
        if config.demo {
            match demo::seed_demo(&state).await {
                Ok(0) => tracing::info!("demo: the database already has actions; nothing seeded"),
                Ok(n) => tracing::info!(actions = n, "demo actions seeded"),
                Err(e) => tracing::warn!(error = %e, "could not seed demo actions"),
            }
        }
        if config.hot_reload {
            hot_reload::spawn_hot_reload(state.clone(), HOT_RELOAD_EVERY);
            tracing::info!("hot reload: policy and profile files are checked every second");
        }
        expiry::spawn_rule_timeouts(state.clone());
        // A checkpoint before the first request, so there always is one to fetch.
        if let Err(e) =
            crate::transparency::checkpoint(state.store.as_ref(), &state.log_signer).await
        {
            tracing::error!(error = %e, "no log checkpoint signed");
        }
        crate::transparency::spawn_checkpoints(state.clone(), config.checkpoint_every);
        if !config.notify_routes.routes.is_empty() {
            tokio::spawn(faramesh_notify::worker::run(
                state.store.clone(),
                config.notify_routes.clone(),
                state.changes.outbox_signal(),
            ));
            tracing::info!(
                routes = config.notify_routes.routes.len(),
                "notifications: approval events are delivered through the routes file"
            );
        }
        if let Some(ttl) = config.approval_ttl {
            expiry::spawn_approval_expiry(state.clone(), ttl);
            tracing::info!(seconds = ttl.as_secs_f64(), "pending approvals expire");
        }
        let wanted = format!("{}:{}", config.host, config.port);
        let bind_error = |source| StartError::Bind {
            address: wanted.clone(),
            source,
        };
        let listener = TcpListener::bind(&wanted).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        match &config.backend {
            Backend::Sqlite(path) => tracing::info!(database = %path.display(), "storage: SQLite"),
            Backend::Postgres(_) => tracing::info!("storage: PostgreSQL"),
        }
        if state.tokens.enabled() {
            tracing::info!(
                admin_tokens = state.tokens.admin_count(),
                api_tokens = state.tokens.api_count(),
                "authentication on"
            );
        } else {
            tracing::warn!("no FARAMESH_TOKEN set and no API tokens: the API is open to anyone who can reach {address}");
        }
        Ok(Server {
            state,
            listener,
            address,
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The server's state, for tests and tools that act on it directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then ends the live streams (they never end by
    /// themselves) and lets requests in flight finish within the shutdown timeout.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        tracing::info!("Faramesh listening on http://{}", self.address);
        let configured = self.state.config.connections;
        let mut limits = configured;
        limits.max_connections = crate::serve::fit_connection_cap(limits.max_connections);
        if limits.max_connections < configured.max_connections {
            tracing::info!(
                max_connections = limits.max_connections,
                "the connection cap is lowered to fit the open-file limit"
            );
        }
        let hub = self.state.hub.clone();
        let mcp = self.state.mcp.clone();
        let last = self.state.clone();
        crate::serve::serve(self.listener, crate::app(self.state), limits, async move {
            shutdown.await;
            hub.close();
            // MCP sessions stop their servers.
            mcp.shutdown();
        })
        .await;
        // What was written until the end is covered by a checkpoint a verifier can fetch later.
        if let Err(e) = crate::transparency::checkpoint(last.store.as_ref(), &last.log_signer).await
        {
            tracing::error!(error = %e, "no log checkpoint signed");
        }
        tracing::info!("stopped");
    }
}

fn log_loaded(state: &AppState) {
    let config = &state.config;
    let loaded = state.loaded.load();
    match loaded.engine.policy() {
        Some(policy) => tracing::info!(
            file = %config.policy_file.display(),
            version = loaded.engine.policy_version().unwrap_or(""),
            rules = policy.rules().len(),
            "policy loaded"
        ),
        None => tracing::warn!(
            policy = %config.policy_file.display(),
            "no policy file: EVERY ACTION WILL BE DENIED until one is loaded"
        ),
    }
    if let faramesh_core::ProfileState::Loaded(profile) = loaded.engine.profile() {
        tracing::info!(file = %config.profile_file.display(), id = %profile.id(), version = %profile.version(), "execution profile loaded");
    }
}
