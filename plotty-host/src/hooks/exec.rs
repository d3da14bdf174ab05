//! Runs one hook process with a deadline: its own process group (so a timeout kills what it
//! started too), no stdin, stdout and stderr captured up to a cap, `PLOTTY_*` variables in its
//! environment and the daemon's `NOTIFY_SOCKET` removed (a hook must not talk to systemd for us).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::template::Values;

/// Bytes of stdout and of stderr kept for the record.
pub const OUTPUT_CAP: usize = 2048;

/// How long to wait for the output pipes after the process ended (a background child may hold
/// them open).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What became of a hook process.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProcessOutcome {
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal that ended it, when killed.
    pub signal: Option<i32>,
    /// Start of its stdout.
    pub stdout: String,
    /// Start of its stderr.
    pub stderr: String,
    /// True when the deadline passed and it was killed.
    pub timed_out: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Runs `program` with `args` (directly, no shell in between) and the hook variables, killing its
/// process group at `timeout`. A bare program name is looked up in `PATH`. Fails only when it could
/// not be started.
pub async fn run<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    values: &Values,
    workspace: &Path,
    timeout: Duration,
) -> std::io::Result<ProcessOutcome> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(values.env())
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if workspace.is_dir() {
        cmd.current_dir(workspace);
    }
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let out = tokio::spawn(read_capped(child.stdout.take()));
    let err = tokio::spawn(read_capped(child.stderr.take()));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status?, false),
        Err(_) => {
            if let Some(pgid) = pgid {
                // The group may already be gone; then there is nothing left to kill.
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            (child.wait().await?, true)
        }
    };
    let duration = started.elapsed();
    let stdout = drain(out).await;
    let stderr = drain(err).await;
    let (exit_code, signal) = describe(status);
    Ok(ProcessOutcome {
        exit_code,
        signal,
        stdout,
        stderr,
        timed_out,
        duration,
    })
}

fn describe(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal())
}

async fn drain(task: tokio::task::JoinHandle<String>) -> String {
    let abort = task.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, task).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            "(output still open after the hook ended; not waited for)".into()
        }
    }
}

/// Reads everything, keeping the first [`OUTPUT_CAP`] bytes.
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = (OUTPUT_CAP + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    super::webhook::excerpt(&kept, OUTPUT_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> &'static Path {
        Path::new("/bin/sh")
    }

    #[tokio::test]
    async fn captures_exit_code_output_and_environment() {
        let values = Values {
            job_name: "n".into(),
            ..Values::default()
        };
        let r = run(
            sh(),
            &["-c", "echo out $PLOTTY_JOB_NAME; echo err >&2; exit 3"],
            &values,
            Path::new("/"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out n\n", "err\n"));
        assert!(!r.timed_out);
    }

    #[tokio::test]
    async fn output_is_capped() {
        let r = run(
            sh(),
            &["-c", "head -c 100000 /dev/zero | tr '\\0' x"],
            &Values::default(),
            Path::new("/"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(
            r.stdout.chars().count(),
            OUTPUT_CAP + 1,
            "cap plus the cut mark"
        );
    }
}
