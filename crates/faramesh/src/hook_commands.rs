//! `faramesh hook`: the hook command coding agents run around each tool call, and installing
//! it into their settings. The payloads and answers are `faramesh_hooks`'; this module reads
//! stdin, asks the server and writes stdout.

use crate::cli::{Global, HookAgent, HookArgs, HookCommand, HookInstallArgs, Unreachable};
use crate::{output, Status};
use anstream::{eprintln, println};
use anyhow::Context;
use faramesh_client::{Action, Client, ClientError, Submission};
use faramesh_core::ActionStatus;
use faramesh_hooks::{claude_code, cursor, HookAction, HookEvent, HookOutcome, Verdict};
use faramesh_mcp::{Gate, RestGate};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest hook payload read; a tool input larger than this is refused.
const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;

/// Seconds the agent lets the hook run beyond its own wait for an approval.
const TIMEOUT_MARGIN_SECS: u64 = 30;

pub fn run(command: &HookCommand, global: &Global) -> anyhow::Result<Status> {
    match command {
        HookCommand::ClaudeCode(args) => answer(HookAgent::ClaudeCode, args, global),
        HookCommand::Cursor(args) => answer(HookAgent::Cursor, args, global),
        HookCommand::Install(args) => install(args, global),
    }
}

/// Reads one hook payload from stdin and answers it.
fn answer(agent: HookAgent, args: &HookArgs, global: &Global) -> anyhow::Result<Status> {
    let mut input = String::new();
    let read = std::io::stdin()
        .take(MAX_PAYLOAD_BYTES + 1)
        .read_to_string(&mut input);
    let parsed = match read {
        Err(e) => Err(format!("cannot read the hook input: {e}")),
        Ok(n) if n as u64 > MAX_PAYLOAD_BYTES => Err(format!(
            "the hook input is larger than {} MiB",
            MAX_PAYLOAD_BYTES / 1024 / 1024
        )),
        Ok(_) => match agent {
            HookAgent::ClaudeCode => claude_code::parse(&input),
            HookAgent::Cursor => cursor::parse(&input),
        }
        .map_err(|e| e.to_string()),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(problem) => {
            eprintln!("faramesh hook: {problem}; the call is refused");
            return Ok(match agent {
                // Exit 2 is how a Claude Code hook refuses a call.
                HookAgent::ClaudeCode => Status::Error,
                // Cursor lets a call through when its hook fails: refuse in the answer.
                HookAgent::Cursor => {
                    let reason = format!("Faramesh could not read this hook call: {problem}");
                    println!("{}", cursor::answer("", &Verdict::Deny { reason }));
                    Status::Success
                }
            });
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = crate::server_commands::client(global);
    match event {
        HookEvent::Before(action) => {
            let verdict = runtime.block_on(decide(&client, &action, args, agent));
            let text = match agent {
                HookAgent::ClaudeCode => claude_code::answer(&verdict),
                HookAgent::Cursor => {
                    let event = action
                        .context
                        .get("hook_event")
                        .and_then(|e| e.as_str())
                        .unwrap_or_default();
                    cursor::answer(event, &verdict)
                }
            };
            println!("{text}");
            Ok(Status::Success)
        }
        HookEvent::After(outcome) => Ok(runtime.block_on(record(&client, &outcome, agent))),
        // Nothing to decide or record: no answer is an answer that changes nothing.
        HookEvent::Other(_) => Ok(Status::Success),
    }
}

fn agent_name(agent: HookAgent) -> &'static str {
    match agent {
        HookAgent::ClaudeCode => claude_code::TOOL,
        HookAgent::Cursor => cursor::TOOL,
    }
}

/// Submits the call and turns the decision, or a human's, into the agent's answer.
async fn decide(client: &Client, hook: &HookAction, args: &HookArgs, agent: HookAgent) -> Verdict {
    let agent_id = args
        .agent
        .clone()
        .unwrap_or_else(|| agent_name(agent).to_owned());
    let submission = Submission {
        agent_id: agent_id.clone(),
        tool: hook.tool.to_owned(),
        operation: hook.operation.clone(),
        params: hook.params.clone(),
        context: hook.context.clone(),
    };
    let submitted = match hook.idempotency_key() {
        Some(key) => client.submit_once(&submission, &key).await,
        None => client.submit(&submission).await,
    };
    let action = match submitted {
        Ok(action) => action,
        Err(e) => return cannot_ask(client, &e, args.on_unreachable),
    };
    if let Some(call) = &hook.call_id {
        if let Err(e) = remember(agent, hook.session_id.as_deref(), call, &action.id) {
            eprintln!("faramesh hook: {e}; the outcome of this call will not be recorded");
        }
    }
    let reason = action.reason.clone().unwrap_or_default();
    match action.status {
        ActionStatus::Allowed | ActionStatus::Approved | ActionStatus::Executing => {
            Verdict::Allow {
                reason: format!(
                    "Faramesh allowed this call: {reason} (action {})",
                    action.id
                ),
            }
        }
        ActionStatus::Denied => denied(action.reason.as_deref().unwrap_or("denied")),
        ActionStatus::PendingApproval if args.wait == 0 => {
            // Nobody in Faramesh needs to decide what the agent's own prompt will.
            let why = "Left to the coding agent's permission prompt: the hook does not wait for approvals (--wait 0)";
            if let Err(e) = client.withdraw(&action.id, why).await {
                eprintln!("faramesh hook: cannot withdraw action {}: {e}", action.id);
            }
            Verdict::Ask {
                reason: format!("Faramesh requires approval for this call: {reason}"),
            }
        }
        ActionStatus::PendingApproval => {
            wait_for_approval(client, &action, &agent_id, args.wait).await
        }
        other => Verdict::Deny {
            reason: format!(
                "Faramesh already recorded this call as {other} (action {}); it is not run again",
                action.id
            ),
        },
    }
}

/// A denial, by the policy or a person, with the reason the model reads.
fn denied(reason: &str) -> Verdict {
    Verdict::Deny {
        reason: format!("Faramesh denied this call: {reason}"),
    }
}

/// Waits up to `wait` seconds for a human's decision; none in time withdraws the action.
async fn wait_for_approval(client: &Client, action: &Action, agent_id: &str, wait: u64) -> Verdict {
    let gate = RestGate::new(client.clone());
    let settled = tokio::time::timeout(
        Duration::from_secs(wait),
        gate.settled(&action.id, agent_id),
    )
    .await;
    match settled {
        Ok(Ok(decided)) if matches!(decided.status, ActionStatus::Approved) => Verdict::Allow {
            reason: format!(
                "Approved in Faramesh: {} (action {})",
                decided.reason, action.id
            ),
        },
        Ok(Ok(decided)) => denied(&decided.reason),
        Ok(Err(e)) => Verdict::Deny {
            reason: format!(
                "Faramesh could not say whether this call is approved ({e}); it is not run"
            ),
        },
        Err(_) => {
            let why = format!("No decision within {wait} s; the agent went on without this call");
            if let Err(e) = client.withdraw(&action.id, &why).await {
                eprintln!("faramesh hook: cannot withdraw action {}: {e}", action.id);
            }
            Verdict::Deny {
                reason: format!(
                    "Nobody approved this call in Faramesh within {wait} s (action {}); it was not run",
                    action.id
                ),
            }
        }
    }
}

/// The answer when Faramesh cannot be asked, or refuses to take the call.
fn cannot_ask(client: &Client, error: &ClientError, on_unreachable: Unreachable) -> Verdict {
    let unreachable = matches!(
        error,
        ClientError::Unreachable { .. } | ClientError::BadUrl { .. }
    ) || matches!(error, ClientError::Server { status, .. } if *status >= 500);
    if !unreachable {
        return Verdict::Deny {
            reason: format!("Faramesh refused to take this call: {error}"),
        };
    }
    let reason = format!(
        "Faramesh at {} cannot be asked ({error})",
        client.base_url()
    );
    match on_unreachable {
        Unreachable::Deny => Verdict::Deny {
            reason: format!("{reason}; the call is refused until it can"),
        },
        Unreachable::Ask => Verdict::Ask { reason },
    }
}

/// Records how a call ended on the action its before-hook submitted.
async fn record(client: &Client, outcome: &HookOutcome, agent: HookAgent) -> Status {
    let path = call_file(agent, outcome.session_id.as_deref(), &outcome.call_id);
    let Ok(action_id) = std::fs::read_to_string(&path) else {
        eprintln!(
            "faramesh hook: no Faramesh action is known for tool call {} (was the PreToolUse hook run?); its outcome is not recorded",
            outcome.call_id
        );
        return Status::Failure;
    };
    let action_id = action_id.trim();
    let reported = client
        .report_result(
            action_id,
            outcome.success,
            outcome.error.as_deref(),
            Some(outcome.output.clone()),
        )
        .await;
    let _ = std::fs::remove_file(&path);
    match reported {
        Ok(_) => Status::Success,
        Err(e) => {
            eprintln!("faramesh hook: cannot record the outcome on action {action_id}: {e}");
            Status::Failure
        }
    }
}

// ---- which action a call is ---------------------------------------------------------------

/// Where the before-hook leaves each call's action id for the after-hook: a file per call.
fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FARAMESH_HOOK_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("faramesh/hooks");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/faramesh/hooks");
    }
    std::env::temp_dir().join("faramesh-hooks")
}

/// A name safe in a path: the id itself when it is plain, else its hash.
fn file_name(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        id.to_owned()
    } else {
        faramesh_core::hash::sha256_hex(id.as_bytes())
    }
}

/// The file of one call: ids the agent sends are names only, never paths (see [`file_name`]).
fn call_file(agent: HookAgent, session: Option<&str>, call: &str) -> PathBuf {
    state_dir()
        .join(agent_name(agent))
        .join(file_name(session.unwrap_or("-")))
        .join(file_name(call))
}

fn remember(
    agent: HookAgent,
    session: Option<&str>,
    call: &str,
    action_id: &str,
) -> anyhow::Result<()> {
    let path = call_file(agent, session, call);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let written = std::fs::write(&path, action_id).or_else(|e| match path.parent() {
        // Another hook's sweep took the folder away while it was still empty: make it again.
        Some(dir) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, action_id))
        }
        _ => Err(e),
    });
    written.with_context(|| format!("cannot write {}", path.display()))?;
    sweep(&state_dir().join(agent_name(agent)));
    Ok(())
}

/// How long a call's file waits for its after-hook: a call that never reports (the agent was
/// stopped, the hook was removed) leaves one behind.
const CALL_FILE_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the files of calls that never reported are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Removes call files older than [`CALL_FILE_KEPT`], and session folders left empty, at most
/// once per [`SWEEP_EVERY`] (a marker file's age says when the last sweep was).
fn sweep(agent_dir: &Path) {
    let marker = agent_dir.join(".swept");
    let age = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
    };
    if age(&marker).is_some_and(|a| a < SWEEP_EVERY) {
        return;
    }
    let _ = std::fs::write(&marker, b"");
    let Ok(sessions) = std::fs::read_dir(agent_dir) else {
        return;
    };
    for session in sessions.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        if let Ok(calls) = std::fs::read_dir(&session) {
            for call in calls.flatten().map(|e| e.path()) {
                if age(&call).is_some_and(|a| a > CALL_FILE_KEPT) {
                    let _ = std::fs::remove_file(&call);
                }
            }
        }
        // Fails, as it should, while the folder still holds a call.
        let _ = std::fs::remove_dir(&session);
    }
}

// ---- installing ---------------------------------------------------------------------------

fn install(args: &HookInstallArgs, global: &Global) -> anyhow::Result<Status> {
    let base = if args.user {
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home),
            None => {
                eprintln!("faramesh hook install: HOME is not set, so there are no user settings to write; use --project");
                return Ok(Status::Error);
            }
        }
    } else {
        std::env::current_dir().context("cannot read the current directory")?
    };
    let path = match args.agent {
        HookAgent::ClaudeCode => base.join(".claude/settings.json"),
        HookAgent::Cursor => base.join(".cursor/hooks.json"),
    };
    let command = hook_command(args, global)?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("faramesh hook install: cannot read {}: {e}", path.display());
            return Ok(Status::Error);
        }
    };
    let merged = match args.agent {
        HookAgent::ClaudeCode => faramesh_hooks::install::claude_code(
            existing.as_deref(),
            &command,
            args.wait + TIMEOUT_MARGIN_SECS,
        ),
        HookAgent::Cursor => faramesh_hooks::install::cursor(existing.as_deref(), &command),
    };
    let installed = match merged {
        Ok(installed) => installed,
        Err(e) => {
            eprintln!(
                "faramesh hook install: cannot add the hook to {}: {e}",
                path.display()
            );
            return Ok(Status::Error);
        }
    };
    if args.dry_run {
        print!("{}", installed.text);
        return Ok(Status::Success);
    }
    if !installed.added.is_empty() || !installed.updated.is_empty() {
        write_atomically(&path, &installed.text)?;
    }
    if global.json {
        let report = serde_json::json!({
            "file": path,
            "command": command,
            "added": installed.added,
            "updated": installed.updated,
            "unchanged": installed.unchanged,
        });
        println!("{}", output::pretty(&report));
        return Ok(Status::Success);
    }
    let events = |list: &[&str]| list.join(", ");
    if !installed.added.is_empty() {
        println!(
            "added the Faramesh hook to {} for {}",
            path.display(),
            events(&installed.added)
        );
    }
    if !installed.updated.is_empty() {
        println!(
            "updated the Faramesh hook in {} for {}",
            path.display(),
            events(&installed.updated)
        );
    }
    if installed.added.is_empty() && installed.updated.is_empty() {
        println!("the Faramesh hook is already in {}", path.display());
    }
    println!("hook command: {command}");
    println!("the hook reads FARAMESH_TOKEN (and FARAMESH_URL unless given here) from the agent's environment");
    Ok(Status::Success)
}

/// The command line the agent runs: this binary by its absolute path, so the hook does not
/// depend on the agent's PATH (a hook that cannot start lets the call through).
fn hook_command(args: &HookInstallArgs, global: &Global) -> anyhow::Result<String> {
    let program = std::env::current_exe().context("cannot find the faramesh binary's path")?;
    let mut words = vec![output::shell_word(&program.display().to_string())];
    // A server named at install time (by URL, host or port) is the one the hook asks.
    if global.url.is_some() || global.host.is_some() || global.port.is_some() {
        let url = crate::server_commands::client(global).base_url().to_owned();
        words.extend(["--url".to_owned(), output::shell_word(&url)]);
    }
    words.push("hook".into());
    words.push(agent_name(args.agent).into());
    words.extend(["--wait".to_owned(), args.wait.to_string()]);
    if args.on_unreachable == Unreachable::Ask {
        words.extend(["--on-unreachable".to_owned(), "ask".to_owned()]);
    }
    if let Some(id) = &args.agent_id {
        words.extend(["--agent".to_owned(), output::shell_word(id)]);
    }
    Ok(words.join(" "))
}

/// Writes `text` to `path` through a temporary file renamed over it, so the agent never reads
/// half a settings file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = path.with_extension("json.faramesh-tmp");
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}
