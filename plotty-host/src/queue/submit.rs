//! Taking in a submitted SVG: the checks that can be made without parsing it (analysis parses it
//! later), the job's options, and the staging file it is written to before the job exists.
//!
//! The bytes go to `<workspace>/jobs/.incoming/<random>.svg` first (written and fsynced), and are
//! renamed to `<workspace>/jobs/<id>/source.svg` once the job has its id: a job never points at a
//! half-written file, and a crash leaves at most a staging file, removed at the next start.
//!
//! A write that fails (a full disk) removes what it wrote and says what to free. The files are
//! written through [`JobFiles`], so tests can fail them like a full disk without filling one. At
//! start-up [`recover_submissions`] finishes or fails the jobs a crash left at `NEW` and names the
//! job directories that have no job.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::command::{QueueError, Submission, SvgSource};
use crate::job::{JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::settings::Settings;
use crate::store::{NewJob, StoreError, TransitionRequest};

/// Staging directory inside the jobs directory (`.` cannot start a job id).
pub(super) const INCOMING: &str = ".incoming";

/// File name of a job's SVG inside its directory.
pub(super) const SOURCE_FILE: &str = "source.svg";

/// How far into the file the `<svg` element must start.
const SNIFF_BYTES: usize = 64 * 1024;

/// Longest accepted layer selection.
const MAX_LAYERS_SPEC: usize = 256;

/// How a submission's files reach the disk (a seam for tests that fail like a full disk).
pub trait JobFiles: Send + Sync {
    /// Creates `path` (which must not exist) holding `bytes`, synced to disk. May leave a partial
    /// file behind on failure; the caller removes it.
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Creates `dir` if needed and renames `from` to `to` inside it, durably.
    fn install(&self, from: &Path, dir: &Path, to: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl JobFiles for Disk {
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    fn install(&self, from: &Path, dir: &Path, to: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::rename(from, to)?;
        // The rename is durable once the directory is.
        std::fs::File::open(dir)?.sync_all()
    }
}

/// What [`recover_submissions`] found at start-up.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SubmissionRecovery {
    /// Jobs left at `NEW` with their SVG in place, now `QUEUED`.
    pub queued: Vec<JobId>,
    /// Jobs left at `NEW` without their SVG, now `FAILED`.
    pub failed: Vec<JobId>,
    /// Job directories without a job in the database (left as they are).
    pub orphans: Vec<PathBuf>,
}

/// True when `e` says the disk (or the user's quota) is full.
pub(super) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// The client's error for a failed write of `what` under `jobs_dir`: a full disk says what to
/// free, anything else names the path and what to check.
pub(super) fn write_error(what: &str, jobs_dir: &Path, e: &io::Error) -> QueueError {
    if is_disk_full(e) {
        disk_full(jobs_dir, &e.to_string())
    } else {
        QueueError::Io(format!(
            "cannot store {what} in {}: {e}; check free space and permissions of the workspace",
            jobs_dir.display()
        ))
    }
}

fn disk_full(jobs_dir: &Path, detail: &str) -> QueueError {
    QueueError::DiskFull(format!(
        "the disk holding {} is full ({detail}); the job was not stored. Free space there \
         (`plotty delete ID` removes a finished job and its files; old logs and files of other \
         programs on that disk count too) and submit again",
        jobs_dir.display()
    ))
}

/// The client's error for a database failure during a submission (a full disk says so).
pub(super) fn store_error(jobs_dir: &Path, e: StoreError) -> QueueError {
    match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::DiskFull =>
        {
            disk_full(jobs_dir, &e.to_string())
        }
        _ => e.into(),
    }
}

/// A checked submission, its SVG staged on disk.
#[derive(Debug)]
pub(super) struct Staged {
    /// The staging file.
    pub(super) path: PathBuf,
    /// The job to create.
    pub(super) job: NewJob,
}

/// Checks `s`, writes its SVG to the staging directory and returns the job to create.
pub(super) async fn stage(
    s: Submission,
    settings: &Settings,
    jobs_dir: &Path,
    files: Arc<dyn JobFiles>,
) -> Result<Staged, QueueError> {
    let limit = SizeLimit::of(settings);
    let (bytes, default_name) = match s.svg {
        SvgSource::Bytes(b) => (b, "upload.svg".to_owned()),
        SvgSource::Path(p) => (read_limited(&p, limit).await?, file_name(&p)),
    };
    if bytes.len() as u64 > limit.bytes {
        return Err(QueueError::Invalid(format!(
            "the SVG has {} bytes, {limit}",
            bytes.len()
        )));
    }
    sniff_svg(&bytes).map_err(QueueError::Invalid)?;
    let name = s
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(default_name);
    let (paper, orientation) = match s.paper.as_deref().map(str::trim) {
        None | Some("") => (settings.paper.size.clone(), None),
        Some(p) => crate::paper::parse_choice_explained(p).map_err(QueueError::Invalid)?,
    };
    let orientation = orientation.unwrap_or(settings.paper.orientation);
    // Checked against the travel of the plotter the job asks for, when it asks.
    let own = settings.for_requirements(&s.requirements);
    let settings = own.as_ref().unwrap_or(settings);
    // The page as the file declares it: the strokes are known only after the analysis, which
    // checks again with them.
    let paper_check = crate::paper::check(
        &paper,
        orientation,
        crate::paper::page_extent(&bytes).as_ref(),
        settings.device.axidraw.model,
    );
    let layers = match s.layers.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(spec) => Some(check_layers(spec)?),
    };
    if let Some(spec) = &layers {
        check_layers_exist(spec, &bytes).await?;
    }
    // The settings' rules, once more for in-process callers (the API checked them already).
    settings
        .with_run(&s.options)
        .map_err(|e| QueueError::Invalid(e.to_string()))?;
    let mut options = s.options;
    options.choose_seed();
    let metadata = json!({
        "options": options,
        "paper": paper.name,
        "paper_mm": [paper.width_mm, paper.height_mm],
        "orientation": crate::paper::orientation_name(orientation),
        "paper_check": paper_check.to_json(),
        "layers": layers,
        "start": s.start,
        "source_bytes": bytes.len(),
    });
    let path = write_staging(jobs_dir, bytes, files).await?;
    Ok(Staged {
        path,
        job: NewJob {
            name,
            source_path: None,
            priority: s.priority,
            metadata,
            // The ledger names the daemon (when several share the database).
            submitted_by: None,
            requirements: s.requirements,
        },
    })
}

/// Moves a staged SVG into the job's directory; returns its final path.
pub(super) async fn install(
    staged: &Path,
    jobs_dir: &Path,
    job_id: &str,
    files: Arc<dyn JobFiles>,
) -> Result<PathBuf, QueueError> {
    let dir = jobs_dir.join(job_id);
    let target = dir.join(SOURCE_FILE);
    let from = staged.to_path_buf();
    let to = target.clone();
    tokio::task::spawn_blocking(move || files.install(&from, &dir, &to))
        .await
        .map_err(|e| QueueError::Io(format!("storing the SVG failed: {e}")))?
        .map_err(|e| write_error("the SVG", jobs_dir, &e))?;
    Ok(target)
}

/// Gives a retried job its own link to (or copy of) the SVG, so either job can be deleted alone.
pub(super) async fn share(
    source: &Path,
    jobs_dir: &Path,
    job_id: &str,
) -> Result<PathBuf, QueueError> {
    let dir = jobs_dir.join(job_id);
    let target = dir.join(SOURCE_FILE);
    let from = source.to_path_buf();
    let to = target.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        // Sources are never written after they are installed, so a hard link is as good as a copy.
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| QueueError::Io(format!("copying the SVG failed: {e}")))?
    .map_err(|e| {
        QueueError::Io(format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            target.display()
        ))
    })?;
    Ok(target)
}

/// Removes staging files left by a crash.
pub(super) fn clear_staging(jobs_dir: &Path) {
    let dir = jobs_dir.join(INCOMING);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        if let Err(err) = std::fs::remove_file(e.path()) {
            tracing::warn!(path = %e.path().display(), error = %err, "cannot remove a staged upload");
        }
    }
}

/// Checks that `bytes` look like an SVG document: text, not compressed, with an `<svg` element
/// near the start. The full parse happens in analysis.
pub(super) fn sniff_svg(bytes: &[u8]) -> Result<(), String> {
    let head = bytes.get(..SNIFF_BYTES).unwrap_or(bytes);
    if head.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty: send an SVG document".into());
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(
            "this is a compressed SVG (.svgz): decompress it first (`gunzip -c file.svgz > file.svg`)"
                .into(),
        );
    }
    if head.contains(&0) {
        return Err("this is binary data, not an SVG document".into());
    }
    if !head.windows(4).any(|w| w == b"<svg") {
        return Err(format!(
            "no <svg> element in the first {} KiB: send an SVG document",
            SNIFF_BYTES / 1024
        ));
    }
    Ok(())
}

fn check_layers(spec: &str) -> Result<String, QueueError> {
    if spec.len() > MAX_LAYERS_SPEC {
        return Err(QueueError::Invalid(format!(
            "the layer selection is longer than {MAX_LAYERS_SPEC} characters"
        )));
    }
    if spec.chars().any(char::is_control) {
        return Err(QueueError::Invalid(
            "the layer selection cannot contain control characters".into(),
        ));
    }
    // The syntax now; whether the layers exist is known once the SVG is analysed.
    crate::import::LayerSelection::parse(spec).map_err(|e| QueueError::Invalid(e.to_string()))?;
    Ok(spec.to_owned())
}

/// Refuses a layer selection that names a layer the SVG does not have (`--layers 7` on a drawing
/// of three layers), listing the layers there are: an error now, not a job that fails in
/// analysis. A file that does not scan is left to the analysis, which says what is wrong.
async fn check_layers_exist(spec: &str, bytes: &Bytes) -> Result<(), QueueError> {
    let Ok(selection) = crate::import::LayerSelection::parse(spec) else {
        return Ok(());
    };
    let bytes = bytes.clone();
    let scanned = tokio::task::spawn_blocking(move || crate::import::scan_layers(&bytes))
        .await
        .map_err(|e| QueueError::Io(format!("the layer scan ended abnormally: {e}")))?;
    match scanned {
        Ok(layers) => selection
            .matching(&layers)
            .map(drop)
            .map_err(|e| QueueError::Invalid(e.to_string())),
        Err(_) => Ok(()),
    }
}

/// The size limit of a submitted SVG: the smaller of `websocket.max_upload_size` (what the API
/// accepts) and `limits.max_file_mb` (what an import accepts; issue 10), and which one it is, so
/// the message names the setting to raise.
#[derive(Clone, Copy, Debug)]
struct SizeLimit {
    bytes: u64,
    key: &'static str,
}

impl SizeLimit {
    fn of(settings: &Settings) -> Self {
        let upload = settings.websocket.max_upload_size;
        let import = settings.limits.max_file_bytes;
        if import < upload {
            Self {
                bytes: import,
                key: "limits.max_file_mb",
            }
        } else {
            Self {
                bytes: upload,
                key: "websocket.max_upload_size",
            }
        }
    }
}

impl std::fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "more than {} ({} bytes): simplify the drawing, or raise {} in the daemon's config",
            self.key, self.bytes, self.key
        )
    }
}

async fn read_limited(path: &Path, limit: SizeLimit) -> Result<Bytes, QueueError> {
    let shown = path.display().to_string();
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| QueueError::Invalid(format!("cannot read {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(QueueError::Invalid(format!("{shown} is not a file")));
    }
    if meta.len() > limit.bytes {
        return Err(QueueError::Invalid(format!(
            "{shown} has {} bytes, {limit}",
            meta.len()
        )));
    }
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(|e| QueueError::Invalid(format!("cannot read {shown}: {e}")))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.svg".to_owned())
}

async fn write_staging(
    jobs_dir: &Path,
    bytes: Bytes,
    files: Arc<dyn JobFiles>,
) -> Result<PathBuf, QueueError> {
    let dir = jobs_dir.join(INCOMING);
    let path = dir.join(format!("{:016x}.svg", fastrand::u64(..)));
    let target = path.clone();
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let written = files.write_new(&target, &bytes);
        if written.is_err() {
            // A full disk leaves part of the file: take it back at once, not at the next start.
            if let Err(e) = std::fs::remove_file(&target)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %target.display(), error = %e, "cannot remove a partial upload");
            }
        }
        written
    })
    .await
    .map_err(|e| QueueError::Io(format!("storing the SVG failed: {e}")))?
    .map_err(|e| write_error("the SVG", jobs_dir, &e))?;
    Ok(path)
}

/// Start-up recovery of submissions cut short by a crash (or a full disk whose failure could not
/// be recorded): a job at `NEW` whose SVG is in place (`<id>/source.svg`) is queued, one without
/// it is `FAILED` with the reason; job directories without a job are logged and left alone.
pub async fn recover_submissions(
    ledger: &Ledger,
    jobs_dir: &Path,
) -> Result<SubmissionRecovery, StoreError> {
    let mut out = SubmissionRecovery::default();
    let me = ledger.lease().map(|(name, _)| name.to_owned());
    for job in ledger.store().jobs(vec![JobState::New]).await? {
        // On a farm, a job at NEW submitted to another daemon is that daemon's submission in
        // progress (or its own to recover), never this daemon's.
        if let (Some(me), Some(by)) = (&me, &job.submitted_by)
            && me != by
        {
            continue;
        }
        let id = job.id.clone();
        let source = jobs_dir.join(id.as_str()).join(SOURCE_FILE);
        let in_place = tokio::fs::metadata(&source)
            .await
            .is_ok_and(|m| m.is_file());
        if in_place {
            if job.source_path.is_none() {
                ledger.store().set_source_path(id.as_str(), source).await?;
            }
            ledger
                .apply(TransitionRequest {
                    job_id: id.clone(),
                    event: JobEvent::Enqueue,
                    reason: Reason::Submitted,
                    error: None,
                    metadata: serde_json::Value::Null,
                })
                .await?;
            tracing::warn!(
                job_id = %id,
                "job was left at NEW by an interrupted submission; its SVG is stored, so it is QUEUED"
            );
            out.queued.push(id);
        } else {
            let error = format!(
                "the submission was interrupted before its SVG was stored at {} (the daemon \
                 stopped, or the disk was full); submit the SVG again",
                source.display()
            );
            ledger
                .apply(TransitionRequest {
                    job_id: id.clone(),
                    event: JobEvent::Fail,
                    reason: Reason::Error,
                    error: Some(error.clone()),
                    metadata: serde_json::Value::Null,
                })
                .await?;
            tracing::warn!(job_id = %id, "job was left at NEW and is FAILED: {error}");
            out.failed.push(id);
        }
    }
    out.orphans = orphans(ledger, jobs_dir).await?;
    for dir in &out.orphans {
        tracing::warn!(
            path = %dir.display(),
            "this job directory has no job in the database (a submission cut short, or a job \
             deleted by hand); it is ignored: look at it and delete it"
        );
    }
    Ok(out)
}

/// Directories under `jobs_dir` named like a job id that no job has.
async fn orphans(ledger: &Ledger, jobs_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let dir = jobs_dir.to_path_buf();
    let candidates = tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut found: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                JobId::parse(&name).ok().map(|_| (name, e.path()))
            })
            .collect();
        found.sort();
        found
    })
    .await
    .unwrap_or_default();
    let mut out = Vec::new();
    for (id, path) in candidates {
        if ledger.store().job(&id).await?.is_none() {
            out.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_accepts_svg_and_names_what_else_it_got() {
        assert!(sniff_svg(b"<?xml version=\"1.0\"?>\n<!-- x -->\n<svg xmlns=\"\"/>").is_ok());
        assert!(sniff_svg("\u{feff}<svg/>".as_bytes()).is_ok());
        for (bad, says) in [
            (&b""[..], "empty"),
            (b"  \n", "empty"),
            (&[0x1f, 0x8b, 8, 0], "compressed"),
            (b"<svg\0", "binary"),
            (b"<html><body/></html>", "no <svg>"),
        ] {
            let e = sniff_svg(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let mut late = vec![b' '; SNIFF_BYTES];
        late.extend_from_slice(b"<svg/>");
        assert!(sniff_svg(&late).is_err());
    }

    #[test]
    fn layer_specs_are_checked() {
        assert_eq!(check_layers("1,3-4,outline").unwrap(), "1,3-4,outline");
        assert!(check_layers("1,,2").is_err());
        assert!(check_layers("5-2").is_err());
        assert!(check_layers("a\nb").is_err());
        assert!(check_layers(&"1,".repeat(200)).is_err());
    }

    #[test]
    fn full_disks_are_named_with_what_to_free_and_other_failures_with_the_path() {
        let jobs = Path::new("/ws/jobs");
        for e in [
            io::Error::from_raw_os_error(nix::libc::ENOSPC),
            io::Error::from_raw_os_error(nix::libc::EDQUOT),
        ] {
            let q = write_error("the SVG", jobs, &e);
            assert_eq!(q.code(), "DISK_FULL");
            assert!(
                q.to_string().contains("the disk holding /ws/jobs is full"),
                "{q}"
            );
        }
        let q = write_error(
            "the SVG",
            jobs,
            &io::Error::from_raw_os_error(nix::libc::EACCES),
        );
        assert!(matches!(q, QueueError::Io(_)), "{q:?}");
        assert!(q.to_string().contains("permissions"), "{q}");
        // SQLite's "database or disk is full" (SQLITE_FULL).
        let full = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        let q = store_error(jobs, full);
        assert_eq!(q.code(), "DISK_FULL");
        assert!(q.to_string().contains("Free space there"), "{q}");
        assert!(matches!(
            store_error(jobs, StoreError::Closed),
            QueueError::ShuttingDown
        ));
    }

    /// Issue 10: the daemon refuses a submission over `limits.max_file_mb` (bytes or a path)
    /// and names it, or `websocket.max_upload_size` when that is the smaller.
    #[tokio::test]
    async fn submissions_over_the_file_limit_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults_for(dir.path());
        settings.limits.max_file_bytes = 5;
        let jobs = settings.jobs_dir();
        let file = dir.path().join("drawing.svg");
        std::fs::write(&file, b"<svg/>").unwrap();
        for svg in [
            SvgSource::Bytes(Bytes::from_static(b"<svg/>")),
            SvgSource::Path(file),
        ] {
            let sub = Submission {
                svg,
                name: None,
                paper: None,
                layers: None,
                priority: 0,
                start: false,
                options: Default::default(),
                requirements: Default::default(),
            };
            let e = stage(sub, &settings, &jobs, Arc::new(Disk))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("has 6 bytes, more than limits.max_file_mb (5 bytes)")
                    && e.contains("raise limits.max_file_mb"),
                "{e}"
            );
        }
        settings.websocket.max_upload_size = 4;
        let sub = Submission {
            svg: SvgSource::Bytes(Bytes::from_static(b"<svg/>")),
            name: None,
            paper: None,
            layers: None,
            priority: 0,
            start: false,
            options: Default::default(),
            requirements: Default::default(),
        };
        let e = stage(sub, &settings, &jobs, Arc::new(Disk))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("raise websocket.max_upload_size"), "{e}");
    }

    #[tokio::test]
    async fn staging_checks_options_and_writes_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::defaults_for(dir.path());
        let jobs = settings.jobs_dir();
        let sub = |paper: Option<&str>| Submission {
            svg: SvgSource::Bytes(Bytes::from_static(THREE_LAYERS)),
            name: None,
            paper: paper.map(Into::into),
            layers: Some("2".into()),
            priority: 3,
            start: true,
            options: Default::default(),
            requirements: Default::default(),
        };
        let staged = stage(sub(Some("letter")), &settings, &jobs, Arc::new(Disk))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&staged.path).unwrap(), THREE_LAYERS);
        assert_eq!(staged.job.name, "upload.svg");
        assert_eq!(staged.job.priority, 3);
        assert_eq!(staged.job.metadata["paper"], "Letter");
        assert_eq!(staged.job.metadata["layers"], "2");
        assert_eq!(staged.job.metadata["start"], true);
        let e = stage(sub(Some("B52")), &settings, &jobs, Arc::new(Disk))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a paper size"), "{e}");

        let file = dir.path().join("drawing.svg");
        std::fs::write(&file, THREE_LAYERS).unwrap();
        let staged = stage(
            Submission {
                svg: SvgSource::Path(file),
                ..sub(None)
            },
            &settings,
            &jobs,
            Arc::new(Disk),
        )
        .await
        .unwrap();
        assert_eq!(staged.job.name, "drawing.svg");
        assert_eq!(staged.job.metadata["paper"], "A4");
        let installed = install(&staged.path, &jobs, "abc", Arc::new(Disk))
            .await
            .unwrap();
        assert_eq!(installed, jobs.join("abc").join(SOURCE_FILE));
        assert!(!staged.path.exists());
        std::fs::write(jobs.join(INCOMING).join("left.svg"), b"x").unwrap();
        clear_staging(&jobs);
        assert_eq!(std::fs::read_dir(jobs.join(INCOMING)).unwrap().count(), 0);
    }

    /// Issue 15: a job for an A3 plotter is checked against the A3's travel, not the first
    /// plotter's (an A4).
    #[tokio::test]
    async fn the_paper_is_checked_against_the_plotter_the_job_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults_for(dir.path());
        let mut a4 = settings.device.clone();
        a4.name = Some("small".into());
        let mut a3 = a4.clone();
        a3.name = Some("big".into());
        a3.tags = vec!["a3".into()];
        a3.axidraw.model = plotty_motion::kinematics::Model::from_number(2).unwrap();
        settings.devices = vec![a4, a3];
        let jobs = settings.jobs_dir();
        let sub = |req: crate::devices::registry::Requirements| Submission {
            svg: SvgSource::Bytes(Bytes::from_static(THREE_LAYERS)),
            name: None,
            paper: Some("A3 landscape".into()),
            layers: None,
            priority: 0,
            start: false,
            options: Default::default(),
            requirements: req,
        };
        let warnings = |staged: &Staged| staged.job.metadata["paper_check"]["warnings"].clone();
        let any = stage(sub(Default::default()), &settings, &jobs, Arc::new(Disk))
            .await
            .unwrap();
        assert!(
            warnings(&any).to_string().contains("travel"),
            "{}",
            warnings(&any)
        );
        for req in [
            crate::devices::registry::Requirements {
                device: Some("big".into()),
                ..Default::default()
            },
            crate::devices::registry::Requirements {
                tags: vec!["a3".into()],
                ..Default::default()
            },
        ] {
            let own = stage(sub(req), &settings, &jobs, Arc::new(Disk))
                .await
                .unwrap();
            assert_eq!(warnings(&own), serde_json::json!([]), "on the A3");
        }
    }

    const THREE_LAYERS: &[u8] = br#"<svg xmlns="http://www.w3.org/2000/svg"
        xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="50mm" height="50mm">
      <g inkscape:groupmode="layer" inkscape:label="1 outline"><path d="M1 1H9" stroke="black"/></g>
      <g inkscape:groupmode="layer" inkscape:label="2 hatch"><path d="M1 2H9" stroke="black"/></g>
      <g inkscape:groupmode="layer" inkscape:label="3 text"><path d="M1 3H9" stroke="black"/></g>
      <g inkscape:groupmode="layer" inkscape:label="4 hidden" style="display:none"><path d="M1 4H9" stroke="black"/></g>
    </svg>"#;

    #[tokio::test]
    async fn a_selection_of_layers_the_drawing_lacks_is_refused_at_submission() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::defaults_for(dir.path());
        let jobs = settings.jobs_dir();
        let sub = |layers: &str| Submission {
            svg: SvgSource::Bytes(Bytes::from_static(THREE_LAYERS)),
            name: None,
            paper: None,
            layers: Some(layers.into()),
            priority: 0,
            start: false,
            options: Default::default(),
            requirements: Default::default(),
        };
        for bad in ["7", "1,7", "4", "fill"] {
            let e = stage(sub(bad), &settings, &jobs, Arc::new(Disk))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("names no layer")
                    && e.contains(r#"1 "1 outline", 2 "2 hatch", 3 "3 text""#),
                "{bad}: {e}"
            );
            assert!(!e.contains("hidden"), "hidden layers are not plotted: {e}");
        }
        for good in ["1-3", "hatch", "3 text", "2,3"] {
            stage(sub(good), &settings, &jobs, Arc::new(Disk))
                .await
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }
}
