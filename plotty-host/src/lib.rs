//! # plotty-host
//!
//! The `plotty` command and daemon: SVG import and optimisation, plotting on an AxiDraw or the
//! built-in simulator, the SQLite job queue, and the WebSocket/HTTP API.

pub mod import;
pub mod optimize;
pub mod preview;
