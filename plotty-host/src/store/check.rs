//! `plotty check database`: open the database without creating or migrating it, and report its
//! schema level, integrity, contents and whether it can be written, each with a fix.
//!
//! The check never changes the file: a missing database is reported (the daemon creates it), a
//! pending migration is reported (the daemon applies it at start), and writability is tested with
//! a transaction that is rolled back.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{BUSY_TIMEOUT, StoreError, lost, migrate};
use crate::check::Report;
use crate::job::JobState;

/// Checks the PostgreSQL database at `url` (`database.url: postgresql://…`) without changing it:
/// reachable, plotty's, its schema level, its jobs, and whether the user may write.
pub fn check_postgres(url: &str, report: &mut Report) {
    let shown = super::postgres::redact(url);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report.problem("database", e.to_string(), "free some memory and try again");
            return;
        }
    };
    runtime.block_on(async {
        let (store, version) = match super::PgStore::inspect(url).await {
            Ok(found) => found,
            Err(e) => {
                let (what, fix) = match e {
                    StoreError::TooNew { .. } => ("schema version", "upgrade plotty"),
                    StoreError::Foreign { .. } => {
                        ("plotty database", "set database.url to a database of plotty's own")
                    }
                    _ => (
                        "connect",
                        "check that the server runs and that the URL's host, port, user, password \
                         and database are right (`psql` with the same URL)",
                    ),
                };
                report.problem(what, e.to_string(), fix);
                return;
            }
        };
        report.ok("database", format!("PostgreSQL {shown}"));
        let latest = migrate::latest_version();
        if version == latest {
            report.ok("schema version", format!("{version} (the latest this build knows)"));
            if let Ok(counts) = store.state_counts().await {
                let total: u64 = counts.values().sum();
                let parts: Vec<String> =
                    counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
                report.ok(
                    "jobs",
                    if parts.is_empty() {
                        "no jobs".to_owned()
                    } else {
                        format!("{total} ({})", parts.join(", "))
                    },
                );
            }
            match store.can_write().await {
                Ok(true) => report.ok("writable", "yes"),
                Ok(false) => report.problem(
                    "writable",
                    "the user may not change the job tables",
                    "GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO the daemon's user",
                ),
                Err(e) => report.problem("writable", e.to_string(), "check the user's privileges"),
            }
        } else {
            report.warn(
                "schema version",
                format!("{version} of {latest}: {} migration(s) pending", latest - version),
                "nothing to do: the daemon creates and migrates the schema when it starts",
            );
        }
        store.close();
    });
}

/// Checks the database at `path` (of the workspace whose jobs are in `jobs_dir`) and appends the
/// results to `report`.
pub fn check(path: &Path, jobs_dir: &Path, report: &mut Report) {
    let shown = path.display().to_string();
    match lost::check(path, jobs_dir) {
        Ok(()) => {}
        Err(StoreError::Lost {
            path,
            jobs_dir,
            loss,
            journals,
        }) => {
            report.problem(
                "database file",
                format!(
                    "{shown} {} but {} holds {journals} jobs' journals: {}; the daemon refuses to \
                     start",
                    loss.describe(),
                    jobs_dir.display(),
                    loss.cause()
                ),
                lost::advice(&path, &jobs_dir, loss),
            );
            return;
        }
        Err(e) => {
            report.problem("jobs directory", e.to_string(), "make it readable");
            return;
        }
    }
    if !path.exists() {
        missing(path, &shown, report);
        return;
    }
    if !path.is_file() {
        report.problem(
            "database file",
            format!("{shown} is not a regular file"),
            "set database.url to a file path",
        );
        return;
    }
    report.ok("database file", &shown);
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => {
            report.problem(
                "open",
                e.to_string(),
                format!(
                    "check the permissions of {shown} and its directory: the daemon's user must be \
                     able to read and write both (`ls -la {}`)",
                    path.parent()
                        .map_or(".".into(), |p| p.display().to_string())
                ),
            );
            return;
        }
    };
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    let status = match migrate::inspect(&conn, &shown) {
        Ok(s) => s,
        Err(e) => {
            let what = match e {
                StoreError::TooNew { .. } => "schema version",
                StoreError::Foreign { .. } => "plotty database",
                _ => "readable",
            };
            report.problem(what, "refused", e.to_string());
            return;
        }
    };
    if status.version == status.latest {
        report.ok(
            "schema version",
            format!("{} (the latest this build knows)", status.version),
        );
    } else {
        let pending = status.latest - status.version;
        report.warn(
            "schema version",
            format!(
                "{} of {}: {pending} migration{} pending",
                status.version,
                status.latest,
                if pending == 1 { "" } else { "s" }
            ),
            "nothing to do: the daemon applies pending migrations when it starts",
        );
    }
    integrity(&conn, &shown, report);
    journal_mode(&conn, report);
    if status.version >= 1 {
        contents(&conn, report);
    }
    writable(&conn, &shown, report);
}

fn missing(path: &Path, shown: &str, report: &mut Report) {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        report.ok("database file", format!("{shown} does not exist yet"));
        return;
    };
    if dir.is_dir() {
        match probe_writable(dir) {
            Ok(()) => report.ok(
                "database file",
                format!("{shown} does not exist yet; the daemon creates it at its first start"),
            ),
            Err(e) => report.problem(
                "database file",
                format!(
                    "{shown} does not exist and {} is not writable: {e}",
                    dir.display()
                ),
                format!(
                    "make {} writable for the daemon's user, or set database.url elsewhere",
                    dir.display()
                ),
            ),
        }
    } else {
        report.ok(
            "database file",
            format!(
                "{shown} does not exist yet; the daemon creates it (and {}) at its first start",
                dir.display()
            ),
        );
    }
}

/// Creates and removes a scratch file in `dir`.
pub(crate) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".plotty-write-test-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

fn integrity(conn: &Connection, shown: &str, report: &mut Report) {
    let result: Result<Vec<String>, _> = conn
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match result {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => report.ok("integrity", "ok"),
        Ok(lines) => report.problem(
            "integrity",
            lines.join("; "),
            format!(
                "stop the daemon, keep a copy (`cp {shown} {shown}.damaged`), then restore a backup \
                 or salvage the data with `sqlite3 {shown} .recover | sqlite3 {shown}.recovered`"
            ),
        ),
        Err(e) => report.problem("integrity", e.to_string(), "restore a backup of the database"),
    }
    let fk: Result<i64, _> =
        conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        });
    match fk {
        Ok(0) => report.ok("references", "every row points at existing rows"),
        Ok(n) => report.problem(
            "references",
            format!("{n} rows point at rows that do not exist"),
            "the file was edited outside plotty; restore a backup",
        ),
        Err(e) => report.problem("references", e.to_string(), "restore a backup"),
    }
}

fn journal_mode(conn: &Connection, report: &mut Report) {
    match conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0)) {
        Ok(m) if m.eq_ignore_ascii_case("wal") => report.ok("journal mode", "wal"),
        Ok(m) => report.warn(
            "journal mode",
            m,
            "nothing to do if the daemon has not run yet: it switches to WAL when it starts; \
             otherwise the filesystem does not support WAL (network filesystems): move the \
             workspace to a local disk",
        ),
        Err(e) => report.problem("journal mode", e.to_string(), "restore a backup"),
    }
}

fn contents(conn: &Connection, report: &mut Report) {
    let per_state: Result<Vec<(String, i64)>, _> = conn
        .prepare("SELECT state, count(*) FROM jobs GROUP BY state")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
    match per_state {
        Ok(rows) => {
            let total: i64 = rows.iter().map(|(_, n)| n).sum();
            let mut parts = Vec::new();
            for state in JobState::ALL {
                if let Some((_, n)) = rows.iter().find(|(s, _)| s == state.as_str()) {
                    parts.push(format!("{n} {state}"));
                }
            }
            let detail = if parts.is_empty() {
                "no jobs".to_owned()
            } else {
                format!("{total} ({})", parts.join(", "))
            };
            report.ok("jobs", detail);
        }
        Err(e) => report.problem("jobs", e.to_string(), "restore a backup"),
    }
    for (what, table) in [
        ("job events", "job_events"),
        ("layers", "layers"),
        ("devices", "devices"),
        ("pens", "pens"),
        ("papers", "papers"),
        ("statistics", "job_statistics"),
    ] {
        // Table names are our own constants.
        match conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
        {
            Ok(n) => report.ok(what, n.unwrap_or(0).to_string()),
            Err(e) => report.problem(what, e.to_string(), "restore a backup"),
        }
    }
}

fn writable(conn: &Connection, shown: &str, report: &mut Report) {
    let r = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;");
    match r {
        Ok(()) => report.ok("writable", "yes"),
        Err(e) => {
            let fix = match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "another process held the write lock for 5 s; if the daemon is plotting this \
                     is expected, try again later"
                        .to_owned()
                }
                _ => format!(
                    "make {shown}, its -wal and -shm files and their directory writable for the \
                     daemon's user (`chown plotty: {shown}*`)"
                ),
            };
            report.problem("writable", e.to_string(), fix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::store::Store;

    #[test]
    fn a_postgresql_database_is_checked_without_being_changed() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "store::check::tests::a_postgresql_database_is_checked_without_being_changed",
        ) else {
            return;
        };
        let statuses = |r: &Report| -> Vec<(String, Status)> {
            r.items.iter().map(|i| (i.what.clone(), i.status)).collect()
        };
        let mut r = Report::new("database");
        check_postgres(&url, &mut r);
        assert_eq!(
            statuses(&r),
            [
                ("database".to_owned(), Status::Ok),
                ("schema version".to_owned(), Status::Warning)
            ],
            "an empty database: the daemon will create the schema"
        );
        // The check created nothing: connecting now applies every migration.
        let (_store, report) = super::super::PgStore::connect_blocking(&url, 1).unwrap();
        assert_eq!(report.migrated.len(), migrate::MIGRATIONS.len());
        let mut r = Report::new("database");
        check_postgres(&url, &mut r);
        assert_eq!(r.problems(), 0, "{:?}", statuses(&r));
        let jobs = r.items.iter().find(|i| i.what == "jobs").unwrap();
        assert_eq!(jobs.detail, "no jobs");
        let mut r = Report::new("database");
        check_postgres(
            "postgresql:///nothing?host=/nonexistent&user=plotty",
            &mut r,
        );
        assert_eq!(r.problems(), 1);
        assert_eq!(r.items[0].what, "connect");
    }

    fn run(path: &Path) -> Report {
        let mut r = Report::new("database");
        check(path, &path.with_file_name("jobs"), &mut r);
        r
    }

    #[tokio::test]
    async fn healthy_database_passes_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        let (store, _) = Store::open(&path).unwrap();
        store
            .insert_job(crate::store::NewJob {
                name: "a".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let r = run(&path);
        assert!(r.passed(), "{r:#?}");
        let jobs = r.items.iter().find(|i| i.what == "jobs").unwrap();
        assert_eq!(jobs.detail, "1 (1 NEW)");
        store.close().await;
    }

    #[test]
    fn missing_database_is_fine_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        let r = run(&path);
        assert!(r.passed(), "{r:#?}");
        assert!(!path.exists());
    }

    #[test]
    fn an_empty_database_next_to_journals_is_a_problem_with_the_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        let job = dir.path().join("jobs").join("0123456789ab");
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(job.join(crate::journal::FILE_NAME), b"{}\n").unwrap();
        for (contents, says) in [
            (Some(&b""[..]), "is empty (0 bytes)"),
            (None, "does not exist"),
        ] {
            if let Some(c) = contents {
                std::fs::write(&path, c).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
            let r = run(&path);
            assert!(!r.passed(), "{r:#?}");
            let p = &r.items[0];
            assert_eq!(p.status, Status::Problem);
            assert!(
                p.detail.contains(says) && p.detail.contains("1 jobs' journals"),
                "{p:?}"
            );
            let fix = p.fix.as_deref().unwrap();
            assert!(fix.contains("restore it from a backup"), "{fix}");
            assert!(fix.contains("to start with an empty queue"), "{fix}");
            assert_eq!(path.exists(), contents.is_some());
        }
        assert!(!dir.path().join("plotty.db-wal").exists());
    }

    #[test]
    fn garbage_and_newer_files_are_problems_with_fixes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text that is long enough....",
        )
        .unwrap();
        let r = run(&path);
        assert!(!r.passed());
        let p = r
            .items
            .iter()
            .find(|i| i.status == Status::Problem)
            .unwrap();
        assert!(
            p.fix.as_deref().unwrap().contains("will not overwrite"),
            "{p:?}"
        );

        let path = dir.path().join("newer.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 99; CREATE TABLE t(x);",
            migrate::APPLICATION_ID
        ))
        .unwrap();
        drop(c);
        let r = run(&path);
        let p = r
            .items
            .iter()
            .find(|i| i.status == Status::Problem)
            .unwrap();
        assert_eq!(p.what, "schema version");
        assert!(p.fix.as_deref().unwrap().contains("upgrade plotty"));
    }
}
