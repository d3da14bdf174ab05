//! How long a plot takes: the program through planner and step generator, added up in exact
//! firmware ticks (every move's ticks as the firmware runs it, pen waits and dwells as the
//! firmware counts them), plus the pen raise of the session's set-up.
//!
//! What is not counted: waiting for the user at pen changes, and whatever the link adds (USB
//! latency, a host that cannot keep the firmware's queue fed). On the simulator the plot takes
//! the estimate to well under 1 %.

use std::convert::Infallible;
use std::fmt;

use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::pipeline::PipelineError;
use plotty_motion::plan::Pen;
use plotty_motion::session::FeedItem;
use plotty_motion::time::{Duration, TICKS_PER_MS};

use crate::wording::counted;

use super::config::PlotConfig;
use super::feed::{self, FeedStop, StepTotals};
use super::program::{Program, Start};

/// The planned time of a plot, and where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Everything: set-up, layers, the way home.
    pub total: Duration,
    /// The pen raise of the set-up.
    pub setup: Duration,
    /// Pen-down moves.
    pub drawing: Duration,
    /// Pen-up moves.
    pub travel: Duration,
    /// Pen raises and drops (the wait the firmware gives each).
    pub pen: Duration,
    /// Layer delays (`+D`).
    pub dwell: Duration,
    /// Pen-down length, mm.
    pub drawn_mm: f64,
    /// Pen-up length, mm.
    pub travel_mm: f64,
    /// Pen raises (set-up excluded).
    pub raises: u32,
    /// Pen drops.
    pub drops: u32,
    /// Stops for the user (pen changes); their wait is not counted.
    pub pauses: u32,
    /// Per layer, in order (the final move home is in `home`).
    pub layers: Vec<LayerEstimate>,
    /// The final pen-up move home.
    pub home: Duration,
    /// What the step generator did.
    pub steps: StepTotals,
    /// Blocks released early by a full planner window (0: the plan is time-optimal).
    pub forced_releases: u64,
}

/// The planned time of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerEstimate {
    /// The layer's name.
    pub name: String,
    /// Everything in the layer.
    pub total: Duration,
    /// Pen-down moves.
    pub drawing: Duration,
    /// Pen-up moves (including parking for a pen change).
    pub travel: Duration,
    /// Pen raises and drops.
    pub pen: Duration,
    /// Its delay.
    pub dwell: Duration,
    /// Pen-down length, mm.
    pub drawn_mm: f64,
    /// Pen-up length, mm.
    pub travel_mm: f64,
}

impl Estimate {
    /// The estimate as JSON: times in seconds, lengths in mm, and each layer.
    pub fn to_json(&self) -> serde_json::Value {
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "total_s": l.total.as_secs_f64(),
                    "drawing_s": l.drawing.as_secs_f64(),
                    "travel_s": l.travel.as_secs_f64(),
                    "pen_s": l.pen.as_secs_f64(),
                    "delay_s": l.dwell.as_secs_f64(),
                    "drawn_mm": l.drawn_mm,
                    "travel_mm": l.travel_mm,
                })
            })
            .collect();
        serde_json::json!({
            "total_s": self.total.as_secs_f64(),
            "setup_s": self.setup.as_secs_f64(),
            "drawing_s": self.drawing.as_secs_f64(),
            "travel_s": self.travel.as_secs_f64(),
            "pen_s": self.pen.as_secs_f64(),
            "delay_s": self.dwell.as_secs_f64(),
            "home_s": self.home.as_secs_f64(),
            "drawn_mm": self.drawn_mm,
            "travel_mm": self.travel_mm,
            "raises": self.raises,
            "drops": self.drops,
            "pen_changes": self.pauses,
            "layers": layers,
        })
    }
}

/// Adds up the items of `program` planned for firmware `version` (see the
/// [module documentation](self)).
///
/// # Errors
/// Planning failed.
pub fn estimate(
    program: &Program,
    config: &PlotConfig,
    version: FirmwareVersion,
) -> Result<Estimate, PipelineError> {
    let raise = ticks(config.pen_raise_ms());
    let lower = ticks(config.pen_lower_ms());
    let mut sum = Sum {
        layers: program
            .layers()
            .iter()
            .map(|l| LayerSum {
                name: l.name.clone(),
                ..LayerSum::default()
            })
            .collect(),
        home: program.stroke_count(),
        ..Sum::default()
    };
    let end = feed::feed(
        program,
        Start::Beginning,
        config,
        version,
        MotorSteps::ZERO,
        [0, 0],
        &mut |item| {
            sum.add(&item, raise, lower);
            Ok::<(), Infallible>(())
        },
    )
    .map_err(|e| match e {
        FeedStop::Plan(e) => e,
        FeedStop::Sink(never) => match never {},
    })?;
    Ok(sum.finish(raise, end.steps, end.forced_releases))
}

/// What is left of a plot from a checkpoint, planned as the runner will run it.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct Remaining {
    /// Firmware time of the rest (moves, pen moves, dwells; set-up not included).
    pub time: Duration,
    /// Pen-down length of the rest, mm.
    pub drawn_mm: f64,
    /// Length of every move of the rest, mm.
    pub distance_mm: f64,
}

/// The rest of `program` from `start`, the machine at `position`: what a resumed plot still
/// has to do (its progress starts where the whole plan's minus this).
///
/// # Errors
/// A planning failure.
pub fn remaining(
    program: &Program,
    config: &PlotConfig,
    version: FirmwareVersion,
    start: Start,
    position: MotorSteps,
) -> Result<Remaining, PipelineError> {
    let raise = ticks(config.pen_raise_ms());
    let lower = ticks(config.pen_lower_ms());
    let mut ticks_sum = 0u64;
    let mut rest = Remaining::default();
    feed::feed(
        program,
        start,
        config,
        version,
        position,
        [0, 0],
        &mut |item| {
            match item {
                FeedItem::Move(m) => {
                    ticks_sum += u64::from(m.ticks);
                    rest.distance_mm += m.distance_mm;
                    if m.pen == Pen::Down {
                        rest.drawn_mm += m.distance_mm;
                    }
                }
                FeedItem::Pen(Pen::Up) => ticks_sum += raise,
                FeedItem::Pen(Pen::Down) => ticks_sum += lower,
                FeedItem::Dwell(d) => {
                    let ms = d.as_micros().saturating_add(500) / 1000;
                    ticks_sum += ms * u64::from(TICKS_PER_MS);
                }
                FeedItem::Pause | FeedItem::Motors(_) | FeedItem::Marker(_) => {}
            }
            Ok::<(), Infallible>(())
        },
    )
    .map_err(|e| match e {
        FeedStop::Plan(e) => e,
        FeedStop::Sink(never) => match never {},
    })?;
    rest.time = Duration::from_ticks(ticks_sum);
    Ok(rest)
}

/// Ticks of a pen wait of `ms` (the firmware takes one tick for a zero wait).
fn ticks(ms: u16) -> u64 {
    if ms == 0 {
        1
    } else {
        u64::from(ms) * u64::from(TICKS_PER_MS)
    }
}

#[derive(Default)]
struct Sum {
    layers: Vec<LayerSum>,
    layer: usize,
    /// Stroke index of the final move home.
    home: u32,
    home_ticks: u64,
    home_mm: f64,
    raises: u32,
    drops: u32,
    pauses: u32,
}

#[derive(Default)]
struct LayerSum {
    name: String,
    drawing: u64,
    travel: u64,
    pen: u64,
    dwell: u64,
    drawn_mm: f64,
    travel_mm: f64,
}

impl Sum {
    fn add(&mut self, item: &FeedItem, raise: u64, lower: u64) {
        let home = self.home;
        let Some(l) = self.layers.get_mut(self.layer) else {
            if let FeedItem::Marker(m) = item {
                self.layer = *m as usize;
            }
            return;
        };
        match item {
            FeedItem::Marker(m) => self.layer = *m as usize,
            FeedItem::Move(m) if m.tag.stroke == home => {
                self.home_ticks += u64::from(m.ticks);
                self.home_mm += m.distance_mm;
            }
            FeedItem::Move(m) => match m.pen {
                Pen::Down => {
                    l.drawing += u64::from(m.ticks);
                    l.drawn_mm += m.distance_mm;
                }
                Pen::Up => {
                    l.travel += u64::from(m.ticks);
                    l.travel_mm += m.distance_mm;
                }
            },
            FeedItem::Pen(Pen::Up) => {
                l.pen += raise;
                self.raises += 1;
            }
            FeedItem::Pen(Pen::Down) => {
                l.pen += lower;
                self.drops += 1;
            }
            FeedItem::Dwell(d) => {
                // Whole milliseconds, as the session sends them.
                let ms = d.as_micros().saturating_add(500) / 1000;
                l.dwell += ms * u64::from(TICKS_PER_MS);
            }
            FeedItem::Pause => self.pauses += 1,
            FeedItem::Motors(_) => {}
        }
    }

    fn finish(self, setup: u64, steps: StepTotals, forced_releases: u64) -> Estimate {
        let t = Duration::from_ticks;
        let mut e = Estimate {
            total: Duration::ZERO,
            setup: t(setup),
            drawing: Duration::ZERO,
            travel: Duration::ZERO,
            pen: Duration::ZERO,
            dwell: Duration::ZERO,
            drawn_mm: 0.0,
            travel_mm: self.home_mm,
            raises: self.raises,
            drops: self.drops,
            pauses: self.pauses,
            layers: Vec::with_capacity(self.layers.len()),
            home: t(self.home_ticks),
            steps,
            forced_releases,
        };
        let mut total = setup + self.home_ticks;
        let mut travel = self.home_ticks;
        let (mut drawing, mut pen, mut dwell) = (0, 0, 0);
        for l in self.layers {
            let layer_total = l.drawing + l.travel + l.pen + l.dwell;
            total += layer_total;
            drawing += l.drawing;
            travel += l.travel;
            pen += l.pen;
            dwell += l.dwell;
            e.drawn_mm += l.drawn_mm;
            e.travel_mm += l.travel_mm;
            e.layers.push(LayerEstimate {
                name: l.name,
                total: t(layer_total),
                drawing: t(l.drawing),
                travel: t(l.travel),
                pen: t(l.pen),
                dwell: t(l.dwell),
                drawn_mm: l.drawn_mm,
                travel_mm: l.travel_mm,
            });
        }
        e.total = t(total);
        e.drawing = t(drawing);
        e.travel = t(travel);
        e.pen = t(pen);
        e.dwell = t(dwell);
        e
    }
}

/// A duration as `1 h 02 min 03.4 s`, `2 min 03.4 s` or `3.4 s`.
pub struct Hms(pub Duration);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = (self.0.as_micros() + 50_000) / 100_000;
        let (h, rest) = (tenths / 36_000, tenths % 36_000);
        let (m, rest) = (rest / 600, rest % 600);
        let (s, d) = (rest / 10, rest % 10);
        if h > 0 {
            write!(f, "{h} h {m:02} min {s:02}.{d} s")
        } else if m > 0 {
            write!(f, "{m} min {s:02}.{d} s")
        } else {
            write!(f, "{s}.{d} s")
        }
    }
}

impl fmt::Display for Estimate {
    /// Several lines: the total, where it goes, and each layer when there are several.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "planned plot time {:.1} s ({}): drawing {} ({:.2} m), pen-up travel {} ({:.2} m), \
             pen {} ({}, {}), set-up {}{}",
            self.total.as_secs_f64(),
            Hms(self.total),
            Hms(self.drawing),
            self.drawn_mm / 1000.0,
            Hms(self.travel),
            self.travel_mm / 1000.0,
            Hms(self.pen),
            counted(self.raises, "raise"),
            counted(self.drops, "drop"),
            Hms(self.setup),
            if self.dwell > Duration::ZERO {
                format!(", layer delays {}", Hms(self.dwell))
            } else {
                String::new()
            },
        )?;
        if self.pauses > 0 {
            writeln!(
                f,
                "  {} pen change{} (the waits are not counted)",
                self.pauses,
                if self.pauses == 1 { "" } else { "s" }
            )?;
        }
        if self.layers.len() > 1 {
            for l in &self.layers {
                writeln!(
                    f,
                    "  layer '{}': {} (drawing {}, travel {}, pen {})",
                    l.name,
                    Hms(l.total),
                    Hms(l.drawing),
                    Hms(l.travel),
                    Hms(l.pen)
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        let d = |s: f64| Hms(Duration::from_micros((s * 1e6) as u64)).to_string();
        assert_eq!(d(3.44), "3.4 s");
        assert_eq!(d(123.45), "2 min 03.5 s");
        assert_eq!(d(6594.0), "1 h 49 min 54.0 s");
        assert_eq!(d(59.96), "1 min 00.0 s");
    }
}
