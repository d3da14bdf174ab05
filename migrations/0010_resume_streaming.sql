-- plotty schema 10: whether a job's resume point was stored while a run streamed along the
-- program past it. Only then may a resume after a crash or a lost link look along the path ahead
-- for where the board stopped; a point stored by a clean stop (pause, shutdown park, pen change),
-- or before a manual device action or a resume moved the carriage, says nothing of where the
-- carriage is, and a match there would skip lines. Rows from before are not searched (0).

ALTER TABLE jobs ADD COLUMN resume_streaming INTEGER NOT NULL DEFAULT 0 CHECK (resume_streaming IN (0, 1));
