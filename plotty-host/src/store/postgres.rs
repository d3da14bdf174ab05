//! The job store on PostgreSQL (`database.url: postgresql://…`): several daemons, one queue.
//!
//! The same tables, transactions and answers as the SQLite store ([`super::jobs`]), written for
//! PostgreSQL with `tokio-postgres` over a `deadpool-postgres` pool: async all the way, so no
//! store thread is needed. The schema comes from the PostgreSQL twins of the migrations
//! ([`super::migrate::POSTGRES_MIGRATIONS`]), applied under an advisory lock so that daemons
//! starting together migrate once.
//!
//! Where SQLite serialises writers with one `IMMEDIATE` transaction at a time, PostgreSQL locks
//! rows: a state change locks its job (`FOR UPDATE`) before it reads the state, and a daemon
//! claims the head `READY` job with `FOR UPDATE SKIP LOCKED`, so claimers never wait on each
//! other and never take the same job. Leases (schema 4) are the same as in SQLite: see
//! [`super::jobs::claim_next`], [`super::jobs::renew_lease`] and [`super::jobs::expire_leases`].
//!
//! Connections are TCP or a Unix socket (`?host=/run/postgresql`); over TCP, TLS as libpq's
//! `sslmode` and `sslrootcert` in the URL ask ([`super::tls`]).

use std::collections::BTreeMap;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{Map, Value, json};
use tokio_postgres::GenericClient;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::ToSql;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::jobs::{
    self, Claim, EventRecord, JobRecord, Layer, Lease, NewJob, ResumePoint, StateChange,
    TransitionRequest,
};
use super::migrate::{POSTGRES_MIGRATIONS, latest_version};
use super::row;
use super::{OpenReport, StoreError};
use crate::job::{self, JobEvent, JobId, JobState, Reason};
use crate::journal::EntryKind;
use crate::timestamp;

/// The advisory lock taken while migrating ('PLTY'): one daemon migrates, the others wait.
const MIGRATION_LOCK: i64 = 0x504C_5459;

/// The space of the advisory locks taken while a daemon registers its name ('PLTD').
const DAEMON_NAME_LOCKS: i32 = 0x504C_5444;

/// The advisory lock every registration takes ('PLTP'): two daemons registering at once the
/// same plotter name under different daemon names are serialised, and the second is refused.
const PLOTTER_NAMES_LOCK: i64 = 0x504C_5450;

/// A connection of its own to the database (see [`PgStore::connect_dedicated`]): the future the
/// caller drives, through which notifications arrive.
pub type PgConnection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// `e` and its causes (`error performing TLS handshake: invalid peer certificate:
/// UnknownIssuer`): the outer message alone does not say what to fix.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `url`'s connection settings and the TLS connector it asks for (see [`super::tls`]).
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let shown = redact(url);
    let invalid = |e: String| {
        StoreError::Invalid(format!(
            "database.url `{shown}` is not a PostgreSQL URL: {e}"
        ))
    };
    let (rest, tls) = super::tls::split_url(url).map_err(invalid)?;
    let config = tokio_postgres::Config::from_str(&rest).map_err(|e| invalid(e.to_string()))?;
    let connector = super::tls::connector(&tls)
        .map_err(|e| StoreError::Invalid(format!("database.url `{shown}`: {e}")))?;
    Ok((config, connector))
}

/// A handle to a PostgreSQL job store; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    url: String,
    /// The parsed URL, for connections of their own outside the pool (`LISTEN`).
    config: std::sync::Arc<tokio_postgres::Config>,
    /// The TLS connector `database.url` asks for.
    tls: MakeRustlsConnect,
}

impl PgStore {
    /// Connects to `url` (`postgresql://user:password@host:port/db` or key=value form) with at
    /// most `max_connections` connections, checks the schema and applies pending migrations.
    ///
    /// Errors: a malformed URL ([`StoreError::Invalid`]), an unreachable server
    /// ([`StoreError::Connect`]), a database of another program ([`StoreError::Foreign`]) or of a
    /// newer plotty ([`StoreError::TooNew`]), a failed migration.
    pub async fn connect(
        url: &str,
        max_connections: usize,
    ) -> Result<(Self, OpenReport), StoreError> {
        let shown = redact(url);
        let (config, tls) = parse_url(url)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|e| StoreError::Connect {
                url: shown.clone(),
                detail: e.to_string(),
            })?;
        let store = Self {
            pool,
            url: shown,
            config: std::sync::Arc::new(config),
            tls,
        };
        let migrated = store.migrate().await?;
        let report = OpenReport {
            path: store.url.clone().into(),
            created: migrated.first() == Some(&1),
            migrated,
            version: latest_version(),
            journal_mode: "postgresql".into(),
        };
        Ok((store, report))
    }

    /// The schema version of the database at `url`, without creating or migrating anything (for
    /// `plotty check database`). Errors as [`PgStore::connect`].
    pub async fn inspect(url: &str) -> Result<(Self, u32), StoreError> {
        let shown = redact(url);
        let (config, tls) = parse_url(url)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(1)
            .build()
            .map_err(|e| StoreError::Connect {
                url: shown.clone(),
                detail: e.to_string(),
            })?;
        let store = Self {
            pool,
            url: shown,
            config: std::sync::Arc::new(config),
            tls,
        };
        let version = store.schema_version().await?;
        Ok((store, version))
    }

    /// Whether the connected user may change the job tables (`plotty check database`).
    pub async fn can_write(&self) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT has_table_privilege('jobs', 'INSERT, UPDATE, DELETE')
                     AND has_table_privilege('job_events', 'INSERT')",
                &[],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// [`PgStore::connect`] from outside any async runtime (the daemon opens its database before
    /// it starts its runtime, step 2): connects and migrates on a runtime of its own, then drops
    /// the connections made there, so that the pool opens its connections on the caller's
    /// runtime when first used.
    pub fn connect_blocking(
        url: &str,
        max_connections: usize,
    ) -> Result<(Self, OpenReport), StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let (store, report) = runtime.block_on(Self::connect(url, max_connections))?;
        // Their connection tasks die with this runtime.
        store.pool.retain(|_, _| false);
        Ok((store, report))
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> usize {
        self.pool.status().max_size
    }

    /// The database URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection of its own, outside the pool (a `LISTEN` needs one that stays open): the
    /// client and the connection future the caller drives (notifications arrive through it).
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn connect_dedicated(
        &self,
    ) -> Result<(tokio_postgres::Client, PgConnection), StoreError> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| StoreError::Connect {
                url: self.url.clone(),
                detail: with_causes(&e),
            })
    }

    /// Records this daemon (`me`) among those sharing the database (schema 6), refusing a name
    /// another daemon (another host or workspace) renewed within `ttl_ms`: two daemons under one
    /// name would take each other's leases and pause each other's plots.
    ///
    /// # Errors
    /// [`StoreError::NameInUse`], or the database failed.
    pub async fn register_daemon(
        &self,
        me: &DaemonIdentity,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Serialises two daemons registering one name at once (the row may not exist yet).
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&DAEMON_NAME_LOCKS, &me.name],
        )
        .await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PLOTTER_NAMES_LOCK])
            .await?;
        let row = tx
            .query_opt(
                "SELECT host, workspace, pid, heartbeat_ms FROM daemons WHERE name = $1",
                &[&me.name],
            )
            .await?;
        if let Some(row) = row {
            let (host, workspace): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let (pid, heartbeat_ms): (i64, i64) = (row.try_get(2)?, row.try_get(3)?);
            let same = host == me.host && workspace == me.workspace;
            if !same && heartbeat_ms.saturating_add(ttl_ms) > now_ms {
                return Err(StoreError::NameInUse {
                    name: me.name.clone(),
                    host,
                    workspace,
                    pid,
                    seen_s: (now_ms - heartbeat_ms).max(0) / 1000,
                    ttl_s: ttl_ms / 1000,
                });
            }
        }
        // A plotter name a live daemon holds (schema 9): a job asking for it could go to either.
        let live = tx
            .query(
                "SELECT name, host, workspace, plotters FROM daemons
                 WHERE name <> $1 AND heartbeat_ms > $2::BIGINT - $3::BIGINT",
                &[&me.name, &now_ms, &ttl_ms],
            )
            .await?;
        for row in live {
            let (daemon, host, workspace, plotters): (String, String, String, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let theirs = Plotter::list(&plotters);
            if let Some(clash) = me.plotters.iter().find(|p| {
                theirs
                    .iter()
                    .any(|t| (p.named || t.named) && t.name.eq_ignore_ascii_case(&p.name))
            }) {
                return Err(StoreError::PlotterNameInUse {
                    plotter: clash.name.clone(),
                    daemon,
                    host,
                    workspace,
                    me: me.name.clone(),
                });
            }
        }
        let plotters = serde_json::to_string(&me.plotters)
            .map_err(|e| StoreError::Invalid(format!("cannot record the plotters: {e}")))?;
        tx.execute(
            "INSERT INTO daemons (name, host, workspace, pid, started_at, heartbeat_ms, plotters)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, workspace = excluded.workspace,
                 pid = excluded.pid, started_at = excluded.started_at,
                 heartbeat_ms = excluded.heartbeat_ms, plotters = excluded.plotters",
            &[
                &me.name,
                &me.host,
                &me.workspace,
                &i64::from(me.pid),
                &timestamp::now(),
                &now_ms,
                &plotters,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the plotters recorded for this daemon (`name` on `host` in `workspace`) with
    /// `plotters`: the ids its device tasks found (an unnamed plotter's port is known only once
    /// its board is found, after the registration). `false` when the name is now another
    /// daemon's.
    ///
    /// # Errors
    /// The database failed.
    pub async fn set_plotters(
        &self,
        name: &str,
        host: &str,
        workspace: &str,
        plotters: &[Plotter],
    ) -> Result<bool, StoreError> {
        let list = serde_json::to_string(plotters)
            .map_err(|e| StoreError::Invalid(format!("cannot record the plotters: {e}")))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // As `register_daemon`: a registration checking plotter names sees this list before
        // or after, never a half-written one.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PLOTTER_NAMES_LOCK])
            .await?;
        let n = tx
            .execute(
                "UPDATE daemons SET plotters = $4 WHERE name = $1 AND host = $2 AND workspace = $3",
                &[&name, &host, &workspace, &list],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Renews this daemon's registration; `false` when the name is now another daemon's (it
    /// started after this one's heartbeat lapsed).
    pub async fn daemon_heartbeat(
        &self,
        me: &DaemonIdentity,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE daemons SET heartbeat_ms = $4
                 WHERE name = $1 AND host = $2 AND workspace = $3",
                &[&me.name, &me.host, &me.workspace, &now_ms],
            )
            .await?;
        Ok(n > 0)
    }

    /// The plotters of every daemon whose heartbeat is younger than `ttl_ms` at `now_ms`, with
    /// the daemon's name, by daemon then plotter (schema 9): the farm a job's requirements are
    /// checked against.
    ///
    /// # Errors
    /// The database failed.
    pub async fn farm_plotters(
        &self,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<(String, Plotter)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, plotters FROM daemons WHERE heartbeat_ms > $1::BIGINT - $2::BIGINT
                 ORDER BY name",
                &[&now_ms, &ttl_ms],
            )
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let (daemon, plotters): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            out.extend(
                Plotter::list(&plotters)
                    .into_iter()
                    .map(|p| (daemon.clone(), p)),
            );
        }
        Ok(out)
    }

    /// Ends this daemon's registration (a clean shutdown): its name is free at once.
    pub async fn unregister_daemon(&self, me: &DaemonIdentity) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM daemons WHERE name = $1 AND host = $2 AND workspace = $3",
                &[&me.name, &me.host, &me.workspace],
            )
            .await?;
        Ok(())
    }

    /// Sends `payload` to every session listening on `channel` (`pg_notify`).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await?;
        Ok(())
    }

    /// [`connect_dedicated`](Self::connect_dedicated) with the session's `application_name`
    /// set, so that it can be told apart in `pg_stat_activity` (the relay's listening session
    /// is `plotty-relay:<daemon name>`).
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn connect_dedicated_as(
        &self,
        application_name: &str,
    ) -> Result<(tokio_postgres::Client, PgConnection), StoreError> {
        let mut config = (*self.config).clone();
        config.application_name(application_name);
        config
            .connect(self.tls.clone())
            .await
            .map_err(|e| StoreError::Connect {
                url: self.url.clone(),
                detail: with_causes(&e),
            })
    }

    /// The id of the last job event recorded (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT coalesce(max(id), 0)::bigint FROM job_events", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The state changes recorded after event `after` (at most `limit`, oldest first), each
    /// with the daemon its job is on (the one that claimed it, else the one it was submitted
    /// to): what a daemon whose listening connection was lost catches up on.
    pub async fn state_changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(StateChange, Option<String>)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT e.id, e.job_id, j.name, e.from_state, e.to_state, e.reason,
                        e.metadata_json, e.created_at, coalesce(j.daemon, j.submitted_by)
                 FROM job_events e JOIN jobs j ON j.id = e.job_id
                 WHERE e.type = 'state_change' AND e.id > $1
                 ORDER BY e.id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let event_id: i64 = r.try_get(0)?;
            let corrupt = |what: &str| StoreError::Corrupt(format!("job event {event_id}: {what}"));
            let job_id: String = r.try_get(1)?;
            let to: Option<String> = r.try_get(4)?;
            let from: Option<String> = r.try_get(3)?;
            let reason: Option<String> = r.try_get(5)?;
            let metadata = jobs::parse_json(&r.try_get::<_, String>(6)?);
            let error = metadata
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned);
            out.push((
                StateChange {
                    event_id,
                    job_id: JobId::parse(&job_id).map_err(|e| corrupt(&e.to_string()))?,
                    job_name: r.try_get(2)?,
                    from: from
                        .map(|f| f.parse())
                        .transpose()
                        .map_err(|_| corrupt("unknown from_state"))?,
                    to: to
                        .ok_or_else(|| corrupt("no to_state"))?
                        .parse()
                        .map_err(|_| corrupt("unknown to_state"))?,
                    reason: reason
                        .ok_or_else(|| corrupt("no reason"))?
                        .parse()
                        .map_err(|_| corrupt("unknown reason"))?,
                    error,
                    metadata,
                    at: r.try_get(7)?,
                },
                r.try_get(8)?,
            ));
        }
        Ok(out)
    }

    /// Which of the jobs `ids` still exist.
    pub async fn existing_jobs(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT id FROM jobs WHERE id = ANY($1)", &[&ids])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records `payload`, the latest progress of job `id` as `daemon` relayed it (schema 8);
    /// a job deleted meanwhile is not an error.
    pub async fn put_progress(
        &self,
        id: &str,
        daemon: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO job_progress (job_id, daemon, payload, updated_at)
                 SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1)
                 ON CONFLICT (job_id) DO UPDATE
                 SET daemon = excluded.daemon, payload = excluded.payload,
                     updated_at = excluded.updated_at",
                &[&id, &daemon, &payload, &timestamp::now()],
            )
            .await?;
        Ok(())
    }

    /// The latest progress payloads (see [`put_progress`](Self::put_progress)) of the jobs
    /// plotting or paused on daemons other than `me`.
    pub async fn progress_of_others(&self, me: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT p.payload FROM job_progress p JOIN jobs j ON j.id = p.job_id
                 WHERE p.daemon <> $1 AND j.state IN ('PLOTTING', 'PAUSED')
                 ORDER BY p.job_id",
                &[&me],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Closes the pool: later calls fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.pool.close();
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Closed => StoreError::Closed,
            other => StoreError::Connect {
                url: self.url.clone(),
                detail: with_causes(&other),
            },
        })
    }

    /// Applies every migration the database has not recorded, each in its own transaction under
    /// the migration lock, with its `schema_migrations` row. Returns the versions applied.
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let mut client = self.client().await?;
        let mut applied = Vec::new();
        loop {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            // Every migration not recorded yet, in number order (numbers may have gaps, filled
            // later: see `migrate`'s module doc).
            let version = self.version(&*tx).await?;
            let recorded: Vec<i32> = if version == 0 {
                Vec::new()
            } else {
                tx.query("SELECT version FROM schema_migrations", &[])
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?
            };
            let Some(m) = POSTGRES_MIGRATIONS
                .iter()
                .find(|m| !recorded.contains(&i32::try_from(m.version).unwrap_or(i32::MAX)))
            else {
                tx.commit().await?;
                return Ok(applied);
            };
            let fail = |e: tokio_postgres::Error| StoreError::PostgresMigration {
                name: m.name,
                source: e,
            };
            tx.batch_execute(m.sql).await.map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[
                    &i32::try_from(m.version).unwrap_or(i32::MAX),
                    &m.name,
                    &timestamp::now(),
                ],
            )
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            applied.push(m.version);
        }
    }

    /// The schema version of the database; refuses another program's database and a newer one.
    async fn version<C: GenericClient + Sync>(&self, c: &C) -> Result<u32, StoreError> {
        let ours: Option<String> = c
            .query_one("SELECT to_regclass('schema_migrations')::text", &[])
            .await?
            .get(0);
        if ours.is_none() {
            let tables: i64 = c
                .query_one(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                    &[],
                )
                .await?
                .get(0);
            if tables > 0 {
                return Err(StoreError::Foreign {
                    path: self.url.clone(),
                    detail: format!("it has {tables} tables but no plotty schema_migrations"),
                });
            }
            return Ok(0);
        }
        let version: Option<i32> = c
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await?
            .get(0);
        let version = u32::try_from(version.unwrap_or(0)).unwrap_or(0);
        if version > latest_version() {
            return Err(StoreError::TooNew {
                path: self.url.clone(),
                found: version,
                known: latest_version(),
            });
        }
        Ok(version)
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        let client = self.client().await?;
        self.version(&**client).await
    }

    /// Runs raw SQL (tests compare schemas and try forbidden writes with it).
    #[cfg(test)]
    pub(crate) async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client().await?.batch_execute(sql).await?)
    }

    /// The columns of every plotty table, `table.column` sorted (the schema comparison test).
    #[cfg(test)]
    pub(crate) async fn columns(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Adds a job in state `NEW`; see [`jobs::insert`].
    pub async fn insert_job(&self, new: NewJob) -> Result<(JobRecord, StateChange), StoreError> {
        jobs::validate_name(&new.name)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = fresh_id(&*tx).await?;
        let change = insert_new(&*tx, &id, &new, None).await?;
        let record = get(&*tx, id.as_str())
            .await?
            .ok_or_else(|| StoreError::UnknownJob(id.to_string()))?;
        tx.commit().await?;
        Ok((record, change))
    }

    /// Applies a transition and records its event in one transaction; see [`jobs::transition`].
    pub async fn transition(&self, req: TransitionRequest) -> Result<StateChange, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let change = transition_in(&*tx, &req).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Retries a `FAILED` or `ABORTED` job as a new `QUEUED` one; see [`jobs::retry`].
    pub async fn retry(&self, old_id: &str) -> Result<(JobRecord, Vec<StateChange>), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let old = get_for_update(&*tx, old_id)
            .await?
            .ok_or_else(|| StoreError::UnknownJob(old_id.to_owned()))?;
        if !job::can_retry(old.state) {
            return Err(StoreError::NotRetryable {
                job_id: old_id.to_owned(),
                state: old.state,
            });
        }
        let mut metadata = jobs::object(&old.metadata);
        metadata.remove("start");
        let new = NewJob {
            name: old.name.clone(),
            source_path: old.source_path.as_ref().map(Into::into),
            priority: old.priority,
            metadata: Value::Object(metadata),
            submitted_by: old.submitted_by.clone(),
            requirements: old.requirements.clone(),
        };
        let id = fresh_id(&*tx).await?;
        let created = insert_new(&*tx, &id, &new, Some(old_id)).await?;
        let old_layers = layers(&*tx, old_id).await?;
        set_layers(&*tx, id.as_str(), &old_layers).await?;
        tx.execute(
            "INSERT INTO job_sources (job_id, svg) SELECT $1, svg FROM job_sources WHERE job_id = $2",
            &[&id.as_str(), &old_id],
        )
        .await?;
        let queued = transition_in(
            &*tx,
            &TransitionRequest {
                job_id: id.clone(),
                event: JobEvent::Enqueue,
                reason: Reason::Retry,
                error: None,
                metadata: json!({ "retry_of": old_id }),
            },
        )
        .await?;
        let record = get(&*tx, id.as_str())
            .await?
            .ok_or_else(|| StoreError::UnknownJob(id.to_string()))?;
        tx.commit().await?;
        Ok((record, vec![created, queued]))
    }

    /// Crash recovery of a single daemon: every `ARMED` or `PLOTTING` job becomes `PAUSED`
    /// (`interrupted`); see [`jobs::recover_interrupted`]. With several daemons on one database
    /// use [`PgStore::recover_owned`]: it leaves the jobs of the other, live daemons alone.
    pub async fn recover_interrupted(&self) -> Result<Vec<(StateChange, i64)>, StoreError> {
        self.recover(None).await
    }

    /// Start-up recovery of the daemon `owner` among several: its own `ARMED` or `PLOTTING`
    /// jobs (it died holding them), jobs held by no one and jobs whose lease expired by `now_ms`
    /// become `PAUSED` (`interrupted`); jobs another daemon holds under a live lease are left
    /// to it.
    pub async fn recover_owned(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<(StateChange, i64)>, StoreError> {
        self.recover(Some((owner, now_ms))).await
    }

    async fn recover(
        &self,
        owner: Option<(&str, i64)>,
    ) -> Result<Vec<(StateChange, i64)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let running = list(&*tx, &[JobState::Armed, JobState::Plotting]).await?;
        let mut out = Vec::with_capacity(running.len());
        for job in running {
            if let (Some((me, now_ms)), Some(lease)) = (owner, &job.lease)
                && lease.owner != me
                && lease.expires_ms > now_ms
            {
                continue;
            }
            let (req, recovery) = jobs::crash_recovery(&job);
            let change = transition_in(&*tx, &req).await?;
            let recovery = insert_event(
                &*tx,
                job.id.as_str(),
                EntryKind::Recovery,
                Some(job.state),
                Some(JobState::Paused),
                Some(Reason::Interrupted.as_str()),
                &recovery,
                &change.at,
            )
            .await?;
            tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires_ms = NULL WHERE id = $1",
                &[&job.id.as_str()],
            )
            .await?;
            out.push((change, recovery));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims the head job released for plotting under `claim`'s lease; see
    /// [`jobs::claim_next`]. `FOR UPDATE SKIP LOCKED`: a job another daemon is claiming right now
    /// is passed over, never waited for nor taken twice.
    pub async fn claim_next(
        &self,
        claim: Claim,
    ) -> Result<Option<(JobRecord, StateChange)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let head = match &claim.profile {
            // Any job will do: the head one nobody is claiming, in one statement.
            None => tx
                .query_opt(
                    "SELECT id FROM jobs
                     WHERE state = 'READY' AND lease_owner IS NULL
                         AND (metadata_json::jsonb -> 'start') = 'true'::jsonb
                     ORDER BY priority DESC, seq ASC LIMIT 1
                     FOR UPDATE SKIP LOCKED",
                    &[],
                )
                .await?
                .map(|row| row.try_get::<_, String>(0))
                .transpose()?,
            Some(profile) => head_met(&tx, profile).await?,
        };
        let Some(id) = head else {
            tx.commit().await?;
            return Ok(None);
        };
        let job_id = JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let change = transition_in(&*tx, &jobs::claim_request(&job_id, &claim)).await?;
        tx.execute(
            "UPDATE jobs SET lease_owner = $2, lease_expires_ms = $3, daemon = $2 WHERE id = $1",
            &[
                &id,
                &claim.owner,
                &claim.now_ms.saturating_add(claim.ttl_ms),
            ],
        )
        .await?;
        let record = get(&*tx, &id)
            .await?
            .ok_or_else(|| StoreError::UnknownJob(id.clone()))?;
        tx.commit().await?;
        Ok(Some((record, change)))
    }

    /// Applies a transition like [`PgStore::transition`]; a job it moves to `ARMED` or
    /// `PLOTTING` is held by `owner` until `now_ms + ttl_ms` (the daemon that arms or resumes a
    /// job plots it), in the same transaction.
    pub async fn transition_leased(
        &self,
        req: TransitionRequest,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<StateChange, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let change = transition_in(&*tx, &req).await?;
        if matches!(change.to, JobState::Armed | JobState::Plotting) {
            tx.execute(
                "UPDATE jobs SET lease_owner = $2, lease_expires_ms = $3, daemon = $2 WHERE id = $1",
                &[&req.job_id.as_str(), &owner, &now_ms.saturating_add(ttl_ms)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(change)
    }

    /// Takes the lease of every `PAUSED` job the daemon `owner` claimed (schema 6) until
    /// `now_ms + ttl_ms`, at its start: while it was down the other daemons let their leases
    /// lapse, and a paused job nobody holds may be aborted from any daemon. Returns how many.
    pub async fn hold_paused(
        &self,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET lease_owner = $1, lease_expires_ms = $2
                 WHERE daemon = $1 AND state = 'PAUSED'",
                &[&owner, &now_ms.saturating_add(ttl_ms)],
            )
            .await?)
    }

    /// Extends every lease `owner` still holds (not expired at `now_ms`) to `now_ms + ttl_ms`;
    /// returns how many.
    pub async fn renew_own(
        &self,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET lease_expires_ms = $3
                 WHERE lease_owner = $1 AND lease_expires_ms > $2",
                &[&owner, &now_ms, &now_ms.saturating_add(ttl_ms)],
            )
            .await?)
    }

    /// Extends `owner`'s lease on `job_id`; see [`jobs::renew_lease`].
    pub async fn renew_lease(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError> {
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET lease_expires_ms = $4
                 WHERE id = $1 AND lease_owner = $2 AND lease_expires_ms > $3",
                &[&job_id, &owner, &now_ms, &expires_ms],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::LeaseLost {
                job_id: job_id.to_owned(),
                owner: owner.to_owned(),
            });
        }
        Ok(Lease {
            owner: owner.to_owned(),
            expires_ms,
        })
    }

    /// Ends every lease expired at `now_ms`; see [`jobs::expire_leases`]. Rows another daemon
    /// holds locked (renewing them right now) are skipped: the next sweep sees them.
    pub async fn expire_leases(&self, now_ms: i64) -> Result<Vec<(StateChange, i64)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expired = tx
            .query(
                "SELECT id, lease_owner, lease_expires_ms FROM jobs
                 WHERE lease_owner IS NOT NULL AND lease_expires_ms <= $1 ORDER BY seq
                 FOR UPDATE SKIP LOCKED",
                &[&now_ms],
            )
            .await?;
        let mut out = Vec::new();
        for row in expired {
            let id: String = row.try_get(0)?;
            let owner: String = row.try_get(1)?;
            let expires_ms: i64 = row.try_get(2)?;
            let job = get(&*tx, &id)
                .await?
                .ok_or_else(|| StoreError::UnknownJob(id.clone()))?;
            if matches!(job.state, JobState::Armed | JobState::Plotting) {
                let (req, recovery) = jobs::lease_expiry(&job, &owner, expires_ms);
                let change = transition_in(&*tx, &req).await?;
                let event = insert_event(
                    &*tx,
                    &id,
                    EntryKind::Recovery,
                    Some(job.state),
                    Some(JobState::Paused),
                    Some(Reason::Interrupted.as_str()),
                    &recovery,
                    &change.at,
                )
                .await?;
                out.push((change, event));
            }
            tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires_ms = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records the resume point of a running job; see [`jobs::set_resume_point`].
    pub async fn set_resume_point(&self, id: &str, p: &ResumePoint) -> Result<(), StoreError> {
        let (m1, m2, x, y) = match p.position {
            Some(pos) => (
                Some(i64::from(pos.steps.m1)),
                Some(i64::from(pos.steps.m2)),
                Some(pos.point.x_mm),
                Some(pos.point.y_mm),
            ),
            None => (None, None, None, None),
        };
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET resume_layer = $2, resume_stroke = $3, resume_vertex = $4,
                     resume_motor1 = $5, resume_motor2 = $6, resume_x_mm = $7, resume_y_mm = $8,
                     resume_at = $9, resume_pen_down = $10, resume_streaming = $11
                 WHERE id = $1",
                &[
                    &id,
                    &i64::from(p.layer),
                    &i64::from(p.stroke),
                    &i64::from(p.vertex),
                    &m1,
                    &m2,
                    &x,
                    &y,
                    &p.recorded_at,
                    &i32::from(p.pen_down),
                    &i32::from(p.streaming),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownJob(id.to_owned()));
        }
        Ok(())
    }

    /// Appends a non-transition event to a job's history; see [`jobs::insert_event`].
    pub async fn record_event(
        &self,
        id: &str,
        kind: EntryKind,
        state: Option<JobState>,
        reason: Option<&str>,
        metadata: &Value,
        at: &str,
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        insert_event(&**client, id, kind, None, state, reason, metadata, at).await
    }

    /// Marks the resume points a plot on `device` could resume from as not searchable; see
    /// [`jobs::clear_streaming`].
    pub async fn clear_streaming(&self, device: &str) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute(jobs::CLEAR_STREAMING, &[&device])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Records that a job is plotted on the simulator.
    pub async fn set_simulated(&self, id: &str) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute("UPDATE jobs SET simulated = 1 WHERE id = $1", &[&id])
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownJob(id.to_owned()));
        }
        Ok(())
    }

    /// Sets one key of a job's metadata; see [`jobs::set_metadata`].
    pub async fn set_metadata(&self, id: &str, key: &str, value: Value) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let job = get_for_update(&*tx, id)
            .await?
            .ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
        let mut metadata = match job.metadata {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        metadata.insert(key.to_owned(), value);
        tx.execute(
            "UPDATE jobs SET metadata_json = $2, updated_at = $3 WHERE id = $1",
            &[&id, &Value::Object(metadata).to_string(), &timestamp::now()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the estimates of a job (seconds; `None` leaves a value as it is).
    pub async fn set_estimates(
        &self,
        id: &str,
        pre_s: Option<f64>,
        post_s: Option<f64>,
    ) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET estimate_pre_s = coalesce($2, estimate_pre_s),
                     estimate_post_s = coalesce($3, estimate_post_s), updated_at = $4
                 WHERE id = $1",
                &[&id, &pre_s, &post_s, &timestamp::now()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownJob(id.to_owned()));
        }
        Ok(())
    }

    /// Records where a job's SVG is stored.
    pub async fn set_source_path(&self, id: &str, path: &str) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE jobs SET source_path = $2, updated_at = $3 WHERE id = $1",
                &[&id, &path, &timestamp::now()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownJob(id.to_owned()));
        }
        Ok(())
    }

    /// Stores the SVG of a job (schema 6) so that every daemon can plot it.
    pub async fn set_source_svg(&self, id: &str, svg: &[u8]) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO job_sources (job_id, svg) VALUES ($1, $2)
                 ON CONFLICT (job_id) DO UPDATE SET svg = excluded.svg",
                &[&id, &svg],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::UnknownJob(id.to_owned())
                } else {
                    StoreError::Postgres(e)
                }
            })?;
        Ok(())
    }

    /// The SVG of a job stored in the database, if any.
    pub async fn source_svg(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT svg FROM job_sources WHERE job_id = $1", &[&id])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Deletes a job in a final state with its layers and events; see [`jobs::delete`].
    pub async fn delete_job(&self, id: &str) -> Result<JobRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let job = get_for_update(&*tx, id)
            .await?
            .ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
        if !job.state.is_terminal() {
            return Err(StoreError::NotFinished {
                job_id: id.to_owned(),
                state: job.state,
            });
        }
        tx.execute("DELETE FROM jobs WHERE id = $1", &[&id]).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        get(&**self.client().await?, id).await
    }

    /// Jobs in `states` (all when empty) in queue order.
    pub async fn jobs(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        list(&**self.client().await?, states).await
    }

    /// A job's events, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, type, from_state, to_state, reason, metadata_json, created_at
                 FROM job_events WHERE job_id = $1 ORDER BY id",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    from_state: r.try_get(2)?,
                    to_state: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    metadata: jobs::parse_json(&r.try_get::<_, String>(5)?),
                    at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The device a job was last recorded on; see [`jobs::device_of`].
    pub async fn device_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT metadata_json::jsonb ->> 'device_id' FROM job_events
                 WHERE job_id = $1 AND jsonb_typeof(metadata_json::jsonb -> 'device_id') = 'string'
                 ORDER BY id DESC LIMIT 1",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Replaces a job's layers.
    pub async fn set_layers(&self, id: &str, new: &[Layer]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        set_layers(&*tx, id, new).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A job's layers in plot order.
    pub async fn layers(&self, id: &str) -> Result<Vec<Layer>, StoreError> {
        layers(&**self.client().await?, id).await
    }

    /// Number of jobs in each state (states without jobs are left out).
    pub async fn state_counts(&self) -> Result<BTreeMap<JobState, u64>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT state, count(*) FROM jobs GROUP BY state", &[])
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let state: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            let state: JobState = state
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("a job has state `{state}`")))?;
            out.insert(state, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }
}

/// A daemon among those sharing a PostgreSQL database (see [`PgStore::register_daemon`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DaemonIdentity {
    /// `daemon.name`.
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its workspace (one daemon per workspace: the workspace lock).
    pub workspace: String,
    /// Its process id.
    pub pid: u32,
    /// Its plotters (recorded at registration, schema 9).
    pub plotters: Vec<Plotter>,
}

/// One plotter of a daemon sharing the database, as its registration records it.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Plotter {
    /// Its device id (its configured name, else its port or `simulator`).
    pub name: String,
    /// Its AxiDraw model number.
    pub model: u8,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether `name` was configured (`name:` of a `devices` entry): named plotters are unique
    /// across the farm; two unnamed ones (each daemon's lone `device:` on the simulator, say)
    /// may share their id.
    #[serde(default)]
    pub named: bool,
}

impl Plotter {
    /// The record of the plotter offering `profile`; `named`: its id is a configured `name:`.
    /// The one rule for the registration at start and the queue's later records.
    pub fn new(profile: crate::devices::registry::Profile, named: bool) -> Self {
        Self {
            name: profile.name,
            model: profile.model,
            tags: profile.tags,
            named,
        }
    }

    /// What it offers a job's requirements.
    pub fn profile(&self) -> crate::devices::registry::Profile {
        crate::devices::registry::Profile {
            name: self.name.clone(),
            model: self.model,
            tags: self.tags.clone(),
        }
    }

    /// The list recorded in `daemons.plotters`; an unreadable one (a newer daemon's format)
    /// counts as no plotters, logged.
    fn list(json: &str) -> Vec<Self> {
        serde_json::from_str(json).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "ignoring a daemon's unreadable plotter list");
            Vec::new()
        })
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value form: hide `password=…`.
        return url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

async fn fresh_id<C: GenericClient + Sync>(c: &C) -> Result<JobId, StoreError> {
    for _ in 0..16 {
        let id = JobId::generate();
        if c.query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&id.as_str()])
            .await?
            .is_none()
        {
            return Ok(id);
        }
    }
    Err(StoreError::Invalid(
        "could not find a free job id after 16 tries".into(),
    ))
}

/// The head released job the plotter `profile` meets, locked, in one statement: `FOR UPDATE
/// SKIP LOCKED` passes over a job another daemon is claiming. The filter is
/// [`Profile::meets`](crate::devices::registry::Profile::meets) in SQL (the store suite holds
/// the two to the same answers): a name asked must be the plotter's, a model its model, and
/// every tag asked among its tags, letter case aside (`lower` on both sides: names and tags
/// are ASCII words, checked at submission and in the config). Reading the candidates and
/// filtering them here cost a read of every released job per claim.
async fn head_met(
    tx: &tokio_postgres::Transaction<'_>,
    profile: &crate::devices::registry::Profile,
) -> Result<Option<String>, StoreError> {
    let tags: Vec<String> = profile
        .tags
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    let tags = serde_json::to_string(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let model = i32::from(profile.model);
    let row = tx
        .query_opt(
            "SELECT id FROM jobs
             WHERE state = 'READY' AND lease_owner IS NULL
                 AND (metadata_json::jsonb -> 'start') = 'true'::jsonb
                 AND (req_device IS NULL OR lower(req_device) = lower($1::text))
                 AND (req_model IS NULL OR req_model = $2::int4)
                 AND (req_tags IS NULL OR CAST(lower(req_tags) AS jsonb) <@ CAST($3::text AS jsonb))
             ORDER BY priority DESC, seq ASC LIMIT 1
             FOR UPDATE SKIP LOCKED",
            &[&profile.name, &model, &tags],
        )
        .await?;
    Ok(row.map(|r| r.try_get::<_, String>(0)).transpose()?)
}

async fn insert_new<C: GenericClient + Sync>(
    c: &C,
    id: &JobId,
    new: &NewJob,
    retry_of: Option<&str>,
) -> Result<StateChange, StoreError> {
    let now = timestamp::now();
    let source = new
        .source_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let metadata = Value::Object(jobs::object(&new.metadata)).to_string();
    c.execute(
        "INSERT INTO jobs (id, name, state, priority, source_path, created_at, updated_at,
             state_reason, retry_of, metadata_json, submitted_by, req_device, req_model,
             req_tags)
         VALUES ($1, $2, 'NEW', $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &id.as_str(),
            &new.name,
            &new.priority,
            &source,
            &now,
            &Reason::Submitted.as_str(),
            &retry_of,
            &metadata,
            &new.submitted_by,
            &new.requirements.device,
            &new.requirements.model.map(i32::from),
            &jobs::tags_text(&new.requirements.tags),
        ],
    )
    .await?;
    let mut event_meta = Map::new();
    if let Some(old) = retry_of {
        event_meta.insert("retry_of".into(), Value::String(old.to_owned()));
    }
    let event_meta = Value::Object(event_meta);
    let event_id = insert_event(
        c,
        id.as_str(),
        EntryKind::StateChange,
        None,
        Some(JobState::New),
        Some(Reason::Submitted.as_str()),
        &event_meta,
        &now,
    )
    .await?;
    Ok(StateChange {
        event_id,
        job_id: id.clone(),
        job_name: new.name.clone(),
        from: None,
        to: JobState::New,
        reason: Reason::Submitted,
        error: None,
        metadata: event_meta,
        at: now,
    })
}

/// Locks the job's row, checks the transition, updates the row and appends the event.
async fn transition_in<C: GenericClient + Sync>(
    c: &C,
    req: &TransitionRequest,
) -> Result<StateChange, StoreError> {
    let id = req.job_id.as_str();
    let row = c
        .query_opt(
            "SELECT state, name FROM jobs WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
    let state: String = row.try_get(0)?;
    let name: String = row.try_get(1)?;
    let from: JobState = state
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("job {id} has state `{state}`")))?;
    let to = job::transition(from, req.event).map_err(|source| StoreError::Transition {
        job_id: id.to_owned(),
        source,
    })?;
    let now = timestamp::now();
    let mut metadata = jobs::object(&req.metadata);
    if let Some(error) = &req.error {
        metadata.insert("error".into(), Value::String(error.clone()));
    }
    let metadata = Value::Object(metadata);
    let leased = jobs::LEASED_STATES.contains(&to);
    c.execute(
        "UPDATE jobs SET state = $2, updated_at = $3, state_reason = $4,
             error = CASE WHEN $5::text IS NOT NULL THEN $5::text WHEN $2 = 'QUEUED' THEN NULL ELSE error END,
             started_at = CASE WHEN $2 = 'PLOTTING' THEN coalesce(started_at, $3) ELSE started_at END,
             finished_at = CASE WHEN $6 THEN $3 ELSE finished_at END,
             lease_owner = CASE WHEN $7 THEN lease_owner ELSE NULL END,
             lease_expires_ms = CASE WHEN $7 THEN lease_expires_ms ELSE NULL END,
             device = coalesce($8::text, device)
         WHERE id = $1",
        &[
            &id,
            &to.as_str(),
            &now,
            &req.reason.as_str(),
            &req.error,
            &to.is_terminal(),
            &leased,
            &jobs::armed_on(to, &metadata),
        ],
    )
    .await?;
    let event_id = insert_event(
        c,
        id,
        EntryKind::StateChange,
        Some(from),
        Some(to),
        Some(req.reason.as_str()),
        &metadata,
        &now,
    )
    .await?;
    Ok(StateChange {
        event_id,
        job_id: req.job_id.clone(),
        job_name: name,
        from: Some(from),
        to,
        reason: req.reason,
        error: req.error.clone(),
        metadata,
        at: now,
    })
}

#[allow(clippy::too_many_arguments)]
async fn insert_event<C: GenericClient + Sync>(
    c: &C,
    job_id: &str,
    kind: EntryKind,
    from: Option<JobState>,
    to: Option<JobState>,
    reason: Option<&str>,
    metadata: &Value,
    at: &str,
) -> Result<i64, StoreError> {
    let kind = jobs::event_kind(kind)?;
    let row = c
        .query_one(
            "INSERT INTO job_events (job_id, type, from_state, to_state, reason, metadata_json, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &job_id,
                &kind,
                &from.map(JobState::as_str),
                &to.map(JobState::as_str),
                &reason,
                &metadata.to_string(),
                &at,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                StoreError::UnknownJob(job_id.to_owned())
            } else {
                StoreError::Postgres(e)
            }
        })?;
    Ok(row.try_get(0)?)
}

async fn get<C: GenericClient + Sync>(c: &C, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {} FROM jobs WHERE id = $1", jobs::COLUMNS);
    c.query_opt(&sql, &[&id])
        .await?
        .map(|r| row::job(&r))
        .transpose()
}

/// [`get`], with the row locked until the transaction ends.
async fn get_for_update<C: GenericClient + Sync>(
    c: &C,
    id: &str,
) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM jobs WHERE id = $1 FOR UPDATE",
        jobs::COLUMNS
    );
    c.query_opt(&sql, &[&id])
        .await?
        .map(|r| row::job(&r))
        .transpose()
}

async fn list<C: GenericClient + Sync>(
    c: &C,
    states: &[JobState],
) -> Result<Vec<JobRecord>, StoreError> {
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let all = names.is_empty();
    let sql = format!(
        "SELECT {} FROM jobs WHERE $1 OR state = ANY($2) ORDER BY priority DESC, seq ASC",
        jobs::COLUMNS
    );
    let rows = c.query(&sql, &[&all, &names]).await?;
    rows.iter().map(row::job).collect()
}

async fn set_layers<C: GenericClient + Sync>(
    c: &C,
    id: &str,
    new: &[Layer],
) -> Result<(), StoreError> {
    c.execute("DELETE FROM layers WHERE job_id = $1", &[&id])
        .await?;
    for l in new {
        let params: [&(dyn ToSql + Sync); 13] = [
            &id,
            &i64::from(l.index),
            &l.name,
            &l.number,
            &l.color,
            &i32::from(l.pause_before),
            &l.speed_pct,
            &l.height_pct,
            &l.delay_after_ms,
            &l.strokes,
            &l.points,
            &l.pen_down_mm,
            &l.estimate_s,
        ];
        c.execute(
            "INSERT INTO layers (job_id, layer_index, name, layer_number, color, pause_before,
                 speed_pct, height_pct, delay_after_ms, strokes, points, pen_down_mm, estimate_s)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &params,
        )
        .await?;
    }
    Ok(())
}

async fn layers<C: GenericClient + Sync>(c: &C, id: &str) -> Result<Vec<Layer>, StoreError> {
    let rows = c
        .query(
            "SELECT layer_index, name, layer_number, color, pause_before, speed_pct, height_pct,
                 delay_after_ms, strokes, points, pen_down_mm, estimate_s
             FROM layers WHERE job_id = $1 ORDER BY layer_index",
            &[&id],
        )
        .await?;
    rows.iter().map(row::layer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgresql://plotty:s3cret@db:5432/plotty"),
            "postgresql://plotty:***@db:5432/plotty"
        );
        assert_eq!(redact("postgresql://db/plotty"), "postgresql://db/plotty");
        assert_eq!(
            redact("host=db user=plotty password=s3cret"),
            "host=db user=plotty password=***"
        );
    }
}
