//! `job_progress` from the runner's progress: fractions, points, the ETA from the plan, and the
//! rate limit (at most one report per [`INTERVAL`] of wall time per job, but always the layer
//! boundaries and the end).

use std::time::{Duration, Instant};

use crate::events::JobProgress;
use crate::job::JobId;
use crate::plot::runner::Progress;
use crate::queue::PreparedJob;

/// Shortest wall time between two progress reports of a job (10 per second).
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Builds and rate-limits a job's progress reports.
#[derive(Debug)]
pub struct ProgressReporter {
    job_id: JobId,
    last_sent: Option<Instant>,
    /// The next report goes out whatever the time (a layer boundary).
    force: bool,
    last: Option<JobProgress>,
}

impl ProgressReporter {
    /// A reporter for `job_id`.
    pub fn new(job_id: JobId) -> Self {
        Self {
            job_id,
            last_sent: None,
            force: true,
            last: None,
        }
    }

    /// The report of `p`, if it is due at `now`.
    pub fn update(&mut self, job: &PreparedJob, p: &Progress, now: Instant) -> Option<JobProgress> {
        let report = build(&self.job_id, job, p);
        self.last = Some(report.clone());
        let due = self.force || self.last_sent.is_none_or(|t| now >= t + INTERVAL);
        due.then(|| {
            self.force = false;
            self.last_sent = Some(now);
            report
        })
    }

    /// A layer boundary: the latest report with the new layer, sent at once, and the next one
    /// is sent whatever the time.
    pub fn layer(&mut self, index: usize, now: Instant) -> Option<JobProgress> {
        self.force = true;
        let mut report = self.last.clone()?;
        report.current_layer = layer_number(index);
        self.last_sent = Some(now);
        Some(report)
    }

    /// The final report of a completed plot (its run's figures: see
    /// [`RunReport`](crate::plot::runner::RunReport)).
    pub fn finished(
        &mut self,
        job: &PreparedJob,
        drawn_mm: f64,
        pen_down_seconds: f64,
        seconds: f64,
    ) -> JobProgress {
        let total_layers = u32::try_from(job.program.layers().len()).unwrap_or(u32::MAX);
        JobProgress {
            job_id: self.job_id.clone(),
            device_id: None,
            progress: 1.0,
            current_layer: total_layers,
            total_layers,
            points_plotted: job.total_points,
            total_points: job.total_points,
            distance_mm: drawn_mm,
            eta_seconds: Some(0.0),
            pen_down_time_seconds: pen_down_seconds,
            total_time_seconds: seconds,
        }
    }
}

/// The wire's 1-based layer number.
fn layer_number(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1)
}

/// Points of a stroke drawn when the motion heads for `vertex`. The park and re-entry moves
/// carry marker values (`u32::MAX`, `u32::MAX − 1`), not vertex numbers: none of the stroke is
/// counted for them (re-entry counted the marker as 4 billion points: 100 % at once).
fn points_in_stroke(vertex: u32) -> u64 {
    if vertex == crate::plot::PARK_VERTEX || vertex == crate::plot::REENTRY_VERTEX {
        0
    } else {
        u64::from(vertex)
    }
}

/// The report of `p`. Pen-down time is the runner's count of what the board did with the pen
/// down ([`Progress::pen_down`]).
fn build(job_id: &JobId, job: &PreparedJob, p: &Progress) -> JobProgress {
    let planned = p.planned.as_secs_f64();
    let done = p.done.as_secs_f64();
    let progress = if planned > 0.0 {
        (done / planned).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let points = job
        .points_before
        .get(p.stroke as usize)
        .map_or(job.total_points, |before| {
            before + points_in_stroke(p.vertex)
        })
        .min(job.total_points);
    JobProgress {
        job_id: job_id.clone(),
        device_id: None,
        progress,
        current_layer: layer_number(p.layer),
        total_layers: u32::try_from(job.program.layers().len()).unwrap_or(u32::MAX),
        points_plotted: points,
        total_points: job.total_points,
        distance_mm: p.drawn_mm,
        eta_seconds: Some((planned - done).max(0.0)),
        pen_down_time_seconds: p.pen_down.as_secs_f64(),
        total_time_seconds: p.elapsed.as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_vertices_count_no_points() {
        assert_eq!(points_in_stroke(5), 5);
        assert_eq!(points_in_stroke(crate::plot::PARK_VERTEX), 0);
        assert_eq!(points_in_stroke(crate::plot::REENTRY_VERTEX), 0);
        assert_eq!(layer_number(0), 1, "layers count from 1");
    }
}
