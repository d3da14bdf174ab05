-- plotty schema 1: jobs and their layers and events, devices, pens, papers, statistics.
-- Applied in one transaction by plotty-host's migrator, which then records version 1 in
-- `schema_migrations` and `PRAGMA user_version`. Times are RFC 3339 UTC text ("…Z"), which sorts
-- in time order. Forward-only: later changes go in new numbered files.

-- Marks the file as a plotty database ('PLTY'), so plotty never mistakes another program's file for
-- its own.
PRAGMA application_id = 1347179609;

CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);

CREATE TABLE papers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    width_mm    REAL NOT NULL CHECK (width_mm > 0),
    height_mm   REAL NOT NULL CHECK (height_mm > 0),
    margin_mm   REAL NOT NULL DEFAULT 0 CHECK (margin_mm >= 0),
    orientation TEXT NOT NULL DEFAULT 'portrait' CHECK (orientation IN ('portrait', 'landscape'))
);

CREATE TABLE pens (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    width_mm        REAL CHECK (width_mm IS NULL OR width_mm > 0),
    color           TEXT,
    speed_cap_mm_s  REAL CHECK (speed_cap_mm_s IS NULL OR speed_cap_mm_s > 0),
    pressure        INTEGER,
    passes          INTEGER NOT NULL DEFAULT 1 CHECK (passes >= 1)
);

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('axidraw', 'simulator')),
    name            TEXT,
    port            TEXT,
    serial_number   TEXT,
    firmware        TEXT,
    model           INTEGER CHECK (model IS NULL OR model BETWEEN 1 AND 7),
    settings_json   TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_seen_at    TEXT
);

CREATE TABLE jobs (
    -- Submission order: the queue's tie-breaker after priority, immune to clock changes.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('NEW', 'QUEUED', 'ANALYZED', 'OPTIMIZED',
                        'READY', 'ARMED', 'PLOTTING', 'PAUSED', 'COMPLETED', 'ABORTED', 'FAILED')),
    -- Higher runs first.
    priority        INTEGER NOT NULL DEFAULT 0,
    source_path     TEXT,
    paper_id        INTEGER REFERENCES papers (id) ON DELETE SET NULL,
    device_id       INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- Reason of the last transition and, for FAILED jobs, the error that ended them.
    state_reason    TEXT,
    error           TEXT,
    -- The job this one retries.
    retry_of        TEXT REFERENCES jobs (id) ON DELETE SET NULL,
    -- Resume point: the last point known to be drawn.
    resume_layer    INTEGER,
    resume_stroke   INTEGER,
    resume_vertex   INTEGER,
    resume_motor1   INTEGER,
    resume_motor2   INTEGER,
    resume_x_mm     REAL,
    resume_y_mm     REAL,
    resume_at       TEXT,
    -- Sizes and estimates once known.
    total_layers    INTEGER,
    total_strokes   INTEGER,
    total_points    INTEGER,
    pen_down_mm     REAL,
    pen_up_mm       REAL,
    estimate_pre_s  REAL,
    estimate_post_s REAL,
    started_at      TEXT,
    finished_at     TEXT,
    metadata_json   TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX jobs_by_queue_order ON jobs (state, priority DESC, seq);

CREATE TABLE layers (
    job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    layer_index     INTEGER NOT NULL CHECK (layer_index >= 0),
    name            TEXT NOT NULL,
    -- The number given in the layer name (AxiDraw layer control), if any.
    layer_number    INTEGER,
    color           TEXT,
    pen_id          INTEGER REFERENCES pens (id) ON DELETE SET NULL,
    pause_before    INTEGER NOT NULL DEFAULT 0 CHECK (pause_before IN (0, 1)),
    speed_pct       REAL,
    height_pct      REAL,
    delay_after_ms  INTEGER,
    strokes         INTEGER,
    points          INTEGER,
    pen_down_mm     REAL,
    estimate_s      REAL,
    actual_s        REAL,
    completed_at    TEXT,
    PRIMARY KEY (job_id, layer_index)
);

-- Append-only history of every job: the same facts as each job's journal.jsonl.
CREATE TABLE job_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    type            TEXT NOT NULL CHECK (type IN ('state_change', 'hooks_executed',
                        'progress_checkpoint', 'device_error', 'recovery')),
    from_state      TEXT,
    to_state        TEXT,
    reason          TEXT,
    metadata_json   TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);

CREATE TRIGGER job_events_append_only BEFORE UPDATE ON job_events
BEGIN
    SELECT RAISE(ABORT, 'job_events is append-only');
END;

CREATE TABLE job_statistics (
    id                  INTEGER PRIMARY KEY,
    job_id              TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    device_id           INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    recorded_at         TEXT NOT NULL,
    duration_s          REAL,
    pen_changes         INTEGER NOT NULL DEFAULT 0,
    pen_down_mm         REAL NOT NULL DEFAULT 0,
    pen_up_mm           REAL NOT NULL DEFAULT 0,
    pen_down_time_s     REAL NOT NULL DEFAULT 0,
    pen_up_time_s       REAL NOT NULL DEFAULT 0,
    layers_completed    INTEGER NOT NULL DEFAULT 0,
    total_layers        INTEGER NOT NULL DEFAULT 0,
    estimate_s          REAL,
    metadata_json       TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX job_statistics_by_job ON job_statistics (job_id);
