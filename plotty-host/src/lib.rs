//! # plotty-host
//!
//! The `plotty` command and daemon: SVG import and optimisation, plotting on an AxiDraw or the
//! built-in simulator, the SQLite job queue, and the WebSocket/HTTP API.
//!
//! ## Layout
//!
//! The modules follow the flow of the daemon (mini-redis style):
//!
//! - [`cli`]: the command line, as clap types only.
//! - [`settings`]: command line + environment + config file → a validated [`settings::Settings`];
//!   `plotty check config`, `plotty config init|show`.
//! - [`app`]: runs a parsed command line; `main` only prints and maps exit codes ([`exit`]).
//! - [`client`]: the client commands (`plotty add`, `jobs`, `status`, `monitor`, …) over the API.
//! - [`daemon`]: the process lifecycle: start-up steps, PID file, `--daemonize`, privilege drop,
//!   sd_notify, signals, ordered shutdown ([`shutdown`]), and the [`daemon::Component`] extension
//!   points of steps 3–6.
//! - [`store`]: SQLite on its own thread behind a typed async API, embedded migrations,
//!   `plotty check database`.
//! - [`job`]: job states and the one transition function; [`journal`]: the per-job JSONL journal;
//!   [`ledger`]: records changes in order (SQLite, journal, broadcast, hooks); [`events`]: the bus.
//! - [`queue`]: the job queue actor and its command interface; the device control interface.
//! - [`api`]: the WebSocket + HTTP API on one port (`/ws`, `/status`, `/api/…`, the web UI).
//! - [`farm`]: several daemons on one PostgreSQL queue: job SVGs through the database, events
//!   relayed between daemons (`LISTEN`/`NOTIFY`).
//! - [`hooks`]: commands, scripts and webhooks run on state changes.
//! - [`logging`]: stderr, size-rotated log file, audit log.
//! - [`devices`]: the plotters: finding each (USB id, `--device`), the links to it (serial
//!   port, in-process simulator), the device task that drives it and is the queue's device
//!   control, and `plotty check device`.
//! - [`import`]: SVG → layers of polylines in mm (usvg, layer control, clipping to the travel);
//!   [`optimize`]: joins, orders and merges strokes to cut pen-up travel; [`preview`]: renders a
//!   drawing or a trace to SVG/PNG; [`deviation`]: how far a trace strays from its plan;
//!   [`paper`]: the sheet checked against the drawing and the travel (one rule for `plot`,
//!   submission and analysis).
//! - [`plot`]: the SVG-to-paper pipeline: the plot program, its estimate, and the runner that
//!   drives a device through the protocol session (run by a device task, or by `plotty plot`).
//! - [`manual_pages`]: `plotty completions` and `plotty man`, generated from [`cli`].

pub mod api;
pub mod app;
pub mod check;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod deviation;
pub mod devices;
pub mod events;
pub mod exit;
pub mod farm;
pub mod hooks;
pub mod import;
pub mod job;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod manual_pages;
pub mod optimize;
pub mod paper;
pub mod plot;
pub mod preview;
pub mod queue;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod testing;
pub mod timestamp;
pub mod wording;
