//! The `.env` file of the working directory.
//!
//! It fills in only variables the environment does not set. A file that cannot be parsed is an
//! error, never skipped: a silently ignored `.env` would drop its `FARAMESH_TOKEN` and leave the
//! API open.

use anyhow::Context;
use std::path::PathBuf;

/// Loads `./.env` if it exists; its path when it was read, `None` when there is none.
pub fn load() -> anyhow::Result<Option<PathBuf>> {
    // Only the working directory: a `.env` found in some parent directory would configure the
    // server from a file the operator did not mean.
    let path = PathBuf::from(".env");
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(Some(std::fs::canonicalize(&path).unwrap_or(path))),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot use {} (fix the line it names, written KEY=value with # starting a comment, or remove the file)",
                std::fs::canonicalize(&path).unwrap_or(path).display()
            )
        }),
    }
}
