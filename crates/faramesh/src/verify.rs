//! `faramesh verify-log`: recompute hash chains from a server, a database file or an export.

use crate::cli::Global;
use crate::output::{self, paint, pretty};
use crate::Status;
use anstream::println;
use faramesh_client::{Client, ClientError};
use faramesh_core::hash::event_record_hash;
use faramesh_core::ledger::{verify_chain, BrokenLink, ChainedEvent};
use faramesh_storage::sqlite::{meta_value, Events};
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
    let Some(prefix) = id else {
        return verify_db_all(&ledger, global).map_err(unusable);
    };
    let prefix = faramesh_client::normalize_prefix(prefix)?;
    let found = ledger.ids_with_prefix(&prefix, 10).map_err(unusable)?;
    let id = faramesh_client::one_match(prefix, found)?;
    let events = ledger.chain(&id).map_err(unusable)?;
    let chained: Vec<ChainedEvent<'_>> = events.iter().map(|e| e.chained()).collect();
    let mut tally = Tally::default();
    tally.add(&chained);
    Ok(tally.report(global))
}

/// Events per batch handed to a hashing thread.
const BATCH_EVENTS: usize = 4096;

/// Every chain of the file, in one sequential pass over its events: the reading thread hands
/// batches of events to hashing threads (one per core), which recompute every `record_hash`;
/// one linking thread then takes the batches back in order and follows each action's chain.
/// The verdicts are those of `verify_chain` over each action's events, action by action.
fn verify_db_all(
    ledger: &faramesh_storage::LedgerFile,
    global: &Global,
) -> Result<Status, faramesh_storage::StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (to_hash, hash_queue) = std::sync::mpsc::channel::<(usize, Events)>();
    let hash_queue = std::sync::Mutex::new(hash_queue);
    let (to_link, link_queue) = std::sync::mpsc::channel::<(usize, Events, Vec<Option<String>>)>();
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
                let Ok(Ok((n, events))) = next else { break };
                let hashed = recompute(&events);
                if to_link.send((n, events, hashed)).is_err() {
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
            for (n, events, hashed) in link_queue {
                waiting.insert(n, (events, hashed));
                while let Some((events, hashed)) = waiting.remove(&next) {
                    links.follow(&events, &hashed);
                    next += 1;
                    let _ = linked.recv();
                }
            }
            Some(links.finish())
        });
        let mut n = 0;
        let read = ledger.scan(
            BATCH_EVENTS,
            |positions| {
                let links = Links::new(positions, global);
                // The linking thread is gone only if it panicked, which the scope reports.
                let _ = chains_tx.send(links);
                Ok(())
            },
            |events| {
                // Both fail only if the linking thread panicked, which the scope reports.
                let _ = in_flight.send(());
                let _ = to_hash.send((n, events));
                n += 1;
                Ok(())
            },
        );
        drop(to_hash);
        drop(chains_tx);
        drop(in_flight);
        (read, linker.join())
    });
    read?;
    let tally = match tally {
        Ok(Some(tally)) => tally,
        Ok(None) => Tally::default(),
        Err(panic) => std::panic::resume_unwind(panic),
    };
    Ok(tally.report(global))
}

/// For each event of the batch, `None` when its stored `record_hash` is the one recomputed from
/// its fields, else what was expected.
fn recompute(events: &Events) -> Vec<Option<String>> {
    events
        .iter()
        .map(|e| {
            let meta = meta_value(e.meta);
            match event_record_hash(
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
            }
        })
        .collect()
}

/// Every action's chain followed event by event, in the order the events were written: for
/// each action, the `record_hash` of its last event so far (as bytes) and how many it had.
struct Links {
    slots: Slots,
    last: Vec<[u8; 32]>,
    /// Events seen per action; `BROKEN` once its chain broke.
    seen: Vec<u32>,
    events: usize,
    broken: Vec<(usize, BrokenLink)>,
    bar: indicatif::ProgressBar,
}

const BROKEN: u32 = u32::MAX;

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
            events: 0,
            broken: Vec::new(),
            bar: progress(n, global),
        }
    }

    /// The next events and, from the hashing threads, whether each one's `record_hash` holds.
    fn follow(&mut self, events: &Events, hashed: &[Option<String>]) {
        let mut last_seq = 0;
        for (e, expected) in events.iter().zip(hashed) {
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
                None => self.seen[slot] = seen + 1,
            }
        }
        self.bar.set_position(u64::try_from(last_seq).unwrap_or(0));
    }

    fn finish(mut self) -> Tally {
        self.bar.finish_and_clear();
        // Reported action by action, as the chains are listed.
        self.broken.sort_by_key(|(slot, _)| *slot);
        Tally {
            actions: self.slots.len(),
            events: self.events,
            broken: self.broken.into_iter().map(|(_, link)| link).collect(),
        }
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
