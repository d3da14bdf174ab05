-- plotty schema 8: the latest progress of each running job, as its daemon last sent it to the
-- other daemons (issue 15). A daemon whose connection listening for the other daemons' events
-- was lost catches up from here (and from `job_events`) when it reconnects, so its WebSocket
-- clients see the progress they missed. `payload` is the relay's notification text (see
-- plotty-host/src/farm/relay.rs). Number 7 is left to a change developed side by side; the
-- migrator applies every migration a database has not recorded, gaps allowed.

CREATE TABLE job_progress (
    job_id      TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    daemon      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
