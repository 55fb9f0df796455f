//! Operator commands: everything that talks to a running server, through `faramesh-client`.

use crate::cli::{ActionCommand, Command, Global, ListArgs, ResultArgs};
use crate::output::{self, paint};
use crate::{params, Status};
use anstream::{eprintln, println};
use anyhow::Context;
use faramesh_client::{Action, Client, ClientError, ListFilter, Submission};
use serde_json::Value;

/// The server the client commands talk to: --url, else --host/--port, else the environment.
fn client(global: &Global) -> Client {
    let url = global.url.clone().unwrap_or_else(|| {
        let host = global
            .host
            .clone()
            .or_else(|| std::env::var("FARAMESH_HOST").ok())
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = global
            .port
            .map(|p| p.to_string())
            .or_else(|| std::env::var("FARAMESH_PORT").ok())
            .unwrap_or_else(|| "8000".into());
        format!("http://{host}:{port}")
    });
    Client::new(&url, global.token.clone())
}

pub fn run(command: &Command, global: &Global) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = client(global);
    match runtime.block_on(dispatch(command, global, &client)) {
        Ok(status) => Ok(status),
        // Could not run at all: exit 2 through the caller.
        Err(e @ ClientError::Unreachable { .. }) | Err(e @ ClientError::Decode(_)) => Err(e.into()),
        // The server (or the id) said no: one sentence, exit 1.
        Err(e) => {
            eprintln!(
                "{}error:{} {e}",
                output::ERROR.render(),
                output::ERROR.render_reset()
            );
            if let ClientError::Ambiguous { candidates, .. } = &e {
                for c in candidates {
                    eprintln!("  {c}");
                }
            }
            Ok(Status::Failure)
        }
    }
}

async fn dispatch(
    command: &Command,
    global: &Global,
    client: &Client,
) -> Result<Status, ClientError> {
    match command {
        Command::List(args) => list(client, args, global).await,
        Command::Get { id } => {
            let action = client.get(&client.resolve(id).await?).await?;
            show(&action, global);
            Ok(Status::Success)
        }
        Command::Events { id } => {
            let events = client.events(&client.resolve(id).await?).await?;
            if global.json {
                println!("{}", pretty(&events));
            } else {
                println!(
                    "{}",
                    paint(
                        output::BOLD,
                        format!(
                            "{:<27}  {:<14}  {:<14}  META",
                            "TIME", "EVENT", "RECORD HASH"
                        )
                    )
                );
                for e in &events {
                    println!(
                        "{:<27}  {:<14}  {:<14}  {}",
                        e.created_at,
                        e.event_type,
                        &e.record_hash[..12.min(e.record_hash.len())],
                        cut(&compact(&e.meta), 60)
                    );
                }
            }
            Ok(Status::Success)
        }
        Command::Approve { id, reason } | Command::Deny { id, reason } => {
            let approve = matches!(command, Command::Approve { .. });
            let action = client
                .decide_approval(&client.resolve(id).await?, approve, reason.as_deref())
                .await?;
            report(&action, global, if approve { "approved" } else { "denied" });
            Ok(Status::Success)
        }
        Command::Start { id } => {
            let action = client.start(&client.resolve(id).await?).await?;
            report(&action, global, "started");
            Ok(Status::Success)
        }
        Command::Result(args) => result(client, args, global).await,
        Command::Action(ActionCommand::Submit {
            tool,
            op,
            params: p,
            context,
            agent,
        }) => {
            let invalid = |e: anyhow::Error| ClientError::Invalid {
                detail: e.to_string(),
            };
            let submission = Submission {
                agent_id: agent.clone(),
                tool: tool.clone(),
                operation: op.clone(),
                params: params::object(None, p, "--param").map_err(invalid)?,
                context: params::object(None, context, "--context").map_err(invalid)?,
            };
            let action = client.submit(&submission).await?;
            if global.json {
                println!("{}", pretty(&action));
            } else {
                let style = status_style(&action.status);
                println!(
                    "{}  {}  {}",
                    action.id,
                    paint(style, &action.status),
                    action.reason.as_deref().unwrap_or("")
                );
            }
            Ok(Status::Success)
        }
        Command::Policy(_) | Command::Serve(_) => Ok(Status::Error),
    }
}

async fn list(client: &Client, args: &ListArgs, global: &Global) -> Result<Status, ClientError> {
    let filter = ListFilter {
        limit: Some(args.limit),
        status: args.status.clone(),
        tool: args.tool.clone(),
        agent_id: args.agent.clone(),
        ..Default::default()
    };
    let actions = client.list(&filter).await?;
    if global.json {
        println!("{}", pretty(&actions));
        return Ok(Status::Success);
    }
    if actions.is_empty() {
        println!("no actions");
        return Ok(Status::Success);
    }
    let id_width = if args.full { 36 } else { 8 };
    println!(
        "{}",
        paint(
            output::BOLD,
            format!(
                "{:<id_width$}  {:<16}  {:<6}  {:<12}  {:<12}  {:<40}  CREATED",
                "ID", "STATUS", "RISK", "TOOL", "OPERATION", "PARAMS"
            )
        )
    );
    for a in &actions {
        let params = compact(&Value::Object(a.params.clone()));
        let params = if args.full { params } else { cut(&params, 40) };
        println!(
            "{:<id_width$}  {}  {}  {:<12}  {:<12}  {:<40}  {}",
            &a.id[..id_width.min(a.id.len())],
            paint(status_style(&a.status), format!("{:<16}", a.status)),
            paint(
                risk_style(a.risk_level.as_deref()),
                format!("{:<6}", a.risk_level.as_deref().unwrap_or("-"))
            ),
            cut(&a.tool, 12),
            cut(&a.operation, 12),
            params,
            a.created_at
                .get(..19)
                .unwrap_or(&a.created_at)
                .replace('T', " "),
        );
    }
    Ok(Status::Success)
}

async fn result(
    client: &Client,
    args: &ResultArgs,
    global: &Global,
) -> Result<Status, ClientError> {
    let output = args
        .output
        .as_deref()
        .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())));
    let id = client.resolve(&args.id).await?;
    let action = client
        .report_result(
            &id,
            args.success && !args.failure,
            args.error.as_deref(),
            output,
        )
        .await?;
    report(&action, global, "recorded");
    Ok(Status::Success)
}

fn show(a: &Action, global: &Global) {
    if global.json {
        println!("{}", pretty(a));
        return;
    }
    let row = |label: &str, value: &str| {
        println!("{}  {value}", paint(output::BOLD, format!("{label:<15}")))
    };
    row("id", &a.id);
    row("status", &paint(status_style(&a.status), &a.status));
    row("decision", a.decision.as_deref().unwrap_or("-"));
    row("reason", a.reason.as_deref().unwrap_or("-"));
    row("reason_code", a.reason_code.as_deref().unwrap_or("-"));
    row(
        "risk_level",
        &paint(
            risk_style(a.risk_level.as_deref()),
            a.risk_level.as_deref().unwrap_or("-"),
        ),
    );
    row("agent", &a.agent_id);
    row("tool", &format!("{} / {}", a.tool, a.operation));
    row("params", &compact(&Value::Object(a.params.clone())));
    if !a.context.is_empty() {
        row("context", &compact(&Value::Object(a.context.clone())));
    }
    if let Some(result) = &a.result {
        row("result", &compact(result));
    }
    row("policy_version", a.policy_version.as_deref().unwrap_or("-"));
    row("request_hash", a.request_hash.as_deref().unwrap_or("-"));
    row("provenance_id", a.provenance_id.as_deref().unwrap_or("-"));
    row("created", &a.created_at);
    row("updated", &a.updated_at);
}

fn report(a: &Action, global: &Global, what: &str) {
    if global.json {
        println!("{}", pretty(a));
    } else {
        println!(
            "{} {what} {} → {}",
            paint(output::GOOD, "✓"),
            a.id,
            paint(status_style(&a.status), &a.status)
        );
    }
}

fn status_style(status: &str) -> anstyle::Style {
    match status {
        "allowed" | "approved" | "succeeded" => output::GOOD,
        "pending_approval" | "executing" => output::WARN,
        _ => output::ERROR,
    }
}

fn risk_style(risk: Option<&str>) -> anstyle::Style {
    match risk {
        Some("high") => output::ERROR,
        Some("medium") => output::WARN,
        _ => output::DIM,
    }
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// At most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
