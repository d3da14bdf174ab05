//! Links plotty-motion into a `no_std` staticlib without an allocator; see Cargo.toml.
#![no_std]

use core::panic::PanicInfo;

mod session;

use plotty_motion::ebb::{
    Command, EncodeOptions, FirmwareVersion, LineBuffer, Reply, ReplyMode, ReplyParser,
    StepperMove, limits,
};
use plotty_motion::kinematics::{AxiDrawSettings, Kinematics, Point, Resolution};
use plotty_motion::plan::{
    Action, Block, PathItem, Pen, PlannedItem, Planner, PlannerConfig, PlannerSlot, Tag,
};
use plotty_motion::step::{FirmwareLine, StepConfig, StepGenerator};

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}

/// Exercises the crate's layers so their code is linked, not just type-checked: kinematics, the
/// command encoder, the line buffer, the reply parser, and a planner on a stack-array window.
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
    written
        .wrapping_add(position)
        .wrapping_add(planned_square_ms(x_mm, y_mm))
}

/// Plans a 10 mm square at (`x_mm`, `y_mm`) through an 8-slot window; the plot time in ms, or
/// -1 if the planner refused something.
fn planned_square_ms(x_mm: f64, y_mm: f64) -> i32 {
    let Ok(config) = PlannerConfig::axidraw(&AxiDrawSettings::default()) else {
        return -1;
    };
    let mut window = [PlannerSlot::EMPTY; 8];
    let Ok(mut planner) = Planner::new(config, Point::ORIGIN, &mut window) else {
        return -1;
    };
    let corners = [
        (0.0, 0.0),
        (10.0, 0.0),
        (10.0, 10.0),
        (0.0, 10.0),
        (0.0, 0.0),
    ];
    let mut items = [PathItem::Action(Action::PenUp); 7];
    for (i, &(dx, dy)) in corners.iter().enumerate() {
        items[i + usize::from(i > 0)] = PathItem::Segment {
            to: Point::new(x_mm + dx, y_mm + dy),
            pen: if i == 0 { Pen::Up } else { Pen::Down },
            tag: Tag {
                stroke: 0,
                vertex: i as u32,
            },
        };
    }
    items[1] = PathItem::Action(Action::PenDown);
    let mut seconds = 0.0;
    for item in items {
        if planner.push(item).is_err() {
            return -1;
        }
        while let Some(planned) = planner.pop() {
            if let PlannedItem::Block(b) = planned {
                seconds += b.duration_s();
            }
        }
    }
    planner.finish();
    while let Some(planned) = planner.pop() {
        if let PlannedItem::Block(b) = planned {
            seconds += b.duration_s();
        }
    }
    (seconds * 1000.0) as i32
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
