//! `plotty-fw-sim`: serve the simulated EBB on a pseudo-terminal.

fn main() {}
