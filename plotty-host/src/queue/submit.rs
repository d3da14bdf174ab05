//! Taking in a submitted SVG: the checks that can be made without parsing it (analysis parses it
//! later), the job's options, and the staging file it is written to before the job exists.
//!
//! The bytes go to `<workspace>/jobs/.incoming/<random>.svg` first (written and fsynced), and are
//! renamed to `<workspace>/jobs/<id>/source.svg` once the job has its id: a job never points at a
//! half-written file, and a crash leaves at most a staging file, removed at the next start.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::json;

use super::command::{QueueError, Submission, SvgSource};
use crate::settings::Settings;
use crate::store::NewJob;

/// Staging directory inside the jobs directory (`.` cannot start a job id).
pub(super) const INCOMING: &str = ".incoming";

/// File name of a job's SVG inside its directory.
pub(super) const SOURCE_FILE: &str = "source.svg";

/// How far into the file the `<svg` element must start.
const SNIFF_BYTES: usize = 64 * 1024;

/// Longest accepted layer selection.
const MAX_LAYERS_SPEC: usize = 256;

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
) -> Result<Staged, QueueError> {
    let limit = settings.websocket.max_upload_size;
    let (bytes, default_name) = match s.svg {
        SvgSource::Bytes(b) => (b, "upload.svg".to_owned()),
        SvgSource::Path(p) => (read_limited(&p, limit).await?, file_name(&p)),
    };
    if bytes.len() as u64 > limit {
        return Err(QueueError::Invalid(format!(
            "the SVG has {} bytes, more than websocket.max_upload_size ({limit} bytes)",
            bytes.len()
        )));
    }
    sniff_svg(&bytes).map_err(QueueError::Invalid)?;
    let name = s
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(default_name);
    let paper = match s.paper.as_deref().map(str::trim) {
        None | Some("") => settings.paper.size.clone(),
        Some(p) => crate::settings::parse_paper(p).ok_or_else(|| {
            QueueError::Invalid(format!(
                "`{p}` is not a paper size: use A0–A6, Letter, Legal, Tabloid, … or WIDTHxHEIGHT \
                 in mm (300x200)"
            ))
        })?,
    };
    let layers = match s.layers.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(spec) => Some(check_layers(spec)?),
    };
    let metadata = json!({
        "paper": paper.name,
        "paper_mm": [paper.width_mm, paper.height_mm],
        "layers": layers,
        "start": s.start,
        "source_bytes": bytes.len(),
    });
    let path = write_staging(jobs_dir, bytes).await?;
    Ok(Staged {
        path,
        job: NewJob {
            name,
            source_path: None,
            priority: s.priority,
            metadata,
        },
    })
}

/// Moves a staged SVG into the job's directory; returns its final path.
pub(super) async fn install(
    staged: &Path,
    jobs_dir: &Path,
    job_id: &str,
) -> Result<PathBuf, QueueError> {
    let dir = jobs_dir.join(job_id);
    let target = dir.join(SOURCE_FILE);
    let from = staged.to_path_buf();
    let to = target.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(&from, &to)?;
        // The rename is durable once the directory is.
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(|e| QueueError::Io(format!("storing the SVG failed: {e}")))?
    .map_err(|e| QueueError::Io(format!("cannot store the SVG at {}: {e}", target.display())))?;
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

async fn read_limited(path: &Path, limit: u64) -> Result<Bytes, QueueError> {
    let shown = path.display().to_string();
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| QueueError::Invalid(format!("cannot read {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(QueueError::Invalid(format!("{shown} is not a file")));
    }
    if meta.len() > limit {
        return Err(QueueError::Invalid(format!(
            "{shown} has {} bytes, more than websocket.max_upload_size ({limit} bytes)",
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

async fn write_staging(jobs_dir: &Path, bytes: Bytes) -> Result<PathBuf, QueueError> {
    let dir = jobs_dir.join(INCOMING);
    let path = dir.join(format!("{:016x}.svg", fastrand::u64(..)));
    let target = path.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)?;
        f.write_all(&bytes)?;
        f.sync_all()
    })
    .await
    .map_err(|e| QueueError::Io(format!("storing the SVG failed: {e}")))?
    .map_err(|e| {
        QueueError::Io(format!(
            "cannot store the SVG in {}: {e}; check free space and permissions of the workspace",
            jobs_dir.display()
        ))
    })?;
    Ok(path)
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

    #[tokio::test]
    async fn staging_checks_options_and_writes_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::defaults_for(dir.path());
        let jobs = settings.jobs_dir();
        let sub = |paper: Option<&str>| Submission {
            svg: SvgSource::Bytes(Bytes::from_static(b"<svg/>")),
            name: None,
            paper: paper.map(Into::into),
            layers: Some("2".into()),
            priority: 3,
            start: true,
        };
        let staged = stage(sub(Some("letter")), &settings, &jobs).await.unwrap();
        assert_eq!(std::fs::read(&staged.path).unwrap(), b"<svg/>");
        assert_eq!(staged.job.name, "upload.svg");
        assert_eq!(staged.job.priority, 3);
        assert_eq!(staged.job.metadata["paper"], "Letter");
        assert_eq!(staged.job.metadata["layers"], "2");
        assert_eq!(staged.job.metadata["start"], true);
        let e = stage(sub(Some("B52")), &settings, &jobs).await.unwrap_err();
        assert!(e.to_string().contains("not a paper size"), "{e}");

        let file = dir.path().join("drawing.svg");
        std::fs::write(&file, b"<svg/>").unwrap();
        let staged = stage(
            Submission {
                svg: SvgSource::Path(file),
                ..sub(None)
            },
            &settings,
            &jobs,
        )
        .await
        .unwrap();
        assert_eq!(staged.job.name, "drawing.svg");
        assert_eq!(staged.job.metadata["paper"], "A4");
        let installed = install(&staged.path, &jobs, "abc").await.unwrap();
        assert_eq!(installed, jobs.join("abc").join(SOURCE_FILE));
        assert!(!staged.path.exists());
        std::fs::write(jobs.join(INCOMING).join("left.svg"), b"x").unwrap();
        clear_staging(&jobs);
        assert_eq!(std::fs::read_dir(jobs.join(INCOMING)).unwrap().count(), 0);
    }
}
