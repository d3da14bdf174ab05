//! Several daemons on one PostgreSQL job queue (issue 15): what they need of each other beyond
//! the store's claims and leases (`store::postgres`, [`crate::ledger`]).
//!
//! - [`source`]: a job's SVG is stored in the database at submission, and a daemon plotting a
//!   job submitted to another daemon writes it into its own workspace first.
//! - [`relay`]: the events of every daemon reach every daemon's WebSocket clients through
//!   PostgreSQL's `LISTEN`/`NOTIFY`, marked with the daemon they come from.
//! - [`catchup`]: what the clients missed while the listening connection was down, published
//!   from the database once it is back.
//!
//! On SQLite none of this runs: one daemon per database (the workspace lock keeps a second
//! off), which reads its own workspace.

pub mod catchup;
pub mod relay;
pub mod source;

#[cfg(test)]
mod tests;
