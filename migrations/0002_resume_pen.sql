-- plotty schema 2: the pen state of a job's resume point. A checkpoint names the motion to
-- continue with and whether it draws; without it a resumed plot could not tell a stroke in
-- flight (lower the pen and finish it) from the travel to one.

ALTER TABLE jobs ADD COLUMN resume_pen_down INTEGER CHECK (resume_pen_down IS NULL OR resume_pen_down IN (0, 1));
