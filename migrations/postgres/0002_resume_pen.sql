-- plotty schema 2, PostgreSQL dialect (twin of ../0002_resume_pen.sql): the pen state of a job's
-- resume point.

ALTER TABLE jobs ADD COLUMN resume_pen_down INTEGER CHECK (resume_pen_down IS NULL OR resume_pen_down IN (0, 1));
