//! A throwaway PostgreSQL cluster for the tests and benchmarks of the PostgreSQL job store.
//!
//! [`Cluster::shared`] starts one cluster per test process, the first time a test asks: `initdb`
//! in a fresh directory under the temporary directory, the server listening only on a Unix
//! socket in that directory (no TCP port to collide with), fsync off (nothing here needs to
//! survive a crash). PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` system user (`runuser`), which the distribution's package creates. Each test takes
//! a database of its own ([`Cluster::database`]).
//!
//! Stopping: a small watchdog shell waits on a pipe whose only writer is this process; when the
//! process ends, however it ends, the pipe closes, and the watchdog stops the server and
//! removes the directory.
//!
//! The binaries are taken from `PLOTTY_POSTGRES_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `pg_ctl` on the `PATH`. Without them
//! [`database_or_skip`] skips loudly ([`super::skip`]), which fails under `CI=true`: `.ci/run`
//! installs PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use super::{InCi, skip};

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    next: AtomicU32,
    /// The server's port when not PostgreSQL's default (it names the Unix socket too).
    port: Option<u16>,
    /// The watchdog's stdin: closed (and the cluster stopped) when this process ends.
    _stop: Mutex<ChildStdin>,
}

/// Why there is no cluster.
#[derive(Clone, Debug)]
pub enum Unavailable {
    /// No PostgreSQL binaries on this machine: the test skips.
    Missing(String),
    /// The binaries are there but the cluster would not start: the test fails.
    Broken(String),
}

static SHARED: OnceLock<Result<Cluster, Unavailable>> = OnceLock::new();

/// The user name the tests connect as.
const USER: &str = "plotty";

impl Cluster {
    /// The cluster of this process, started on first use.
    pub fn shared() -> Result<&'static Self, Unavailable> {
        SHARED
            .get_or_init(Self::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start() -> Result<Self, Unavailable> {
        Self::start_with(|_, _| Ok(String::new()))
    }

    /// [`start`](Self::start), with server options added by `extra` (called with the cluster's
    /// directory and whether files must be given to the `postgres` user, before the server
    /// starts).
    fn start_with(
        extra: impl FnOnce(&Path, Option<&nix::unistd::User>) -> Result<String, Unavailable>,
    ) -> Result<Self, Unavailable> {
        let bin = binaries().ok_or_else(|| {
            Unavailable::Missing(
                "no PostgreSQL server binaries (initdb, pg_ctl) in PLOTTY_POSTGRES_BIN, \
                 /usr/lib/postgresql/*/bin or the PATH; install them with \
                 `apt-get install postgresql`"
                    .into(),
            )
        })?;
        let broken = |what: &str, e: &dyn std::fmt::Display| {
            Unavailable::Broken(format!("throwaway PostgreSQL cluster: {what}: {e}"))
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // /tmp rather than $TMPDIR when there is one: the `postgres` user must reach the
        // directory, and a Unix socket's path is limited to about 100 bytes.
        let tmp = Path::new("/tmp");
        let base = if tmp.is_dir() {
            tmp.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("plotty-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| broken("creating the directory", &e))?;
        let as_postgres = nix::unistd::Uid::effective().is_root();
        let mut postgres_user = None;
        if as_postgres {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or_else(|| {
                    broken(
                        "running as root needs the `postgres` system user",
                        &"none found",
                    )
                })?;
            nix::unistd::chown(&dir, Some(user.uid), Some(user.gid))
                .map_err(|e| broken("chown to postgres", &e))?;
            postgres_user = Some(user);
        }
        let data = dir.join("data");
        let run = |program: &str| {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            c.stdin(Stdio::null());
            c
        };
        let check = |what: &str, out: std::io::Result<std::process::Output>| match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(broken(what, &String::from_utf8_lossy(&o.stderr))),
            Err(e) => Err(broken(what, &e)),
        };
        check(
            "initdb",
            run("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ])
                .output(),
        )?;
        let more = extra(&dir, postgres_user.as_ref())?;
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c max_connections=200 {more}",
            dir.display()
        );
        // The watchdog first, so that a failed start is cleaned up too.
        let stop = if as_postgres {
            format!("runuser -u postgres -- '{}'", bin.join("pg_ctl").display())
        } else {
            format!("'{}'", bin.join("pg_ctl").display())
        };
        let script = format!(
            "read _; {stop} -D '{}' -m immediate -s stop >/dev/null 2>&1; rm -rf '{}'",
            data.display(),
            dir.display()
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| broken("starting the watchdog", &e))?;
        let stdin = watchdog
            .stdin
            .take()
            .ok_or_else(|| broken("the watchdog", &"has no stdin"))?;
        check(
            "pg_ctl start",
            run("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-s", "-o", &options, "start"])
                .stdout(Stdio::null())
                .output(),
        )?;
        Ok(Self {
            dir,
            bin,
            next: AtomicU32::new(0),
            port: None,
            _stop: Mutex::new(stdin),
        })
    }

    /// Creates a new, empty database and returns its URL (`postgresql:///NAME?host=DIR&user=…`).
    ///
    /// # Errors
    /// `createdb` failed (the message says why).
    pub fn database(&self) -> Result<String, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("plotty_{}_{n}", std::process::id());
        let port = self.port.map(|p| p.to_string());
        let out = Command::new(self.bin.join("createdb"))
            .arg("-h")
            .arg(&self.dir)
            .args(port.iter().flat_map(|p| ["-p", p.as_str()]))
            .args(["-U", USER, &name])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("createdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(format!(
            "postgresql:///{name}?host={}&user={USER}{}",
            self.dir.display(),
            port.map(|p| format!("&port={p}")).unwrap_or_default()
        ))
    }

    /// The directory holding the cluster and its socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A cluster of its own that also listens on TCP (127.0.0.1) with TLS on, its certificate
/// signed by a certificate authority made for it (with the `openssl` command): for the tests
/// of `sslmode` (see [`crate::store::tls`]).
pub struct TlsCluster {
    cluster: Cluster,
    /// The TCP port.
    pub port: u16,
    /// The certificate authority that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// Another certificate authority, which signed nothing here (PEM).
    pub other_ca: PathBuf,
}

impl TlsCluster {
    /// Starts it; the server's certificate names `localhost` only (not `127.0.0.1`).
    ///
    /// # Errors
    /// As [`Cluster::shared`]; also `openssl` missing or failing.
    pub fn start() -> Result<Self, Unavailable> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| Unavailable::Broken(format!("no free TCP port: {e}")))?;
        let mut cluster = Cluster::start_with(|dir, owner| {
            let tls = |what: &str, e: &dyn std::fmt::Display| {
                Unavailable::Broken(format!("TLS cluster: {what}: {e}"))
            };
            let openssl = |args: &[&str]| -> Result<(), Unavailable> {
                let out = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| Unavailable::Missing(format!("the openssl command: {e}")))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(tls(
                        &format!("openssl {}", args.join(" ")),
                        &String::from_utf8_lossy(&out.stderr),
                    ))
                }
            };
            for ca in ["ca", "other-ca"] {
                openssl(&[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=plotty test {ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                ])?;
            }
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ])?;
            std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n")
                .map_err(|e| tls("writing san.ext", &e))?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.pem",
            ])?;
            for file in ["server.key", "server.pem"] {
                let path = dir.join(file);
                if let Some(user) = owner {
                    nix::unistd::chown(&path, Some(user.uid), Some(user.gid))
                        .map_err(|e| tls("chown to postgres", &e))?;
                }
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| tls("chmod 600", &e))?;
            }
            Ok(format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -c ssl=on \
                 -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key",
                dir.display()
            ))
        })?;
        cluster.port = Some(port);
        let (ca, other_ca) = (cluster.dir.join("ca.pem"), cluster.dir.join("other-ca.pem"));
        Ok(Self {
            cluster,
            port,
            ca,
            other_ca,
        })
    }

    /// A new, empty database; returns its name (reach it over TCP at 127.0.0.1:[`port`]).
    ///
    /// # Errors
    /// `createdb` failed.
    ///
    /// [`port`]: Self::port
    pub fn database(&self) -> Result<String, String> {
        let url = self.cluster.database()?;
        url.strip_prefix("postgresql:///")
            .and_then(|rest| rest.split('?').next())
            .map(str::to_owned)
            .ok_or_else(|| format!("unexpected database URL {url}"))
    }

    /// The user the tests connect as.
    pub fn user(&self) -> &'static str {
        USER
    }
}

/// A fresh database on the shared cluster for `test`, or `None` after a loud skip (no
/// PostgreSQL binaries; a failure under `CI=true`).
///
/// # Panics
/// The binaries are there but the cluster cannot start or create a database: a broken set-up is
/// a failure, never a skip.
pub fn database_or_skip(test: &str) -> Option<String> {
    match Cluster::shared() {
        Ok(cluster) => match cluster.database() {
            Ok(url) => Some(url),
            Err(e) => panic!("{test}: {e}"),
        },
        Err(Unavailable::Missing(reason)) => {
            skip(test, &reason, InCi::Provides);
            None
        }
        Err(Unavailable::Broken(reason)) => panic!("{test}: {reason}"),
    }
}

/// The server binaries' directory, if any.
fn binaries() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PLOTTY_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        return has(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|d| has(d)))
}
