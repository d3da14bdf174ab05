//! The per-job journal: `<workspace>/jobs/<id>/journal.jsonl`, one JSON object per line.
//!
//! The same facts are in SQLite; the journal is for people and tools (`tail -f`, `jq`). Each line is
//! appended with one `write` and made durable with `fdatasync` before the call returns, which the
//! daemon does after the SQLite transaction commits and before anything is broadcast.
//!
//! A crash can leave a partial last line. Appending first completes such a line with a newline, so
//! a damaged line never swallows the next good one, and [`read`] skips damaged lines with a warning
//! instead of forgetting the rest of the job's history.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of a job's journal inside its directory.
pub const FILE_NAME: &str = "journal.jsonl";

/// The kind of a journal line (`type` on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The job moved from `from_state` to `to_state`.
    StateChange,
    /// The hooks of a transition ran; `metadata.results` holds one record per action.
    HooksExecuted,
    /// The last point known to be drawn (resume point) was recorded.
    ProgressCheckpoint,
    /// The device reported a problem while working on the job.
    DeviceError,
    /// The daemon found the job interrupted at start-up and recovered it.
    Recovery,
    /// A kind written by a newer plotty; kept when reading, never written.
    #[serde(other)]
    Unknown,
}

/// One journal line. Field order is the wire order.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// What the line records.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// The job.
    pub job_id: String,
    /// RFC 3339 UTC time of the fact.
    pub timestamp: String,
    /// State before the transition (`null` when the job was created).
    #[serde(default)]
    pub from_state: Option<String>,
    /// State after the transition, or the job's state for other kinds.
    #[serde(default)]
    pub to_state: Option<String>,
    /// Why (`interrupted`, `pen_change`, `user`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// Everything else (error text, hook results, resume point, …).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// A line that could not be read back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub error: String,
}

/// The readable part of a journal and what had to be skipped.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Contents {
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// Damaged lines (each already logged as a warning).
    pub skipped: Vec<SkippedLine>,
}

/// The journal path of job `job_id` under `jobs_dir` (`<workspace>/jobs`).
pub fn path(jobs_dir: &Path, job_id: &str) -> PathBuf {
    jobs_dir.join(job_id).join(FILE_NAME)
}

/// Appends `entry` to the journal at `path` and waits until it is on disk.
///
/// Creates the job directory and file when needed (and syncs the directories so the new file
/// survives a power cut). A partial last line left by a crash is terminated first.
pub fn append(path: &Path, entry: &Entry) -> io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let created = ensure_parent(path)?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    if !ends_with_newline(&mut file)? {
        line.insert(0, b'\n');
    }
    // One write of the whole line: O_APPEND makes it land after every earlier line.
    file.write_all(&line)?;
    file.sync_data()?;
    if let Some(dir) = path.parent().filter(|_| created) {
        sync_dir(dir)?;
        if let Some(jobs_dir) = dir.parent() {
            sync_dir(jobs_dir)?;
        }
    }
    Ok(())
}

/// Reads every entry of the journal at `path`, skipping (and logging) damaged lines.
///
/// A missing file reads as empty: a job may not have written its first line yet.
pub fn read(path: &Path) -> io::Result<Contents> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut contents = Contents::default();
    let mut raw = Vec::new();
    let mut line_no = 0;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&raw) {
            Ok(t) => t.trim(),
            Err(e) => {
                skip(path, &mut contents, line_no, format!("not UTF-8: {e}"));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(text) {
            Ok(entry) => contents.entries.push(entry),
            Err(e) => skip(path, &mut contents, line_no, e.to_string()),
        }
    }
    Ok(contents)
}

fn skip(path: &Path, contents: &mut Contents, line: usize, error: String) {
    tracing::warn!(
        journal = %path.display(),
        line,
        %error,
        "skipping a damaged journal line; the job's state is taken from the database"
    );
    contents.skipped.push(SkippedLine { line, error });
}

/// Creates the parent directory if needed; true when it had to be created.
fn ensure_parent(path: &Path) -> io::Result<bool> {
    let Some(dir) = path.parent() else {
        return Ok(false);
    };
    if dir.is_dir() {
        return Ok(!path.exists());
    }
    fs::create_dir_all(dir)?;
    Ok(true)
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Entry {
    /// A line of `kind` for `job_id`, stamped now, with no states, reason or metadata.
    pub fn new(kind: EntryKind, job_id: impl Into<String>) -> Self {
        Self {
            kind,
            job_id: job_id.into(),
            timestamp: crate::timestamp::now(),
            from_state: None,
            to_state: None,
            reason: None,
            metadata: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(job: &str, from: Option<&str>, to: &str) -> Entry {
        Entry {
            from_state: from.map(str::to_owned),
            to_state: Some(to.to_owned()),
            reason: Some("user".into()),
            ..Entry::new(EntryKind::StateChange, job)
        }
    }

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "abc");
        append(&p, &change("abc", None, "NEW")).unwrap();
        append(&p, &change("abc", Some("NEW"), "QUEUED")).unwrap();
        let got = read(&p).unwrap();
        assert!(got.skipped.is_empty());
        let states: Vec<_> = got.entries.iter().map(|e| e.to_state.clone()).collect();
        assert_eq!(states, [Some("NEW".into()), Some("QUEUED".into())]);
        assert_eq!(got.entries[0].from_state, None);
    }

    #[test]
    fn wire_format_has_the_documented_fields() {
        let e = Entry {
            timestamp: "2026-11-26T06:31:50.530Z".into(),
            ..change("j1", Some("READY"), "QUEUED")
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"state_change","job_id":"j1","timestamp":"2026-11-26T06:31:50.530Z","from_state":"READY","to_state":"QUEUED","reason":"user","metadata":{}}"#
        );
    }

    #[test]
    fn damaged_lines_are_skipped_and_never_swallow_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "j");
        append(&p, &change("j", None, "NEW")).unwrap();
        // A crash in the middle of a write leaves a partial line without its newline.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"type":"state_change","job_id":"j","times"#)
            .unwrap();
        f.write_all(b"\n\xff\xfe not utf8\n").unwrap();
        f.write_all(br#"{"type":"state_change""#).unwrap();
        drop(f);
        append(&p, &change("j", Some("NEW"), "QUEUED")).unwrap();
        let got = read(&p).unwrap();
        let states: Vec<_> = got.entries.iter().map(|e| e.to_state.clone()).collect();
        assert_eq!(states, [Some("NEW".into()), Some("QUEUED".into())]);
        assert_eq!(
            got.skipped.iter().map(|s| s.line).collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }

    #[test]
    fn unknown_kinds_from_newer_versions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        fs::write(
            &p,
            "{\"type\":\"camera_frame\",\"job_id\":\"j\",\"timestamp\":\"t\"}\n",
        )
        .unwrap();
        let got = read(&p).unwrap();
        assert_eq!(got.entries[0].kind, EntryKind::Unknown);
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn missing_journal_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read(&dir.path().join("none.jsonl")).unwrap(),
            Contents::default()
        );
    }
}
