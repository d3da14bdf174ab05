//! Replays every committed corpus file through its target's entry point on stable Rust.
