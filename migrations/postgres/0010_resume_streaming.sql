-- plotty schema 10, PostgreSQL dialect (twin of ../0010_resume_streaming.sql): whether a job's
-- resume point was stored while a run streamed along the program past it.

ALTER TABLE jobs ADD COLUMN resume_streaming INTEGER NOT NULL DEFAULT 0 CHECK (resume_streaming IN (0, 1));
