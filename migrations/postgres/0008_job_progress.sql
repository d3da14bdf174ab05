-- plotty schema 8, PostgreSQL dialect (twin of ../0008_job_progress.sql): the latest progress of
-- each running job as its daemon last relayed it, for a daemon catching up after its listening
-- connection was lost. See the SQLite file.

CREATE TABLE job_progress (
    job_id      TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    daemon      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
