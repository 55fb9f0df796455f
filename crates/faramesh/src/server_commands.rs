//! Operator commands: everything that talks to a running server, through `faramesh-client`.

use crate::cli::{ActionCommand, Command, Global, ListArgs, ResultArgs};
use crate::output::{self, paint, pretty};
use crate::{key_values, table, Status};
use anstream::{eprintln, println};
use anyhow::Context;
use faramesh_client::{Action, Client, ClientError, Followed, ListFilter, Submission};
use faramesh_core::{ActionStatus, RiskLevel};
use serde_json::Value;

/// The server the client commands talk to: --url, else --host/--port, else the environment.
pub(crate) fn client(global: &Global) -> Client {
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
    with_client(global, |client| async move {
        dispatch(command, global, &client).await
    })
}

/// Runs a command that asks the server, under the CLI's exit codes: what could not run at all
/// (no server, a bad URL or argument, an answer that cannot be read) exits 2 through the
/// caller; a refusal by the server is said in one sentence and exits 1.
pub(crate) fn with_client<F, Fut>(global: &Global, command: F) -> anyhow::Result<Status>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<Status, ClientError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(command(client(global))) {
        Ok(status) => Ok(status),
        // Could not run at all: exit 2 through the caller.
        Err(
            e @ (ClientError::Unreachable { .. }
            | ClientError::Decode(_)
            | ClientError::BadUrl { .. }
            | ClientError::Usage { .. }
            | ClientError::PrefixTooShort(_)),
        ) => Err(e.into()),
        // The server (or the id) said no: one sentence, exit 1.
        Err(e) => {
            output::error(&e);
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
        Command::Events { id } => events(client, id, global).await,
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
            params,
            context,
            agent,
        }) => submit(client, agent, tool, op, params, context, global).await,
        Command::Explain { id } => {
            let action = client.get(&client.resolve(id).await?).await?;
            explain(&action, client, global).await;
            Ok(Status::Success)
        }
        Command::Curl { id } => {
            let id = client.resolve(id).await?;
            curl(client, &id, global);
            Ok(Status::Success)
        }
        Command::Replay { id } => replay(client, id, global).await,
        Command::Apply { file } => apply(client, file, global).await,
        Command::VerifyLog {
            file: Some(file), ..
        } => crate::verify::verify_file(file, global),
        Command::VerifyLog {
            id, db: Some(db), ..
        } => crate::verify::verify_db(db, id.as_deref(), global),
        Command::VerifyLog {
            id,
            all,
            file: None,
            db: None,
        } => crate::verify::verify(client, id.as_deref(), *all, global).await,
        Command::Token(command) => crate::tokens::run(command, client, global).await,
        Command::Audit(crate::cli::AuditCommand::Export { since }) => {
            let since = since
                .as_deref()
                .map(|text| {
                    since_time(text, chrono::Utc::now())
                        .map_err(|detail| ClientError::Usage { detail })
                })
                .transpose()?;
            export(client, since.as_deref()).await
        }
        Command::Logs { id } => logs(client, id, global).await,
        Command::Tail { status, agent } => {
            tail(client, status.as_deref(), agent.as_deref(), global).await
        }
        Command::ReplayDecision { id } => {
            replay_decision(client, &client.resolve(id).await?, global).await
        }
        Command::Policy(_)
        | Command::Serve(_)
        | Command::Init
        | Command::InitDocker
        | Command::Doctor
        | Command::Mcp(_)
        | Command::Notify(_)
        | Command::Hook(_)
        | Command::Log(_)
        | Command::Completions { .. } => Ok(Status::Error),
    }
}

async fn events(client: &Client, id: &str, global: &Global) -> Result<Status, ClientError> {
    let events = client.events(&client.resolve(id).await?).await?;
    if global.json {
        println!("{}", pretty(&events));
    } else {
        let mut rows = table::new(&["TIME", "EVENT", "RECORD HASH", "META"]);
        for e in &events {
            rows.add_row([
                e.created_at.clone(),
                e.event_type.clone(),
                e.record_hash.chars().take(12).collect(),
                table::cut(&compact(&e.meta), 60),
            ]);
        }
        println!("{}", table::render(&rows));
    }
    Ok(Status::Success)
}

/// `faramesh action submit`: one action from flags.
async fn submit(
    client: &Client,
    agent: &str,
    tool: &str,
    op: &str,
    params: &[String],
    context: &[String],
    global: &Global,
) -> Result<Status, ClientError> {
    let invalid = |e: anyhow::Error| ClientError::Usage {
        detail: e.to_string(),
    };
    let submission = Submission {
        agent_id: agent.to_owned(),
        tool: tool.to_owned(),
        operation: op.to_owned(),
        params: key_values::object(None, params, "--param").map_err(invalid)?,
        context: key_values::object(None, context, "--context").map_err(invalid)?,
    };
    let action = client.submit(&submission).await?;
    if global.json {
        println!("{}", pretty(&action));
    } else {
        let style = status_style(action.status);
        println!(
            "{}  {}  {}",
            action.id,
            paint(style, action.status),
            action.reason.as_deref().unwrap_or("")
        );
    }
    Ok(Status::Success)
}

/// `faramesh replay`: submits a copy of an action that was allowed, approved or succeeded.
async fn replay(client: &Client, id: &str, global: &Global) -> Result<Status, ClientError> {
    let original = client.get(&client.resolve(id).await?).await?;
    if ![
        ActionStatus::Allowed,
        ActionStatus::Approved,
        ActionStatus::Succeeded,
    ]
    .contains(&original.status)
    {
        return Err(ClientError::Conflict {
            detail: format!(
                "Action {} is {}; only allowed, approved or succeeded actions are replayed",
                original.id, original.status
            ),
            status: Some(original.status.as_str().to_owned()),
        });
    }
    let mut context = original.context.into_map();
    context.insert("replayed_from".into(), Value::String(original.id.clone()));
    let copy = Submission {
        agent_id: original.agent_id,
        tool: original.tool,
        operation: original.operation,
        params: original.params.into_map(),
        context,
    };
    let action = client.submit(&copy).await?;
    report(&action, global, "submitted replay");
    Ok(Status::Success)
}

/// `faramesh apply FILE`: submits the action a YAML or JSON file describes.
async fn apply(
    client: &Client,
    file: &std::path::Path,
    global: &Global,
) -> Result<Status, ClientError> {
    let submission = match read_submission(file) {
        Ok(submission) => submission,
        // A file that does not describe an action is a bad argument: exit 2, and
        // nothing is submitted.
        Err(detail) => {
            output::error(detail);
            return Ok(Status::Error);
        }
    };
    let action = client.submit(&submission).await?;
    report(&action, global, "submitted");
    Ok(Status::Success)
}

/// `faramesh logs`: an action's history in words.
async fn logs(client: &Client, id: &str, global: &Global) -> Result<Status, ClientError> {
    let events = client.events(&client.resolve(id).await?).await?;
    if global.json {
        // One object per event: when, the status it led to (none for the submission), by whom
        // and why.
        let lines: Vec<Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "at": e.created_at,
                    "event": e.event_type,
                    "status": faramesh_core::EventType::parse(&e.event_type)
                        .and_then(faramesh_core::EventType::status_after),
                    "by": e.meta.get("by"),
                    "reason": e.meta.get("reason"),
                })
            })
            .collect();
        println!("{}", pretty(&lines));
        return Ok(Status::Success);
    }
    for e in &events {
        let status = match e.event_type.as_str() {
            "created" | "decision_made" => None,
            other => Some(other),
        };
        let reason = e.meta["reason"]
            .as_str()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default();
        let by = e.meta["by"]
            .as_str()
            .map(|b| format!("  by {b}"))
            .unwrap_or_default();
        match status {
            None if e.event_type == "decision_made" => println!(
                "{}  decided: {}{}",
                e.created_at,
                e.meta["decision"].as_str().unwrap_or("-"),
                e.meta["reason"]
                    .as_str()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default()
            ),
            None => println!("{}  submitted", e.created_at),
            Some(s) => println!("{}  {s}{reason}{by}", e.created_at),
        }
    }
    Ok(Status::Success)
}

async fn list(client: &Client, args: &ListArgs, global: &Global) -> Result<Status, ClientError> {
    let filter = ListFilter {
        limit: Some(args.limit),
        status: args.status.clone(),
        tool: args.tool.clone(),
        agent_id: args.agent.clone(),
        q: args.search.clone(),
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
    let mut rows = table::new(&[
        "ID",
        "STATUS",
        "RISK",
        "AGENT",
        "TOOL",
        "OPERATION",
        "PARAMS",
        "CREATED (UTC)",
    ]);
    for a in &actions {
        let params = a.params.text();
        let params = if args.full {
            params.to_owned()
        } else {
            table::cut(params, 40)
        };
        // A pending action under a quorum shows how far along it is: `pending_approval 1/2`.
        let status = match (a.status, a.approvals_required) {
            (ActionStatus::PendingApproval, Some(required)) => format!(
                "{} {}/{required}",
                a.status,
                a.approvals.as_ref().map_or(0, Vec::len)
            ),
            _ => a.status.to_string(),
        };
        rows.add_row([
            a.id.chars().take(id_width).collect(),
            paint(status_style(a.status), status),
            paint(risk_style(a.risk_level), word(a.risk_level)),
            table::cut(&a.agent_id, 20),
            table::cut(&a.tool, 12),
            table::cut(&a.operation, 12),
            params,
            a.created_at
                .get(..19)
                .unwrap_or(&a.created_at)
                .replace('T', " "),
        ]);
    }
    println!("{}", table::render(&rows));
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
    row("status", &paint(status_style(a.status), a.status));
    row("decision", &word(a.decision));
    row("reason", a.reason.as_deref().unwrap_or("-"));
    row("reason_code", a.reason_code.as_deref().unwrap_or("-"));
    row(
        "risk_level",
        &paint(risk_style(a.risk_level), word(a.risk_level)),
    );
    if let Some(line) = approvals_line(a) {
        row("approvals", &line);
    }
    row("agent", &a.agent_id);
    match a.context.map().get("mcp").and_then(Value::as_object) {
        // A call through the MCP gateway: the server and its tool, from which client.
        Some(mcp) => {
            let text = |key: &str| mcp.get(key).and_then(Value::as_str).unwrap_or("-");
            row(
                "mcp call",
                &format!(
                    "server {} / tool {} ({})",
                    a.tool,
                    a.operation,
                    text("transport")
                ),
            );
            let client = mcp.get("client").and_then(Value::as_object);
            let field = |key: &str| client.and_then(|c| c.get(key)).and_then(Value::as_str);
            let client = [field("name"), field("version")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            row(
                "mcp client",
                &format!(
                    "{} (session {})",
                    if client.is_empty() { "-" } else { &client },
                    text("session")
                ),
            );
            row("arguments", a.params.text());
        }
        None => {
            row("tool", &format!("{} / {}", a.tool, a.operation));
            row("params", a.params.text());
        }
    }
    if !a.context.map().is_empty() {
        row("context", a.context.text());
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
        let progress = approvals_line(a)
            .filter(|_| a.status == ActionStatus::PendingApproval)
            .map(|line| format!(" ({line})"))
            .unwrap_or_default();
        println!(
            "{} {what} {} → {}{progress}",
            paint(output::GOOD, "✓"),
            a.id,
            paint(status_style(a.status), a.status)
        );
    }
}

/// `1 of 2 approvals: alice`, for an action whose rule needs more than the plain approval.
pub(crate) fn approvals_line(a: &Action) -> Option<String> {
    let required = a.approvals_required?;
    let given = a.approvals.as_deref().unwrap_or_default();
    let names: Vec<&str> = given.iter().map(|g| g.by.as_str()).collect();
    let noun = if required == 1 {
        "approval"
    } else {
        "approvals"
    };
    Some(if names.is_empty() {
        format!("0 of {required} {noun}")
    } else {
        format!("{} of {required} {noun}: {}", given.len(), names.join(", "))
    })
}

fn status_style(status: ActionStatus) -> anstyle::Style {
    match status {
        ActionStatus::Allowed | ActionStatus::Approved | ActionStatus::Succeeded => output::GOOD,
        ActionStatus::PendingApproval | ActionStatus::Executing => output::WARN,
        ActionStatus::Denied | ActionStatus::Failed | ActionStatus::Timeout => output::ERROR,
    }
}

fn risk_style(risk: Option<RiskLevel>) -> anstyle::Style {
    match risk {
        Some(RiskLevel::High) => output::ERROR,
        Some(RiskLevel::Medium) => output::WARN,
        Some(RiskLevel::Low) | None => output::DIM,
    }
}

/// A word of a closed set, or `-` when absent.
fn word<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// At most `max` characters, with `…` when cut.
async fn explain(a: &Action, client: &Client, global: &Global) {
    let details = a.reason_details.clone().unwrap_or(Value::Null);
    let policy_file = client
        .policy_info()
        .await
        .ok()
        .and_then(|info| info["policy_file"].as_str().map(str::to_owned));
    if global.json {
        let out = serde_json::json!({
            "id": a.id, "status": a.status, "decision": a.decision, "reason": a.reason, "reason_code": a.reason_code,
            "risk_level": a.risk_level, "decided_by": details["decided_by"], "risk_rule": details["risk_rule"],
            "expression_failures": details.get("expression_failures"),
            "limit": details.get("limit"),
            "policy_file": policy_file, "policy_version": a.policy_version, "policy_hash": a.policy_hash,
            "request_hash": a.request_hash, "profile_hash": a.profile_hash, "provenance_id": a.provenance_id,
        });
        println!("{}", pretty(&out));
        return;
    }
    let row = |label: &str, value: &str| {
        println!("{}  {value}", paint(output::BOLD, format!("{label:<15}")))
    };
    row("action", &a.id);
    row("status", &paint(status_style(a.status), a.status));
    row("decision", &word(a.decision));
    row("reason", a.reason.as_deref().unwrap_or("-"));
    row("reason_code", a.reason_code.as_deref().unwrap_or("-"));
    row("risk_level", &word(a.risk_level));
    let by = &details["decided_by"];
    let decided = match by["kind"].as_str() {
        Some("policy_rule") => format!(
            "policy rule {} (line {}{}){}",
            by["number"],
            by["line"],
            policy_file
                .as_deref()
                .map(|f| format!(" of {f}"))
                .unwrap_or_default(),
            by["name"]
                .as_str()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default()
        ),
        Some("profile_rule") => format!(
            "execution profile rule {} \"{}\"",
            by["number"],
            by["name"].as_str().unwrap_or("")
        ),
        Some("profile") => "the execution profile".to_owned(),
        Some("default") => "no rule matched: denied by default".to_owned(),
        Some("failure") => "evaluation failed: denied (fail closed)".to_owned(),
        _ => "not recorded".to_owned(),
    };
    row("decided by", &decided);
    if let Some(rule) = details["risk_rule"].as_str() {
        row("risk rule", rule);
    }
    if let Some(limit) = details.get("limit").filter(|l| l.is_object()) {
        let text = |key: &str| limit[key].as_str().unwrap_or("?").to_owned();
        let number = |key: &str| {
            limit[key]
                .as_f64()
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        };
        row(
            "limit",
            &format!(
                "{}: {} of {} used in {} ({}), on exceeding: {}",
                text("name"),
                number("used"),
                number("max"),
                text("window"),
                text("key"),
                text("on_exceed")
            ),
        );
    }
    // `when` expressions that could not be evaluated, and how each was counted (fail closed).
    for failure in details["expression_failures"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let counted = if failure["counted_as_match"] == true {
            "counted as matching"
        } else {
            "counted as not matching"
        };
        row(
            "expression",
            &format!(
                "{}: {} ({counted})",
                failure["rule"].as_str().unwrap_or("?"),
                failure["error"].as_str().unwrap_or("?")
            ),
        );
    }
    row("policy_version", a.policy_version.as_deref().unwrap_or("-"));
    row("policy_hash", a.policy_hash.as_deref().unwrap_or("-"));
    row("request_hash", a.request_hash.as_deref().unwrap_or("-"));
    if let Some(profile) = &a.profile_hash {
        row("profile_hash", profile);
    }
    row("provenance_id", a.provenance_id.as_deref().unwrap_or("-"));
}

fn curl(client: &Client, id: &str, global: &Global) {
    let base = client.base_url();
    let auth = if global.token.is_some() {
        " -H \"Authorization: Bearer $FARAMESH_TOKEN\""
    } else {
        ""
    };
    if global.json {
        let commands = serde_json::json!({
            "get": format!("curl -s{auth} {base}/v1/actions/{id}"),
            "events": format!("curl -s{auth} {base}/v1/actions/{id}/events"),
            "approve": format!("curl -s -X POST{auth} -H 'content-type: application/json' {base}/v1/actions/{id}/approval -d '{{\"token\": \"<approval_token>\", \"approve\": true}}'"),
            "deny": format!("curl -s -X POST{auth} -H 'content-type: application/json' {base}/v1/actions/{id}/approval -d '{{\"token\": \"<approval_token>\", \"approve\": false, \"reason\": \"...\"}}'"),
        });
        println!("{}", pretty(&commands));
        return;
    }
    println!("# get the action\ncurl -s{auth} {base}/v1/actions/{id}");
    println!("# its ledger events\ncurl -s{auth} {base}/v1/actions/{id}/events");
    println!("# approve (use the action's approval_token)\ncurl -s -X POST{auth} -H 'content-type: application/json' {base}/v1/actions/{id}/approval -d '{{\"token\": \"<approval_token>\", \"approve\": true}}'");
    println!("# deny\ncurl -s -X POST{auth} -H 'content-type: application/json' {base}/v1/actions/{id}/approval -d '{{\"token\": \"<approval_token>\", \"approve\": false, \"reason\": \"...\"}}'");
}

/// The keys of an action file: the API's fields, and `op` for `operation`.
const APPLY_KEYS: &[&str] = &["agent_id", "tool", "operation", "op", "params", "context"];

/// An action from a YAML or JSON file: agent_id (default "cli"), tool, operation (or op), params
/// (default none), context. Any other key is refused, as the API refuses an unknown field: a
/// misspelt `paramz` must not submit the action without its params. The error names the file
/// (and the line of the key), for `faramesh apply` to exit 2 with.
fn read_submission(file: &std::path::Path) -> Result<Submission, String> {
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
    let node = faramesh_core::yaml::load(&text)
        .map_err(|e| format!("{name} is not valid YAML or JSON: {e}"))?;
    let Some(entries) = node.as_map() else {
        return Err(format!(
            "{name} must hold a mapping with tool, operation and params, not {}",
            node.describe()
        ));
    };
    for (key, _) in entries {
        let key_text = key
            .key_text()
            .map_err(|e| format!("{name}:{}:{}: {}", e.span.line, e.span.column, e.message))?;
        if !APPLY_KEYS.contains(&key_text.as_str()) {
            let hint = faramesh_core::diagnostic::did_you_mean(&key_text, APPLY_KEYS)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(format!(
                "{name}:{}:{}: unknown key `{key_text}`; an action file holds only agent_id, tool, operation (or op), params and context{hint}",
                key.span.line, key.span.column
            ));
        }
    }
    let value = node
        .to_json()
        .map_err(|e| format!("{name} is not valid YAML or JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err(format!(
            "{name} must hold a mapping with tool, operation and params"
        ));
    };
    let mut text_field = |key: &str| -> Result<Option<String>, String> {
        match map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "{name}: `{key}` must be text, not {}",
                kind(&other)
            )),
        }
    };
    let tool = text_field("tool")?.ok_or_else(|| format!("{name}: `tool` is required"))?;
    let operation = match (text_field("operation")?, text_field("op")?) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{name}: give `operation` or its short form `op`, not both"
            ))
        }
        (Some(operation), None) | (None, Some(operation)) => operation,
        (None, None) => return Err(format!("{name}: `operation` is required")),
    };
    let agent_id = text_field("agent_id")?.unwrap_or_else(|| "cli".to_owned());
    let mut object = |key: &str| match map.remove(key) {
        None | Some(Value::Null) => Ok(serde_json::Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(format!(
            "{name}: `{key}` must be a mapping of names to values, not {}",
            kind(&other)
        )),
    };
    let params = object("params")?;
    let context = object("context")?;
    Ok(Submission {
        agent_id,
        tool,
        operation,
        params,
        context,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Follows the live stream until Ctrl-C. After a disconnect (a server restart, say) the client
/// reconnects and resumes after the last message shown.
async fn tail(
    client: &Client,
    status: Option<&str>,
    agent: Option<&str>,
    global: &Global,
) -> Result<Status, ClientError> {
    use futures::StreamExt;
    let filter = faramesh_client::StreamFilter {
        status: status.map(str::to_owned),
        agent_id: agent.map(str::to_owned),
        after: None,
    };
    let follow = async {
        let stream = client.follow(filter);
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item? {
                Followed::Message(m) => print_change(&m, global),
                // Says why, so a wrong URL or a stopped server is told from a network blip.
                Followed::Lost(why) => {
                    eprintln!("{} {why}; reconnecting…", paint(output::WARN, "…"),)
                }
                Followed::Resumed => eprintln!(
                    "{} reconnected to {}",
                    paint(output::GOOD, "✓"),
                    client.base_url()
                ),
            }
        }
        Ok(Status::Success)
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(Status::Success),
    }
}

fn print_change(m: &faramesh_client::StreamMessage, global: &Global) {
    if global.json {
        let line = serde_json::json!({"id": m.id, "type": m.kind, "data": m.data, "timestamp": m.timestamp});
        println!("{}", compact(&line));
        return;
    }
    let d = &m.data;
    let text = |k: &str| d[k].as_str().unwrap_or("-").to_owned();
    let id = text("id");
    let status = text("status");
    println!(
        "{}  {}  {}  {}  {}/{}  {}",
        m.timestamp.get(11..19).unwrap_or(&m.timestamp),
        id.get(..8).unwrap_or(&id),
        paint(
            ActionStatus::parse(&status).map_or(output::DIM, status_style),
            format!("{status:<16}")
        ),
        paint(
            risk_style(d["risk_level"].as_str().and_then(RiskLevel::parse)),
            format!("{:<6}", text("risk_level"))
        ),
        text("tool"),
        text("operation"),
        text("reason"),
    );
}

/// What a difference in each version-bound field means.
const REPLAY_FIELDS: &[(&str, &str)] = &[
    ("outcome", "the decision itself changed"),
    ("reason_code", "a different rule or default decided"),
    ("risk_level", "the risk assessment changed"),
    (
        "request_hash",
        "the payload no longer hashes the same (canonicalization changed)",
    ),
    ("policy_hash", "the policy changed since this decision"),
    (
        "profile_hash",
        "the execution profile changed since this decision",
    ),
    (
        "runtime_version",
        "the server version changed since this decision",
    ),
    ("provenance_id", "one of the version-bound inputs changed"),
];

async fn replay_decision(
    client: &Client,
    id: &str,
    global: &Global,
) -> Result<Status, ClientError> {
    let stored = client.get(id).await?;
    let submission = Submission {
        agent_id: stored.agent_id.clone(),
        tool: stored.tool.clone(),
        operation: stored.operation.clone(),
        params: stored.params.map().clone(),
        context: stored.context.map().clone(),
    };
    // Limits are replayed at the usage the decision recorded (none recorded: under them).
    let mut usage = serde_json::Map::new();
    if let Some(limit) = stored.reason_details.as_ref().and_then(|d| d.get("limit")) {
        if let (Some(name), Some(used)) = (limit["name"].as_str(), limit.get("used")) {
            usage.insert(name.to_owned(), used.clone());
        }
    }
    let now = client.gate_decide_at_usage(&submission, &usage).await?;
    let before = serde_json::to_value(&stored).unwrap_or(Value::Null);
    let mut rows = Vec::new();
    for (field, meaning) in REPLAY_FIELDS {
        let old = before[*field].clone();
        let new = now[*field].clone();
        rows.push((*field, old.clone(), new.clone(), old == new, *meaning));
    }
    let differing = rows.iter().filter(|r| !r.3).count();
    if global.json {
        let fields: Vec<Value> = rows
            .iter()
            .map(|(f, o, n, same, m)| serde_json::json!({"field": f, "stored": o, "now": n, "same": same, "meaning": if *same { Value::Null } else { Value::from(*m) }}))
            .collect();
        println!(
            "{}",
            pretty(
                &serde_json::json!({"action_id": id, "identical": differing == 0, "fields": fields})
            )
        );
    } else {
        for (field, old, new, same, meaning) in &rows {
            let show = |v: &Value| v.as_str().map_or_else(|| compact(v), str::to_owned);
            if *same {
                println!("{} {field:<16} {}", paint(output::GOOD, "="), show(old));
            } else {
                println!(
                    "{} {field:<16} {} → {}  ({meaning})",
                    paint(output::ERROR, "≠"),
                    show(old),
                    show(new)
                );
            }
        }
        if differing == 0 {
            println!(
                "{} the decision replays identically",
                paint(output::GOOD, "✓")
            );
        } else {
            println!("{differing} field(s) differ");
        }
    }
    Ok(if differing == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

/// The instant `--since` names, as stored times compare: a date (`2026-12-01`, midnight UTC),
/// an RFC 3339 time, or a span back from `now` (`90m`, `24h`, `7d`).
fn since_time(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let text = text.trim();
    let refuse = || {
        format!("--since {text:?} is not a time: give a date (2026-12-01), an RFC 3339 time (2026-12-01T09:30:00Z) or a span back from now (90m, 24h, 7d)")
    };
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).ok_or_else(refuse)?.and_utc();
        return Ok(faramesh_core::timestamp::format(midnight));
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(faramesh_core::timestamp::format(
            at.with_timezone(&chrono::Utc),
        ));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(refuse)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| refuse())?;
    let span = match unit {
        "s" => chrono::TimeDelta::try_seconds(number),
        "m" => chrono::TimeDelta::try_minutes(number),
        "h" => chrono::TimeDelta::try_hours(number),
        "d" => chrono::TimeDelta::try_days(number),
        _ => None,
    }
    .ok_or_else(refuse)?;
    let at = now.checked_sub_signed(span).ok_or_else(refuse)?;
    Ok(faramesh_core::timestamp::format(at))
}

/// Every action (oldest first) and its events as JSON lines: `{"record": "action", ...}` then
/// `{"record": "event", ...}` for each of its events. A whole export (no `since`) ends with
/// `{"record": "checkpoint", "note": ...}`, the log's latest signed checkpoint, so it can be
/// checked with `faramesh log verify --file` and the verifier key alone.
async fn export(client: &Client, since: Option<&str>) -> Result<Status, ClientError> {
    // The checkpoint first: every event it covers was committed before it was signed, so the
    // listing below holds them all.
    let checkpoint = match client.log_checkpoint().await {
        Ok(note) if since.is_none() => Some(note),
        Ok(_) | Err(ClientError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut actions = client.list_all().await?;
    actions.reverse();
    // Timestamps are ISO-8601 UTC, so text order is time order.
    actions.retain(|a| since.is_none_or(|s| a.created_at.as_str() >= s));
    for action in actions {
        let events = client.events(&action.id).await?;
        // An action listed before it moved on would not match its events in the export.
        let (action, events) = crate::verify::settled(client, action, events).await?;
        println!("{}", export_line(&action, "action"));
        for event in events {
            println!("{}", export_line(&event, "event"));
        }
    }
    if let Some(note) = checkpoint {
        println!(
            "{}",
            export_line(&serde_json::json!({ "note": note }), "checkpoint")
        );
    }
    Ok(Status::Success)
}

/// A record's fields, then `record` naming its kind. Written straight from the record, not
/// through a parsed value, which would rewrite params' numbers (`1E2` as `1e+2`).
fn export_line(fields: &impl serde::Serialize, record: &'static str) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a, T> {
        #[serde(flatten)]
        fields: &'a T,
        record: &'static str,
    }
    serde_json::to_string(&Line { fields, record }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::APPLY_KEYS;

    /// Misspelt keys of an action file get the same did-you-mean as a policy's.
    fn closest_key(key: &str) -> Option<&'static str> {
        faramesh_core::diagnostic::did_you_mean(key, APPLY_KEYS)
    }

    #[test]
    fn since_takes_dates_times_and_spans_and_refuses_the_rest() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let since = |t: &str| super::since_time(t, now);
        assert_eq!(
            since("2026-12-01").as_deref(),
            Ok("2026-12-01T00:00:00.000000Z")
        );
        assert_eq!(
            since("2026-12-01T09:30:00+01:00").as_deref(),
            Ok("2026-12-01T08:30:00.000000Z")
        );
        assert_eq!(since("24h").as_deref(), Ok("2026-12-04T12:00:00.000000Z"));
        assert_eq!(since("7d").as_deref(), Ok("2026-11-28T12:00:00.000000Z"));
        for bad in ["yesterday", "2026-13-45", "24x", "", "h"] {
            assert!(since(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_misspelt_key_gets_its_likely_meaning_only() {
        assert_eq!(closest_key("paramz"), Some("params"));
        assert_eq!(closest_key("Contxt"), Some("context"));
        assert_eq!(closest_key("agentid"), Some("agent_id"));
        assert_eq!(closest_key("operatoin"), Some("operation"));
        assert_eq!(closest_key("ok"), None);
        assert_eq!(closest_key("priority"), None);
    }
}
