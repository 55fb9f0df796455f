//! `faramesh mcp`: the MCP gateway's commands.

use crate::cli::{Global, McpCommand, WrapArgs};
use crate::{output, table, Status};
use anstream::println;
use anyhow::{bail, Context};
use faramesh_mcp::{Ended, Options, RestGate, RESERVED_SERVER_NAMES};
use std::time::Duration;

pub fn run(command: &McpCommand, global: &Global) -> anyhow::Result<Status> {
    match command {
        McpCommand::Wrap(args) => wrap(args, global),
        McpCommand::Servers => servers(global),
    }
}

/// `faramesh mcp servers`.
fn servers(global: &Global) -> anyhow::Result<Status> {
    crate::server_commands::with_client(global, |client| async move {
        Ok(show_servers(client.mcp_servers().await?, global))
    })
}

fn show_servers(servers: Vec<faramesh_client::McpServer>, global: &Global) -> Status {
    if global.json {
        println!("{}", output::pretty(&servers));
        return Status::Success;
    }
    if servers.is_empty() {
        println!("No MCP servers: start `faramesh serve` with a servers file (--mcp-config, or mcp.yaml in its directory).");
        return Status::Success;
    }
    let mut rows = table::new(&[
        "NAME",
        "TRANSPORT",
        "PATH",
        "SESSIONS",
        "TARGET",
        "LAST ERROR",
    ]);
    for s in servers {
        rows.add_row([
            s.name,
            s.transport,
            s.path,
            format!("{} ({} started)", s.sessions, s.sessions_started),
            s.target,
            s.last_error.unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{}", table::render(&rows));
    Status::Success
}

fn wrap(args: &WrapArgs, global: &Global) -> anyhow::Result<Status> {
    let name = args.name.trim();
    if name.is_empty() {
        bail!("--name is empty; give the MCP server a name, as policies will call it (for example --name files)");
    }
    if RESERVED_SERVER_NAMES.contains(&name) {
        bail!(
            "--name {name} is the tool of a built-in executor; choose another name for the MCP server (for example --name {name}-mcp)"
        );
    }
    let Some((program, server_args)) = args.command.split_first() else {
        bail!("no MCP server command; give it after --, for example: faramesh mcp wrap --name files -- npx -y @modelcontextprotocol/server-filesystem /data");
    };
    let client = crate::server_commands::client(global);
    // A URL that can never work would fail every call closed; say so at once instead.
    client.check_url()?;
    init_logging();
    let options = Options {
        server: name.to_owned(),
        agent_id: args
            .agent_id
            .clone()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| format!("mcp:{name}")),
        approval_wait: Duration::from_secs(args.approval_wait),
        call_timeout: Duration::from_secs(args.call_timeout.max(1)),
        show_denied: args.show_denied,
        transport: "stdio",
        session_id: uuid::Uuid::new_v4().to_string(),
    };
    let gate = RestGate::new(client);
    // One thread: the relay's steps hand messages to each other, and on one thread no hand-off
    // waits for another thread to wake.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let command = faramesh_mcp::Command {
        program: program.clone(),
        args: server_args.to_vec(),
        env: Default::default(),
    };
    let ended = runtime.block_on(faramesh_mcp::wrap(gate, options, command))?;
    // The server's process group is stopped already; nothing may keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(match ended {
        Ended::ClientLeft | Ended::Signalled => Status::Success,
        Ended::ServerGone(why) => {
            tracing::warn!("{why}");
            Status::Failure
        }
    })
}

/// Logs to stderr only: stdout carries the MCP session.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}
