-- plotty schema 7, PostgreSQL dialect (twin of ../0007_devices.sql): the plotter a job was
-- armed on and what the job asks of its plotter. See the SQLite file for the meaning.

ALTER TABLE jobs ADD COLUMN device TEXT;
ALTER TABLE jobs ADD COLUMN req_device TEXT;
ALTER TABLE jobs ADD COLUMN req_model INTEGER;
ALTER TABLE jobs ADD COLUMN req_tags TEXT;
