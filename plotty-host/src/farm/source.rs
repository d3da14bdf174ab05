//! Where a daemon reads the SVG of a job: the job's own stored copy when the job was submitted
//! to this daemon (or the database is SQLite, with one daemon), else a copy of the SVG stored
//! in the database ([`crate::store::JobStore::source_svg`]) written into this daemon's workspace
//! (`<workspace>/jobs/<id>/source.svg`, the path the submitting daemon uses in its own).
//!
//! The program is rebuilt from that file (import and optimisation are deterministic), so a
//! daemon plots a job another daemon analysed with the stroke indices the queue recorded.

use std::path::{Path, PathBuf};

use crate::ledger::Ledger;
use crate::store::{JobRecord, JobStore, StoreError};

/// Why a job's SVG cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The job has no SVG: no stored copy here, none in the database.
    #[error("the job has no stored SVG; submit the file again")]
    Missing,
    /// The database could not be read.
    #[error("cannot read the job's SVG from the database: {0}")]
    Store(#[from] StoreError),
    /// This daemon's copy could not be written.
    #[error("cannot write this daemon's copy of the job's SVG to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The SVG file this daemon reads for `job` (see the module doc); `jobs_dir` is this daemon's
/// `<workspace>/jobs`.
///
/// # Errors
/// No SVG anywhere, the database or this daemon's workspace failed.
pub async fn local_path(
    ledger: &Ledger,
    jobs_dir: &Path,
    job: &JobRecord,
) -> Result<PathBuf, SourceError> {
    local_path_in(
        ledger.store(),
        ledger.lease().map(|(name, _)| name),
        jobs_dir,
        job,
    )
    .await
}

/// [`local_path`] for the daemon named `me` (`None`: not sharing the database) on `store`.
///
/// # Errors
/// As [`local_path`].
pub async fn local_path_in(
    store: &JobStore,
    me: Option<&str>,
    jobs_dir: &Path,
    job: &JobRecord,
) -> Result<PathBuf, SourceError> {
    let own = job.source_path.as_deref().map(PathBuf::from);
    let shared = matches!(store, JobStore::Postgres(_)) && me.is_some();
    // Submitted here (or before schema 6 recorded who took it): the daemon's own copy.
    let submitted_here = job.submitted_by.is_none() || job.submitted_by.as_deref() == me;
    if !shared || submitted_here {
        if let Some(path) = own.filter(|p| !shared || p.exists()) {
            return Ok(path);
        }
        if !shared {
            return Err(SourceError::Missing);
        }
    }
    let local = jobs_dir.join(job.id.as_str()).join("source.svg");
    if tokio::fs::try_exists(&local).await.unwrap_or(false) {
        return Ok(local);
    }
    let svg = store
        .source_svg(job.id.as_str())
        .await?
        .ok_or(SourceError::Missing)?;
    write_atomically(&local, svg).await?;
    tracing::info!(
        job_id = %job.id,
        submitted_by = job.submitted_by.as_deref().unwrap_or("-"),
        "copied the job's SVG from the database into this daemon's workspace"
    );
    Ok(local)
}

/// `job` with its `source_path` set to [`local_path`].
///
/// # Errors
/// As [`local_path`].
pub async fn with_local_path(
    ledger: &Ledger,
    jobs_dir: &Path,
    mut job: JobRecord,
) -> Result<JobRecord, SourceError> {
    let path = local_path(ledger, jobs_dir, &job).await?;
    job.source_path = Some(path.to_string_lossy().into_owned());
    Ok(job)
}

/// Stores the SVG at `path` in the database for the other daemons, when the store is shared
/// (PostgreSQL); nothing on SQLite.
///
/// # Errors
/// The file cannot be read or the database refused it.
pub async fn share(ledger: &Ledger, job_id: &str, path: &Path) -> Result<(), StoreError> {
    if !matches!(ledger.store(), JobStore::Postgres(_)) {
        return Ok(());
    }
    let svg = tokio::fs::read(path).await.map_err(|e| {
        StoreError::Invalid(format!(
            "cannot read the stored SVG to share it with the other daemons: {e}"
        ))
    })?;
    ledger.store().set_source_svg(job_id, svg).await
}

/// Writes `bytes` to `path` through a temporary file and a rename: a reader never sees half a
/// file, and two tasks writing the same copy leave one whole.
async fn write_atomically(path: &Path, bytes: Vec<u8>) -> Result<(), SourceError> {
    let fail = |source| SourceError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    }
    let tmp = path.with_extension(format!("svg.{}.tmp", fastrand::u64(..)));
    tokio::fs::write(&tmp, bytes).await.map_err(fail)?;
    if let Err(e) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(fail(e));
    }
    Ok(())
}
