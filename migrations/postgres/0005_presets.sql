-- plotty schema 5, PostgreSQL dialect (twin of ../0005_presets.sql): presets, named sets of
-- per-job plot options. See the SQLite file for the meaning of the columns.

CREATE TABLE presets (
    name         TEXT PRIMARY KEY NOT NULL,
    options_json TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
