//! How fast a plot stops, on the simulator's clock (tick-exact, so the figures do not depend on
//! how busy the machine running the benchmark is).
//!
//! For a pause, an abort and a shutdown (`StopAfterStroke`: the stroke in flight is finished
//! first), requested at 40 moments of a plot of the benchmark's drawing, through the plot
//! runner (the loop the daemon's device task runs) on a board with the AxiDraw defaults:
//!
//! - **request → motors stopped**: from the control reaching the runner to the board's last
//!   motor step;
//! - **request → pen up**: to the end of the pen raise (its start on the board plus the raise
//!   time the servo set-up gives it: the pen is up when that has passed).
//!
//! The time a request takes to reach the runner (a WebSocket message, the queue actor, a
//! channel: well under a millisecond on loopback, see `benches/api.rs`) is not included.
//! Run: `cargo bench --bench stop`. Prints min / median / max per kind, in ms.

// Benchmark code: a failed expectation aborts the run, which is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_host::devices::link::sim::SimLink;
use plotty_host::devices::link::{DeviceError, Link};
use plotty_host::plot::prepare;
use plotty_host::plot::runner::{self, Control, Plot, RunEvent};
use plotty_host::plot::{PlotConfig, Start};
use plotty_host::settings::Settings;
use plotty_motion::time::{Duration, Instant};

/// The simulator, remembering the time of every call (the runner reads the link's clock
/// before it acts on a control).
struct Clocked {
    sim: SimLink,
    now: Rc<Cell<Instant>>,
}

impl Link for Clocked {
    fn name(&self) -> &str {
        self.sim.name()
    }
    fn now(&mut self) -> Instant {
        let t = self.sim.now();
        self.now.set(t);
        t
    }
    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        self.sim.write(bytes)
    }
    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        self.sim.read(out)
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        self.sim.wait(deadline)
    }
    fn is_simulated(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pause,
    Abort,
    Shutdown,
}

#[path = "quick.rs"]
mod quick;

fn main() {
    // A smoke run (`--test`, or `cargo test --bench stop`) stops three plots per kind.
    let requests: u64 = if quick::quick() { 3 } else { 40 };
    let dir = tempfile::tempdir().unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/drawings/hatch_200.svg");
    let prepared = prepare::prepare(&path, &config, None).unwrap();
    let session = runner::session_config(&config, std::time::Duration::from_secs(5));
    let raise = config.pen_raise();
    for kind in [Kind::Pause, Kind::Abort, Kind::Shutdown] {
        let mut stopped_ms = Vec::new();
        let mut up_ms = Vec::new();
        let mut skipped = 0;
        for k in 0..requests {
            let now = Rc::new(Cell::new(Instant::ZERO));
            let mut link = Clocked {
                sim: SimLink::new(SimVersion::V3_0_3),
                now: Rc::clone(&now),
            };
            let (tx, rx) = mpsc::channel();
            let trigger = 5 + k * 7;
            let mut reports = 0;
            let mut asked: Option<Instant> = None;
            let plot = Plot {
                program: &prepared.program,
                config: &config,
                session,
                start: Start::Beginning,
                estimate: None,
                ran_on: false,
            };
            let report = runner::run(&mut link, plot, &rx, &mut |e| match e {
                // While drawing: a request with the pen already up says nothing about raising it.
                RunEvent::Progress(p) if p.pen == plotty_motion::plan::Pen::Down => {
                    reports += 1;
                    if reports == trigger {
                        asked = Some(now.get());
                        let control = match kind {
                            Kind::Pause => Control::Pause,
                            Kind::Abort => Control::Abort,
                            Kind::Shutdown => Control::StopAfterStroke { park: false },
                        };
                        tx.send(control).unwrap();
                    }
                }
                // Measure the stop alone: end the run where it stopped.
                RunEvent::Paused { .. } => {
                    let _ = tx.send(Control::Stop { park: false });
                }
                _ => {}
            })
            .unwrap();
            let asked = asked.expect("the request was made");
            let (last_step, raises) = (link.sim.last_step(), link.sim.pen_raises());
            let Some((raised, step_before)) = raises
                .iter()
                .copied()
                .find(|&(t, _)| t.as_micros() >= asked.as_micros())
            else {
                // The stroke ended (pen raised) between the report and the request.
                skipped += 1;
                continue;
            };
            let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
            let stopped = match (kind, report.outcome) {
                // The stroke is finished first, then the run stops where the travel was: the
                // machine's last step.
                (Kind::Shutdown, _) => last_step,
                // ES, then the pen raise: the last step before the raise (an abort parks after).
                _ => step_before,
            };
            stopped_ms.push(ms(since(asked, stopped)));
            up_ms.push(ms(since(asked, raised + raise)));
        }
        let show = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            format!(
                "min {:7.1}  median {:7.1}  max {:7.1}",
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            )
        };
        println!(
            "{kind:?}: {} requests while drawing ({skipped} left out: the pen was rising already)",
            stopped_ms.len()
        );
        println!(
            "{kind:?}: request → motors stopped (ms): {}",
            show(&mut stopped_ms)
        );
        println!(
            "{kind:?}: request → pen up (ms):         {}",
            show(&mut up_ms)
        );
    }
}

/// The time from `asked` to `at` (a time since the simulation started), zero if before.
fn since(asked: Instant, at: Duration) -> Duration {
    Duration::from_micros(at.as_micros().saturating_sub(asked.as_micros()))
}
