-- plotty schema 5: presets, named sets of per-job plot options (pen heights, speeds,
-- acceleration, model, reordering) that the web UI offers when a drawing is uploaded. They live in
-- the store so that every browser, and every daemon sharing a PostgreSQL queue, sees the same
-- ones. `options_json` is a JSON object of the options in axicli's names (what a job keeps in
-- `metadata.options`), checked by the config file's range rules before it is written.

CREATE TABLE presets (
    name         TEXT PRIMARY KEY NOT NULL,
    options_json TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
