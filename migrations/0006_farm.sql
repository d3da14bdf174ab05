-- plotty schema 6: several daemons on one queue (issue 15). Number 5 is left to another change
-- (presets); the migrator applies every migration a database has not recorded, so a gap in the
-- numbers is allowed and 0005 may land after this one.
--
-- `daemon`: the name (`daemon.name`) of the daemon that claimed the job to plot it, kept after
-- the plot ends: a job PAUSED on a daemon resumes there only (its paper is on that daemon's
-- plotter). `submitted_by`: the daemon the job was submitted to. `job_sources`: the SVG of a job,
-- so that any daemon sharing the database can plot it (PostgreSQL; a SQLite database has one
-- daemon, which reads its own workspace copy). `daemons`: see below.

ALTER TABLE jobs ADD COLUMN daemon TEXT;
ALTER TABLE jobs ADD COLUMN submitted_by TEXT;

CREATE TABLE job_sources (
    job_id      TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    svg         BLOB NOT NULL
);

-- The daemons sharing the database, by name: a daemon refuses to start under the name of another
-- that is alive (another host or workspace, heartbeat within its lease), since it would take
-- that daemon's leases and pause its plots as its own.
CREATE TABLE daemons (
    name            TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    heartbeat_ms    INTEGER NOT NULL
);
