//! What pen-up travel costs: the limits of a pen-up move, the closed-form time of one straight
//! rest-to-rest hop, and the statistics of a plan (distance, lifts, time).

use std::fmt;

use plotty_motion::kinematics::AxiDrawSettings;

use crate::import::{Point, Stroke};

/// Limits of pen-up moves and pen timing, for estimates and for ordering.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PenUpLimits {
    /// Pen-up acceleration, mm/s² (positive).
    pub accel_mm_s2: f64,
    /// Pen-up top speed, mm/s (positive).
    pub speed_mm_s: f64,
    /// Time to raise the pen, seconds.
    pub lift_s: f64,
    /// Time to lower the pen, seconds.
    pub drop_s: f64,
}

/// Pen-up travel of a plan, from home through every stroke and back home.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct PenUpStats {
    /// Pen-up distance, mm.
    pub distance_mm: f64,
    /// Pen lifts (each stroke is one drop and one lift).
    pub lifts: usize,
    /// Time of the pen-up moves, seconds (each a straight rest-to-rest move).
    pub travel_s: f64,
    /// Time spent raising and lowering the pen, seconds.
    pub pen_s: f64,
}

impl PenUpLimits {
    /// The comparison limits of the benchmark drawings (`bench/README.md`): 400 mm/s²,
    /// 200 mm/s, 0.12 s per lift and per drop.
    pub const COMPARISON: Self = Self {
        accel_mm_s2: 400.0,
        speed_mm_s: 200.0,
        lift_s: 0.12,
        drop_s: 0.12,
    };

    /// The pen-up limits and pen timing the AxiDraw settings give.
    pub fn from_axidraw(settings: &AxiDrawSettings) -> Self {
        Self {
            accel_mm_s2: settings.pen_up_accel_mm_s2(),
            speed_mm_s: settings.pen_up_speed_mm_s(),
            lift_s: f64::from(settings.pen_raise_ms()) / 1000.0,
            drop_s: f64::from(settings.pen_lower_ms()) / 1000.0,
        }
    }

    /// Time of a straight move of `distance_mm` from rest to rest: a triangle profile
    /// `2·√(d/a)` when the top speed is not reached (`d < v²/a`), else a trapezoid
    /// `d/v + v/a`. Non-positive limits are taken as tiny positive ones.
    pub fn hop_time_s(&self, distance_mm: f64) -> f64 {
        if distance_mm.is_nan() || distance_mm <= 0.0 {
            return 0.0;
        }
        let a = self.accel_mm_s2.max(1e-9);
        let v = self.speed_mm_s.max(1e-9);
        if distance_mm >= v * v / a {
            distance_mm / v + v / a
        } else {
            2.0 * (distance_mm / a).sqrt()
        }
    }
}

impl PenUpStats {
    /// Pen-up travel plus pen movement time, seconds.
    pub fn total_s(&self) -> f64 {
        self.travel_s + self.pen_s
    }

    /// Adds the hops of drawing `strokes` in order, starting at `*position` (updated to where
    /// the pen ends).
    pub(crate) fn add_strokes(
        &mut self,
        position: &mut Point,
        strokes: &[Stroke],
        limits: &PenUpLimits,
    ) {
        for s in strokes {
            let (Some(a), Some(b)) = (s.start(), s.end()) else {
                continue;
            };
            self.add_hop(*position, a, limits);
            self.lifts += 1;
            self.pen_s += limits.lift_s + limits.drop_s;
            *position = b;
        }
    }

    /// Adds one pen-up move.
    pub(crate) fn add_hop(&mut self, from: Point, to: Point, limits: &PenUpLimits) {
        let d = from.distance_to(to);
        self.distance_mm += d;
        self.travel_s += limits.hop_time_s(d);
    }

    /// Adds `other`'s figures to these.
    pub(crate) fn add(&mut self, other: &Self) {
        self.distance_mm += other.distance_mm;
        self.lifts += other.lifts;
        self.travel_s += other.travel_s;
        self.pen_s += other.pen_s;
    }
}

impl Default for PenUpLimits {
    /// The AxiDraw defaults (pen-up 75 % = 150.6 mm/s, acceleration 75 %, 130 ms raise,
    /// 146 ms lower).
    fn default() -> Self {
        Self::from_axidraw(&AxiDrawSettings::default())
    }
}

impl fmt::Display for PenUpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pen-up {:.1} mm, {} lifts, travel {:.1} s + pen {:.1} s",
            self.distance_mm, self.lifts, self.travel_s, self.pen_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_time_closed_forms() {
        let l = PenUpLimits::COMPARISON;
        assert_eq!(l.hop_time_s(0.0), 0.0);
        // Triangle: 25 mm at 400 mm/s² → 2·√(25/400) = 0.5 s (peak 100 mm/s < 200).
        assert!((l.hop_time_s(25.0) - 0.5).abs() < 1e-12);
        // Boundary v²/a = 100 mm: both forms give 1.0 s.
        assert!((l.hop_time_s(100.0) - 1.0).abs() < 1e-12);
        assert!((l.hop_time_s(100.0 - 1e-9) - 1.0).abs() < 1e-6);
        // Trapezoid: 300 mm → 1.5 + 0.5 = 2 s.
        assert!((l.hop_time_s(300.0) - 2.0).abs() < 1e-12);
        assert_eq!(l.hop_time_s(f64::NAN), 0.0);
    }

    #[test]
    fn axidraw_defaults() {
        let l = PenUpLimits::default();
        assert!((l.speed_mm_s - 150.6).abs() < 0.1, "{}", l.speed_mm_s);
        assert!((l.lift_s - 0.130).abs() < 1e-9);
        assert!((l.drop_s - 0.146).abs() < 1e-9);
    }
}
