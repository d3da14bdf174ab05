//! The PID file: written once the port is bound, locked (`flock`) for as long as the daemon runs,
//! removed on exit.
//!
//! The lock, not the file's existence, says whether a daemon is running: a second daemon on the
//! same file cannot take the lock and refuses to start, naming the PID that holds it; a file left by
//! a dead process is unlocked (the kernel drops locks with their process) and is simply taken over.
//! After locking, the path is checked to still name the locked file, so that a daemon removing its
//! file at that moment cannot leave two daemons each holding a lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A problem with the PID file.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another process holds the lock.
    #[error(
        "another plotty daemon{} is running with the PID file {path}: stop it first{}, or give \
         this one another --pid-file",
        held_by(*pid),
        stop_hint(*pid)
    )]
    Held {
        /// The file.
        path: PathBuf,
        /// The PID written in it, if readable.
        pid: Option<u32>,
    },
    /// The file could not be created, locked or written.
    #[error(
        "cannot write the PID file {path}: {source}; check that its directory exists and is \
         writable, or choose another --pid-file"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn held_by(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
}

fn stop_hint(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (`kill {p}`)")).unwrap_or_default()
}

/// A locked PID file; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
    id: (u64, u64),
    /// The PID found in a stale file that was replaced.
    pub replaced_stale: Option<u32>,
}

impl PidFile {
    /// Creates (or takes over a stale) PID file at `path`, locks it and writes this process's PID.
    pub fn acquire(path: &Path) -> Result<Self, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(PidFileError::Held {
                        path: path.to_path_buf(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            // The previous owner may have removed (and another daemon re-created) the file
            // between our open and our lock: then our lock is on a file nobody else sees.
            let locked = file.metadata().map_err(io)?;
            let id = (locked.dev(), locked.ino());
            match std::fs::metadata(path) {
                Ok(now) if (now.dev(), now.ino()) == id => {}
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            }
            let replaced_stale = read_pid(&mut file).filter(|p| *p != std::process::id());
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok(Self {
                path: path.to_path_buf(),
                file,
                id,
                replaced_stale,
            });
        }
        Err(io(std::io::Error::other(
            "the file kept being replaced while locking it",
        )))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still ours, then releases the lock.
    pub fn release(self) {
        drop(self);
    }

    fn remove(&self) {
        let ours = std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            // After a privilege drop the directory may not be writable any more; the file
            // stays, unlocked, and the next start takes it over.
            tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "could not remove the PID file; it is unlocked and will be replaced at the next start"
            );
        }
        let _ = self.file.unlock();
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        self.remove();
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/plotty.pid");
        let first = PidFile::acquire(&path).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content, format!("{}\n", std::process::id()));
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just like another process would.
        let err = PidFile::acquire(&path).unwrap_err();
        match &err {
            PidFileError::Held { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        first.release();
        assert!(!path.exists());
        let again = PidFile::acquire(&path).unwrap();
        assert_eq!(again.replaced_stale, None);
    }

    #[test]
    fn stale_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.pid");
        std::fs::write(&path, "999999999\n").unwrap();
        let pf = PidFile::acquire(&path).unwrap();
        assert_eq!(pf.replaced_stale, Some(999_999_999));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn a_file_replaced_by_someone_else_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.pid");
        let pf = PidFile::acquire(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pf);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    }
}
