//! The core RAM budget of DESIGN.md: everything a microcontroller build holds to plot — the
//! driver (session and its feed state), the path feed (pipeline: planner + step generator) and a
//! 64-block planner window — within 20 KiB.

use crate::driver::Driver;
use crate::pipeline::{PathFeed, Pipeline};
use crate::plan::{PathItem, Planner, PlannerSlot};
use crate::session::Session;
use crate::step::StepGenerator;

/// DESIGN.md's core RAM budget, bytes.
const BUDGET: usize = 20 * 1024;

#[test]
fn driver_pipeline_and_a_64_block_window_fit_the_budget() {
    // A port and a clock of no size, and a path iterator of no size: what is left is the core's.
    let driver = core::mem::size_of::<Driver<(), ()>>();
    let feed = core::mem::size_of::<PathFeed<'static, core::iter::Empty<PathItem>>>();
    let window = 64 * core::mem::size_of::<PlannerSlot>();
    let total = driver + feed + window;
    std::eprintln!(
        "Driver {driver} B (Session {} B) + PathFeed {feed} B (Pipeline {} B: Planner {} B, \
         StepGenerator {} B) + 64 × PlannerSlot {window} B = {total} B of {BUDGET} B",
        core::mem::size_of::<Session>(),
        core::mem::size_of::<Pipeline<'static>>(),
        core::mem::size_of::<Planner<'static>>(),
        core::mem::size_of::<StepGenerator>(),
    );
    // Each part is held in full: nothing shares storage with anything else.
    assert!(driver >= core::mem::size_of::<Session>());
    assert!(feed >= core::mem::size_of::<Pipeline<'static>>());
    assert!(
        core::mem::size_of::<Pipeline<'static>>()
            >= core::mem::size_of::<Planner<'static>>() + core::mem::size_of::<StepGenerator>()
    );
    assert!(total <= BUDGET, "{total} bytes");
}
