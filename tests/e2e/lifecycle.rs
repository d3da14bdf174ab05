//! "Every job is drawn exactly once", checked on what the simulated pen drew.
//!
//! Seeded runs of the plot runner (`plotty_host::plot::runner`, the loop the daemon's device task
//! and `plotty plot` run) on the firmware simulator, interrupted at seeded moments by what users
//! and machines do, each followed by what the daemon then does:
//!
//! - **pause** then resume (in the same run);
//! - **pause, move the machine** (the paused run gives the machine up, `device home`), resume
//!   in a new run from the stored checkpoint;
//! - **shutdown** (the stroke in flight is finished, pen up, park) and a restart that resumes;
//! - **abort** and a retry on a new sheet of paper (from the beginning);
//! - **kill -9** of the host: the link dies at once, the board runs what its FIFO holds and keeps
//!   its position, the restarted host resumes where the board stopped, found along the path
//!   from the last checkpoint the daemon stored when the run streamed past it (`Plot::ran_on`;
//!   else from that checkpoint);
//! - **link failure** (a USB hiccup): the same, from the checkpoint the error carries;
//! - **board power cycle**: a fresh board (the user pushed the carriage home), which the resume
//!   must refuse until `device home`.
//!
//! At the end the strokes of every board (of the last sheet) are compared with the drawing's own
//! geometry, known independently of the importer: every segment of the drawing is covered,
//! nothing outside the drawing is drawn, nothing is drawn twice (beyond the strokes in flight at
//! a crash whose resume could not tell where the pen stopped: after a power cycle), the carriage never left the machine's travel, the plot completed at home, and the
//! drawn distance the runs reported adds up to what the trace shows.
//!
//! `PLOTTY_CHAOS_SEEDS=N` runs N seeds (default 24: about 5 s in a debug build).

// Test code: a failed expectation is a failed test (HELPERS.md: tests may unwrap).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_host::devices::link::sim::SimLink;
use plotty_host::devices::link::{DeviceError, Link};
use plotty_host::import::Point;
use plotty_host::plot::locate::Located;
use plotty_host::plot::prepare::{self, Prepared};
use plotty_host::plot::runner::{
    self, Control, Manual, Outcome, PauseCause, Plot, RunError, RunEvent,
};
use plotty_host::plot::{Checkpoint, PlotConfig, Start};
use plotty_host::preview;
use plotty_host::settings::Settings;
use plotty_motion::time::{Duration, Instant};

/// Largest distance between the trace and the drawing, both ways: the trace is recorded within
/// one step (0.0125 mm) of the carriage's path, positions are whole steps, and merged moves cut
/// corners by at most a few hundredths of a millimetre.
const TOLERANCE_MM: f64 = 0.05;

/// The drawing: polylines in mm, written to an SVG in mm, so the geometry is known exactly.
fn drawing() -> Vec<Vec<Point>> {
    let mut out = Vec::new();
    // Zig-zags of different lengths (many strokes: many stroke ends to stop at).
    for i in 0..8 {
        let y = 15.0 + 12.0 * f64::from(i);
        let n = 3 + (i % 4);
        let mut line = Vec::new();
        for k in 0..=n * 2 {
            let x = 20.0 + 9.0 * f64::from(k);
            let dy = if k % 2 == 0 { 0.0 } else { 5.0 };
            line.push(Point::new(x, y + dy));
        }
        out.push(line);
    }
    // A long smooth stroke (a spiral of 3 turns): a stroke in flight for seconds.
    let mut spiral = Vec::new();
    for k in 0..=360 {
        let t = f64::from(k) / 360.0 * 3.0 * std::f64::consts::TAU;
        let r = 6.0 + 7.0 * t / std::f64::consts::TAU;
        spiral.push(Point::new(215.0 + r * t.cos(), 65.0 + r * t.sin()));
    }
    out.push(spiral);
    // A few short dashes.
    for i in 0..6 {
        let x = 30.0 + 20.0 * f64::from(i);
        out.push(vec![Point::new(x, 130.0), Point::new(x + 6.0, 136.0)]);
    }
    out
}

fn svg(polylines: &[Vec<Point>]) -> String {
    let mut body = String::new();
    for line in polylines {
        let points: Vec<String> = line
            .iter()
            .map(|p| format!("{},{}", p.x_mm, p.y_mm))
            .collect();
        body.push_str(&format!(
            "<polyline points=\"{}\" stroke=\"black\" fill=\"none\"/>\n",
            points.join(" ")
        ));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"297mm\" height=\"210mm\" \
         viewBox=\"0 0 297 210\">\n{body}</svg>\n"
    )
}

fn length(polylines: &[Vec<Point>]) -> f64 {
    polylines
        .iter()
        .map(|l| l.windows(2).map(|w| w[0].distance_to(w[1])).sum::<f64>())
        .sum()
}

/// SplitMix64: a seeded sequence, enough for picking events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What happens to a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Chaos {
    Pause,
    PauseAndHome,
    Shutdown,
    AbortAndRetry,
    Kill,
    LinkFailure,
    PowerCycle,
}

const KINDS: [Chaos; 7] = [
    Chaos::Pause,
    Chaos::PauseAndHome,
    Chaos::Shutdown,
    Chaos::AbortAndRetry,
    Chaos::Kill,
    Chaos::LinkFailure,
    Chaos::PowerCycle,
];

/// The simulator behind a link the host can lose at once (a crash, an unplugged cable): the
/// board itself is not touched.
struct Board {
    sim: SimLink,
    dead: Rc<Cell<bool>>,
}

impl Board {
    fn check(&self) -> Result<(), DeviceError> {
        if self.dead.get() {
            Err(DeviceError::Io {
                port: "the simulator".into(),
                detail: "the host lost the link".into(),
            })
        } else {
            Ok(())
        }
    }
}

impl Link for Board {
    fn name(&self) -> &str {
        self.sim.name()
    }
    fn now(&mut self) -> Instant {
        self.sim.now()
    }
    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        self.check()?;
        self.sim.write(bytes)
    }
    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        self.check()?;
        self.sim.read(out)
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        self.check()?;
        self.sim.wait(deadline)
    }
    fn is_simulated(&self) -> bool {
        true
    }
}

/// One seed's story, for the failure message.
#[derive(Default)]
struct Story {
    lines: Vec<String>,
}

impl Story {
    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
    fn text(&self) -> String {
        self.lines.join("\n  ")
    }
}

/// What the chaos run left: traces of every board of the last sheet, and figures.
struct Outcomes {
    strokes: Vec<Vec<Point>>,
    travel: Vec<Vec<Point>>,
    /// Extra drawing a crash may cause (the strokes in flight), mm.
    allowed_excess_mm: f64,
    /// Drawn distance the last run reported (the whole job's), mm.
    reported_mm: f64,
    events: Vec<Chaos>,
}

/// A board's pen-down strokes and pen-up travel.
type Traced = (Vec<Vec<Point>>, Vec<Vec<Point>>);

fn trace_of(sim: &SimLink, from_stroke: usize) -> Traced {
    let t = sim.trace();
    let convert = |l: &Vec<plotty_fw_sim::trace::PointMm>| {
        l.iter().map(|p| Point::new(p.x, p.y)).collect::<Vec<_>>()
    };
    assert!(!t.truncated);
    (
        t.strokes.iter().skip(from_stroke).map(convert).collect(),
        t.travel.iter().map(convert).collect(),
    )
}

/// The length left of the stroke a checkpoint is in, from its position, plus the whole next
/// stroke: what a board can draw between the last stored checkpoint and a crash (the runner
/// stores one at every stroke end and at least every second).
fn in_flight_mm(p: &Prepared, config: &PlotConfig, c: Option<&Checkpoint>) -> f64 {
    let program = &p.program;
    let (stroke, from) = match c {
        Some(c) => (
            c.stroke,
            config
                .kinematics()
                .to_point(plotty_motion::kinematics::MotorSteps::new(
                    c.position[0],
                    c.position[1],
                )),
        ),
        None => (0, Point::ORIGIN),
    };
    let rest = program.stroke(stroke).map_or(0.0, |s| {
        let v = c.map_or(0, |c| c.vertex.min(u32::try_from(s.len()).unwrap_or(0)));
        let v = usize::try_from(v).unwrap_or(0).clamp(1, s.len().max(1));
        let mut len = s.get(v).map_or(0.0, |q| from.distance_to(*q));
        len += s
            .get(v..)
            .map_or(0.0, |t| t.windows(2).map(|w| w[0].distance_to(w[1])).sum());
        len
    });
    let next = program
        .stroke(stroke + 1)
        .map_or(0.0, |s| s.windows(2).map(|w| w[0].distance_to(w[1])).sum());
    rest + next
}

fn chaos_run(seed: u64, p: &Prepared, config: &PlotConfig, story: &mut Story) -> Outcomes {
    let mut rng = Rng(seed);
    let session = runner::session_config(config, std::time::Duration::from_secs(5));
    let dead = Rc::new(Cell::new(false));
    // Every third seed on firmware 2.8.1 (no accumulator read-back, one command at a time).
    let version = if seed % 3 == 2 {
        SimVersion::V2_8_1
    } else {
        SimVersion::V3_0_3
    };
    story.say(format!("firmware {version}"));
    let mut board = Board {
        sim: SimLink::new(version),
        dead: Rc::clone(&dead),
    };
    // Traces of boards replaced by a power cycle (same sheet), and where the sheet starts on the
    // current board (strokes before it were on an earlier sheet).
    let mut earlier: Vec<Traced> = Vec::new();
    let mut sheet_from = 0usize;
    let mut start = Start::Beginning;
    // The last run lost the board mid-plot (see `Plot::ran_on`).
    let mut ran_on = false;
    let mut allowed_excess_mm = 0.0;
    // What a crash may make the next run draw twice, until that run says where it resumed:
    // nothing if it found where the pen stopped, else the stroke in flight.
    let mut crash_excess_mm: Option<f64> = None;
    let mut events = Vec::new();
    // How far the plan had got when the last run ended (a resumed run goes on from there).
    let mut done_before = std::time::Duration::ZERO;
    let budget = 1 + rng.below(5);
    for round in 0.. {
        assert!(round < 40, "seed {seed}: no end after 40 runs");
        let chaos =
            (events.len() < budget as usize).then(|| KINDS[rng.below(KINDS.len() as u64) as usize]);
        // The n-th progress report of the run triggers it (runs report every 100 ms of plot).
        let trigger = 1 + rng.below(60);
        let (tx, rx) = mpsc::channel();
        let mut progress = 0u64;
        let mut fired = false;
        let mut last_checkpoint: Option<Checkpoint> = match start {
            Start::At(c) => Some(c),
            Start::Beginning => None,
        };
        // Whether the daemon would store the last checkpoint as searchable: only one the run
        // streamed past (a resume stores its start point as not searchable before it moves).
        let mut last_streaming = false;
        let mut first_done: Option<std::time::Duration> = None;
        let mut last_done = std::time::Duration::ZERO;
        let mut located: Option<Located> = None;
        let plot = Plot {
            program: &p.program,
            config,
            session,
            start,
            estimate: None,
            ran_on,
        };
        let flag = Rc::clone(&dead);
        let result = runner::run(&mut board, plot, &rx, &mut |e| match e {
            RunEvent::Progress(pr) => {
                let done = std::time::Duration::from_micros(pr.done.as_micros());
                first_done.get_or_insert(done);
                last_done = done;
                progress += 1;
                if !fired && progress == trigger {
                    fired = true;
                    match chaos {
                        Some(Chaos::Pause | Chaos::PauseAndHome) => {
                            tx.send(Control::Pause).unwrap();
                        }
                        Some(Chaos::Shutdown) => {
                            tx.send(Control::StopAfterStroke { park: true }).unwrap();
                        }
                        Some(Chaos::AbortAndRetry) => tx.send(Control::Abort).unwrap(),
                        Some(Chaos::Kill | Chaos::LinkFailure | Chaos::PowerCycle) => {
                            flag.set(true);
                        }
                        None => {}
                    }
                }
            }
            RunEvent::Checkpoint {
                checkpoint: c,
                streaming,
            } => {
                last_checkpoint = Some(c);
                last_streaming = streaming;
            }
            RunEvent::Paused { cause, checkpoint } => {
                last_checkpoint = Some(checkpoint);
                last_streaming = false;
                if cause == PauseCause::Requested {
                    let answer = if chaos == Some(Chaos::PauseAndHome) {
                        Control::Stop { park: false }
                    } else {
                        Control::Resume
                    };
                    tx.send(answer).unwrap();
                }
            }
            RunEvent::PenChange { .. } => tx.send(Control::Resume).unwrap(),
            RunEvent::Resuming {
                located: l,
                checkpoint,
                ..
            } => {
                // Stored at once, not searchable: the way back to it is not the program.
                located = Some(l);
                last_checkpoint = checkpoint.or(last_checkpoint);
                last_streaming = false;
            }
            _ => {}
        });
        let happened = if fired { chaos } else { None };
        if let Some(l) = located {
            story.say(format!("run {round}: resumed: {l:?}"));
        }
        // This run went on from a crash: back from the stored checkpoint unless it found where
        // the pen stopped.
        if let Some(excess) = crash_excess_mm.take()
            && !matches!(located, Some(Located::PenStopped(_)))
        {
            allowed_excess_mm += excess;
        }
        // Progress goes on from where it was (less what a crash makes redo: at most the
        // checkpoint interval and the motion queued ahead).
        if let (Start::At(_), Some(first)) = (start, first_done) {
            assert!(
                first + std::time::Duration::from_millis(1_500) >= done_before,
                "seed {seed}: progress went back from {done_before:?} to {first:?}\n  {}",
                story.text()
            );
        }
        done_before = last_done;
        if let Some(c) = happened {
            events.push(c);
        }
        match result {
            Ok(report) => {
                match report.outcome {
                    Outcome::Completed => {
                        story.say(format!(
                            "run {round}: completed at {:?} after {progress} reports, {:.2} mm \
                             drawn",
                            report.position, report.drawn_mm
                        ));
                        assert_eq!(
                            (report.position.m1, report.position.m2),
                            (0, 0),
                            "seed {seed}: not home at the end"
                        );
                        let (strokes, travel) = trace_of(&board.sim, sheet_from);
                        let mut all_strokes = strokes;
                        let mut all_travel = travel;
                        for (s, t) in earlier {
                            all_strokes.extend(s);
                            all_travel.extend(t);
                        }
                        return Outcomes {
                            strokes: all_strokes,
                            travel: all_travel,
                            // A crash the plot went on from without saying where (from the
                            // beginning) may have drawn its stroke in flight twice.
                            allowed_excess_mm: allowed_excess_mm + crash_excess_mm.unwrap_or(0.0),
                            reported_mm: report.drawn_mm,
                            events,
                        };
                    }
                    Outcome::Aborted => {
                        story.say(format!("run {round}: aborted; retry on a new sheet"));
                        assert_eq!(happened, Some(Chaos::AbortAndRetry));
                        earlier.clear();
                        sheet_from = board.sim.trace().strokes.len();
                        allowed_excess_mm = 0.0;
                        crash_excess_mm = None;
                        done_before = std::time::Duration::ZERO;
                        start = Start::Beginning;
                        ran_on = false;
                    }
                    Outcome::Stopped(c) => {
                        story.say(format!("run {round}: {happened:?}: stopped at {c:?}"));
                        if happened == Some(Chaos::Shutdown) {
                            // The stroke in flight was finished: the plot continues with the
                            // travel to the next stroke.
                            assert!(
                                !c.pen_down,
                                "seed {seed}: a shutdown stopped mid-stroke at {c:?}"
                            );
                        }
                        if happened == Some(Chaos::PauseAndHome) {
                            let homed = runner::manual(&mut board, config, session, Manual::Home)
                                .unwrap_or_else(|e| panic!("seed {seed}: home: {e}"));
                            story.say(format!("  device home: {}", homed.message));
                        }
                        start = Start::At(c);
                        ran_on = false;
                    }
                }
            }
            Err(e) => {
                let error_checkpoint = match &e {
                    RunError::Device { checkpoint, .. } => *checkpoint,
                    _ => None,
                };
                let resume_at = error_checkpoint.or(last_checkpoint);
                story.say(format!(
                    "run {round}: {happened:?} after {progress} reports: {e}; resume at \
                     {resume_at:?}"
                ));
                assert!(
                    matches!(
                        happened,
                        Some(Chaos::Kill | Chaos::LinkFailure | Chaos::PowerCycle)
                    ),
                    "seed {seed}: the run failed on its own: {e}\n  {}",
                    story.text()
                );
                // What the board drew after the last stored checkpoint is drawn again unless the
                // resume finds where the pen stopped: within the stroke in flight (and the
                // next), and at most what the pen covers in the checkpoint interval (1 s) plus
                // the motion queued ahead (≤ 0.3 s).
                crash_excess_mm = Some(
                    crash_excess_mm.unwrap_or(0.0)
                        + in_flight_mm(p, config, last_checkpoint.as_ref())
                            .min(config.motion.pen_down_speed_mm_s * 1.3),
                );
                // The host is gone; the board runs what its FIFO holds.
                board.sim.run_unattended(Duration::from_millis(3_000));
                dead.set(false);
                if happened == Some(Chaos::PowerCycle) {
                    // Power lost: a fresh board; the user pushed the carriage home.
                    earlier.push(trace_of(&board.sim, sheet_from));
                    sheet_from = 0;
                    board.sim = SimLink::new(version);
                    if let Some(c) = resume_at {
                        // The resume must refuse a board that lost its position.
                        let refused = runner::run(
                            &mut board,
                            Plot {
                                program: &p.program,
                                config,
                                session,
                                start: Start::At(c),
                                estimate: None,
                                ran_on: false,
                            },
                            &mpsc::channel().1,
                            &mut |_| {},
                        );
                        assert!(
                            matches!(refused, Err(RunError::PositionUnknown { .. })),
                            "seed {seed}: a resume on a fresh board went ahead: {refused:?}"
                        );
                        assert!(
                            board.sim.trace().strokes.is_empty(),
                            "seed {seed}: the refused resume drew"
                        );
                        let homed = runner::manual(&mut board, config, session, Manual::Home)
                            .unwrap_or_else(|e| panic!("seed {seed}: home: {e}"));
                        story.say(format!("  power cycle, device home: {}", homed.message));
                    }
                }
                start = resume_at.map_or(Start::Beginning, Start::At);
                // The board ran its queue on from a point the run streamed past (as the daemon
                // stores it); after a power cycle the carriage was homed by hand.
                ran_on = happened != Some(Chaos::PowerCycle)
                    && last_streaming
                    && error_checkpoint.is_none_or(|c| Some(c) == last_checkpoint);
            }
        }
    }
    unreachable!()
}

#[test]
fn every_job_is_drawn_exactly_once_whatever_happens() {
    let seeds: u64 = std::env::var("PLOTTY_CHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let reference = drawing();
    let file = dir.path().join("chaos.svg");
    std::fs::write(&file, svg(&reference)).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let p = prepare::prepare(&file, &config, None).unwrap();
    let (travel_w, travel_h) = config.axidraw.model.travel_mm();
    // What an uninterrupted plot puts on paper (the trace of a slanted line is a staircase of
    // steps, a little longer than the line): the measure of "drawn once".
    let (baseline, baseline_reported) = {
        let mut sim = SimLink::new(SimVersion::V3_0_3);
        let session = runner::session_config(&config, std::time::Duration::from_secs(5));
        let plot = Plot {
            program: &p.program,
            config: &config,
            session,
            start: Start::Beginning,
            estimate: None,
            ran_on: false,
        };
        let report = runner::run(&mut sim, plot, &mpsc::channel().1, &mut |_| {}).unwrap();
        assert_eq!(report.outcome, Outcome::Completed);
        let (strokes, _) = trace_of(&sim, 0);
        let uncovered = preview::max_deviation(&strokes, &reference, 0.1).max_mm;
        let stray = preview::max_deviation(&reference, &strokes, 0.1).max_mm;
        assert!(
            uncovered <= TOLERANCE_MM && stray <= TOLERANCE_MM,
            "{uncovered} {stray}"
        );
        (length(&strokes), report.drawn_mm)
    };
    let drawing_mm = length(&reference);
    eprintln!("the drawing: {drawing_mm:.2} mm; an uninterrupted plot draws {baseline:.2} mm");
    let mut seen = std::collections::BTreeMap::new();
    for seed in 0..seeds {
        let mut story = Story::default();
        let out = chaos_run(seed, &p, &config, &mut story);
        let context = || format!("seed {seed}: {:?}\n  {}", out.events, story.text());
        for e in &out.events {
            *seen.entry(format!("{e:?}")).or_insert(0u32) += 1;
        }
        // Every segment of the drawing is covered…
        let uncovered = preview::max_deviation(&out.strokes, &reference, 0.1).max_mm;
        assert!(
            uncovered <= TOLERANCE_MM,
            "part of the drawing is missing ({uncovered:.3} mm from any trace): {}",
            context()
        );
        // …nothing outside it is drawn…
        let stray = preview::max_deviation(&reference, &out.strokes, 0.1).max_mm;
        assert!(
            stray <= TOLERANCE_MM,
            "the pen drew {stray:.3} mm away from the drawing: {}",
            context()
        );
        // …nothing twice, beyond the strokes in flight at a crash…
        let drawn = length(&out.strokes);
        let excess = drawn - baseline;
        if std::env::var_os("PLOTTY_CHAOS_DEBUG").is_some() {
            for (i, s) in out.strokes.iter().enumerate() {
                eprintln!(
                    "stroke {i}: {} points, {:.3} mm, {:?} .. {:?}",
                    s.len(),
                    length(std::slice::from_ref(s)),
                    s.first(),
                    s.last()
                );
            }
        }
        assert!(
            excess <= out.allowed_excess_mm + 0.5,
            "{excess:.2} mm drawn twice (allowed {:.2}): {}",
            out.allowed_excess_mm,
            context()
        );
        // …the carriage never left the machine…
        let slack = 0.02;
        for p in out.strokes.iter().chain(&out.travel).flatten() {
            assert!(
                p.x_mm >= -slack
                    && p.y_mm >= -slack
                    && p.x_mm <= travel_w + slack
                    && p.y_mm <= travel_h + slack,
                "the carriage went to ({}, {}): {}",
                p.x_mm,
                p.y_mm,
                context()
            );
        }
        // …and the job's drawn distance, as the last run reports it, is the drawing's, as for
        // an uninterrupted plot (the commanded length of the moves, not the staircase of steps).
        assert!(
            (out.reported_mm - baseline_reported).abs() <= 0.5,
            "reported {:.2} mm drawn, an uninterrupted plot {baseline_reported:.2}: {}",
            out.reported_mm,
            context()
        );
        eprintln!(
            "seed {seed}: {:?}: drawn {drawn:.1} mm of {baseline:.1} (+{excess:.2}, allowed \
             {:.2}), reported {:.1}",
            out.events, out.allowed_excess_mm, out.reported_mm
        );
    }
    eprintln!("{seeds} seeds; interruptions: {seen:?}");
}

/// A plot of `p` whose host dies at its `after`-th progress report (the link fails; the board,
/// powered, runs its queue on), then a resume as the daemon makes it: from the last checkpoint
/// the run sent, searching for the pen if the run streamed past it, the board having run on.
/// What the resume found, and the board's pen-down trace.
fn crash_and_resume(p: &Prepared, config: &PlotConfig, after: u64) -> (Located, Vec<Vec<Point>>) {
    let session = runner::session_config(config, std::time::Duration::from_secs(5));
    let dead = Rc::new(Cell::new(false));
    let mut board = Board {
        sim: SimLink::new(SimVersion::V3_0_3),
        dead: Rc::clone(&dead),
    };
    let mut reports = 0;
    let mut last: Option<(Checkpoint, bool)> = None;
    let plot = Plot {
        program: &p.program,
        config,
        session,
        start: Start::Beginning,
        estimate: None,
        ran_on: false,
    };
    let crashed = runner::run(&mut board, plot, &mpsc::channel().1, &mut |e| match e {
        RunEvent::Progress(_) => {
            reports += 1;
            if reports == after {
                dead.set(true);
            }
        }
        RunEvent::Checkpoint {
            checkpoint: c,
            streaming,
        } => last = Some((c, streaming)),
        _ => {}
    });
    assert!(crashed.is_err(), "the plot ended before the crash");
    board.sim.run_unattended(Duration::from_millis(3_000));
    dead.set(false);
    let mut located = None;
    let plot = Plot {
        program: &p.program,
        config,
        session,
        start: last.map_or(Start::Beginning, |(c, _)| Start::At(c)),
        estimate: None,
        ran_on: last.is_some_and(|(_, streaming)| streaming),
    };
    let report = runner::run(&mut board, plot, &mpsc::channel().1, &mut |e| {
        if let RunEvent::Resuming { located: l, .. } = e {
            located = Some(l);
        }
    })
    .unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    (
        located.expect("no Resuming event"),
        trace_of(&board.sim, 0).0,
    )
}

#[test]
fn a_crash_mid_stroke_resumes_where_the_pen_stopped_with_nothing_drawn_twice() {
    // One long stroke that never comes back near itself: a spiral of 3 turns.
    let spiral: Vec<Point> = (0..=360)
        .map(|k| {
            let t = f64::from(k) / 360.0 * 3.0 * std::f64::consts::TAU;
            let r = 6.0 + 7.0 * t / std::f64::consts::TAU;
            Point::new(100.0 + r * t.cos(), 80.0 + r * t.sin())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spiral.svg");
    std::fs::write(&file, svg(std::slice::from_ref(&spiral))).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let p = prepare::prepare(&file, &config, None).unwrap();
    let baseline = {
        let mut sim = SimLink::new(SimVersion::V3_0_3);
        let plot = Plot {
            program: &p.program,
            config: &config,
            session: runner::session_config(&config, std::time::Duration::from_secs(5)),
            start: Start::Beginning,
            estimate: None,
            ran_on: false,
        };
        runner::run(&mut sim, plot, &mpsc::channel().1, &mut |_| {}).unwrap();
        trace_of(&sim, 0).0
    };
    // Before the first checkpoint (reports come every 100 ms, checkpoints every second), and
    // seconds into the stroke.
    for after in [3, 25, 45] {
        let (located, strokes) = crash_and_resume(&p, &config, after);
        assert!(
            matches!(located, Located::PenStopped(_)),
            "after {after} reports: {located:?}"
        );
        let (drawn, wanted) = (length(&strokes), length(&baseline));
        assert!(
            (drawn - wanted).abs() <= 0.1,
            "after {after} reports: {drawn:.3} mm drawn, {wanted:.3} mm uninterrupted"
        );
        assert_eq!(strokes.len(), 2, "after {after} reports");
        let uncovered = preview::max_deviation(&strokes, &baseline, 0.1).max_mm;
        let stray = preview::max_deviation(&baseline, &strokes, 0.1).max_mm;
        assert!(
            uncovered <= TOLERANCE_MM && stray <= TOLERANCE_MM,
            "after {after} reports: {uncovered} mm uncovered, {stray} mm stray"
        );
    }
}

#[test]
fn a_low_motor_supply_blocks_the_start_and_stops_the_plot_until_it_is_back_and_homed() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    let dir = tempfile::tempdir().unwrap();
    let reference = drawing();
    let file = dir.path().join("power.svg");
    std::fs::write(&file, svg(&reference)).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let p = prepare::prepare(&file, &config, None).unwrap();
    let session = runner::session_config(&config, std::time::Duration::from_secs(5));
    let plot = |start| Plot {
        program: &p.program,
        config: &config,
        session,
        start,
        estimate: None,
        ran_on: false,
    };

    // Switched off at the wall: nothing moves, and the error says what to check.
    let mut sim = SimLink::new(SimVersion::V3_0_3);
    sim.inject(FaultAction::LowPower { voltage: 30 });
    let e = runner::run(
        &mut sim,
        plot(Start::Beginning),
        &mpsc::channel().1,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, RunError::LowPower { voltage: 30, .. }), "{e}");
    assert!(e.to_string().contains("power supply"), "{e}");
    assert!(
        sim.trace().strokes.is_empty(),
        "a plot on a dead supply drew"
    );
    let moved = sim
        .trace()
        .travel
        .iter()
        .flatten()
        .any(|q| q.x != 0.0 || q.y != 0.0);
    assert!(!moved, "a plot on a dead supply moved");

    // The supply sags mid-plot (after the board's 120th command) and stays low: the firmware's
    // power-lost latch, read with every button poll, stops the plot with the pen up and the
    // motors off. The resume refuses to move while the supply is low, then (the motors were
    // off) until the carriage is homed; after that the drawing comes out whole.
    let sag = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AfterCommand(120),
            action: FaultAction::LowPower { voltage: 120 },
        }],
        ..FaultConfig::default()
    };
    let (mut sim, c, _) = stopped_by_the_supply(&p, &config, session, sag);
    let e = runner::run(
        &mut sim,
        plot(Start::At(c)),
        &mpsc::channel().1,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, RunError::LowPower { .. }), "{e}");
    sim.inject(FaultAction::LowPower { voltage: 700 });
    resume_after_homing(&p, &config, session, sim, c, &reference);
}

#[test]
fn a_supply_dip_between_two_polls_stops_the_plot_and_the_resume_asks_for_home() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    let dir = tempfile::tempdir().unwrap();
    let reference = drawing();
    let file = dir.path().join("dip.svg");
    std::fs::write(&file, svg(&reference)).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let p = prepare::prepare(&file, &config, None).unwrap();
    let session = runner::session_config(&config, std::time::Duration::from_secs(5));
    // 30 ms below the minimum, 4 s into the plot: far shorter than the 2 s between `QC`
    // readings, which never see it (they read 700 before and after).
    let dip_at = 4 * 25_000;
    let dip = FaultConfig {
        events: vec![
            ScheduledFault {
                at: Trigger::AtTick(dip_at),
                action: FaultAction::LowPower { voltage: 120 },
            },
            ScheduledFault {
                at: Trigger::AtTick(dip_at + 750),
                action: FaultAction::LowPower { voltage: 700 },
            },
        ],
        ..FaultConfig::default()
    };
    let (sim, c, events) = stopped_by_the_supply(&p, &config, session, dip);
    // Only the latch saw it: every supply reading was fine.
    let readings = events
        .iter()
        .filter(|e| matches!(e, RunEvent::Power { .. }))
        .count();
    assert!(readings >= 2, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RunEvent::Power { low: true, .. })),
        "{events:?}"
    );
    resume_after_homing(&p, &config, session, sim, c, &reference);
}

/// Plots `p` on a board with `faults` until the supply's drop stops it: pen up, motors off,
/// a checkpoint to resume from, something drawn already.
fn stopped_by_the_supply(
    p: &Prepared,
    config: &PlotConfig,
    session: plotty_motion::session::SessionConfig,
    faults: plotty_fw_sim::fault::FaultConfig,
) -> (SimLink, Checkpoint, Vec<RunEvent>) {
    use plotty_fw_sim::fault::FaultInjector;
    let mut sim = SimLink::new(SimVersion::V3_0_3).with_faults(FaultInjector::new(1, faults));
    let mut events = Vec::new();
    let first = runner::run(
        &mut sim,
        Plot {
            program: &p.program,
            config,
            session,
            start: Start::Beginning,
            estimate: None,
            ran_on: false,
        },
        &mpsc::channel().1,
        &mut |e| events.push(e),
    )
    .unwrap();
    let Outcome::Stopped(c) = first.outcome else {
        panic!("not stopped by the supply: {:?}", first.outcome);
    };
    assert!(events.contains(&RunEvent::PowerLost), "{events:?}");
    assert!(
        events.contains(&RunEvent::Paused {
            cause: PauseCause::PowerLost,
            checkpoint: c
        }),
        "{events:?}"
    );
    let status = sim.firmware().status();
    assert!(status.pen_up);
    assert_eq!(
        status.motors_enabled,
        [false, false],
        "the motors stayed on"
    );
    assert!(
        !sim.trace().strokes.is_empty(),
        "the supply dropped before anything was drawn"
    );
    (sim, c, events)
}

/// The resume after a supply drop: refused (the motors were off) and nothing drawn; the user
/// pushes the carriage home (a board whose carriage is home) and runs `device home`; the resume
/// then draws the rest, and with what came before, the drawing is whole, nothing outside it.
fn resume_after_homing(
    p: &Prepared,
    config: &PlotConfig,
    session: plotty_motion::session::SessionConfig,
    mut sim: SimLink,
    c: Checkpoint,
    reference: &[Vec<Point>],
) {
    let plot = |start| Plot {
        program: &p.program,
        config,
        session,
        start,
        estimate: None,
        ran_on: false,
    };
    let drawn = sim.trace().strokes.len();
    let e = runner::run(
        &mut sim,
        plot(Start::At(c)),
        &mpsc::channel().1,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, RunError::PositionUnknown { .. }), "{e}");
    assert_eq!(sim.trace().strokes.len(), drawn, "the refused resume drew");
    let (mut strokes, _) = trace_of(&sim, 0);
    let mut board = SimLink::new(SimVersion::V3_0_3);
    runner::manual(&mut board, config, session, Manual::Home).unwrap();
    let done = runner::run(
        &mut board,
        plot(Start::At(c)),
        &mpsc::channel().1,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(done.outcome, Outcome::Completed);
    strokes.extend(trace_of(&board, 0).0);
    let uncovered = preview::max_deviation(&strokes, reference, 0.1).max_mm;
    let stray = preview::max_deviation(reference, &strokes, 0.1).max_mm;
    assert!(uncovered <= TOLERANCE_MM, "missing: {uncovered} mm");
    assert!(stray <= TOLERANCE_MM, "stray: {stray} mm");
}

/// A simulator link that notes the board's state after every exchange, for event handlers
/// that cannot reach the link while the runner holds it.
struct Watched {
    sim: SimLink,
    /// The pen is up and nothing executes or waits in the FIFO, as of the last exchange.
    stopped_pen_up: Rc<Cell<bool>>,
}

impl Watched {
    fn note(&mut self) {
        let s = self.sim.firmware().status();
        self.stopped_pen_up
            .set(s.pen_up && !s.executing && s.fifo_len == 0);
    }
}

impl Link for Watched {
    fn name(&self) -> &str {
        self.sim.name()
    }
    fn now(&mut self) -> Instant {
        self.sim.now()
    }
    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        let n = self.sim.write(bytes);
        self.note();
        n
    }
    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        let r = self.sim.read(out);
        self.note();
        r
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        let r = self.sim.wait(deadline);
        self.note();
        r
    }
    fn is_simulated(&self) -> bool {
        true
    }
}

/// Plots the test drawing on a [`Watched`] board; `script` gets each event, whether the board
/// was stopped with the pen up when it came, and the control channel.
fn watched_run(mut script: impl FnMut(RunEvent, bool, &mpsc::Sender<Control>)) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watched.svg");
    std::fs::write(&file, svg(&drawing())).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let p = prepare::prepare(&file, &config, None).unwrap();
    let stopped = Rc::new(Cell::new(true));
    let mut link = Watched {
        sim: SimLink::new(SimVersion::V3_0_3),
        stopped_pen_up: stopped.clone(),
    };
    let (tx, rx) = mpsc::channel();
    runner::run(
        &mut link,
        Plot {
            program: &p.program,
            config: &config,
            session: runner::session_config(&config, std::time::Duration::from_secs(5)),
            start: Start::Beginning,
            estimate: None,
            ran_on: false,
        },
        &rx,
        &mut |e| script(e, stopped.get(), &tx),
    )
    .unwrap()
    .outcome
}

/// The third stroke is being drawn.
fn drawing_stroke_2(e: &RunEvent) -> bool {
    matches!(e, RunEvent::Progress(pr) if pr.stroke == 2 && pr.pen == plotty_motion::plan::Pen::Down)
}

#[test]
fn an_abort_is_reported_done_only_once_the_board_stopped_with_the_pen_up() {
    // The board's state when each event was reported.
    let mut seen = Vec::new();
    let outcome = watched_run(|e, stopped, tx| {
        if drawing_stroke_2(&e) && seen.is_empty() {
            tx.send(Control::Abort).unwrap();
            seen.push(("requested", stopped));
        }
        match e {
            RunEvent::Aborting => seen.push(("aborting", stopped)),
            RunEvent::Aborted => seen.push(("aborted", stopped)),
            _ => {}
        }
    });
    assert_eq!(outcome, Outcome::Aborted);
    // Drawing when asked; still moving, pen down, when the abort was accepted; stopped with
    // the pen up when it was reported done.
    assert_eq!(
        seen,
        [("requested", false), ("aborting", false), ("aborted", true)]
    );
}

#[test]
fn a_pause_is_reported_only_once_the_board_stopped_with_the_pen_up() {
    let mut seen = Vec::new();
    let outcome = watched_run(|e, stopped, tx| {
        if drawing_stroke_2(&e) && seen.is_empty() {
            tx.send(Control::Pause).unwrap();
            seen.push(("requested", stopped));
        }
        if matches!(e, RunEvent::Paused { .. }) && seen.len() == 1 {
            seen.push(("paused", stopped));
            tx.send(Control::Resume).unwrap();
        }
    });
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(seen, [("requested", false), ("paused", true)]);
}

/// `polylines` prepared in file order (nothing reversed), with the default settings.
fn in_file_order(polylines: &[Vec<Point>]) -> (tempfile::TempDir, PlotConfig, Prepared) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drawing.svg");
    std::fs::write(&file, svg(polylines)).unwrap();
    let mut config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    config.reordering = plotty_host::settings::Reordering::FileOrder;
    let p = prepare::prepare(&file, &config, None).unwrap();
    (dir, config, p)
}

/// The most any part of `wanted` is from the pen-down trace `drawn` (0: all of it drawn).
fn uncovered_mm(drawn: &[Vec<Point>], wanted: &[Vec<Point>]) -> f64 {
    preview::max_deviation(drawn, wanted, 0.1).max_mm
}

#[test]
fn a_crash_on_the_way_back_to_the_checkpoint_never_skips_the_stroke_ahead() {
    // A stroke towards home; the plot stopped at (90, 90) on it (a shutdown parked the
    // carriage at home). The resume's way back runs up the diagonal, along the rest of the
    // stroke: a crash there leaves the carriage on the stroke ahead of the stored point.
    let stroke = vec![Point::new(100.0, 100.0), Point::new(50.0, 50.0)];
    let (_dir, config, p) = in_file_order(std::slice::from_ref(&stroke));
    let session = runner::session_config(&config, std::time::Duration::from_secs(5));
    let at = config.kinematics().to_motor(Point::new(90.0, 90.0));
    let stored = Checkpoint {
        layer: 0,
        stroke: 0,
        vertex: 1,
        pen_down: true,
        position: [at.m1, at.m2],
    };
    let dead = Rc::new(Cell::new(false));
    let mut board = Board {
        sim: SimLink::new(SimVersion::V3_0_3),
        dead: Rc::clone(&dead),
    };
    runner::manual(&mut board, &config, session, Manual::Home).unwrap();
    // The resume from the stored point (no search: it was a clean stop); the host dies on the
    // way back (at the first report: the rest of the way is not all queued yet).
    let mut last = (stored, false);
    let plot = Plot {
        program: &p.program,
        config: &config,
        session,
        start: Start::At(stored),
        estimate: None,
        ran_on: false,
    };
    let crashed = runner::run(&mut board, plot, &mpsc::channel().1, &mut |e| match e {
        RunEvent::Progress(pr) if config.kinematics().to_point(pr.position).x_mm > 5.0 => {
            dead.set(true);
        }
        RunEvent::Checkpoint {
            checkpoint,
            streaming,
        } => last = (checkpoint, streaming),
        _ => {}
    });
    assert!(crashed.is_err(), "the plot ended before the crash");
    board.sim.run_unattended(Duration::from_millis(3_000));
    dead.set(false);
    // The scenario: the board stopped on the way back, on the part of the stroke still to draw.
    assert!(board.sim.trace().strokes.is_empty(), "the crashed run drew");
    let travel = trace_of(&board.sim, 0).1;
    let stop = travel.last().and_then(|l| l.last().copied()).unwrap();
    assert!(
        stop.x_mm > 55.0 && stop.x_mm < 85.0 && (stop.x_mm - stop.y_mm).abs() < 0.1,
        "the board stopped at {stop:?}"
    );
    // The resume as the daemon makes it: from the point stored last, searching only if the run
    // streamed past it.
    let plot = Plot {
        program: &p.program,
        config: &config,
        session,
        start: Start::At(last.0),
        estimate: None,
        ran_on: last.1,
    };
    let report = runner::run(&mut board, plot, &mpsc::channel().1, &mut |_| {}).unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let rest = vec![Point::new(90.0, 90.0), Point::new(50.0, 50.0)];
    let (strokes, _) = trace_of(&board.sim, 0);
    let missed = uncovered_mm(&strokes, std::slice::from_ref(&rest));
    assert!(
        missed <= TOLERANCE_MM,
        "{missed} mm of the stroke from (90, 90) left undrawn: {strokes:?}"
    );
}

#[test]
fn a_crash_before_the_first_checkpoint_starts_again_from_the_beginning() {
    // The user walked the carriage onto the first stroke (to see where the drawing goes); the
    // job was armed and the daemon died before it stored a checkpoint. The board says where the
    // carriage is, which the first stroke also passes: nothing says the plot put it there.
    let strokes = vec![
        vec![Point::new(20.0, 20.0), Point::new(60.0, 20.0)],
        vec![Point::new(20.0, 30.0), Point::new(60.0, 30.0)],
    ];
    let (_dir, config, p) = in_file_order(&strokes);
    let session = runner::session_config(&config, std::time::Duration::from_secs(5));
    let mut sim = SimLink::new(SimVersion::V3_0_3);
    runner::manual(&mut sim, &config, session, Manual::Home).unwrap();
    runner::manual(
        &mut sim,
        &config,
        session,
        Manual::Walk {
            dx_mm: 30.0,
            dy_mm: 20.0,
        },
    )
    .unwrap();
    // The resume as the daemon made it for an interrupted job (no stored point: the beginning).
    let mut resuming = None;
    let plot = Plot {
        program: &p.program,
        config: &config,
        session,
        start: Start::Beginning,
        estimate: None,
        ran_on: true,
    };
    let report = runner::run(&mut sim, plot, &mpsc::channel().1, &mut |e| {
        if let RunEvent::Resuming { located, .. } = e {
            resuming = Some(located);
        }
    })
    .unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let (drawn, _) = trace_of(&sim, 0);
    let missed = uncovered_mm(&drawn, &strokes);
    assert!(
        missed <= TOLERANCE_MM,
        "{missed} mm of the drawing left undrawn: {drawn:?}"
    );
    assert_eq!(resuming, None, "searched without a stored point");
}
