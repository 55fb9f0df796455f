//! `faramesh serve`.

use crate::cli::ServeArgs;
use crate::Status;
use anyhow::Context;
use faramesh_server::{Backend, ServerConfig};

pub fn run(args: &ServeArgs, global: &crate::cli::Global) -> anyhow::Result<Status> {
    let env_file = crate::env_file::load()?;
    init_logging(&args.log_format);
    match &env_file {
        Some(path) => {
            tracing::info!(file = %path.display(), "settings read from .env (the environment and flags win over it)")
        }
        None => tracing::info!(
            "no .env file in the working directory; settings come from the environment and flags"
        ),
    }
    let mut config = ServerConfig::from_lookup(|name| std::env::var(name).ok())
        .context("invalid configuration")?;
    if let Some(host) = &global.host {
        config.host.clone_from(host);
    }
    if let Some(port) = global.port {
        config.port = port;
    }
    if let Some(policy) = &args.policy {
        config.policy_file.clone_from(policy);
    }
    if args.no_profile {
        // An empty path never exists: no profile is loaded, and none is watched.
        config.profile_file = std::path::PathBuf::new();
    }
    if let Some(profile) = &args.profile {
        config.profile_file.clone_from(profile);
    }
    if let Some(db) = &args.db {
        config.backend = Backend::Sqlite(db.clone());
    }
    config.allow_missing_policy |= args.allow_missing_policy;
    config.demo |= args.demo;
    config.hot_reload |= args.hot_reload;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(serve(config));
    // Shutdown has already waited its bound for in-flight requests; what is left (a blocked
    // executor, a stuck client) must not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    status
}

async fn serve(config: ServerConfig) -> anyhow::Result<Status> {
    let address = format!("{}:{}", config.host, config.port);
    let state = match faramesh_server::build_state(config.clone()).await {
        Ok(state) => state,
        Err(faramesh_server::StartError::Load(faramesh_server::state::LoadError::Invalid(
            report,
        ))) => {
            eprintln!("{report}");
            anyhow::bail!(
                "the policy or profile is invalid ({} problem(s)); fix it and start again",
                report.diagnostics.len()
            );
        }
        Err(e) => return Err(e).context("cannot start the server"),
    };
    {
        let loaded = state.loaded.load();
        if let Some(policy) = loaded.engine.policy() {
            tracing::info!(file = %config.policy_file.display(), version = loaded.engine.policy_version().unwrap_or(""), rules = policy.rules().len(), "policy loaded");
        }
        if let faramesh_core::ProfileState::Loaded(profile) = loaded.engine.profile() {
            tracing::info!(file = %config.profile_file.display(), id = %profile.id(), version = %profile.version(), "execution profile loaded");
        }
    }
    if state.loaded.load().engine.policy().is_none() {
        tracing::warn!(policy = %config.policy_file.display(), "no policy file: EVERY ACTION WILL BE DENIED until one is loaded");
    }
    if config.demo {
        match faramesh_server::background::seed_demo(&state).await {
            Ok(0) => tracing::info!("demo: the database already has actions; nothing seeded"),
            Ok(n) => tracing::info!(actions = n, "demo actions seeded"),
            Err(e) => tracing::warn!(error = %e, "could not seed demo actions"),
        }
    }
    if config.hot_reload {
        faramesh_server::background::spawn_hot_reload(
            state.clone(),
            std::time::Duration::from_secs(1),
        );
        tracing::info!("hot reload: policy and profile files are checked every second");
    }
    if let Some(ttl) = config.approval_ttl {
        faramesh_server::background::spawn_approval_expiry(state.clone(), ttl);
        tracing::info!(seconds = ttl.as_secs_f64(), "pending approvals expire");
    }
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!("cannot listen on {address} (is another server running? choose another --port)")
        })?;
    let bound = listener.local_addr().map_or(address, |a| a.to_string());
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
        tracing::warn!("no FARAMESH_TOKEN set and no API tokens: the API is open to anyone who can reach {bound}");
    }
    tracing::info!("Faramesh listening on http://{bound}");
    let hub = state.hub.clone();
    let mut limits = config.connections;
    limits.max_connections = faramesh_server::serve::fit_connection_cap(limits.max_connections);
    if limits.max_connections < config.connections.max_connections {
        tracing::info!(
            max_connections = limits.max_connections,
            "the connection cap is lowered to fit the open-file limit"
        );
    }
    faramesh_server::serve::serve(listener, faramesh_server::app(state), limits, async move {
        shutdown_signal().await;
        // Live streams never end by themselves; end them so shutdown can finish.
        hub.close();
    })
    .await;
    tracing::info!("stopped");
    Ok(Status::Success)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: stop accepting, finish in-flight requests.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
