//! Hardware in the loop, without the hardware: `plotty plot --device PTY` against the simulated
//! board served on a pseudo-terminal (`plotty-fw-sim serve`, as fast as possible, not
//! `--realtime`), both in this process: the host's real serial path (`devices::link::serial`, the
//! runner, the protocol session) over a real pty, the board's firmware model behind it.
//!
//! Reported: the simulated plot time (the board's busy span: its first queued command to its
//! last idle moment) over the wall-clock time the board took for it (the same two moments on
//! the wall clock, taken by the board's observer): how many times faster than real time a CI
//! run plots. Issue 13's target: ≥ 100× on random_walk_100k (1.77× when the session fed the
//! FIFO by the wall clock alone). Wall-clock time, not CPU time: what is measured is how well
//! the host keeps a fast board fed, so it depends on the load of the machine (say so with the
//! figure).
//!
//! Run: `cargo bench --bench hil` (random_walk_100k, about an hour of plotting;
//! `PLOTTY_HIL_DRAWING=path.svg` plots another drawing). With `--test`, or as
//! `cargo test --bench hil`, it plots `examples/lissajous.svg` (under two minutes of plotting).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot run should stop loudly

#[path = "quick.rs"]
mod quick;

use std::path::{Path, PathBuf};
use std::time::Instant;

use plotty_fw_sim::board::Board;
use plotty_fw_sim::pty::PtyServer;
use plotty_fw_sim::runner::ClockMode;
use plotty_fw_sim::{CommandKind, FirmwareVersion, Observer, SimObserver};
use plotty_host::cli::PlotArgs;

/// Ticks per second of the firmware's interrupt.
const TICKS_PER_SECOND: f64 = 25_000.0;

/// The simulator's own observer, plus the wall-clock instants of the board's first command and
/// of its last idle moment.
struct Timed {
    sim: SimObserver,
    first: Option<(Instant, u64)>,
    last_idle: Option<(Instant, u64)>,
}

impl Observer for Timed {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        self.sim.on_step(tick, position);
    }

    fn on_pen(&mut self, tick: u64, up: bool) {
        self.sim.on_pen(tick, up);
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        if self.first.is_none() {
            self.first = Some((Instant::now(), tick));
        }
        self.sim.on_command_start(tick, kind);
    }

    fn on_idle(&mut self, tick: u64) {
        if self.first.is_some() {
            self.last_idle = Some((Instant::now(), tick));
        }
        self.sim.on_idle(tick);
    }

    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        self.sim.on_motors(tick, enabled, microsteps);
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let drawing: PathBuf = match std::env::var_os("PLOTTY_HIL_DRAWING") {
        Some(p) => p.into(),
        None if quick::quick() => root.join("examples/lissajous.svg"),
        None => root.join("benches/drawings/random_walk_100k.svg"),
    };
    let server = PtyServer::open(None).expect("a pseudo-terminal");
    let device = server.path().to_owned();
    let stop = server.stop_handle();
    let board = std::thread::spawn(move || {
        let observer = Timed {
            sim: SimObserver::default(),
            first: None,
            last_idle: None,
        };
        let mut board = Board::with_observer(FirmwareVersion::V3_0_3, observer);
        server
            .run(&mut board, ClockMode::AsFastAsPossible)
            .expect("the pty serves");
        board
    });

    let work = tempfile::tempdir().expect("a temporary directory");
    let args = PlotArgs::parse_from([drawing.as_os_str(), "--device".as_ref(), device.as_os_str()])
        .expect("a plot command line");
    let settings = plotty_host::settings::Settings::defaults_for(work.path());
    let mut report = Vec::new();
    let started = Instant::now();
    plotty_host::plot::command::run_with(&args, &settings, &mut report)
        .expect("the plot runs on the simulated board");
    let command_s = started.elapsed().as_secs_f64();
    stop.stop();
    let board = board.join().expect("the board thread");
    let now = board.now_ticks();
    let observer = board.into_observer();
    let stats = observer.sim.stats.report(now);
    let (Some((wall0, tick0)), Some((wall1, tick1))) = (observer.first, observer.last_idle) else {
        panic!(
            "the board ran nothing:\n{}",
            String::from_utf8_lossy(&report)
        );
    };
    let simulated_s = tick1.saturating_sub(tick0) as f64 / TICKS_PER_SECOND;
    let wall_s = wall1.duration_since(wall0).as_secs_f64();
    let name = drawing
        .file_stem()
        .map_or_else(|| "drawing".into(), |s| s.to_string_lossy().into_owned());
    println!(
        "hil/{name}: simulated plot time {simulated_s:.1} s in {wall_s:.2} s of wall-clock \
         time: {:.0}x real time ({} steps, motion queue empty {} times; whole command {command_s:.1} s \
         with import, optimisation and planning)",
        simulated_s / wall_s.max(1e-9),
        stats.steps[0] + stats.steps[1],
        stats.idle_gaps,
    );
}
