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
    if let Some(shadow) = &args.shadow_policy {
        config.shadow_policy_file = Some(shadow.clone());
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
    config.mcp_servers = mcp_servers(args)?;
    config.notify_routes = std::sync::Arc::new(notify_routes(args)?);
    config.allow_missing_policy |= args.allow_missing_policy;
    config.demo |= args.demo;
    config.hot_reload |= args.hot_reload;
    // Built before the runtime: the exporter sends from a thread of its own.
    config.telemetry = faramesh_otel::Telemetry::from_env()
        .context("cannot set up traces")?
        .map(std::sync::Arc::new);
    let telemetry = config.telemetry.clone();
    if let Some(telemetry) = &telemetry {
        tracing::info!(
            endpoint = %telemetry.endpoint(),
            "traces: a span per request and per decision, exported over OTLP"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(serve(config));
    // Shutdown has already waited its bound for in-flight requests; what is left (a blocked
    // executor, a stuck client) must not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    // The spans of the last requests are still buffered.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    status
}

/// A settings file: the flag's, else the environment variable's, else `default` when it
/// exists in the working directory; none when none of these names one.
fn settings_file(
    flag: Option<&std::path::Path>,
    variable: &str,
    default: &str,
) -> Option<std::path::PathBuf> {
    let named = flag.map(ToOwned::to_owned).or_else(|| {
        std::env::var_os(variable)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    named.or_else(|| {
        let default = std::path::PathBuf::from(default);
        default.exists().then_some(default)
    })
}

/// Reports a settings file's problems and stops the start.
fn invalid(what: &str, report: &faramesh_core::settings_file::FileError) -> anyhow::Error {
    eprintln!("{report}");
    anyhow::anyhow!(
        "the {what} is invalid ({} problem(s)); fix it and start again",
        report.problems.len()
    )
}

/// The MCP servers file: `--mcp-config`, else `FARAMESH_MCP_CONFIG`, else `mcp.yaml` when it
/// exists. A file named but missing, or invalid, stops the start with every problem located.
fn mcp_servers(args: &ServeArgs) -> anyhow::Result<faramesh_mcp::config::ServersFile> {
    let Some(path) = settings_file(
        args.mcp_config.as_deref(),
        "FARAMESH_MCP_CONFIG",
        "mcp.yaml",
    ) else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the MCP servers file {}", path.display()))?;
    let file = faramesh_mcp::config::parse(&path.display().to_string(), &text, &|name| {
        std::env::var(name).ok()
    })
    .map_err(|report| invalid("MCP servers file", &report))?;
    tracing::info!(
        file = %path.display(),
        servers = file.servers.len(),
        "MCP servers loaded: each is served at /mcp/{{name}}"
    );
    Ok(file)
}

/// The routes file: `--notify`, else `FARAMESH_NOTIFY_FILE`, else `notify.yaml` when it
/// exists. A file named but missing, or invalid, stops the start with every problem located.
fn notify_routes(args: &ServeArgs) -> anyhow::Result<faramesh_notify::Routes> {
    let Some(path) = settings_file(
        args.notify.as_deref(),
        "FARAMESH_NOTIFY_FILE",
        "notify.yaml",
    ) else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the routes file {}", path.display()))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let routes =
        faramesh_notify::routes::parse(&path.display().to_string(), &text, base, &|name| {
            std::env::var(name).ok()
        })
        .map_err(|report| invalid("routes file", &report))?;
    tracing::info!(
        file = %path.display(),
        routes = routes.routes.len(),
        "notification routes loaded"
    );
    Ok(routes)
}

async fn serve(config: ServerConfig) -> anyhow::Result<Status> {
    match faramesh_server::run(config, shutdown_signal()).await {
        Ok(()) => Ok(Status::Success),
        Err(faramesh_server::StartError::Load(
            faramesh_server::policy_files::LoadError::Invalid(report),
        )) => {
            eprintln!("{report}");
            anyhow::bail!(
                "the policy or profile is invalid ({} problem(s)); fix it and start again",
                report.diagnostics.len()
            );
        }
        Err(e @ faramesh_server::StartError::Bind { .. }) => Err(e.into()),
        Err(e) => Err(e).context("cannot start the server"),
    }
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
