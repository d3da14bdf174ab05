//! A database lost under its jobs: `plotty.db` missing or empty (0 bytes) while
//! `<workspace>/jobs/*/journal.jsonl` show that jobs were recorded in it.
//!
//! Opening such a file would create a new, empty database and start with an empty queue over the
//! old jobs' files, and nothing would tell the user that every job was lost. The daemon (start-up
//! step 2) and `plotty check database` ask [`check`] first and refuse with what happened and how to
//! recover: restore the database from a backup, or move the jobs directory aside to start afresh.
//! Nothing is created, changed or removed.
//!
//! A workspace without journals is simply new: the database is created as before.

use std::io;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::journal;

/// What is wrong with the database file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Loss {
    /// The file does not exist.
    Missing,
    /// The file exists and holds 0 bytes.
    Empty,
}

/// Refuses a missing or empty database at `db` when `jobs_dir` holds job journals; see the module
/// doc. `Ok` when the database has content or the workspace has no journals.
pub fn check(db: &Path, jobs_dir: &Path) -> Result<(), StoreError> {
    let loss = match std::fs::metadata(db) {
        Ok(m) if m.is_file() && m.len() == 0 => Loss::Empty,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Loss::Missing,
        // Opening reports what is wrong with it.
        Err(_) => return Ok(()),
    };
    let journals = journals(jobs_dir).map_err(|source| StoreError::JobsDir {
        path: jobs_dir.to_path_buf(),
        source,
    })?;
    if journals.is_empty() {
        return Ok(());
    }
    Err(StoreError::Lost {
        path: db.to_path_buf(),
        jobs_dir: jobs_dir.to_path_buf(),
        loss,
        journals: journals.len(),
    })
}

/// The job directories under `jobs_dir` that hold a journal, sorted (none when `jobs_dir` does not
/// exist). The staging directory `.incoming` is not a job.
pub fn journals(jobs_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(jobs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let dir = entry.path();
        if dir.join(journal::FILE_NAME).is_file() {
            found.push(dir);
        }
    }
    found.sort();
    Ok(found)
}

impl Loss {
    /// What the file is, for messages ("does not exist", "is empty (0 bytes)").
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "does not exist",
            Self::Empty => "is empty (0 bytes)",
        }
    }

    /// What probably happened to it.
    pub fn cause(self) -> &'static str {
        match self {
            Self::Missing => {
                "the database was lost or moved (or database.url now names another file)"
            }
            Self::Empty => "the database was lost or truncated",
        }
    }
}

/// The advice shared by the daemon's refusal and `plotty check database`.
pub(crate) fn advice(db: &Path, jobs_dir: &Path, loss: Loss) -> String {
    let db = db.display();
    let jobs = jobs_dir.display();
    let back = match loss {
        Loss::Missing => format!("restore it from a backup to {db} (or set database.url back)"),
        Loss::Empty => format!("restore it from a backup to {db}"),
    };
    format!(
        "{back}, or move {jobs} aside (`mv {jobs} {jobs}.old`) to start with an empty queue; the \
         jobs' SVGs and journals stay in that directory"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_with_journals(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs");
        std::fs::create_dir_all(jobs.join(".incoming")).unwrap();
        std::fs::write(jobs.join(".incoming").join(journal::FILE_NAME), b"").unwrap();
        for i in 0..n {
            let job = jobs.join(format!("{i:012x}"));
            std::fs::create_dir_all(&job).unwrap();
            std::fs::write(job.join(journal::FILE_NAME), b"{}\n").unwrap();
        }
        // A job directory without a journal (a crash before its first line) does not count.
        std::fs::create_dir_all(jobs.join("ffffffffffff")).unwrap();
        dir
    }

    #[test]
    fn an_empty_database_next_to_journals_is_refused_with_advice() {
        let ws = workspace_with_journals(3);
        let db = ws.path().join("plotty.db");
        std::fs::write(&db, b"").unwrap();
        let jobs = ws.path().join("jobs");
        let err = check(&db, &jobs).unwrap_err();
        match &err {
            StoreError::Lost { loss, journals, .. } => {
                assert_eq!(*loss, Loss::Empty);
                assert_eq!(*journals, 3);
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "the database {} is empty (0 bytes) but {} holds 3 jobs' journals: the database \
                 was lost or truncated",
                db.display(),
                jobs.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("restore it from a backup"), "{msg}");
        assert!(
            msg.contains(&format!("mv {0} {0}.old", jobs.display())),
            "{msg}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), b"");
    }

    #[test]
    fn a_missing_database_next_to_journals_is_refused() {
        let ws = workspace_with_journals(1);
        let db = ws.path().join("plotty.db");
        let err = check(&db, &ws.path().join("jobs")).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Lost {
                    loss: Loss::Missing,
                    journals: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("does not exist but"), "{err}");
        assert!(!db.exists());
    }

    #[test]
    fn a_new_workspace_or_a_database_with_content_passes() {
        let ws = workspace_with_journals(0);
        let db = ws.path().join("plotty.db");
        let jobs = ws.path().join("jobs");
        check(&db, &jobs).unwrap();
        std::fs::write(&db, b"").unwrap();
        check(&db, &jobs).unwrap();
        check(&db, &ws.path().join("no-such-dir")).unwrap();
        let ws = workspace_with_journals(2);
        let db = ws.path().join("plotty.db");
        std::fs::write(&db, b"SQLite format 3\0").unwrap();
        check(&db, &ws.path().join("jobs")).unwrap();
    }
}
