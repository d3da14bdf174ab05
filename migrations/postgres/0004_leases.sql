-- plotty schema 4, PostgreSQL dialect (twin of ../0004_leases.sql): the lease by which a daemon
-- holds the job it claimed. See the SQLite file for the meaning of the columns.

ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_ms BIGINT;

CREATE INDEX jobs_by_lease_expiry ON jobs (lease_expires_ms) WHERE lease_owner IS NOT NULL;
