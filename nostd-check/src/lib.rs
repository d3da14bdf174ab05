//! Links plotty-motion into a `no_std` staticlib without an allocator; see Cargo.toml.
#![no_std]

use core::panic::PanicInfo;

use plotty_motion::kinematics::{Kinematics, Point, Resolution};
use plotty_motion::plan::{Block, Pen, Tag};
use plotty_motion::step::{FirmwareLine, StepConfig, StepGenerator};

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}

/// Exercises the crate's layers so their code is linked, not just type-checked.
#[unsafe(no_mangle)]
pub extern "C" fn plotty_nostd_check(x_mm: f64, y_mm: f64) -> i32 {
    let k = Kinematics::new(Resolution::High);
    let m = k.to_motor(Point::new(x_mm, y_mm));
    m.m1.wrapping_add(m.m2)
}

/// Pushes one block (a 50 mm/s trapezoid from home, at least 2.5 mm long) through a step
/// generator and returns its total ticks, or -1 if refused.
#[unsafe(no_mangle)]
pub extern "C" fn plotty_nostd_step(x_mm: f64, y_mm: f64, firmware_major: u32) -> i64 {
    let k = Kinematics::new(Resolution::High);
    let Some(line) = FirmwareLine::from_version(firmware_major, 8, 1) else {
        return -1;
    };
    let mut generator = StepGenerator::new(StepConfig::preferred(line, k));
    let end = Point::new(x_mm, y_mm);
    let length_mm = Point::ORIGIN.distance_to(end);
    let block = Block {
        start: Point::ORIGIN,
        end,
        pen: Pen::Down,
        tag: Tag::default(),
        length_mm,
        entry_mm_s: 0.0,
        cruise_mm_s: 50.0,
        exit_mm_s: 0.0,
        accel_mm_s2: 1000.0,
    };
    if generator.push(&block).is_err() {
        return -1;
    }
    generator.finish();
    let mut ticks = 0i64;
    while let Some(m) = generator.pop() {
        ticks += i64::from(m.ticks);
    }
    ticks
}
