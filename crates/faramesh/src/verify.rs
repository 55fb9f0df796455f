//! `faramesh verify-log`: recompute hash chains from a server, a database file or an export.

use crate::cli::Global;
use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use faramesh_client::{Client, ClientError};
use faramesh_core::ledger::{verify_chain, BrokenLink, ChainedEvent};
use serde_json::Value;

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A progress bar for long checks, on a terminal only.
fn progress(len: usize, global: &Global) -> indicatif::ProgressBar {
    if global.json || len < 50 {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len as u64)
    }
}

pub async fn verify(
    client: &Client,
    id: Option<&str>,
    all: bool,
    global: &Global,
) -> Result<Status, ClientError> {
    let ids = if all {
        client.list_all().await?.into_iter().map(|a| a.id).collect()
    } else {
        vec![client.resolve(id.unwrap_or_default()).await?]
    };
    let bar = progress(ids.len(), global);
    let (mut events_checked, mut broken) = (0usize, Vec::new());
    for id in &ids {
        let events = client.events(id).await?;
        events_checked += events.len();
        let values: Vec<Value> = events
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect();
        if let Err(link) = check_chain(&values) {
            broken.push(link);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_verification(ids.len(), events_checked, &broken, global);
    Ok(if broken.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}

/// Verifies the chains in an export file.
pub fn verify_file(file: &std::path::Path, global: &Global) -> Result<Status, ClientError> {
    let invalid = |detail: String| ClientError::Invalid { detail };
    let text = std::fs::read_to_string(file)
        .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
    let mut chains: Vec<(String, Vec<Value>)> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Value = serde_json::from_str(line)
            .map_err(|e| invalid(format!("{} line {}: not JSON ({e})", file.display(), n + 1)))?;
        match record["record"].as_str() {
            Some("action") => chains.push((
                record["id"].as_str().unwrap_or_default().to_owned(),
                Vec::new(),
            )),
            Some("event") => {
                let action_id = record["action_id"].as_str().unwrap_or_default().to_owned();
                match chains.iter_mut().rev().find(|(id, _)| *id == action_id) {
                    Some((_, events)) => events.push(record),
                    None => {
                        return Err(invalid(format!(
                            "{} line {}: an event of action {action_id} before the action",
                            file.display(),
                            n + 1
                        )))
                    }
                }
            }
            _ => {
                return Err(invalid(format!(
                    "{} line {}: neither an action nor an event record",
                    file.display(),
                    n + 1
                )))
            }
        }
    }
    let mut broken: Vec<BrokenLink> = Vec::new();
    let mut events_checked = 0;
    for (_, events) in &chains {
        events_checked += events.len();
        if let Err(link) = check_chain(events) {
            broken.push(link);
        }
    }
    print_verification(chains.len(), events_checked, &broken, global);
    Ok(if broken.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}

fn print_verification(actions: usize, events: usize, broken: &[BrokenLink], global: &Global) {
    if global.json {
        println!(
            "{}",
            pretty(&serde_json::json!({"actions": actions, "events": events, "broken": broken}))
        );
    } else if broken.is_empty() {
        println!(
            "{} {actions} action(s), {events} event(s): every chain is intact",
            paint(output::GOOD, "✓")
        );
    } else {
        for link in broken {
            println!("{} {link}", paint(output::ERROR, "✗"));
        }
        println!(
            "{} of {actions} action(s) have a broken chain",
            broken.len()
        );
    }
}

/// Recomputes one action's chain from its events as JSON (the API's and the export's form).
fn check_chain(events: &[Value]) -> Result<(), BrokenLink> {
    let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let owned: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            [
                text(e, "id"),
                text(e, "action_id"),
                text(e, "event_type"),
                text(e, "created_at"),
                text(e, "record_hash"),
            ]
        })
        .collect();
    let chained: Vec<ChainedEvent<'_>> = events
        .iter()
        .zip(&owned)
        .map(
            |(e, [id, action_id, event_type, created_at, record_hash])| ChainedEvent {
                id,
                action_id,
                event_type,
                created_at,
                meta: &e["meta"],
                prev_hash: e["prev_hash"].as_str(),
                record_hash,
            },
        )
        .collect();
    verify_chain(&chained)
}

/// Verifies the chains straight from a SQLite database file, read-only, without a server.
pub fn verify_db(
    db: &std::path::Path,
    id: Option<&str>,
    global: &Global,
) -> Result<Status, ClientError> {
    let unusable = |e: faramesh_storage::StoreError| ClientError::Invalid {
        detail: format!(
            "{e}; pass the server's database file (FARA_SQLITE_PATH, default data/actions.db)"
        ),
    };
    let ledger = faramesh_storage::LedgerFile::open(db).map_err(unusable)?;
    let ids = match id {
        None => ledger.action_ids().map_err(unusable)?,
        Some(prefix) => vec![resolve_in(&ledger, prefix).map_err(|e| match e {
            ResolveError::Client(e) => e,
            ResolveError::Store(e) => unusable(e),
        })?],
    };
    let bar = progress(ids.len(), global);
    let (mut events_checked, mut broken) = (0usize, Vec::new());
    for id in &ids {
        let events = ledger.chain(id).map_err(unusable)?;
        events_checked += events.len();
        let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
        if let Err(link) = verify_chain(&chained) {
            broken.push(link);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_verification(ids.len(), events_checked, &broken, global);
    Ok(if broken.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}

enum ResolveError {
    Client(ClientError),
    Store(faramesh_storage::StoreError),
}

/// The one action whose id starts with `prefix` (8+ characters), as `Client::resolve` does
/// against a server.
fn resolve_in(ledger: &faramesh_storage::LedgerFile, prefix: &str) -> Result<String, ResolveError> {
    if prefix.chars().count() < 8 {
        return Err(ResolveError::Client(ClientError::PrefixTooShort(
            prefix.to_owned(),
        )));
    }
    let mut ids = ledger
        .ids_with_prefix(&prefix.to_ascii_lowercase(), 10)
        .map_err(ResolveError::Store)?;
    match ids.len() {
        0 => Err(ResolveError::Client(ClientError::NoMatch {
            prefix: prefix.to_owned(),
        })),
        1 => Ok(ids.remove(0)),
        _ => Err(ResolveError::Client(ClientError::Ambiguous {
            prefix: prefix.to_owned(),
            candidates: ids,
        })),
    }
}
