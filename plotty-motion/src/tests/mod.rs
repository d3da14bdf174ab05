//! Crate-private scenario suites (quinn's `src/tests/` layout): the session against a fake
//! board in virtual time.

mod budget;
pub(crate) mod fake;
mod session_connect;
mod session_faults;
mod session_feed;
mod session_stop;
pub(crate) mod util;
