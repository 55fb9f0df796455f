//! `faramesh verify-log`: recompute hash chains from a server, a database file or an export,
//! and check that each action row is the one its chain describes (its params and context hash
//! to the `request_hash` of its decision, its status is the one its last event implies).

use crate::cli::Global;
use crate::output::{self, paint, pretty};
use crate::Status;
use anstream::println;
use faramesh_client::{Action, Client, ClientError, Event};
use faramesh_core::hash::event_record_hash;
use faramesh_core::ledger::{
    recorded_request_hash, row_request_hash, row_request_hash_of_values, status_effect,
    verify_action, verify_binding, ActionFacts, BindingProblem, BrokenLink, ChainedEvent,
    LedgerProblem, StatusEffect,
};
use faramesh_core::ActionStatus;
use faramesh_storage::sqlite::{meta_value, ActionRows, Events};
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
    let actions = if all {
        client.list_all().await?
    } else {
        vec![
            client
                .get(&client.resolve(id.unwrap_or_default()).await?)
                .await?,
        ]
    };
    let bar = progress(actions.len(), global);
    let mut tally = Tally::default();
    for action in actions {
        let events = client.events(&action.id).await?;
        let (action, events) = settled(client, action, events).await?;
        let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
        tally.add(&facts(&action), &chained);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tally.report(global))
}

/// The facts of an action as the API returns it.
fn facts(a: &Action) -> ActionFacts<'_> {
    ActionFacts {
        id: &a.id,
        request_hash: row_request_hash(
            &a.agent_id,
            &a.tool,
            &a.operation,
            a.params.map(),
            a.context.map(),
        ),
        status: a.status.as_str(),
    }
}

/// An action and its events as of one moment. The action and its events come from separate
/// requests, so an action that moved on in between (started, say) would look rewritten: when
/// they do not agree, both are read again — events, action, events — until no event was
/// added meanwhile (the row and its event are written in one transaction), a few times at most.
pub async fn settled(
    client: &Client,
    mut action: Action,
    mut events: Vec<Event>,
) -> Result<(Action, Vec<Event>), ClientError> {
    for _ in 0..3 {
        let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
        if verify_binding(&facts(&action), &chained).is_ok() {
            break;
        }
        let before = client.events(&action.id).await?;
        let fresh = client.get(&action.id).await?;
        let after = client.events(&action.id).await?;
        let still = before.len() == after.len();
        (action, events) = (fresh, after);
        if still {
            break;
        }
    }
    Ok((action, events))
}

/// What the actions checked so far came to: for each, its chain's first broken link, or else
/// the first way its row is not the one its chain describes.
#[derive(Default)]
struct Tally {
    actions: usize,
    events: usize,
    broken: Vec<BrokenLink>,
    unbound: Vec<BindingProblem>,
}

impl Tally {
    fn add(&mut self, action: &ActionFacts<'_>, chain: &[ChainedEvent<'_>]) {
        self.actions += 1;
        self.events += chain.len();
        self.judge(action, chain);
    }

    /// The verdict on one action, without counting it.
    fn judge(&mut self, action: &ActionFacts<'_>, chain: &[ChainedEvent<'_>]) {
        match verify_action(action, chain) {
            Err(LedgerProblem::Broken(link)) => self.broken.push(link),
            Err(LedgerProblem::Unbound(problem)) => self.unbound.push(problem),
            Ok(()) => {}
        }
    }

    /// Prints the verdict (every problem first); failure when any action has one.
    fn report(self, global: &Global) -> Status {
        let Tally {
            actions,
            events,
            broken,
            unbound,
        } = self;
        let intact = broken.is_empty() && unbound.is_empty();
        if global.json {
            println!(
                "{}",
                pretty(&serde_json::json!({
                    "actions": actions,
                    "events": events,
                    "broken": broken,
                    "unbound": unbound,
                }))
            );
        } else if intact {
            println!(
                "{} {actions} action(s), {events} event(s): every chain is intact and every action is the one its chain describes",
                paint(output::GOOD, "✓")
            );
        } else {
            for link in &broken {
                println!("{} {link}", paint(output::ERROR, "✗"));
            }
            for problem in &unbound {
                println!("{} {problem}", paint(output::ERROR, "✗"));
            }
            if !unbound.is_empty() {
                println!(
                    "{} of {actions} action(s) do not match their ledger: the row was changed, added or left without its events outside the server",
                    unbound.len()
                );
            }
            if !broken.is_empty() {
                println!(
                    "{} of {actions} action(s) have a broken chain",
                    broken.len()
                );
            }
        }
        if intact {
            Status::Success
        } else {
            Status::Failure
        }
    }
}

/// Verifies the chains in an export file.
pub fn verify_file(file: &std::path::Path, global: &Global) -> Result<Status, ClientError> {
    let invalid = |detail: String| ClientError::Invalid { detail };
    // A file that cannot be read is not a finding: nothing could be checked (exit 2).
    let text = std::fs::read_to_string(file).map_err(|e| ClientError::Usage {
        detail: format!("cannot read {}: {e}", file.display()),
    })?;
    // Each action record with its events.
    let mut chains: Vec<(Value, Vec<Value>)> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Value = serde_json::from_str(line)
            .map_err(|e| invalid(format!("{} line {}: not JSON ({e})", file.display(), n + 1)))?;
        match record["record"].as_str() {
            Some("action") => chains.push((record, Vec::new())),
            // The log's checkpoint, which `faramesh log verify --file` checks.
            Some("checkpoint") => {}
            Some("event") => {
                let action_id = record["action_id"].as_str().unwrap_or_default().to_owned();
                match chains
                    .iter_mut()
                    .rev()
                    .find(|(action, _)| action["id"].as_str() == Some(&action_id))
                {
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
    for (action, events) in &chains {
        tally.add(&exported_facts(action), &chained(events));
    }
    Ok(tally.report(global))
}

/// The facts of an exported action record (the API's form of the row). A missing field reads
/// as empty, which does not match the ledger.
fn exported_facts(action: &Value) -> ActionFacts<'_> {
    let text = |key: &str| action[key].as_str().unwrap_or_default();
    ActionFacts {
        id: text("id"),
        request_hash: row_request_hash_of_values(
            text("agent_id"),
            text("tool"),
            text("operation"),
            &action["params"],
            &action["context"],
        ),
        status: text("status"),
    }
}

/// The chain fields of events as JSON (an export's form). A missing field reads as empty,
/// which breaks the chain where it is missing.
pub(crate) fn chained(events: &[Value]) -> Vec<ChainedEvent<'_>> {
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
    let unusable = |e: faramesh_storage::StoreError| ClientError::Usage {
        detail: format!(
            "{e}; pass the server's database file (FARA_SQLITE_PATH, default data/actions.db)"
        ),
    };
    let ledger = faramesh_storage::LedgerFile::open(db).map_err(unusable)?;
    let Some(prefix) = id else {
        return verify_db_all(&ledger, global).map_err(unusable);
    };
    let prefix = faramesh_client::normalize_prefix(prefix)?;
    let found = ledger.ids_with_prefix(&prefix, 10).map_err(unusable)?;
    let id = faramesh_client::one_match(prefix, found)?;
    let (row, events) = ledger
        .snapshot(|ledger| Ok((ledger.action(&id)?, ledger.chain(&id)?)))
        .map_err(unusable)?;
    let Some(row) = row else {
        return Err(ClientError::NotFound {
            detail: format!("action {id} is no longer in {}", db.display()),
        });
    };
    let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
    let mut tally = Tally::default();
    tally.add(&row.facts(), &chained);
    Ok(tally.report(global))
}

/// Events (or action rows) per batch handed to a hashing thread.
const BATCH_EVENTS: usize = 4096;

/// A batch of what the file holds, in the order it was read: every action row first, then
/// every event.
enum Batch {
    Rows(ActionRows),
    Events(Events),
}

/// A batch with what the hashing threads computed for each of its rows or events.
enum Hashed {
    Rows(ActionRows, Vec<RowHashed>),
    Events(Events, Vec<EventHashed>),
}

/// Every chain of the file, and every action row against it, in one sequential pass over the
/// file: the reading thread hands batches of rows, then of events, to hashing threads (one per
/// core), which recompute each row's `request_hash` and each event's `record_hash`; one linking
/// thread then takes the batches back in order, follows each action's chain and compares it
/// with its row. The verdicts are those of `verify_chain` and `verify_binding` over each
/// action's events, action by action: an action whose row the pass finds at odds with its chain
/// is read again on its own and judged by `verify_binding` itself, which names the problem.
fn verify_db_all(
    ledger: &faramesh_storage::LedgerFile,
    global: &Global,
) -> Result<Status, faramesh_storage::StoreError> {
    // One snapshot for the pass and for reading the actions it flags again.
    let tally = ledger.snapshot(|ledger| {
        let (mut tally, flagged) = one_pass(ledger, global)?;
        for pos in flagged {
            let Some(row) = ledger.action_at(pos)? else {
                continue;
            };
            let events = ledger.chain(&row.id)?;
            let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
            tally.judge(&row.facts(), &chained);
        }
        Ok(tally)
    })?;
    Ok(tally.report(global))
}

/// The pass of [`verify_db_all`]: its tally of broken chains, and the positions of the actions
/// whose row does not agree with their intact chain, in order.
fn one_pass(
    ledger: &faramesh_storage::LedgerFile,
    global: &Global,
) -> Result<(Tally, Vec<i64>), faramesh_storage::StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (to_hash, hash_queue) = std::sync::mpsc::channel::<(usize, Batch)>();
    let hash_queue = std::sync::Mutex::new(hash_queue);
    let (to_link, link_queue) = std::sync::mpsc::channel::<(usize, Hashed)>();
    let (chains_tx, chains_rx) = std::sync::mpsc::channel::<Links>();
    // Batches read but not linked yet, at most: reading waits for a free one.
    let (in_flight, linked) = std::sync::mpsc::sync_channel::<()>(threads * 4);
    let last_seq = ledger.last_seq()?;
    let (read, tally) = std::thread::scope(|scope| {
        for _ in 0..threads {
            let (queue, to_link) = (&hash_queue, to_link.clone());
            scope.spawn(move || loop {
                // The lock is held only to take the next batch.
                let next = queue.lock().map(|q| q.recv());
                let Ok(Ok((n, batch))) = next else { break };
                let hashed = match batch {
                    Batch::Rows(rows) => {
                        let hashed = hash_rows(&rows);
                        Hashed::Rows(rows, hashed)
                    }
                    Batch::Events(events) => {
                        let hashed = recompute(&events);
                        Hashed::Events(events, hashed)
                    }
                };
                if to_link.send((n, hashed)).is_err() {
                    break;
                }
            });
        }
        drop(to_link);
        let linker = scope.spawn(move || {
            let Ok(mut links) = chains_rx.recv() else {
                return None;
            };
            links.bar.set_length(u64::try_from(last_seq).unwrap_or(0));
            // Batches come back from the hashing threads in any order; they are linked in the
            // order they were read.
            let mut waiting = std::collections::BTreeMap::new();
            let mut next = 0;
            for (n, hashed) in link_queue {
                waiting.insert(n, hashed);
                while let Some(hashed) = waiting.remove(&next) {
                    match hashed {
                        Hashed::Rows(rows, hashed) => links.rows(&rows, &hashed),
                        Hashed::Events(events, hashed) => links.follow(&events, &hashed),
                    }
                    next += 1;
                    let _ = linked.recv();
                }
            }
            Some(links.finish())
        });
        // Rows and events are numbered in one sequence, the order they are linked in.
        let n = std::cell::Cell::new(0);
        let hand_over = |batch: Batch| {
            // Both fail only if the linking thread panicked, which the scope reports.
            let _ = in_flight.send(());
            let _ = to_hash.send((n.get(), batch));
            n.set(n.get() + 1);
            Ok(())
        };
        let read = ledger.scan(
            BATCH_EVENTS,
            |positions| {
                let links = Links::new(positions, global);
                // The linking thread is gone only if it panicked, which the scope reports.
                let _ = chains_tx.send(links);
                Ok(())
            },
            |rows| hand_over(Batch::Rows(rows)),
            |events| hand_over(Batch::Events(events)),
        );
        drop(to_hash);
        drop(chains_tx);
        drop(in_flight);
        (read, linker.join())
    });
    read?;
    match tally {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Ok((Tally::default(), Vec::new())),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Bytes of a row's `request_hash` the pass compares with its decision's. Half of the hash
/// keeps a forged row out of reach (finding params whose hash shares 128 bits with a given one
/// takes about 2^128 attempts) at half the memory per action; a row that passes this way is
/// bound, and one that fails is judged again in full.
const COMPARED: usize = 16;

/// An action row's `request_hash` (its first [`COMPARED`] bytes) and status, from the hashing
/// threads.
struct RowHashed {
    /// `None` when its fields have no hash.
    hash: Option<[u8; COMPARED]>,
    status: u8,
}

/// Codes of statuses in the pass: the index in `ActionStatus::ALL`, or one of these.
const NO_STATUS: u8 = u8::MAX;
const UNKNOWN_STATUS: u8 = u8::MAX - 1;

fn status_code(status: ActionStatus) -> u8 {
    ActionStatus::ALL
        .iter()
        .position(|s| *s == status)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(UNKNOWN_STATUS)
}

fn hash_rows(rows: &ActionRows) -> Vec<RowHashed> {
    rows.iter()
        .map(|row| {
            let hash = faramesh_core::ledger::row_request_hash_of_text(
                row.agent_id,
                row.tool,
                row.operation,
                row.params,
                row.context,
            );
            RowHashed {
                hash: hash.ok().and_then(|h| hash_bytes(&h)),
                status: ActionStatus::parse(row.status).map_or(UNKNOWN_STATUS, status_code),
            }
        })
        .collect()
}

/// What an event's `decision_made` meta records as its `request_hash`.
#[derive(Clone, Copy)]
enum Recorded {
    /// Not a `decision_made` event.
    Nothing,
    /// Null: the request had no canonical form.
    Null,
    Hash([u8; COMPARED]),
    /// Something no row can hash to.
    Invalid,
}

/// For each event: `None` when its stored `record_hash` is the one recomputed from its fields,
/// else what was expected; and what it does to its action's status and records of its request.
struct EventHashed {
    expected: Option<String>,
    /// A status code, `NO_STATUS` when it keeps the status, `UNKNOWN_STATUS` when none follows.
    sets: u8,
    recorded: Recorded,
}

fn recompute(events: &Events) -> Vec<EventHashed> {
    events
        .iter()
        .map(|e| {
            let meta = meta_value(e.meta);
            let expected = match event_record_hash(
                e.id,
                e.action_id,
                e.event_type,
                e.created_at,
                &meta,
                e.prev_hash,
            ) {
                Ok(hash) if hash == e.record_hash => None,
                Ok(hash) => Some(hash),
                Err(err) => Some(format!("a canonical meta ({err})")),
            };
            let sets = match status_effect(e.event_type, &meta) {
                StatusEffect::Keeps => NO_STATUS,
                StatusEffect::Sets(status) => status_code(status),
                StatusEffect::Unknown(_) => UNKNOWN_STATUS,
            };
            let recorded = if e.event_type != faramesh_core::EventType::DecisionMade.as_str() {
                Recorded::Nothing
            } else {
                match recorded_request_hash(&meta) {
                    None => Recorded::Null,
                    Some(Value::String(hash)) => {
                        hash_bytes(hash).map_or(Recorded::Invalid, Recorded::Hash)
                    }
                    Some(_) => Recorded::Invalid,
                }
            };
            EventHashed {
                expected,
                sets,
                recorded,
            }
        })
        .collect()
}

/// The first bytes of a hash written as 64 lower-case hex digits (the only form a computed hash
/// has); `None` for any other text.
fn hash_bytes(hex: &str) -> Option<[u8; COMPARED]> {
    let whole = hash_of_hex(hex)?;
    whole.get(..COMPARED)?.try_into().ok()
}

/// A hash written as 64 lower-case hex digits (the only form a computed hash has), as its 32
/// bytes; `None` for any other text. By table, one lookup per digit: this runs for every row,
/// decision and leaf of a whole-ledger check, and the `hex` crate's decoder was a tenth of
/// `log verify`'s time.
pub(crate) fn hash_of_hex(text: &str) -> Option<[u8; 32]> {
    const NOT_HEX: u8 = 0xff;
    const DIGITS: [u8; 256] = {
        let mut table = [NOT_HEX; 256];
        let mut c = 0;
        while c < 256 {
            table[c] = match c as u8 {
                b @ b'0'..=b'9' => b - b'0',
                b @ b'a'..=b'f' => b - b'a' + 10,
                _ => NOT_HEX,
            };
            c += 1;
        }
        table
    };
    let digits: &[u8; 64] = text.as_bytes().try_into().ok()?;
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = match pair {
            [h, l] => (DIGITS[usize::from(*h)], DIGITS[usize::from(*l)]),
            _ => return None,
        };
        if high == NOT_HEX || low == NOT_HEX {
            return None;
        }
        *byte = high << 4 | low;
    }
    Some(bytes)
}

/// Every action's chain followed event by event, in the order the events were written: for
/// each action, the `record_hash` of its last event so far (as bytes) and how many it had; and
/// what its row holds against what its events said so far.
struct Links {
    slots: Slots,
    last: Vec<[u8; 32]>,
    /// Events seen per action; `BROKEN` once its chain broke.
    seen: Vec<u32>,
    /// Each action's row hash, while its decision is awaited.
    row_hash: Vec<[u8; COMPARED]>,
    facts: Vec<Facts>,
    events: usize,
    broken: Vec<(usize, BrokenLink)>,
    bar: indicatif::ProgressBar,
}

const BROKEN: u32 = u32::MAX;

/// What the pass knows of one action's row and of the status its events imply.
#[derive(Clone, Copy)]
struct Facts {
    /// The row's status code (`UNKNOWN_STATUS` for a text that is no status).
    row_status: u8,
    /// The status the events so far imply (`NO_STATUS` before its decision).
    implied: u8,
    /// `ROW_HASHED`, `DECIDED`, `UNBOUND`.
    flags: u8,
}

/// The row's fields have a hash.
const ROW_HASHED: u8 = 1;
/// A `decision_made` event was seen.
const DECIDED: u8 = 2;
/// A decision recorded a request_hash that is not the row's.
const UNBOUND: u8 = 4;
/// Where each action's chain state is kept: at the index of its rowid among all the rowids.
enum Slots {
    /// The rowids are `first..first + len` without gaps, the usual case: no search needed.
    Dense { first: i64, len: usize },
    /// Ascending.
    Sparse(Vec<i64>),
}

impl Slots {
    fn new(positions: Vec<i64>) -> Slots {
        let len = positions.len();
        match (positions.first(), positions.last()) {
            (Some(&first), Some(&last))
                if last
                    .checked_sub(first)
                    .and_then(|d| usize::try_from(d).ok())
                    == Some(len - 1) =>
            {
                Slots::Dense { first, len }
            }
            (None, _) | (_, None) => Slots::Dense { first: 0, len: 0 },
            _ => Slots::Sparse(positions),
        }
    }

    fn len(&self) -> usize {
        match self {
            Slots::Dense { len, .. } => *len,
            Slots::Sparse(positions) => positions.len(),
        }
    }

    /// The position of the action at index `i`.
    fn pos(&self, i: usize) -> i64 {
        match self {
            Slots::Dense { first, .. } => first + i64::try_from(i).unwrap_or(i64::MAX - first),
            Slots::Sparse(positions) => positions.get(i).copied().unwrap_or_default(),
        }
    }

    /// The index of the action at `pos`; `None` for an event of no action.
    fn of(&self, pos: i64) -> Option<usize> {
        match self {
            Slots::Dense { first, len } => {
                let i = usize::try_from(pos.checked_sub(*first)?).ok()?;
                (i < *len).then_some(i)
            }
            Slots::Sparse(positions) => positions.binary_search(&pos).ok(),
        }
    }
}

impl Links {
    fn new(positions: Vec<i64>, global: &Global) -> Links {
        let slots = Slots::new(positions);
        let n = slots.len();
        Links {
            slots,
            last: vec![[0; 32]; n],
            seen: vec![0; n],
            row_hash: vec![[0; COMPARED]; n],
            facts: vec![
                Facts {
                    row_status: NO_STATUS,
                    implied: NO_STATUS,
                    flags: 0,
                };
                n
            ],
            events: 0,
            broken: Vec::new(),
            bar: progress(n, global),
        }
    }

    /// The next action rows and, from the hashing threads, their hashes and statuses.
    fn rows(&mut self, rows: &ActionRows, hashed: &[RowHashed]) {
        for (row, hashed) in rows.iter().zip(hashed) {
            let Some(slot) = self.slots.of(row.pos) else {
                continue;
            };
            let facts = &mut self.facts[slot];
            facts.row_status = hashed.status;
            if let Some(hash) = hashed.hash {
                self.row_hash[slot] = hash;
                facts.flags |= ROW_HASHED;
            }
        }
    }

    /// The next events and, from the hashing threads, whether each one's `record_hash` holds,
    /// the status it sets and the request it records.
    fn follow(&mut self, events: &Events, hashed: &[EventHashed]) {
        let mut last_seq = 0;
        for (e, hashed) in events.iter().zip(hashed) {
            let expected = &hashed.expected;
            last_seq = e.seq;
            let Some(slot) = self.slots.of(e.action_pos) else {
                continue;
            };
            self.events += 1;
            let seen = self.seen[slot];
            if seen == BROKEN {
                continue;
            }
            let mut hex = [0u8; 64];
            let prev = (seen > 0).then(|| hex_of(&self.last[slot], &mut hex));
            let broken = |what, expected: String, found: String| BrokenLink {
                action_id: e.action_id.to_owned(),
                event_id: e.id.to_owned(),
                position: seen as usize + 1,
                what,
                expected,
                found,
            };
            let link = if e.prev_hash != prev {
                Some(broken("prev_hash", show(prev), show(e.prev_hash)))
            } else if let Some(expected) = expected {
                Some(broken(
                    "record_hash",
                    expected.clone(),
                    e.record_hash.to_owned(),
                ))
            } else {
                // It matched the recomputed hash, so it is 64 lower-case hex digits.
                bytes_of(e.record_hash, &mut self.last[slot]);
                None
            };
            match link {
                Some(link) => {
                    self.broken.push((slot, link));
                    self.seen[slot] = BROKEN;
                }
                None => {
                    self.seen[slot] = seen + 1;
                    self.bind(slot, hashed);
                }
            }
        }
        self.bar.set_position(u64::try_from(last_seq).unwrap_or(0));
    }

    /// What an event of an intact chain says about its action's row, as `verify_binding` reads
    /// it: a decision must record the row's request_hash, and the status follows the last event
    /// that sets one.
    fn bind(&mut self, slot: usize, hashed: &EventHashed) {
        let row_hash = &self.row_hash[slot];
        let facts = &mut self.facts[slot];
        let hashed_row = facts.flags & ROW_HASHED != 0;
        let holds = match hashed.recorded {
            Recorded::Nothing => true,
            Recorded::Null => !hashed_row,
            Recorded::Hash(hash) => hashed_row && hash == *row_hash,
            Recorded::Invalid => false,
        };
        if !matches!(hashed.recorded, Recorded::Nothing) {
            facts.flags |= DECIDED;
        }
        if !holds {
            facts.flags |= UNBOUND;
        }
        if hashed.sets != NO_STATUS {
            facts.implied = hashed.sets;
        }
    }

    /// The tally of broken chains, and the positions of the actions with an intact chain that
    /// their row does not match, in order.
    fn finish(mut self) -> (Tally, Vec<i64>) {
        self.bar.finish_and_clear();
        // Reported action by action, as the chains are listed.
        self.broken.sort_by_key(|(slot, _)| *slot);
        let flagged = (0..self.slots.len())
            .filter(|&slot| {
                let facts = self.facts[slot];
                match self.seen[slot] {
                    BROKEN => false,
                    0 => true,
                    _ => {
                        facts.flags & (DECIDED | UNBOUND) != DECIDED
                            || facts.implied != facts.row_status
                            || facts.implied >= UNKNOWN_STATUS
                    }
                }
            })
            .map(|slot| self.slots.pos(slot))
            .collect();
        let tally = Tally {
            actions: self.slots.len(),
            events: self.events,
            broken: self.broken.into_iter().map(|(_, link)| link).collect(),
            unbound: Vec::new(),
        };
        (tally, flagged)
    }
}

fn show(hash: Option<&str>) -> String {
    hash.map_or_else(|| "null".to_owned(), str::to_owned)
}

fn hex_of<'a>(bytes: &[u8; 32], out: &'a mut [u8; 64]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    std::str::from_utf8(out).unwrap_or_default()
}

fn bytes_of(hex: &str, out: &mut [u8; 32]) {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        _ => c.wrapping_sub(b'a').wrapping_add(10) & 15,
    };
    for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *o = digit(pair[0]) << 4 | digit(pair[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::{hash_bytes, COMPARED};

    #[test]
    fn only_a_computed_hash_has_bytes() {
        let hash = faramesh_core::hash::sha256_hex(b"x");
        let bytes = hash_bytes(&hash).unwrap_or_default();
        assert_eq!(
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            hash[..2 * COMPARED]
        );
        assert_eq!(hash_bytes(&hash.to_uppercase()), None);
        assert_eq!(hash_bytes(&hash[1..]), None);
        assert_eq!(hash_bytes(&format!("{}g", &hash[1..])), None);
    }
}
