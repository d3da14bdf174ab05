//! Links plotty-motion into a `no_std` staticlib without an allocator; see Cargo.toml.
#![no_std]

use core::panic::PanicInfo;

use plotty_motion::ebb::{
    Command, EncodeOptions, FirmwareVersion, LineBuffer, Reply, ReplyMode, ReplyParser,
    StepperMove, limits,
};
use plotty_motion::kinematics::{Kinematics, Point, Resolution};

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}

/// Exercises the crate's layers so their code is linked, not just type-checked: kinematics, the
/// command encoder, the line buffer and the reply parser.
#[unsafe(no_mangle)]
pub extern "C" fn plotty_nostd_check(x_mm: f64, y_mm: f64) -> i32 {
    let k = Kinematics::new(Resolution::High);
    let m = k.to_motor(Point::new(x_mm, y_mm));

    // Encode the move as an SM command (checksum mode, so the whole encoder path is linked).
    let command = Command::StepperMove(StepperMove {
        duration_ms: 500,
        steps: [m.m1, m.m2],
        clear: None,
    });
    let options = EncodeOptions::new(FirmwareVersion::LATEST).with_checksum(true);
    let mut out = [0u8; limits::MAX_ENCODED_LEN + 8];
    let written = match command.encode_with(&options, &mut out) {
        Ok(n) => n as i32,
        Err(_) => -1,
    };

    // Parse a legacy QS reply spanning two lines.
    let mut lines = LineBuffer::<{ limits::REPLY_LINE_CAPACITY }>::new();
    let mut parser = ReplyParser::new(ReplyMode::Legacy);
    let _ = parser.begin(Command::QuerySteps.reply_kind());
    let mut rest: &[u8] = b"10,-4\n\rOK\r\n";
    let mut position = 0;
    while !rest.is_empty() {
        let (tail, line) = lines.push(rest);
        rest = tail;
        let reply = match line {
            Some(Ok(line)) => parser.push_line(line),
            Some(Err(e)) => parser.push_line_error(e),
            None => None,
        };
        if let Some(Ok(Reply::Steps { m1, m2 })) = reply {
            position = m1.wrapping_add(m2);
        }
    }
    written.wrapping_add(position)
}
