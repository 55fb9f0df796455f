//! Whether the database file the server has open is still the one at its path.
//!
//! SQLite keeps writing to the files it has open. If someone deletes or replaces
//! `actions.db` (or its `-wal`) while the server runs, every write still succeeds, into a file
//! nobody will open again, and every acknowledged action is lost at the next start. So before
//! each batch is written and on every readiness check, the device and inode of the path are
//! compared with those of the file opened at start; a difference refuses the write (503) until
//! an operator restores the file or restarts the server.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Device and inode: what identifies a file, whatever its name.
type Identity = (u64, u64);

fn identity(path: &Path) -> std::io::Result<Identity> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

#[derive(Debug)]
pub(super) struct DatabaseFiles {
    path: PathBuf,
    main: Identity,
    wal_path: PathBuf,
    /// The write-ahead log's identity once it has been seen: it is created by the first
    /// write and kept (reset, not deleted) while the server's connections are open.
    wal: Mutex<Option<Identity>>,
}

impl DatabaseFiles {
    /// Remembers the files of the database at `path`, just opened.
    pub(super) fn new(path: &Path) -> std::io::Result<DatabaseFiles> {
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        Ok(DatabaseFiles {
            main: identity(path)?,
            wal: Mutex::new(identity(&wal_path).ok()),
            path: path.to_owned(),
            wal_path,
        })
    }

    /// `Err` with what to do when the database or its log is no longer the file the server
    /// has open.
    pub(super) fn check(&self) -> Result<(), String> {
        if super::shm_fault::faulted() {
            return Err(format!(
                "the database's shared-memory file {}-shm cannot be written (is it immutable, read-only or on a failing disk?), so the server no longer writes; fix the file and restart the server",
                self.path.display()
            ));
        }
        if identity(&self.path).ok() != Some(self.main) {
            return Err(self.gone(&self.path));
        }
        let now = identity(&self.wal_path).ok();
        let mut seen = self.wal.lock().unwrap_or_else(|p| p.into_inner());
        match (*seen, now) {
            (Some(before), now) if now != Some(before) => Err(self.gone(&self.wal_path)),
            (None, Some(first)) => {
                *seen = Some(first);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn gone(&self, file: &Path) -> String {
        format!(
            "the database file {} was deleted or replaced while the server was running, so nothing written now would be kept; restore it and restart the server (the server keeps refusing writes until then)",
            file.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let wal = dir.path().join("a.db-wal");
        std::fs::write(&db, b"x").unwrap();
        // Held open as SQLite holds them, so their inodes cannot be reused by a new file.
        let _open_db = std::fs::File::open(&db).unwrap();
        let files = DatabaseFiles::new(&db).unwrap();
        assert!(files.check().is_ok());
        // The log appears with the first write, and from then on it must stay the same file.
        std::fs::write(&wal, b"w").unwrap();
        let _open_wal = std::fs::File::open(&wal).unwrap();
        assert!(files.check().is_ok());
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"w").unwrap();
        assert!(files.check().unwrap_err().contains("a.db-wal"));

        let files = DatabaseFiles::new(&db).unwrap();
        std::fs::remove_file(&db).unwrap();
        assert!(files.check().unwrap_err().contains("deleted or replaced"));
        std::fs::write(&db, b"x").unwrap();
        assert!(
            files.check().is_err(),
            "a new file at the path is another file"
        );
    }
}
