//! The log's signing key: a file of its own, beside the database and never in it, readable by
//! its owner only. `faramesh log keygen` writes it; the server reads it to sign checkpoints.

use faramesh_tlog::{NoteError, Signer};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the key is kept unless told otherwise: the data directory.
pub const DEFAULT_KEY_FILE: &str = "data/log.key";

/// Why a key file cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{} already exists; pass --force to replace it (checkpoints signed with the old key then no longer verify with the new verifier key)", .0.display())]
    Exists(PathBuf),
    #[error("{} is readable by other users (mode {mode:o}); make it private with `chmod 600 {}`", .path.display(), .path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} does not hold a log signing key: {source}", .path.display())]
    Invalid { path: PathBuf, source: NoteError },
}

/// A new key named `name`, written to `path` (mode 600) with its verifier key beside it in
/// `<path without extension>.pub`. An existing key is kept unless `force`.
pub fn generate(path: &Path, name: &str, force: bool) -> Result<Signer, KeyFileError> {
    let signer =
        Signer::new(name, rand::random::<[u8; 32]>()).map_err(|source| KeyFileError::Invalid {
            path: path.to_owned(),
            source,
        })?;
    if path.exists() && !force {
        return Err(KeyFileError::Exists(path.to_owned()));
    }
    let write_error = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    // Private from its first byte: created 600 under another name, then renamed over.
    // Named for this process: a second replica starting at the same moment writes its own.
    let temporary = path.with_extension(format!("key-new-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = private_file(&temporary).map_err(write_error)?;
    file.write_all(format!("{}\n", signer.secret_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    if force {
        std::fs::rename(&temporary, path).map_err(write_error)?;
    } else {
        // A link, unlike a rename, refuses to replace a key another process (a second replica
        // starting at the same moment) wrote meanwhile: one key wins, the other reads it.
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyFileError::Exists(path.to_owned()));
            }
            Err(e) => return Err(write_error(e)),
        }
    }
    let public = path.with_extension("pub");
    std::fs::write(&public, format!("{}\n", signer.verifier().text())).map_err(|source| {
        KeyFileError::Write {
            path: public.clone(),
            source,
        }
    })?;
    Ok(signer)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// The key in `path`, refused when others may read it.
pub fn read(path: &Path) -> Result<Signer, KeyFileError> {
    let read_error = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    Signer::parse(&text).map_err(|source| KeyFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// A key name for this machine: `<host name>/faramesh`.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains('+') && !h.chars().any(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/faramesh")
}
