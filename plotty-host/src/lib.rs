//! # plotty-host
//!
//! The `plotty` command and daemon: SVG import and optimisation, plotting on an AxiDraw or the
//! built-in simulator, the SQLite job queue, and the WebSocket/HTTP API.

pub mod check;
pub mod events;
pub mod hooks;
pub mod job;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod settings;
pub mod store;
pub mod timestamp;
