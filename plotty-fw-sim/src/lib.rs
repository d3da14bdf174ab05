//! # plotty-fw-sim
//!
//! A second, independent implementation of the EiBotBoard (EBB) firmware, written from the
//! firmware reference rather than from plotty-motion's encoder, so a shared mistake cannot
//! round-trip unnoticed. It answers what a real board answers and moves as it moves, tick by tick
//! at 25 kHz, under a simulated clock only.
#![forbid(unsafe_code)]

mod commands;
mod fifo;
mod firmware;
mod isr;
mod motion;
mod observer;
mod parser;
mod reply;
mod servo;
mod status;
mod version;

pub mod board;
mod counters;
pub mod fault;
pub mod port;
pub mod pty;
pub mod render;
pub mod runner;
mod sim_observer;
mod simplify;
pub mod stats;
pub mod trace;

pub use firmware::Firmware;
pub use observer::{CommandKind, NoObserver, Observer};
pub use port::{PortError, VirtualPort};
pub use sim_observer::SimObserver;
pub use status::{ReplyMode, Status};
pub use version::{FirmwareVersion, ParseVersionError};
