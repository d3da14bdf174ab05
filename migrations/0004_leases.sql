-- plotty schema 4: the lease by which a daemon holds the job it claimed (several daemons on one
-- queue, issue 15). A daemon claims the head READY job (READY → ARMED), writes its name in
-- `lease_owner` and renews `lease_expires_ms` (milliseconds since the Unix epoch) while it works
-- on the job. A daemon that dies stops renewing: once the lease has expired, any daemon records
-- the job PAUSED (interrupted) and clears the lease. The job is never given to another plotter
-- on its own: its paper lies on the dead daemon's plotter.

ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER;

CREATE INDEX jobs_by_lease_expiry ON jobs (lease_expires_ms) WHERE lease_owner IS NOT NULL;
