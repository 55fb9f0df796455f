//! `faramesh log verify | prove | watch`: the ledger's Merkle log checked as a third party
//! would, with nothing but the verifier key: every event's `record_hash` recomputed from its
//! content, the tree rebuilt from every leaf and compared with a signed checkpoint, an action's
//! events proved included, and a witness that keeps the last checkpoint it saw and refuses any
//! that does not extend it.

use crate::cli::Global;
use crate::output::{self, paint, pretty};
use crate::Status;
use anstream::println;
use faramesh_client::{Client, ClientError};
use faramesh_tlog::tree::{self, leaf_hash, Hash};
use faramesh_tlog::{Checkpoint, Frontier, Verifier};
use std::path::Path;

/// Problems named in full; past these, only counted.
const NAMED_PROBLEMS: usize = 20;

fn usage(detail: impl Into<String>) -> ClientError {
    ClientError::Usage {
        detail: detail.into(),
    }
}

/// The verifier key given as its text (`name+hash+key`) or as a file holding it.
pub fn read_key(given: &str) -> Result<Verifier, ClientError> {
    let text = if Path::new(given).is_file() {
        std::fs::read_to_string(given).map_err(|e| usage(format!("cannot read {given}: {e}")))?
    } else if given.contains('+') {
        given.to_owned()
    } else {
        return Err(usage(format!(
            "{given} is neither a file nor a verifier key (name+hash+key, as `faramesh log keygen` prints)"
        )));
    };
    Verifier::parse(text.trim()).map_err(|e| usage(format!("{given}: not a verifier key: {e}")))
}

/// The checkpoint in a signed note, after checking its signature with `verifier` and that its
/// origin is the key's name. A note that does not verify is a finding, not a usage error.
pub fn open_checkpoint(verifier: &Verifier, note: &str) -> Result<Checkpoint, String> {
    let text = verifier
        .open(note)
        .map_err(|e| format!("the checkpoint is not signed by {}: {e}", verifier.name()))?;
    let checkpoint = Checkpoint::parse(text).map_err(|e| format!("the checkpoint: {e}"))?;
    if checkpoint.origin != verifier.name() {
        return Err(format!(
            "the checkpoint is of the log {:?}, not {:?}",
            checkpoint.origin,
            verifier.name()
        ));
    }
    Ok(checkpoint)
}

/// What a check found, and how it is shown.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    more: usize,
}

impl Findings {
    fn add(&mut self, problem: String) {
        if self.problems.len() < NAMED_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The tree rebuilt leaf by leaf in log order, compared with a checkpoint and, where given,
/// with the hashes the server stored for each leaf (which its proofs are made of).
pub struct TreeCheck {
    frontier: Frontier,
    checkpoint: Checkpoint,
    root_at_checkpoint: Option<Hash>,
    stored_mismatch: Option<u64>,
    findings: Findings,
    content_ok: u64,
}

impl TreeCheck {
    pub fn new(checkpoint: Checkpoint) -> TreeCheck {
        let root_at_checkpoint = (checkpoint.size == 0).then(tree::empty_root);
        TreeCheck {
            frontier: Frontier::empty(),
            checkpoint,
            root_at_checkpoint,
            stored_mismatch: None,
            findings: Findings::default(),
            content_ok: 0,
        }
    }

    /// A problem found while reading the leaves (an event whose content was changed, one
    /// missing from the log).
    pub fn problem(&mut self, problem: String) {
        self.findings.add(problem);
    }

    /// The next leaf: the event at `log_index`, whose `record_hash` is `record_hash` and whose
    /// content `content_holds` says hashes to it; `stored` is the row the server stored for it.
    pub fn leaf(&mut self, log_index: u64, record_hash: &[u8; 32], stored: Option<&[u8]>) {
        let expected = self.frontier.size();
        if log_index != expected {
            self.findings.add(if log_index > expected {
                format!(
                    "leaves {expected}..{log_index} are missing: their events were deleted from the ledger"
                )
            } else {
                format!("leaf {log_index} appears twice")
            });
            // The tree cannot be rebuilt past a hole; what follows is not compared.
            self.frontier = Frontier::empty();
            self.root_at_checkpoint = None;
            self.stored_mismatch.get_or_insert(u64::MAX);
            return;
        }
        let mut row = Vec::with_capacity(64);
        self.frontier.append(leaf_hash(record_hash), &mut row);
        if let Some(stored) = stored {
            if stored != row.as_slice() && self.stored_mismatch.is_none() {
                self.stored_mismatch = Some(log_index);
            }
        }
        if self.frontier.size() == self.checkpoint.size {
            self.root_at_checkpoint = Some(self.frontier.root());
        }
    }

    /// An event whose content hashes to its `record_hash`.
    pub fn content_holds(&mut self) {
        self.content_ok += 1;
    }

    /// The verdict: exit 0 when the checkpoint's root is the root of the first `size` leaves
    /// and nothing else was found.
    pub fn report(mut self, source: &str, global: &Global) -> Status {
        let leaves = self.frontier.size();
        let size = self.checkpoint.size;
        match self.root_at_checkpoint {
            _ if leaves < size && !self.findings.is_empty() => {}
            _ if leaves < size => self.findings.add(format!(
                "the log holds {leaves} leaves, fewer than the checkpoint's {size}: it was truncated"
            )),
            Some(root) if root != self.checkpoint.root => self.findings.add(format!(
                "the root of the first {size} leaves is {}, the checkpoint's is {}: the ledger was changed after it was signed",
                hex::encode(root),
                hex::encode(self.checkpoint.root)
            )),
            _ => {}
        }
        if let Some(index) = self.stored_mismatch.filter(|&i| i != u64::MAX) {
            self.findings.add(format!(
                "the hashes stored for leaf {index} are not the ones its event gives: proofs served from them would not verify"
            ));
        }
        let ok = self.findings.is_empty();
        if global.json {
            let report = serde_json::json!({
                "ok": ok,
                "source": source,
                "checkpoint": {
                    "origin": self.checkpoint.origin,
                    "size": size,
                    "root": hex::encode(self.checkpoint.root),
                },
                "leaves": leaves,
                "root": (self.root_at_checkpoint.is_some()).then(|| hex::encode(self.frontier.root())),
                "events_checked": self.content_ok,
                "problems": self.findings.problems,
                "more_problems": self.findings.more,
            });
            println!("{}", pretty(&report));
        } else {
            let mark = |good: bool| {
                if good {
                    paint(output::GOOD, "✓")
                } else {
                    paint(output::ERROR, "✗")
                }
            };
            println!(
                "{} checkpoint signed by {}: {size} leaves, root {}",
                mark(true),
                self.checkpoint.origin,
                hex::encode(self.checkpoint.root)
            );
            println!(
                "{} {} events read from {source}, each hashing to its record_hash",
                mark(self.content_ok == leaves && ok),
                self.content_ok
            );
            for problem in &self.findings.problems {
                println!("{} {problem}", mark(false));
            }
            if self.findings.more > 0 {
                println!("{} … and {} more problems", mark(false), self.findings.more);
            }
            if ok {
                println!(
                    "{} the first {size} of {leaves} leaves give the checkpoint's root",
                    mark(true)
                );
            }
        }
        if ok {
            Status::Success
        } else {
            Status::Failure
        }
    }
}

/// The 32 bytes of a `record_hash`, or a finding naming the event.
pub fn record_bytes(record_hash: &str, event_id: &str) -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(record_hash, &mut bytes)
        .map_err(|_| format!("event {event_id} has a record_hash that is not 64 hex digits"))?;
    Ok(bytes)
}

/// Whether an event's content hashes to its `record_hash`: `None` when it does, else the
/// finding.
pub fn content_problem(
    event: &faramesh_core::ledger::ChainedEvent<'_>,
    log_index: u64,
) -> Option<String> {
    match faramesh_core::hash::event_record_hash(
        event.id,
        event.action_id,
        event.event_type,
        event.created_at,
        event.meta,
        event.prev_hash,
    ) {
        Ok(hash) if hash == event.record_hash => None,
        Ok(hash) => Some(format!(
            "event {} (log_index {log_index}, action {}) was changed: its content hashes to {hash}, not its record_hash {}",
            event.id, event.action_id, event.record_hash
        )),
        Err(e) => Some(format!(
            "event {} (log_index {log_index}) has no canonical form: {e}",
            event.id
        )),
    }
}

/// The checkpoint to check against: the file given, else the one the source keeps.
pub fn checkpoint_note(given: Option<&Path>, kept: Option<String>) -> Result<String, ClientError> {
    match given {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| usage(format!("cannot read {}: {e}", file.display()))),
        None => kept.ok_or_else(|| {
            usage("no checkpoint to check against: pass --checkpoint FILE (from GET /v1/log/checkpoint)")
        }),
    }
}

/// Reads a whole-number field of a JSON record.
pub fn index_of(value: &serde_json::Value) -> Option<u64> {
    value.get("log_index").and_then(serde_json::Value::as_u64)
}

/// The verdict when the checkpoint itself does not verify.
pub fn bad_checkpoint(problem: &str, global: &Global) -> Status {
    if global.json {
        println!(
            "{}",
            pretty(&serde_json::json!({"ok": false, "problems": [problem]}))
        );
    } else {
        println!("{} {problem}", paint(output::ERROR, "✗"));
    }
    Status::Failure
}

/// `log verify --url`: the events of every action from the API, each recomputed, placed by
/// their `log_index`, and the server's leaves compared with them.
pub async fn verify_server(
    client: &Client,
    verifier: &Verifier,
    checkpoint_file: Option<&Path>,
    global: &Global,
) -> Result<Status, ClientError> {
    // The checkpoint first: every event it covers was committed before it was signed, so the
    // listing below finds it.
    let note = checkpoint_note(checkpoint_file, Some(client.log_checkpoint().await?))?;
    let checkpoint = match open_checkpoint(verifier, &note) {
        Ok(c) => c,
        Err(problem) => return Ok(bad_checkpoint(&problem, global)),
    };
    let mut check = TreeCheck::new(checkpoint);
    let mut by_index: std::collections::BTreeMap<u64, [u8; 32]> = Default::default();
    let actions = client.list_all().await?;
    for action in &actions {
        for event in client.events(&action.id).await? {
            let Some(index) = event.log_index else {
                check.problem(format!(
                    "event {} of action {} is not in the log",
                    event.id, action.id
                ));
                continue;
            };
            match content_problem(&event.chained(), index) {
                Some(problem) => check.problem(problem),
                None => check.content_holds(),
            }
            match record_bytes(&event.record_hash, &event.id) {
                Ok(bytes) => {
                    if by_index.insert(index, bytes).is_some() {
                        check.problem(format!("two events have log_index {index}"));
                    }
                }
                Err(problem) => check.problem(problem),
            }
        }
    }
    // The server's own leaves must be the events' record hashes.
    let mut start = 0;
    loop {
        let end = start + faramesh_storage::MAX_LEAVES;
        let page = client.log_leaves(start, end).await?;
        for leaf in &page {
            if let Some(bytes) = by_index.get(&leaf.log_index) {
                if hex::encode(bytes) != leaf.record_hash {
                    check.problem(format!(
                        "the server's leaf {} is {}, but its event's record_hash is {}",
                        leaf.log_index,
                        leaf.record_hash,
                        hex::encode(bytes)
                    ));
                }
            }
        }
        if (page.len() as u64) < faramesh_storage::MAX_LEAVES {
            break;
        }
        start = end;
    }
    for (index, bytes) in &by_index {
        check.leaf(*index, bytes, None);
    }
    Ok(check.report(client.base_url(), global))
}

/// `log verify --file`: an export of `faramesh audit export`, with the checkpoint it carries.
pub fn verify_export(
    file: &Path,
    verifier: &Verifier,
    checkpoint_file: Option<&Path>,
    global: &Global,
) -> Result<Status, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
    let mut kept = None;
    let mut events = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: serde_json::Value =
            serde_json::from_str(line).map_err(|e| ClientError::Invalid {
                detail: format!("{} line {}: not JSON ({e})", file.display(), n + 1),
            })?;
        match record["record"].as_str() {
            Some("event") => events.push(record),
            Some("checkpoint") => kept = record["note"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    let note = checkpoint_note(checkpoint_file, kept)?;
    let checkpoint = match open_checkpoint(verifier, &note) {
        Ok(c) => c,
        Err(problem) => return Ok(bad_checkpoint(&problem, global)),
    };
    let mut check = TreeCheck::new(checkpoint);
    let mut by_index: std::collections::BTreeMap<u64, [u8; 32]> = Default::default();
    let text_of = |e: &'_ serde_json::Value, key: &str| e[key].as_str().map(str::to_owned);
    for event in &events {
        let id = text_of(event, "id").unwrap_or_default();
        let Some(index) = index_of(event) else {
            check.problem(format!("event {id} has no log_index"));
            continue;
        };
        let chained = faramesh_core::ledger::ChainedEvent {
            id: event["id"].as_str().unwrap_or_default(),
            action_id: event["action_id"].as_str().unwrap_or_default(),
            event_type: event["event_type"].as_str().unwrap_or_default(),
            created_at: event["created_at"].as_str().unwrap_or_default(),
            meta: &event["meta"],
            prev_hash: event["prev_hash"].as_str(),
            record_hash: event["record_hash"].as_str().unwrap_or_default(),
        };
        match content_problem(&chained, index) {
            Some(problem) => check.problem(problem),
            None => check.content_holds(),
        }
        match record_bytes(chained.record_hash, &id) {
            Ok(bytes) => {
                if by_index.insert(index, bytes).is_some() {
                    check.problem(format!("two events have log_index {index}"));
                }
            }
            Err(problem) => check.problem(problem),
        }
    }
    for (index, bytes) in &by_index {
        check.leaf(*index, bytes, None);
    }
    Ok(check.report(&file.display().to_string(), global))
}

/// `log verify --db`: the SQLite file read directly, in log order, with the hashes the server
/// stored for each leaf compared too.
pub fn verify_db(
    db: &Path,
    verifier: &Verifier,
    checkpoint_file: Option<&Path>,
    global: &Global,
) -> Result<Status, ClientError> {
    let unusable = |e: faramesh_storage::StoreError| {
        usage(format!(
            "{e}; pass the server's database file (FARA_SQLITE_PATH, default data/actions.db)"
        ))
    };
    let ledger = faramesh_storage::LedgerFile::open(db).map_err(unusable)?;
    let status = ledger
        .snapshot(|ledger| {
            let kept = ledger.latest_checkpoint_note()?;
            let note = match checkpoint_note(checkpoint_file, kept) {
                Ok(note) => note,
                Err(e) => return Ok(Err(e)),
            };
            let checkpoint = match open_checkpoint(verifier, &note) {
                Ok(c) => c,
                Err(problem) => return Ok(Ok(bad_checkpoint(&problem, global))),
            };
            let mut check = TreeCheck::new(checkpoint);
            let outside = ledger.events_outside_log()?;
            if outside > 0 {
                check.problem(format!(
                    "{outside} events are not in the log: they were added to the ledger behind the server's back"
                ));
            }
            let bar = indicatif::ProgressBar::new(ledger.log_rows()?);
            if global.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            ledger.scan_log(|row| {
                match content_problem(&row.event.chained(), row.log_index) {
                    Some(problem) => check.problem(problem),
                    None => check.content_holds(),
                }
                match record_bytes(&row.event.record_hash, &row.event.id) {
                    Ok(bytes) => check.leaf(row.log_index, &bytes, Some(&row.hashes)),
                    Err(problem) => check.problem(problem),
                }
                bar.inc(1);
            })?;
            bar.finish_and_clear();
            Ok(Ok(check.report(&db.display().to_string(), global)))
        })
        .map_err(unusable)?;
    status
}

/// `log prove`: each event of the action recomputed from its content and proved included in a
/// signed checkpoint.
pub async fn prove(
    client: &Client,
    id: &str,
    key: Option<&str>,
    checkpoint_file: Option<&Path>,
    wait: std::time::Duration,
    global: &Global,
) -> Result<Status, ClientError> {
    let verifier = match key {
        Some(key) => read_key(key)?,
        None => {
            if !global.json {
                crate::output::note(
                    "no --key: using the server's own key, which proves only that the server agrees with itself",
                );
            }
            Verifier::parse(&client.log_key().await?)
                .map_err(|e| ClientError::Decode(format!("the server's verifier key: {e}")))?
        }
    };
    let id = client.resolve(id).await?;
    let events = client.events(&id).await?;
    let needed = events
        .iter()
        .filter_map(|e| e.log_index)
        .max()
        .map_or(0, |i| i + 1);
    let deadline = tokio::time::Instant::now() + wait;
    // The checkpoint that covers every event: the one given, or the server's latest, awaited
    // while a new action's events are not covered yet.
    let checkpoint = loop {
        let note = checkpoint_note(
            checkpoint_file,
            match checkpoint_file {
                Some(_) => None,
                None => Some(client.log_checkpoint().await?),
            },
        )?;
        let checkpoint = match open_checkpoint(&verifier, &note) {
            Ok(c) => c,
            Err(problem) => return Ok(bad_checkpoint(&problem, global)),
        };
        if checkpoint.size >= needed
            || checkpoint_file.is_some()
            || tokio::time::Instant::now() >= deadline
        {
            break checkpoint;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let mut results = Vec::new();
    let mut ok = true;
    for event in &events {
        let verdict = prove_event(client, event, &checkpoint).await?;
        ok &= verdict.is_ok();
        results.push((event, verdict));
    }
    if global.json {
        let report = serde_json::json!({
            "ok": ok,
            "action_id": id,
            "checkpoint": {"origin": checkpoint.origin, "size": checkpoint.size, "root": hex::encode(checkpoint.root)},
            "events": results.iter().map(|(e, v)| serde_json::json!({
                "id": e.id,
                "event_type": e.event_type,
                "log_index": e.log_index,
                "included": v.is_ok(),
                "problem": v.as_ref().err(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", pretty(&report));
    } else {
        for (event, verdict) in &results {
            match verdict {
                Ok(()) => println!(
                    "{} {} (log_index {}) is in checkpoint {}",
                    paint(output::GOOD, "✓"),
                    event.event_type,
                    event.log_index.unwrap_or_default(),
                    checkpoint.size
                ),
                Err(problem) => println!(
                    "{} {}: {problem}",
                    paint(output::ERROR, "✗"),
                    event.event_type
                ),
            }
        }
    }
    Ok(if ok { Status::Success } else { Status::Failure })
}

async fn prove_event(
    client: &Client,
    event: &faramesh_client::Event,
    checkpoint: &Checkpoint,
) -> Result<Result<(), String>, ClientError> {
    let Some(index) = event.log_index else {
        return Ok(Err("not in the log".into()));
    };
    if let Some(problem) = content_problem(&event.chained(), index) {
        return Ok(Err(problem));
    }
    if index >= checkpoint.size {
        return Ok(Err(format!(
            "log_index {index} is not covered by checkpoint {} yet; try again in a few seconds",
            checkpoint.size
        )));
    }
    let record = match record_bytes(&event.record_hash, &event.id) {
        Ok(bytes) => bytes,
        Err(problem) => return Ok(Err(problem)),
    };
    let proof = client.inclusion_proof(index, checkpoint.size).await?;
    let hashes = match proof
        .hashes
        .iter()
        .map(|h| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(h, &mut bytes).map(|()| bytes)
        })
        .collect::<Result<Vec<Hash>, _>>()
    {
        Ok(hashes) => hashes,
        Err(_) => return Ok(Err("the server's proof holds a hash that is not hex".into())),
    };
    Ok(tree::check_inclusion(&hashes, checkpoint.size, &checkpoint.root, index, &leaf_hash(&record))
        .map_err(|_| {
            format!(
                "the inclusion proof of log_index {index} does not lead to the root of checkpoint {}: the server's log is not the one it signed",
                checkpoint.size
            )
        }))
}
