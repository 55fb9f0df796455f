//! `faramesh verify-log`: recompute hash chains from a server, a database file or an export.

use crate::cli::Global;
use crate::output::{self, paint, pretty};
use crate::Status;
use anstream::println;
use faramesh_client::{Client, ClientError};
use faramesh_core::ledger::{verify_chain, BrokenLink, ChainedEvent};
use serde_json::Value;

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
    let mut tally = Tally::default();
    for id in &ids {
        let events = client.events(id).await?;
        let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
        tally.add(&chained);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tally.report(global))
}

/// What the chains checked so far came to.
#[derive(Default)]
struct Tally {
    actions: usize,
    events: usize,
    broken: Vec<BrokenLink>,
}

impl Tally {
    fn add(&mut self, chain: &[ChainedEvent<'_>]) {
        self.actions += 1;
        self.events += chain.len();
        if let Err(link) = verify_chain(chain) {
            self.broken.push(link);
        }
    }

    /// Prints the verdict (every broken link first); failure when any chain is broken.
    fn report(self, global: &Global) -> Status {
        let Tally {
            actions,
            events,
            broken,
        } = self;
        if global.json {
            println!(
                "{}",
                pretty(
                    &serde_json::json!({"actions": actions, "events": events, "broken": broken})
                )
            );
        } else if broken.is_empty() {
            println!(
                "{} {actions} action(s), {events} event(s): every chain is intact",
                paint(output::GOOD, "✓")
            );
        } else {
            for link in &broken {
                println!("{} {link}", paint(output::ERROR, "✗"));
            }
            println!(
                "{} of {actions} action(s) have a broken chain",
                broken.len()
            );
        }
        if broken.is_empty() {
            Status::Success
        } else {
            Status::Failure
        }
    }
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
    let mut tally = Tally::default();
    for (_, events) in &chains {
        tally.add(&chained(events));
    }
    Ok(tally.report(global))
}

/// The chain fields of events as JSON (an export's form). A missing field reads as empty,
/// which breaks the chain where it is missing.
fn chained(events: &[Value]) -> Vec<ChainedEvent<'_>> {
    fn text<'a>(e: &'a Value, key: &str) -> &'a str {
        e[key].as_str().unwrap_or_default()
    }
    events
        .iter()
        .map(|e| ChainedEvent {
            id: text(e, "id"),
            action_id: text(e, "action_id"),
            event_type: text(e, "event_type"),
            created_at: text(e, "created_at"),
            meta: &e["meta"],
            prev_hash: e["prev_hash"].as_str(),
            record_hash: text(e, "record_hash"),
        })
        .collect()
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
        Some(prefix) => {
            let prefix = faramesh_client::normalize_prefix(prefix)?;
            let found = ledger.ids_with_prefix(&prefix, 10).map_err(unusable)?;
            vec![faramesh_client::one_match(prefix, found)?]
        }
    };
    let bar = progress(ids.len(), global);
    let mut tally = Tally::default();
    for id in &ids {
        let events = ledger.chain(id).map_err(unusable)?;
        let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
        tally.add(&chained);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tally.report(global))
}
