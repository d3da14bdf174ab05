//! Helpers to run the real `plotty` binary in a private environment: its own HOME and XDG
//! directories in a temporary directory, no `PLOTTY_*` or `NOTIFY_SOCKET` from the outside, loopback
//! ports only. Waiting is by polling files with a bounded deadline.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plotty_host::daemon::state_file::{DaemonInfo, StateFile};

/// How long any wait in these tests may take before it counts as a failure.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` every 10 ms until it gives a value or `DEADLINE` passes.
pub(crate) fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        sleep(Duration::from_millis(10));
    }
}

/// Polls `f` every 10 ms until it gives a value or `seconds` pass (a plot in real time).
pub(crate) fn poll_for<T>(what: &str, seconds: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to its end and collects its output, like `Command::output`, but kills it and
/// fails the test if it is still running after [`DEADLINE`] (a daemon that should have refused
/// to start must not hang the suite).
pub(crate) fn output_within_deadline(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
            panic!("the command was still running after {DEADLINE:?}: killed");
        }
    }
}

/// A private environment for `plotty`.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Readable by other users too: some tests run plotty as `nobody`.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["home", "config", "data"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Self { dir }
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The workspace the tests pass with `-w`.
    pub(crate) fn workspace(&self) -> PathBuf {
        self.path("ws")
    }

    /// Writes the default config file ($XDG_CONFIG_HOME/plotty/config.yaml).
    pub(crate) fn write_default_config(&self, text: &str) -> PathBuf {
        let p = self.path("config/plotty/config.yaml");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    /// Writes a config file at `name` inside the environment.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    /// `plotty` with this environment.
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plotty"));
        c.current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env_remove("PLOTTY_CONFIG")
            .env_remove("PLOTTY_API_KEY")
            .env_remove("PLOTTY_WORKSPACE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Runs `plotty args…` to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `plotty daemon -w <ws> -p 0 -h 127.0.0.1` plus `extra`, with stderr to a file.
    pub(crate) fn daemon(&self, extra: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(["daemon", "-h", "127.0.0.1", "-p", "0", "-w"])
            .arg(self.workspace())
            .args(extra);
        c
    }

    /// Starts `cmd` with stdout and stderr going to files in the environment.
    pub(crate) fn spawn(&self, mut cmd: Command) -> Running {
        let n = fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.path(&format!("stderr-{n}.log"));
        cmd.stderr(fs::File::create(&log).unwrap())
            .stdout(Stdio::null());
        Running {
            child: cmd.spawn().unwrap(),
            stderr: log,
        }
    }
}

/// A `plotty` process started in the background by a test.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) stderr: PathBuf,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the daemon logged that it is ready (signal handlers are installed by then).
    pub(crate) fn wait_ready(&mut self) {
        poll("the daemon to be ready", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited with {status} before it was ready:\n{}",
                    self.stderr()
                );
            }
            self.stderr().contains("ready: listening").then_some(())
        });
    }

    pub(crate) fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    /// Waits for the process to end.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        poll("the process to exit", || self.child.try_wait().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `daemon.json` of `workspace`, once written.
pub(crate) fn daemon_info(workspace: &Path) -> DaemonInfo {
    poll("daemon.json", || StateFile::read(workspace).ok())
}

/// True while a process with `pid` exists (and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

/// A field of `/proc/<pid>/status` (`Uid`, `Gid`, …).
pub(crate) fn proc_status(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon on the environment's workspace, listening on loopback at `port`, ready.
pub(crate) fn daemon(env: &Env, port: u16) -> Running {
    let mut c = env.cmd();
    c.args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-w"])
        .arg(env.workspace());
    let mut d = env.spawn(c);
    d.wait_ready();
    d
}
