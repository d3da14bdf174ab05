-- plotty schema 3, PostgreSQL dialect (twin of ../0003_simulated.sql): whether a job was plotted
-- on the simulator.

ALTER TABLE jobs ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
