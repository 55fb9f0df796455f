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
    /// A hole was found: the tree is not rebuilt past it.
    broken: bool,
    /// Events found that no leaf holds.
    outside: u64,
    /// The hashes the leaf being added stores, to compare with the server's.
    row: Vec<u8>,
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
            broken: false,
            outside: 0,
            row: Vec::with_capacity(32 * 64),
        }
    }

    /// A problem found while reading the leaves (an event whose content was changed, one
    /// missing from the log).
    pub fn problem(&mut self, problem: String) {
        self.findings.add(problem);
    }

    /// The next leaf: the event at `log_index`, whose `record_hash` is `record_hash`; `stored`
    /// is the subtree roots the server stored for it.
    pub fn leaf(&mut self, log_index: u64, record_hash: &[u8; 32], stored: Option<&[u8]>) {
        self.leaf_hashed(log_index, Some(leaf_hash(record_hash)), stored);
    }

    /// [`TreeCheck::leaf`] with the leaf's hash computed already; `None` when the leaf's event
    /// is gone, which leaves a hole the tree cannot be rebuilt past.
    pub fn leaf_hashed(&mut self, log_index: u64, leaf: Option<Hash>, stored: Option<&[u8]>) {
        let Some(leaf) = leaf else {
            self.findings.add(format!(
                "the event of leaf {log_index} is gone: it was deleted from the ledger"
            ));
            self.break_tree();
            return;
        };
        if self.broken {
            return;
        }
        let expected = self.frontier.size();
        if log_index != expected {
            self.findings.add(if log_index > expected {
                format!(
                    "leaves {expected}..{log_index} are missing: their events were deleted from the ledger"
                )
            } else {
                format!("leaf {log_index} appears twice")
            });
            self.break_tree();
            return;
        }
        self.row.clear();
        self.frontier.append(leaf, &mut self.row);
        // The server keeps the subtree roots; the leaf's own hash comes from its event.
        if let Some(stored) = stored {
            if stored != self.row.get(32..).unwrap_or_default() && self.stored_mismatch.is_none() {
                self.stored_mismatch = Some(log_index);
            }
        }
        if self.frontier.size() == self.checkpoint.size {
            self.root_at_checkpoint = Some(self.frontier.root());
        }
    }

    /// After a hole the tree cannot be rebuilt: what follows is not compared, and the leaves
    /// are not counted on.
    fn break_tree(&mut self) {
        self.broken = true;
        self.root_at_checkpoint = None;
        self.stored_mismatch.get_or_insert(u64::MAX);
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
            _ if self.broken || (leaves < size && !self.findings.is_empty()) => {}
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
    crate::verify::hash_of_hex(record_hash).ok_or_else(|| {
        format!("event {event_id} has a record_hash that is not 64 lower-case hex digits")
    })
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

/// Events read out of log order (from the API or an export): each one's content checked, and
/// its `record_hash` placed at its `log_index` for the tree to be rebuilt in order afterwards.
type Placed = std::collections::BTreeMap<u64, [u8; 32]>;

fn place(
    check: &mut TreeCheck,
    placed: &mut Placed,
    index: u64,
    event: &faramesh_core::ledger::ChainedEvent<'_>,
) {
    match content_problem(event, index) {
        Some(problem) => check.problem(problem),
        None => check.content_holds(),
    }
    match record_bytes(event.record_hash, event.id) {
        Ok(bytes) => {
            if placed.insert(index, bytes).is_some() {
                check.problem(format!("two events have log_index {index}"));
            }
        }
        Err(problem) => check.problem(problem),
    }
}

/// Rebuilds the tree from the placed events, in log order.
fn add_placed(check: &mut TreeCheck, placed: &Placed) {
    for (index, bytes) in placed {
        check.leaf(*index, bytes, None);
    }
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
    let mut by_index = Placed::new();
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
            place(&mut check, &mut by_index, index, &event.chained());
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
    add_placed(&mut check, &by_index);
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
    let mut placed = Placed::new();
    let chained = crate::verify::chained(&events);
    for (record, event) in events.iter().zip(&chained) {
        match record.get("log_index").and_then(serde_json::Value::as_u64) {
            Some(index) => place(&mut check, &mut placed, index, event),
            None => check.problem(format!("event {} has no log_index", event.id)),
        }
    }
    add_placed(&mut check, &placed);
    Ok(check.report(&file.display().to_string(), global))
}

/// Leaves per batch handed to a hashing thread.
const LOG_BATCH: usize = 16_384;

/// What a hashing thread found for one leaf: its leaf hash (`None` when its event is gone) and
/// a problem with its event.
struct LeafHashed {
    leaf: Option<Hash>,
    problem: Option<String>,
}

/// Canonical texts of metas, by their stored text, at most this many per hashing thread. Many
/// events share a meta (every `created` event of one decision and risk level), and
/// canonicalizing was a fifth of `log verify`'s time.
const META_CACHE: usize = 4096;

/// Canonical metas by stored text. Hashed with foldhash: the key is looked up for every event,
/// and the standard SipHash cost as much as a tenth of the rest of an event's check.
type MetaCache = std::collections::HashMap<String, String, foldhash::fast::FixedState>;

/// Recomputes each event's `record_hash` from its content and each leaf's hash.
fn hash_leaves(
    batch: &faramesh_storage::sqlite::LogBatch,
    cache: &mut MetaCache,
) -> Vec<LeafHashed> {
    let mut events = batch.events.iter();
    let mut text = String::with_capacity(512);
    batch
        .leaves()
        .map(|leaf| {
            let event = if leaf.has_event { events.next() } else { None };
            let Some(e) = event else {
                return LeafHashed {
                    leaf: None,
                    problem: None,
                };
            };
            let stored = match record_bytes(e.record_hash, e.id) {
                Ok(bytes) => bytes,
                Err(problem) => {
                    return LeafHashed {
                        leaf: Some(tree::empty_root()),
                        problem: Some(problem),
                    }
                }
            };
            let digest = |text: &mut String, canonical: &str| {
                faramesh_core::hash::event_record_digest_of_canonical_meta(
                    text,
                    e.id,
                    e.action_id,
                    e.event_type,
                    e.created_at,
                    canonical,
                    e.prev_hash,
                )
            };
            let recomputed = match cache.get(e.meta) {
                Some(canonical) => Some(digest(&mut text, canonical)),
                None => {
                    let meta = faramesh_storage::sqlite::meta_value(e.meta);
                    faramesh_core::json::canonical_string(&meta)
                        .ok()
                        .map(|canonical| {
                            let hashed = digest(&mut text, &canonical);
                            if cache.len() < META_CACHE {
                                cache.insert(e.meta.to_owned(), canonical);
                            }
                            hashed
                        })
                }
            };
            let problem = if recomputed == Some(stored) {
                None
            } else {
                let meta = faramesh_storage::sqlite::meta_value(e.meta);
                content_problem(
                    &faramesh_core::ledger::ChainedEvent {
                        id: e.id,
                        action_id: e.action_id,
                        event_type: e.event_type,
                        created_at: e.created_at,
                        meta: &meta,
                        prev_hash: e.prev_hash,
                        record_hash: e.record_hash,
                    },
                    leaf.log_index,
                )
            };
            LeafHashed {
                leaf: Some(leaf_hash(&stored)),
                problem,
            }
        })
        .collect()
}

/// `log verify --db`: the SQLite file read directly, in log order, with the hashes the server
/// stored for each leaf compared too. One thread reads, one per core recomputes the events'
/// hashes, and the tree is rebuilt in log order as the batches come back.
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
    let kept = ledger.latest_checkpoint_note().map_err(unusable)?;
    let note = checkpoint_note(checkpoint_file, kept)?;
    let checkpoint = match open_checkpoint(verifier, &note) {
        Ok(c) => c,
        Err(problem) => return Ok(bad_checkpoint(&problem, global)),
    };
    let bar = indicatif::ProgressBar::new(ledger.log_rows().map_err(unusable)?);
    if global.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (to_hash, hash_queue) =
        std::sync::mpsc::channel::<(usize, faramesh_storage::sqlite::LogBatch)>();
    let hash_queue = std::sync::Mutex::new(hash_queue);
    let (to_tree, tree_queue) =
        std::sync::mpsc::channel::<(usize, faramesh_storage::sqlite::LogBatch, Vec<LeafHashed>)>();
    // Batches read but not in the tree yet, at most: reading waits for a free one.
    let (in_flight, done) = std::sync::mpsc::sync_channel::<()>(threads * 4);
    let (read, check) = std::thread::scope(|scope| {
        for _ in 0..threads {
            let (queue, to_tree) = (&hash_queue, to_tree.clone());
            scope.spawn(move || {
                let mut cache = MetaCache::default();
                loop {
                    let next = queue.lock().map(|q| q.recv());
                    let Ok(Ok((n, batch))) = next else { break };
                    let hashed = hash_leaves(&batch, &mut cache);
                    if to_tree.send((n, batch, hashed)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(to_tree);
        let bar = &bar;
        let builder = scope.spawn(move || {
            let mut check = TreeCheck::new(checkpoint);
            let mut waiting = std::collections::BTreeMap::new();
            let mut next = 0;
            for (n, batch, hashed) in tree_queue {
                waiting.insert(n, (batch, hashed));
                while let Some((batch, hashed)) = waiting.remove(&next) {
                    if batch.outside > 0 {
                        check.outside += batch.outside;
                    }
                    for (leaf, found) in batch.leaves().zip(hashed) {
                        match found.problem {
                            Some(problem) => check.problem(problem),
                            None if found.leaf.is_some() => check.content_holds(),
                            None => {}
                        }
                        check.leaf_hashed(leaf.log_index, found.leaf, Some(leaf.nodes));
                    }
                    bar.inc(batch.leaves().len() as u64);
                    next += 1;
                    let _ = done.recv();
                }
            }
            check
        });
        let n = std::cell::Cell::new(0);
        let read = ledger.scan_log(LOG_BATCH, |batch| {
            // Both fail only if the tree thread panicked, which the scope reports.
            let _ = in_flight.send(());
            let _ = to_hash.send((n.get(), batch));
            n.set(n.get() + 1);
            Ok(())
        });
        drop(to_hash);
        drop(in_flight);
        (read, builder.join())
    });
    bar.finish_and_clear();
    read.map_err(unusable)?;
    let mut check = match check {
        Ok(check) => check,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if check.outside > 0 {
        let outside = check.outside;
        check.problem(format!(
            "{outside} events are not in the log: they were added to the ledger behind the server's back"
        ));
    }
    Ok(check.report(&db.display().to_string(), global))
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
