//! systemd readiness notification (`sd_notify`) for `Type=notify` units: one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` for Linux's
//! abstract namespace). Written with std rather than a crate: it is a single `sendto`.
//!
//! Without `NOTIFY_SOCKET` (foreground, OpenRC, `Type=simple`) every call does nothing.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

/// Where notifications go.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    target: Option<Target>,
}

#[derive(Clone, Debug)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// A notifier for the socket named by `NOTIFY_SOCKET` (read now; `None`: notifications off).
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NOTIFY_SOCKET"))
    }

    /// A notifier for the socket `notify_socket` (the value of `NOTIFY_SOCKET`).
    pub fn new(notify_socket: Option<OsString>) -> Self {
        let target = notify_socket.filter(|s| !s.is_empty()).map(|s| {
            let bytes = s.as_bytes();
            match bytes.strip_prefix(b"@") {
                Some(name) => Target::Abstract(name.to_vec()),
                None => Target::Path(PathBuf::from(s)),
            }
        });
        Self { target }
    }

    /// True when notifications are sent somewhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Start-up finished: `READY=1`, the main PID (which differs from the started one with
    /// `--daemonize`) and a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ));
    }

    /// Shutdown started: `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// A status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// Sends `message`; a failure is logged and otherwise ignored (the daemon works without it).
    pub fn send(&self, message: &str) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(e) = send(target, message.as_bytes()) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }
}

fn send(target: &Target, message: &[u8]) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match target {
        Target::Path(p) => socket.send_to(message, p)?,
        Target::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(message, &addr)?
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.clone().into()));
        assert!(n.enabled());
        n.ready("listening on 127.0.0.1:8766");
        n.stopping();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        assert_eq!(
            msg,
            format!(
                "READY=1\nMAINPID={}\nSTATUS=listening on 127.0.0.1:8766",
                std::process::id()
            )
        );
        let len = server.recv(&mut buf).unwrap();
        assert!(
            std::str::from_utf8(&buf[..len])
                .unwrap()
                .starts_with("STOPPING=1")
        );
    }

    #[test]
    fn sends_to_abstract_sockets_and_is_quiet_without_one() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("plotty-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        Notifier::new(Some(format!("@{name}").into())).status("hello");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STATUS=hello");
        let off = Notifier::new(None);
        assert!(!off.enabled());
        off.ready("nothing happens");
    }
}
