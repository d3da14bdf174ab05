//! The SQLite store: one `rusqlite` connection on its own thread, reached through a typed async API.
//!
//! Blocking database work never runs on the async runtime (STYLE guideline 13). Every write is a
//! closure sent over a bounded channel to the store thread, which runs it against the connection
//! and answers on a oneshot channel; writes run one at a time in arrival order, so a state change
//! and what depends on it can never interleave with another. Queries can go to a pool of read-only
//! connections on their own threads (`database.pool_size`; WAL lets them read while the writer
//! writes), and always see every write that returned before they were asked.
//!
//! Opening checks the file before writing anything (see [`migrate`]), then turns on WAL mode, full
//! synchronous commits (a transition is on disk when the call returns), foreign keys and a busy
//! timeout, and applies pending migrations.
//!
//! Before a daemon opens the file, [`lost::check`] refuses a missing or empty database next to job
//! journals (the database was lost: creating a new one would silently drop every job).
//!
//! The job tables are in [`jobs`]; `plotty check database` is in [`check`].

mod any;
pub mod check;
pub mod jobs;
pub mod lost;
pub mod migrate;
pub mod postgres;
pub mod presets;
mod row;
#[cfg(test)]
mod suite;
pub mod tls;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::job::{JobState, TransitionError};

pub use any::JobStore;
pub use jobs::{
    Claim, JobRecord, Layer, Lease, MachinePosition, NewJob, ResumePoint, StateChange,
    TransitionRequest,
};
pub use postgres::{DaemonIdentity, PgStore, Plotter};

/// How long a statement waits for a lock held by another connection (a `plotty check database`
/// running next to the daemon) before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests queued for the store thread before callers wait.
const QUEUE_DEPTH: usize = 256;

/// An error of the store, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or read.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a SQLite database, or is damaged.
    #[error(
        "{path} is not a usable SQLite database ({detail}); plotty will not overwrite it: move it \
         aside (`mv {path} {path}.broken`) and start again to create a new one, or restore a backup"
    )]
    NotADatabase {
        /// The database file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// The file is a SQLite database of another program.
    #[error(
        "{path} is not a plotty database ({detail}); plotty will not touch it: set database.url to \
         another file"
    )]
    Foreign {
        /// The database file.
        path: String,
        /// Why it is not ours.
        detail: String,
    },
    /// The schema was written by a newer plotty.
    #[error(
        "{path} was written by a newer plotty (schema version {found}; this build knows up to \
         {known}): upgrade plotty, or set database.url to another file"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The file is missing or empty while job journals show jobs were recorded in it.
    #[error(
        "the database {} {} but {} holds {journals} jobs' journals: {}; plotty will not start a \
         new empty database over them (nothing was changed): {}",
        path.display(),
        loss.describe(),
        jobs_dir.display(),
        loss.cause(),
        lost::advice(path, jobs_dir, *loss)
    )]
    Lost {
        /// The database file.
        path: PathBuf,
        /// The jobs directory (`<workspace>/jobs`).
        jobs_dir: PathBuf,
        /// Missing or empty.
        loss: lost::Loss,
        /// Number of job directories with a journal.
        journals: usize,
    },
    /// The jobs directory could not be read to check for a lost database.
    #[error(
        "cannot read {} to check the database against the jobs' journals: {source}; make it \
         readable for the daemon's user",
        path.display()
    )]
    JobsDir {
        /// The jobs directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("database migration {name} failed, the schema was left as it was: {source}")]
    Migration {
        /// The migration's file name.
        name: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL migration failed; its transaction was rolled back.
    #[error("database migration {name} failed, the schema was left as it was: {source}")]
    PostgresMigration {
        /// The migration's file name.
        name: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No job has this id.
    #[error("no job with id `{0}`")]
    UnknownJob(String),
    /// The lifecycle refused the transition.
    #[error("job {job_id}: {source}")]
    Transition {
        /// The job.
        job_id: String,
        /// Why.
        #[source]
        source: TransitionError,
    },
    /// Only failed or aborted jobs can be retried.
    #[error("job {job_id} is {state}: only FAILED or ABORTED jobs can be retried")]
    NotRetryable {
        /// The job.
        job_id: String,
        /// Its state.
        state: JobState,
    },
    /// Only jobs in a final state can be deleted.
    #[error(
        "job {job_id} is {state}: only COMPLETED, ABORTED or FAILED jobs can be deleted (abort or \
         cancel it first)"
    )]
    NotFinished {
        /// The job.
        job_id: String,
        /// Its state.
        state: JobState,
    },
    /// A value from outside (a client) was refused.
    #[error("{0}")]
    Invalid(String),
    /// A row holds a value this build cannot read (edited by hand?).
    #[error("the database holds an unreadable value: {0}; run `plotty check database`")]
    Corrupt(String),
    /// The store was closed (the daemon is shutting down).
    #[error("the database is closed (the daemon is shutting down)")]
    Closed,
    /// The daemon's lease on the job expired or was taken: it must stop working on the job.
    #[error(
        "job {job_id}: the lease of `{owner}` expired (the job is or will be recorded PAUSED, \
         interrupted); stop working on it"
    )]
    LeaseLost {
        /// The job.
        job_id: String,
        /// The daemon that held it.
        owner: String,
    },
    /// Another live daemon on the database has this daemon's name.
    #[error(
        "daemon.name `{name}` is used by another live daemon on this database (host {host}, \
         workspace {workspace}, PID {pid}, seen {seen_s} s ago): give each daemon its own \
         daemon.name, or wait for that daemon's lease ({ttl_s} s) to pass if it is gone"
    )]
    NameInUse {
        /// The name.
        name: String,
        /// The other daemon's host.
        host: String,
        /// Its workspace.
        workspace: String,
        /// Its process id.
        pid: i64,
        /// Seconds since its last heartbeat.
        seen_s: i64,
        /// The lease, seconds.
        ttl_s: i64,
    },
    /// A plotter of this daemon has the name of a plotter of another live daemon.
    #[error(
        "plotter `{plotter}` of daemon `{me}` is also a plotter of the live daemon `{daemon}` \
         (host {host}, workspace {workspace}) on this database: plotter names are unique across \
         the farm (a job asking for `{plotter}` could go to either); rename one of them"
    )]
    PlotterNameInUse {
        /// The plotter's name.
        plotter: String,
        /// The daemon that holds it.
        daemon: String,
        /// Its host.
        host: String,
        /// Its workspace.
        workspace: String,
        /// This daemon's name.
        me: String,
    },
    /// A PostgreSQL statement failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had (server down, pool closed, wrong credentials).
    #[error("cannot reach the PostgreSQL database {url}: {detail}")]
    Connect {
        /// The database URL, without its password.
        url: String,
        /// Why.
        detail: String,
    },
    /// The store thread could not be started.
    #[error("cannot start the database thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What opening the database did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpenReport {
    /// The database file.
    pub path: PathBuf,
    /// True when the file did not exist before.
    pub created: bool,
    /// Migrations applied now.
    pub migrated: Vec<u32>,
    /// Schema version after opening.
    pub version: u32,
    /// The journal mode in effect (`wal` unless the filesystem cannot do it).
    pub journal_mode: String,
}

type Task = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadTask = Box<dyn FnOnce(&Connection) + Send>;

/// Cache of each read connection, KiB (SQLite's default is 2 MiB per connection).
const READER_CACHE_KIB: u32 = 1024;

enum Message {
    Run(Task),
    Close(oneshot::Sender<()>),
}

/// A handle to the store thread; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Message>,
    path: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Option<Readers>,
}

/// Read-only connections, each on its own thread, taking queries from one shared queue.
struct Readers {
    tx: Mutex<Option<std::sync::mpsc::Sender<ReadTask>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checks it, applies pending migrations,
    /// and starts the store thread. Blocks until all of that is done.
    pub fn open(path: &Path) -> Result<(Self, OpenReport), StoreError> {
        Self::open_with_readers(path, 0)
    }

    /// Like [`Store::open`], plus `readers` read-only connections for queries (0: queries go to
    /// the writer).
    pub fn open_with_readers(path: &Path, readers: u32) -> Result<(Self, OpenReport), StoreError> {
        let owned = path.to_path_buf();
        Self::start(path.to_path_buf(), readers, move || open_file(&owned))
    }

    /// A private in-memory database with the full schema (tests, benchmarks, hook dry runs).
    pub fn open_in_memory() -> Result<(Self, OpenReport), StoreError> {
        // A private in-memory database cannot be shared with other connections: no readers.
        Self::start(PathBuf::from(":memory:"), 0, || {
            let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
                path: ":memory:".into(),
                source: e,
            })?;
            prepare(conn, ":memory:", false)
        })
    }

    fn start<F>(path: PathBuf, readers: u32, open: F) -> Result<(Self, OpenReport), StoreError>
    where
        F: FnOnce() -> Result<(Connection, OpenReport), StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("plotty-store".into())
            .spawn(move || match open() {
                Ok((conn, report)) => {
                    // The receiver waits below; it only goes away if the opener panicked.
                    let _ = ready_tx.send(Ok(report));
                    serve(conn, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(StoreError::Thread)?;
        let report = ready_rx.recv().map_err(|_| StoreError::Closed)??;
        // Readers open after the writer has checked and migrated the file.
        let readers = if readers > 0 {
            Some(Readers::start(&path, readers)?)
        } else {
            None
        };
        let store = Self {
            inner: Arc::new(Inner {
                tx,
                path,
                thread: Mutex::new(Some(thread)),
                readers,
            }),
        };
        Ok((store, report))
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the store thread and returns its result.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.inner
            .tx
            .send(Message::Run(task))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs the query `f` on a read connection (or the writer when there are none).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(readers) = &self.inner.readers else {
            return self.call(move |c| f(c)).await;
        };
        let (tx, rx) = oneshot::channel();
        let task: ReadTask = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        let sent = match readers.tx.lock() {
            Ok(g) => g.as_ref().map(|s| s.send(task).is_ok()),
            Err(p) => p.into_inner().as_ref().map(|s| s.send(task).is_ok()),
        };
        if sent != Some(true) {
            return Err(StoreError::Closed);
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Number of read connections.
    pub fn read_connections(&self) -> usize {
        self.inner
            .readers
            .as_ref()
            .map_or(0, |r| match r.threads.lock() {
                Ok(t) => t.len(),
                Err(p) => p.into_inner().len(),
            })
    }

    /// Finishes the requests already queued, checkpoints the WAL and closes the connections.
    /// Later calls on any clone fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        if let Some(readers) = &self.inner.readers {
            let threads = readers.close();
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Message::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let thread = match self.inner.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = thread {
            // The thread has answered `Close` and is returning; joining cannot block for long.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Adds a job in state `NEW`; see [`jobs::insert`].
    pub async fn insert_job(&self, new: NewJob) -> Result<(JobRecord, StateChange), StoreError> {
        self.call(move |c| jobs::insert(c, &new)).await
    }

    /// Applies a transition and records its event in one transaction; see [`jobs::transition`].
    pub async fn transition(&self, req: TransitionRequest) -> Result<StateChange, StoreError> {
        self.call(move |c| jobs::transition(c, &req)).await
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| jobs::get(c, &id)).await
    }

    /// Jobs in `states` (all when empty) in queue order: priority, then submission.
    pub async fn jobs(&self, states: Vec<JobState>) -> Result<Vec<JobRecord>, StoreError> {
        self.read(move |c| jobs::list(c, &states)).await
    }

    /// The next `READY` job to plot, if any.
    pub async fn next_ready(&self) -> Result<Option<JobRecord>, StoreError> {
        self.read(|c| Ok(jobs::list(c, &[JobState::Ready])?.into_iter().next()))
            .await
    }

    /// The device a job was last recorded on; see [`jobs::device_of`].
    pub async fn device_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| jobs::device_of(c, &id)).await
    }

    /// A job's recorded events, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<jobs::EventRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| jobs::events(c, &id)).await
    }

    /// Replaces a job's layers.
    pub async fn set_layers(&self, id: &str, layers: Vec<Layer>) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |c| jobs::set_layers(c, &id, &layers)).await
    }

    /// A job's layers in plot order.
    pub async fn layers(&self, id: &str) -> Result<Vec<Layer>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| jobs::layers(c, &id)).await
    }

    /// Records where a job's SVG is stored.
    pub async fn set_source_path(&self, id: &str, path: PathBuf) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |c| jobs::set_source_path(c, &id, &path))
            .await
    }

    /// Deletes a job in a final state with its layers and events; returns it as it was.
    pub async fn delete_job(&self, id: &str) -> Result<JobRecord, StoreError> {
        let id = id.to_owned();
        self.call(move |c| jobs::delete(c, &id)).await
    }

    /// Number of jobs in each state (states without jobs are left out).
    pub async fn state_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<JobState, u64>, StoreError> {
        self.read(jobs::state_counts).await
    }
}

impl Readers {
    /// Opens `count` read-only connections to `path`, each on its own thread.
    fn start(path: &Path, count: u32) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<ReadTask>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..count {
            let conn = open_reader(path)?;
            let rx = Arc::clone(&rx);
            let thread = std::thread::Builder::new()
                .name(format!("plotty-read-{i}"))
                .spawn(move || serve_reads(&conn, &rx))
                .map_err(StoreError::Thread)?;
            threads.push(thread);
        }
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        })
    }

    /// Stops taking queries; returns the threads to join (they finish the queued ones first).
    fn close(&self) -> Vec<JoinHandle<()>> {
        match self.tx.lock() {
            Ok(mut g) => drop(g.take()),
            Err(p) => drop(p.into_inner().take()),
        }
        match self.threads.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open {
        path: shown.clone(),
        source: e,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(&format!(
        "PRAGMA query_only = ON; PRAGMA cache_size = -{READER_CACHE_KIB};"
    ))?;
    Ok(conn)
}

/// A reader thread: takes queries from the shared queue until it is closed.
fn serve_reads(conn: &Connection, rx: &Mutex<std::sync::mpsc::Receiver<ReadTask>>) {
    loop {
        // Only the thread waiting for the next query holds the lock; it is released before the
        // query runs, so the others can pick up the following ones.
        let next = match rx.lock() {
            Ok(g) => g.recv(),
            Err(p) => p.into_inner().recv(),
        };
        let Ok(task) = next else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| task(conn))).is_err() {
            tracing::error!("a database query panicked; it was abandoned");
        }
    }
}

/// Opens the file, remembering whether it existed, and prepares it.
fn open_file(path: &Path) -> Result<(Connection, OpenReport), StoreError> {
    let shown = path.display().to_string();
    let existed = path.exists();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open {
        path: shown.clone(),
        source: e,
    })?;
    let (conn, mut report) = prepare(conn, &shown, true)?;
    report.path = path.to_path_buf();
    report.created = !existed;
    Ok((conn, report))
}

/// Checks the file, sets the connection up and migrates it. Nothing is written before the checks
/// passed.
fn prepare(
    mut conn: Connection,
    path: &str,
    on_disk: bool,
) -> Result<(Connection, OpenReport), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| migrate::classify_open_error(e, path))?;
    migrate::inspect(&conn, path)?;
    quick_check(&conn, path)?;
    let journal_mode: String = if on_disk {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| migrate::classify_open_error(e, path))?
    } else {
        "memory".into()
    };
    if on_disk && !journal_mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            database = path,
            journal_mode,
            "the filesystem does not support WAL mode; readers will wait for writers"
        );
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    let migrated = migrate::migrate(&mut conn, path)?;
    let version = migrate::inspect(&conn, path)?.version;
    let report = OpenReport {
        path: PathBuf::from(path),
        created: false,
        migrated,
        version,
        journal_mode,
    };
    Ok((conn, report))
}

/// Refuses a damaged file before anything is written to it.
fn quick_check(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| migrate::classify_open_error(e, path))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| migrate::classify_open_error(e, path))?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        Err(StoreError::NotADatabase {
            path: path.to_owned(),
            detail: format!("integrity check: {}", problems.join("; ")),
        })
    }
}

/// The store thread: runs requests in order until closed or every handle is gone.
fn serve(mut conn: Connection, mut rx: mpsc::Receiver<Message>) {
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Message::Run(task) => {
                // A panicking request must not take the database down with it: its caller sees
                // `Closed` (the answer channel is dropped) and the thread serves the next one.
                if catch_unwind(AssertUnwindSafe(|| task(&mut conn))).is_err() {
                    tracing::error!("a database request panicked; it was abandoned");
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                }
            }
            Message::Close(done) => {
                rx.close();
                // Requests queued before `Close` still run, in order.
                while let Ok(Message::Run(task)) = rx.try_recv() {
                    let _ = catch_unwind(AssertUnwindSafe(|| task(&mut conn)));
                }
                shutdown(conn);
                let _ = done.send(());
                return;
            }
        }
    }
    shutdown(conn);
}

fn shutdown(conn: Connection) {
    let _ = conn.execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);");
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the database failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn garbage_file_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        std::fs::write(&path, &garbage).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("will not overwrite") && msg.contains(".broken"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
        assert!(!dir.path().join("plotty.db-wal").exists());
    }

    #[tokio::test]
    async fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        {
            let (store, _) = Store::open(&path).unwrap();
            store.close().await;
        }
        let newer = migrate::latest_version() + 3;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {newer}"))
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).err().unwrap();
        match &err {
            StoreError::TooNew { found, .. } => assert_eq!(*found, newer),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("upgrade plotty"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[tokio::test]
    async fn opens_in_wal_mode_with_foreign_keys_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        let (store, report) = Store::open(&path).unwrap();
        assert!(report.created);
        assert_eq!(report.journal_mode, "wal");
        assert_eq!(
            report.migrated,
            // Every migration, gaps in the numbers included.
            migrate::MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        );
        let fk: i64 = store
            .call(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(fk, 1);
        store.close().await;
        assert!(matches!(store.job("x").await, Err(StoreError::Closed)));
        let (_store, report) = Store::open(&path).unwrap();
        assert!(!report.created);
        assert!(report.migrated.is_empty());
        assert_eq!(report.version, migrate::latest_version());
    }

    #[tokio::test]
    async fn read_connections_see_every_committed_write() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with_readers(&dir.path().join("plotty.db"), 3).unwrap();
        assert_eq!(store.read_connections(), 3);
        for i in 0..20 {
            let (job, _) = store
                .insert_job(NewJob {
                    name: format!("job {i}"),
                    ..NewJob::default()
                })
                .await
                .unwrap();
            // Read right after the write returned, from whichever reader is free.
            let read = store.job(job.id.as_str()).await.unwrap().unwrap();
            assert_eq!(read, job);
        }
        assert_eq!(store.jobs(Vec::new()).await.unwrap().len(), 20);
        let refused = store.read(|c| Ok(c.execute("DELETE FROM jobs", [])?)).await;
        assert!(refused.is_err(), "read connections cannot write");
        store.close().await;
        assert!(matches!(store.job("x").await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn a_panicking_request_does_not_kill_the_store() {
        let (store, _) = Store::open_in_memory().unwrap();
        let r: Result<(), _> = store
            .call(|_| -> Result<(), StoreError> { panic!("boom") })
            .await;
        assert!(matches!(r, Err(StoreError::Closed)));
        assert!(store.job("nope").await.unwrap().is_none());
    }
}
