//! The numbered SQL migrations of the root `migrations/` directory, embedded at build time, and the
//! code that checks a database file and brings its schema up to date.
//!
//! One schema history, two dialects: every migration is a pair, `migrations/NNNN_name.sql`
//! (SQLite, [`MIGRATIONS`]) and `migrations/postgres/NNNN_name.sql` (PostgreSQL,
//! [`POSTGRES_MIGRATIONS`], applied by [`super::postgres`]). To add a migration, write both files
//! and add both entries; the unit tests below refuse a file without its twin, a list out of step
//! with the directory, and two schemas whose tables or columns differ.
//!
//! Numbers only increase; they need not be contiguous (two changes developed side by side each
//! take a number, and either may land first): a database gets every migration it has not
//! recorded in `schema_migrations`, in number order, so a migration numbered below the
//! database's version is still applied when it arrives.
//!
//! A database is only ever touched when it is plotty's: an empty file, or one with plotty's
//! `application_id` and a schema version this build knows. Anything else (another program's
//! database, a corrupt file, a schema from a newer plotty) is refused with a message saying what
//! to do, and left exactly as it was.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// One forward-only schema step.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Schema version after this step (1, 2, …: the file's number).
    pub version: u32,
    /// File name without `.sql`.
    pub name: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in order. A unit test checks this list against the `migrations/` directory.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_resume_pen",
        sql: include_str!("../../../migrations/0002_resume_pen.sql"),
    },
    Migration {
        version: 3,
        name: "0003_simulated",
        sql: include_str!("../../../migrations/0003_simulated.sql"),
    },
    Migration {
        version: 4,
        name: "0004_leases",
        sql: include_str!("../../../migrations/0004_leases.sql"),
    },
    Migration {
        version: 5,
        name: "0005_presets",
        sql: include_str!("../../../migrations/0005_presets.sql"),
    },
    Migration {
        version: 6,
        name: "0006_farm",
        sql: include_str!("../../../migrations/0006_farm.sql"),
    },
    Migration {
        version: 7,
        name: "0007_devices",
        sql: include_str!("../../../migrations/0007_devices.sql"),
    },
    Migration {
        version: 8,
        name: "0008_job_progress",
        sql: include_str!("../../../migrations/0008_job_progress.sql"),
    },
    Migration {
        version: 9,
        name: "0009_farm_plotters",
        sql: include_str!("../../../migrations/0009_farm_plotters.sql"),
    },
    Migration {
        version: 10,
        name: "0010_resume_streaming",
        sql: include_str!("../../../migrations/0010_resume_streaming.sql"),
    },
];

/// The PostgreSQL twin of every migration of [`MIGRATIONS`], same versions and names, in order.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        sql: include_str!("../../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_resume_pen",
        sql: include_str!("../../../migrations/postgres/0002_resume_pen.sql"),
    },
    Migration {
        version: 3,
        name: "0003_simulated",
        sql: include_str!("../../../migrations/postgres/0003_simulated.sql"),
    },
    Migration {
        version: 4,
        name: "0004_leases",
        sql: include_str!("../../../migrations/postgres/0004_leases.sql"),
    },
    Migration {
        version: 5,
        name: "0005_presets",
        sql: include_str!("../../../migrations/postgres/0005_presets.sql"),
    },
    Migration {
        version: 6,
        name: "0006_farm",
        sql: include_str!("../../../migrations/postgres/0006_farm.sql"),
    },
    Migration {
        version: 7,
        name: "0007_devices",
        sql: include_str!("../../../migrations/postgres/0007_devices.sql"),
    },
    Migration {
        version: 8,
        name: "0008_job_progress",
        sql: include_str!("../../../migrations/postgres/0008_job_progress.sql"),
    },
    Migration {
        version: 9,
        name: "0009_farm_plotters",
        sql: include_str!("../../../migrations/postgres/0009_farm_plotters.sql"),
    },
    Migration {
        version: 10,
        name: "0010_resume_streaming",
        sql: include_str!("../../../migrations/postgres/0010_resume_streaming.sql"),
    },
];

/// `PRAGMA application_id` of a plotty database ('PLTY').
pub const APPLICATION_ID: i32 = 0x504C_5459;

/// The schema version this build creates and understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What [`inspect`] found in a database file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SchemaStatus {
    /// `PRAGMA user_version`: the last migration applied.
    pub version: u32,
    /// The version this build would migrate to.
    pub latest: u32,
}

/// Checks that `conn` is a plotty database this build can use, without changing it.
///
/// Errors: [`StoreError::NotADatabase`] (garbage, encrypted or truncated file),
/// [`StoreError::Foreign`] (another program's database), [`StoreError::TooNew`].
pub fn inspect(conn: &Connection, path: &str) -> Result<SchemaStatus, StoreError> {
    let header = |e: rusqlite::Error| classify_open_error(e, path);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(header)?;
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(header)?;
    let objects: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(header)?;
    let latest = latest_version();
    let version = u32::try_from(version).map_err(|_| StoreError::Foreign {
        path: path.to_owned(),
        detail: format!("its schema version is {version}"),
    })?;
    if app_id != APPLICATION_ID && !(app_id == 0 && version == 0 && objects == 0) {
        let detail = if app_id == 0 {
            format!("it has {objects} tables or indexes but no plotty marker")
        } else {
            format!("its application id is {app_id:#x}")
        };
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            detail,
        });
    }
    if version > latest {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: latest,
        });
    }
    Ok(SchemaStatus { version, latest })
}

/// Applies every migration the database has not recorded in `schema_migrations` (see the module
/// doc: numbers may have gaps, filled later), each in its own transaction together with its
/// `schema_migrations` row and `user_version` (the highest applied). Returns the versions applied.
pub fn migrate(conn: &mut Connection, path: &str) -> Result<Vec<u32>, StoreError> {
    migrate_list(conn, path, MIGRATIONS)
}

/// [`migrate`] with the migrations `list` (tests of a history with gaps).
fn migrate_list(
    conn: &mut Connection,
    path: &str,
    list: &[Migration],
) -> Result<Vec<u32>, StoreError> {
    let status = inspect(conn, path)?;
    let recorded: std::collections::BTreeSet<u32> = applied(conn)
        .map_err(|e| classify_open_error(e, path))?
        .into_iter()
        .map(|(v, _, _)| v)
        .collect();
    let mut applied = Vec::new();
    for m in list.iter().filter(|m| !recorded.contains(&m.version)) {
        let fail = |e: rusqlite::Error| StoreError::Migration {
            name: m.name,
            source: e,
        };
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, crate::timestamp::now()],
        )
        .map_err(fail)?;
        // PRAGMA takes no parameters; the version is our own constant.
        let version = m.version.max(status.version);
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        applied.push(m.version);
    }
    Ok(applied)
}

/// When each migration was applied, oldest first (empty before the first migration).
pub fn applied(conn: &Connection) -> Result<Vec<(u32, String, String)>, rusqlite::Error> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Turns the error of the first read of a file into the right refusal.
pub(crate) fn classify_open_error(e: rusqlite::Error, path: &str) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::NotADatabase {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_owned(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The `.sql` files of `dir`, sorted.
    fn sql_files(dir: &Path) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    fn check_list(dir: &Path, list: &[Migration], what: &str) {
        let embedded: Vec<String> = list.iter().map(|m| format!("{}.sql", m.name)).collect();
        assert_eq!(
            sql_files(dir),
            embedded,
            "update {what} in store/migrate.rs"
        );
        for (i, m) in list.iter().enumerate() {
            let number: u32 = m.name[..4].parse().unwrap();
            assert_eq!(m.version, number, "{}", m.name);
            // Gaps are allowed (see the module doc), order is not.
            assert!(
                i == 0 || list[i - 1].version < m.version,
                "versions increase: {}",
                m.name
            );
            let on_disk = std::fs::read_to_string(dir.join(format!("{}.sql", m.name))).unwrap();
            assert_eq!(on_disk, m.sql, "{} is stale: rebuild", m.name);
        }
    }

    #[test]
    fn embedded_list_matches_the_migrations_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        check_list(&dir, MIGRATIONS, "MIGRATIONS");
        check_list(
            &dir.join("postgres"),
            POSTGRES_MIGRATIONS,
            "POSTGRES_MIGRATIONS",
        );
    }

    #[test]
    fn every_migration_has_its_postgres_twin() {
        let sqlite: Vec<_> = MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
        let postgres: Vec<_> = POSTGRES_MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name))
            .collect();
        assert_eq!(
            sqlite, postgres,
            "each migration is a pair: migrations/NNNN_name.sql and migrations/postgres/NNNN_name.sql"
        );
    }

    #[test]
    fn applies_cleanly_to_an_empty_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let applied = migrate(&mut conn, ":memory:").unwrap();
        assert_eq!(
            applied,
            MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
        );
        assert_eq!(migrate(&mut conn, ":memory:").unwrap(), Vec::<u32>::new());
        let status = inspect(&conn, ":memory:").unwrap();
        assert_eq!(status.version, latest_version());
        let rows = super::applied(&conn).unwrap();
        assert_eq!(rows.len(), MIGRATIONS.len());
        let fk_errors: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_errors, 0);
    }

    #[test]
    fn a_migration_numbered_below_the_database_is_applied_when_it_arrives() {
        let two = Migration {
            version: 2,
            name: "0002_two",
            sql: "CREATE TABLE two (x INTEGER);",
        };
        let three = Migration {
            version: 3,
            name: "0003_three",
            sql: "CREATE TABLE three (x INTEGER);",
        };
        let mut conn = Connection::open_in_memory().unwrap();
        // A build with 1 and 3 (2 was on another branch)…
        assert_eq!(
            migrate_list(&mut conn, ":memory:", &[MIGRATIONS[0], three]).unwrap(),
            vec![1, 3]
        );
        // …then one with all three: 2 is applied, the version stays 3.
        assert_eq!(
            migrate_list(&mut conn, ":memory:", &[MIGRATIONS[0], two, three]).unwrap(),
            vec![2]
        );
        assert_eq!(inspect(&conn, ":memory:").unwrap().version, 3);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('two', 'three')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
        assert_eq!(
            migrate_list(&mut conn, ":memory:", &[MIGRATIONS[0], two, three]).unwrap(),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn a_schema_1_resume_point_survives_the_upgrade_with_its_pen_state() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Schema 1 as an older plotty left it, with a job stopped mid-stroke and one in travel.
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.execute_batch(
            "INSERT INTO schema_migrations VALUES (1, '0001_initial', '2026-01-01T00:00:00Z');
             PRAGMA user_version = 1;
             INSERT INTO jobs (id, name, state, created_at, updated_at, resume_layer,
                 resume_stroke, resume_vertex, resume_at)
             VALUES ('drawing', 'a.svg', 'PAUSED', 'x', 'x', 0, 4, 3, 'x'),
                    ('travel', 'b.svg', 'PAUSED', 'x', 'x', 0, 4, 0, 'x');",
        )
        .unwrap();
        assert_eq!(
            migrate(&mut conn, ":memory:").unwrap(),
            // Every migration after the first, gaps in the numbers included.
            MIGRATIONS[1..]
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        );
        let drawing = crate::store::jobs::get(&conn, "drawing").unwrap().unwrap();
        assert!(drawing.resume.unwrap().pen_down);
        let travel = crate::store::jobs::get(&conn, "travel").unwrap().unwrap();
        assert!(!travel.resume.unwrap().pen_down);
        // Jobs from before schema 3 were not recorded as simulated.
        assert!(!drawing.simulated);
    }

    #[test]
    fn refuses_newer_and_foreign_databases() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
            latest_version() + 1
        ))
        .unwrap();
        match inspect(&conn, "x.db") {
            Err(StoreError::TooNew { found, known, .. }) => {
                assert_eq!((found, known), (latest_version() + 1, latest_version()));
            }
            other => panic!("{other:?}"),
        }
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE photos (id INTEGER)")
            .unwrap();
        assert!(matches!(
            inspect(&conn, "x.db"),
            Err(StoreError::Foreign { .. })
        ));
    }
}
