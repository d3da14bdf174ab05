//! Links plotty-motion into a `no_std` staticlib without an allocator; see Cargo.toml.
#![no_std]

use core::panic::PanicInfo;

use plotty_motion::kinematics::{Kinematics, Point, Resolution};

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
