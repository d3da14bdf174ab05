//! The system calls the daemon needs that `nix` only offers as `unsafe` (or not at all): `fork`
//! (for `--daemonize`) and `setpriority` (for `--nice`), which run before the process has any
//! other thread, and glibc's `malloc_trim` ([`trim_heap`], after a big job). This is the only
//! module allowed `unsafe`.
//!
//! `--daemonize` forks twice (the classic way, so the daemon is not a session leader and can never
//! acquire a controlling terminal by opening a serial port), detaches stdio to `/dev/null` and keeps
//! a pipe to the original process. The original process waits on that pipe until the daemon says it
//! is ready (or why it is not) and only then exits, printing the daemon's real PID.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setsid};

/// Which side of `--daemonize` this process is on.
pub enum Forked {
    /// The process that was started: wait for the daemon's word, then exit.
    Parent(StartupWaiter),
    /// The daemon: report start-up through the notifier.
    Daemon(StartupNotifier),
}

/// The parent's end of the start-up pipe.
pub struct StartupWaiter {
    pipe: File,
}

/// The daemon's end of the start-up pipe.
pub struct StartupNotifier {
    pipe: File,
}

/// What the daemon reported.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StartupReport {
    /// Listening: its PID and address (`-` when the API is disabled).
    Ready {
        /// The daemon's PID.
        pid: u32,
        /// Where it listens.
        address: String,
    },
    /// Start-up failed with this exit code and message.
    Failed {
        /// Exit code the daemon used.
        code: u8,
        /// Why.
        message: String,
    },
    /// The daemon went away without a word (crashed).
    Vanished,
    /// No word within the deadline.
    TimedOut,
}

/// Forks into the background (see the module doc). Must be called before any thread exists.
#[allow(unsafe_code)]
pub fn daemonize() -> std::io::Result<Forked> {
    // Close-on-exec, so hook processes never inherit the pipe and keep the parent waiting.
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the process is single-threaded here (no runtime, no logging thread, no store thread
    // yet), so the child is a complete copy and may run any code, not only async-signal-safe code.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(write);
            // The intermediate child exits right after the second fork; reap it.
            let _ = waitpid(child, None);
            Ok(Forked::Parent(StartupWaiter {
                pipe: File::from(read),
            }))
        }
        ForkResult::Child => {
            drop(read);
            let mut notifier = StartupNotifier {
                pipe: File::from(write),
            };
            if let Err(e) = setsid() {
                notifier.send(&format!("ERROR 1 setsid failed: {e}"));
                std::process::exit(1);
            }
            // SAFETY: still single-threaded (this is the child of the fork above).
            match unsafe { fork() } {
                Ok(ForkResult::Parent { .. }) => std::process::exit(0),
                Ok(ForkResult::Child) => {}
                Err(e) => {
                    notifier.send(&format!("ERROR 1 the second fork failed: {e}"));
                    std::process::exit(1);
                }
            }
            // Do not keep the directory we were started in busy (all our paths are absolute).
            let _ = nix::unistd::chdir("/");
            detach_stdio()?;
            Ok(Forked::Daemon(notifier))
        }
    }
}

fn detach_stdio() -> std::io::Result<()> {
    let null: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into();
    dup2_stdin(&null)?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)?;
    Ok(())
}

/// Sets the nice value of the process. Must be called before any thread exists: on Linux each
/// thread has its own nice value, and new threads inherit their creator's.
#[allow(unsafe_code)]
pub fn set_nice(value: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let r = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, value) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives the heap's free pages back to the system (glibc's `malloc_trim(0)`; a no-op on other C
/// libraries). glibc keeps what a big job freed: the arenas of the threads that imported and
/// optimised it, and blocks above its mmap threshold, which rises up to 32 MiB as big blocks are
/// freed. A 1 M-segment job left a debug daemon at 116 MB after it was deleted (idle: 30 MB);
/// trimmed, 34 MB (issue 10). Costs a walk over the free chunks: call it after big frees, off the
/// async threads.
#[allow(unsafe_code)]
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer and only touches glibc's own arenas, under their
    // locks; it is safe to call from any thread at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Blocks of this size or more get a mapping of their own, given back to the system when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fixes glibc's mmap threshold at 1 MiB (a no-op on other C libraries), which also stops its
/// dynamic adjustment. By default every freed block above the threshold raises it (up to
/// 32 MiB) and the trim threshold with it (twice that): after a big job the top of a thread's
/// arena, up to 64 MiB, was kept even by `malloc_trim`, which only trims the main arena's top
/// (a 2 M-segment job left a debug daemon at 65 MB instead of 34 MB in 3 runs of 8). Fixed,
/// a program's big vectors are mappings of their own and a freed arena top above 128 KiB goes
/// back at once. Call it before any thread exists.
#[allow(unsafe_code)]
pub fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two plain integers and only changes glibc's malloc parameters.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

impl StartupWaiter {
    /// Waits up to `deadline` for the daemon's report.
    pub fn wait(mut self, deadline: Duration) -> StartupReport {
        let until = Instant::now() + deadline;
        let mut buf = Vec::new();
        loop {
            if let Some(end) = buf.iter().position(|b| *b == b'\n') {
                return parse(&String::from_utf8_lossy(&buf[..end]));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return StartupReport::TimedOut;
            }
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(
                std::os::fd::AsFd::as_fd(&self.pipe),
                PollFlags::POLLIN,
            )];
            match poll(&mut fds, timeout) {
                Ok(0) => return StartupReport::TimedOut,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return StartupReport::Vanished,
            }
            let mut chunk = [0u8; 512];
            match self.pipe.read(&mut chunk) {
                Ok(0) => {
                    return if buf.is_empty() {
                        StartupReport::Vanished
                    } else {
                        parse(&String::from_utf8_lossy(&buf))
                    };
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return StartupReport::Vanished,
            }
        }
    }
}

fn parse(line: &str) -> StartupReport {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("READY"), Some(pid), address) => match pid.parse() {
            Ok(pid) => StartupReport::Ready {
                pid,
                address: address.unwrap_or("-").to_owned(),
            },
            Err(_) => StartupReport::Vanished,
        },
        (Some("ERROR"), Some(code), message) => StartupReport::Failed {
            code: code.parse().unwrap_or(1),
            message: message.unwrap_or("start-up failed").to_owned(),
        },
        _ => StartupReport::Vanished,
    }
}

impl StartupNotifier {
    /// Reports that the daemon is ready, listening on `address`.
    pub fn ready(mut self, address: &str) {
        self.send(&format!("READY {} {address}", std::process::id()));
    }

    /// Reports a start-up failure.
    pub fn failed(mut self, code: u8, message: &str) {
        self.send(&format!("ERROR {code} {}", message.replace('\n', " | ")));
    }

    fn send(&mut self, line: &str) {
        // The parent may have given up waiting; there is no one else to tell.
        let _ = self.pipe.write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_a_pipe() {
        for (send, want) in [
            (
                Box::new(|n: StartupNotifier| n.ready("127.0.0.1:8766"))
                    as Box<dyn Fn(StartupNotifier)>,
                StartupReport::Ready {
                    pid: std::process::id(),
                    address: "127.0.0.1:8766".into(),
                },
            ),
            (
                Box::new(|n: StartupNotifier| n.failed(4, "cannot listen\non 8766")),
                StartupReport::Failed {
                    code: 4,
                    message: "cannot listen | on 8766".into(),
                },
            ),
            (Box::new(drop), StartupReport::Vanished),
        ] {
            let (r, w) = pipe2(OFlag::O_CLOEXEC).unwrap();
            send(StartupNotifier {
                pipe: File::from(w),
            });
            let got = StartupWaiter {
                pipe: File::from(r),
            }
            .wait(Duration::from_secs(5));
            assert_eq!(got, want);
        }
        let (r, _w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let got = StartupWaiter {
            pipe: File::from(r),
        }
        .wait(Duration::from_millis(10));
        assert_eq!(got, StartupReport::TimedOut);
    }
}
