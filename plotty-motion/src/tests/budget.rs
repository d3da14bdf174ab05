//! The core RAM budget of DESIGN.md: session + planner with a 64-block window ≤ 16 KiB.

use crate::pipeline::Pipeline;
use crate::plan::{Planner, PlannerSlot};
use crate::session::Session;
use crate::step::StepGenerator;

#[test]
fn session_and_planner_with_a_64_block_window_fit_in_16_kib() {
    let session = core::mem::size_of::<Session>();
    let planner = core::mem::size_of::<Planner<'static>>();
    let window = 64 * core::mem::size_of::<PlannerSlot>();
    let total = session + planner + window;
    std::eprintln!(
        "Session {session} B + Planner {planner} B + 64 × PlannerSlot {window} B = {total} B \
         (StepGenerator {} B, Pipeline {} B)",
        core::mem::size_of::<StepGenerator>(),
        core::mem::size_of::<Pipeline<'static>>(),
    );
    assert!(total <= 16 * 1024, "{total} bytes");
}
