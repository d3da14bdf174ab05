-- plotty schema 6, PostgreSQL dialect (twin of ../0006_farm.sql): the daemon that plots a job,
-- the daemon it was submitted to, and the job's SVG readable by every daemon. See the SQLite
-- file for the meaning of the columns and for the gap in the numbers.

ALTER TABLE jobs ADD COLUMN daemon TEXT;
ALTER TABLE jobs ADD COLUMN submitted_by TEXT;

CREATE TABLE job_sources (
    job_id      TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    svg         BYTEA NOT NULL
);

-- The daemons sharing the database, by name: a daemon refuses to start under the name of another
-- that is alive (another host or workspace, heartbeat within its lease), since it would take
-- that daemon's leases and pause its plots as its own.
CREATE TABLE daemons (
    name            TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    pid             BIGINT NOT NULL,
    started_at      TEXT NOT NULL,
    heartbeat_ms    BIGINT NOT NULL
);
