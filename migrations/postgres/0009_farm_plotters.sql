-- plotty schema 9: the plotters of each live daemon sharing the database (issue 15). A daemon
-- records its plotters (name, model, tags, and whether the name was configured) as a JSON list
-- when it registers; a named plotter is then unique across the farm (a daemon whose plotter name
-- a live daemon holds is refused at start), and a submission asking for a plotter or tags that no
-- plotter of the farm meets is refused with the farm's list. Expired daemons' rows are ignored,
-- so their names are free again. With SQLite (one daemon per database) the column stays unused.

ALTER TABLE daemons ADD COLUMN plotters TEXT NOT NULL DEFAULT '[]';
