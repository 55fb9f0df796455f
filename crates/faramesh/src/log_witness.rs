//! `faramesh log watch`: a witness. It keeps the last checkpoint it accepted in a folder of its
//! own and accepts a new one only when it is signed by the key it was given and a consistency
//! proof shows it extends the old one. A server that shows it a rewritten or shortened log is
//! caught, whatever it shows anyone else.

use crate::cli::Global;
use crate::log_check::{open_checkpoint, read_key};
use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use faramesh_client::{Client, ClientError};
use faramesh_tlog::tree::{self, Hash};
use faramesh_tlog::{Checkpoint, Verifier};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file in the state folder holding the last checkpoint accepted.
const LATEST: &str = "checkpoint";

/// What one look at the server found.
enum Seen {
    /// The first checkpoint, trusted from now on.
    First(Checkpoint),
    /// The same checkpoint as last time.
    Same(Checkpoint),
    /// A larger tree that extends the last one.
    Grew { from: u64, to: Checkpoint },
    /// Not a checkpoint of this log, or not one that extends the last: the report.
    Refused(String),
}

pub async fn watch(
    client: &Client,
    key: &str,
    state: &Path,
    every: Duration,
    once: bool,
    global: &Global,
) -> Result<Status, ClientError> {
    let verifier = read_key(key)?;
    std::fs::create_dir_all(state).map_err(|e| ClientError::Usage {
        detail: format!(
            "cannot use {} as the witness's state folder: {e}",
            state.display()
        ),
    })?;
    loop {
        let seen = look(client, &verifier, state).await?;
        let refused = matches!(seen, Seen::Refused(_));
        show(&seen, global);
        if refused {
            return Ok(Status::Failure);
        }
        if once {
            return Ok(Status::Success);
        }
        tokio::time::sleep(every).await;
    }
}

async fn look(client: &Client, verifier: &Verifier, state: &Path) -> Result<Seen, ClientError> {
    let note = client.log_checkpoint().await?;
    let new = match open_checkpoint(verifier, &note) {
        Ok(c) => c,
        Err(problem) => return Ok(Seen::Refused(problem)),
    };
    let file = state.join(LATEST);
    let old_note = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            keep(&file, &note)?;
            return Ok(Seen::First(new));
        }
        Err(e) => {
            return Err(ClientError::Usage {
                detail: format!("cannot read {}: {e}", file.display()),
            })
        }
    };
    let old = open_checkpoint(verifier, &old_note).map_err(|problem| ClientError::Usage {
        detail: format!("{}: {problem}", file.display()),
    })?;
    let report = |what: String| {
        Seen::Refused(format!(
            "{what}\n--- the checkpoint accepted before ---\n{old_note}--- the checkpoint the server shows now ---\n{note}"
        ))
    };
    if new.size < old.size {
        return Ok(report(format!(
            "rollback: the log went back from {} to {} leaves",
            old.size, new.size
        )));
    }
    if new.size == old.size {
        return Ok(if new.root == old.root {
            Seen::Same(new)
        } else {
            report(format!(
                "fork: two different trees of {} leaves were signed",
                new.size
            ))
        });
    }
    if old.size > 0 {
        let proof = client.consistency_proof(old.size, new.size).await?;
        let hashes: Option<Vec<Hash>> = proof
            .hashes
            .iter()
            .map(|h| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(h, &mut bytes).ok().map(|()| bytes)
            })
            .collect();
        let consistent = hashes.is_some_and(|hashes| {
            tree::check_consistency(&hashes, old.size, &old.root, new.size, &new.root).is_ok()
        });
        if !consistent {
            return Ok(report(format!(
                "fork: the tree of {} leaves does not extend the tree of {} accepted before",
                new.size, old.size
            )));
        }
    }
    keep(&file, &note)?;
    Ok(Seen::Grew {
        from: old.size,
        to: new,
    })
}

/// Replaces the kept checkpoint, whole or not at all.
fn keep(file: &PathBuf, note: &str) -> Result<(), ClientError> {
    let temporary = file.with_extension("new");
    std::fs::write(&temporary, note)
        .and_then(|()| std::fs::rename(&temporary, file))
        .map_err(|e| ClientError::Usage {
            detail: format!("cannot write {}: {e}", file.display()),
        })
}

fn show(seen: &Seen, global: &Global) {
    if global.json {
        let report = match seen {
            Seen::First(c) => {
                serde_json::json!({"ok": true, "first": true, "size": c.size, "root": hex::encode(c.root)})
            }
            Seen::Same(c) => {
                serde_json::json!({"ok": true, "size": c.size, "root": hex::encode(c.root)})
            }
            Seen::Grew { from, to } => {
                serde_json::json!({"ok": true, "from": from, "size": to.size, "root": hex::encode(to.root)})
            }
            Seen::Refused(problem) => serde_json::json!({"ok": false, "problem": problem}),
        };
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        return;
    }
    let good = paint(output::GOOD, "✓");
    match seen {
        Seen::First(c) => println!(
            "{good} first checkpoint: {} leaves, root {} (trusted from now on)",
            c.size,
            hex::encode(c.root)
        ),
        Seen::Same(c) => println!("{good} unchanged: {} leaves", c.size),
        Seen::Grew { from, to } => println!(
            "{good} {from} → {} leaves, consistent with the checkpoint accepted before",
            to.size
        ),
        Seen::Refused(problem) => println!("{} {problem}", paint(output::ERROR, "✗")),
    }
}
