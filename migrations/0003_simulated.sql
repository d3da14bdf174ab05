-- plotty schema 3: whether a job was plotted on the simulator. A job COMPLETED there drew
-- nothing on paper; `device.type: auto` runs jobs on the simulator while no AxiDraw is plugged
-- in, and its record must never pass for a drawn plot.

ALTER TABLE jobs ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1));
