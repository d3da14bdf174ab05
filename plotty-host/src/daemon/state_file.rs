//! `<workspace>/daemon.json`: how to reach the running daemon (PID, host, port, version), for the
//! client commands and for scripts, above all when `--port 0` picked a free port. Written
//! atomically (temporary file, fsync, rename) and removed on exit if it is still this daemon's.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name inside the workspace.
pub const FILE_NAME: &str = "daemon.json";

/// The content of `daemon.json`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon's PID.
    pub pid: u32,
    /// The configured bind host.
    pub host: String,
    /// The port actually bound (`null` when the API is disabled).
    pub port: Option<u16>,
    /// The bound socket address.
    pub address: Option<String>,
    /// plotty version.
    pub version: String,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// The written file; removed when dropped.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    pid: u32,
}

impl StateFile {
    /// Writes `info` to `<workspace>/daemon.json`.
    pub fn write(workspace: &Path, info: &DaemonInfo) -> std::io::Result<Self> {
        let path = workspace.join(FILE_NAME);
        let tmp = workspace.join(format!(".{FILE_NAME}.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        Ok(Self {
            path,
            pid: info.pid,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `<workspace>/daemon.json`.
    pub fn read(workspace: &Path) -> std::io::Result<DaemonInfo> {
        let text = std::fs::read(workspace.join(FILE_NAME))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|t| serde_json::from_slice::<DaemonInfo>(&t).ok())
            .is_some_and(|i| i.pid == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_and_removed_if_ours() {
        let dir = tempfile::tempdir().unwrap();
        let info = DaemonInfo {
            pid: std::process::id(),
            host: "localhost".into(),
            port: Some(40123),
            address: Some("127.0.0.1:40123".into()),
            version: "0.1.0".into(),
            started_at: crate::timestamp::now(),
        };
        let f = StateFile::write(dir.path(), &info).unwrap();
        assert_eq!(StateFile::read(dir.path()).unwrap(), info);
        drop(f);
        assert!(!dir.path().join(FILE_NAME).exists());
        let f = StateFile::write(dir.path(), &info).unwrap();
        let other = DaemonInfo { pid: 1, ..info };
        StateFile::write(dir.path(), &other)
            .map(std::mem::forget)
            .unwrap();
        drop(f);
        assert_eq!(
            StateFile::read(dir.path()).unwrap().pid,
            1,
            "another daemon's file stays"
        );
    }
}
