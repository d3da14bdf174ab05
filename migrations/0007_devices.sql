-- plotty schema 7: several plotters per daemon (issue 15).
--
-- `device`: the plotter (its configured name, else its device id) the job was last armed on,
-- kept after the plot: a PAUSED job keeps that plotter, and clients show where a job is drawn.
-- `req_device`, `req_model`, `req_tags`: what the job asks of the plotter that draws it (a
-- plotter by name, an AxiDraw model number, tags it must all have, as a JSON array of strings);
-- NULL asks nothing. The queue hands a job only to a plotter that meets all three.

ALTER TABLE jobs ADD COLUMN device TEXT;
ALTER TABLE jobs ADD COLUMN req_device TEXT;
ALTER TABLE jobs ADD COLUMN req_model INTEGER;
ALTER TABLE jobs ADD COLUMN req_tags TEXT;
