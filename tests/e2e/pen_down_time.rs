//! `pen_down_time_seconds` is measured: the runner's count of the time the pen was down
//! (`Progress::pen_down`, `RunReport::pen_down`, which the daemon reports as
//! `pen_down_time_seconds`) equals the time the simulated board itself had the pen down, from
//! each lowering starting on the board to the next raise starting, with the board's own idle
//! gaps (waits for commands, none in these plots) as the only allowed difference.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::mpsc;

use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_host::devices::link::sim::SimLink;
use plotty_host::plot::runner::{self, Control, Outcome, Plot, RunEvent};
use plotty_host::plot::{PlotConfig, Start, prepare};
use plotty_host::settings::Settings;
use plotty_motion::time::Duration;

/// One firmware tick, µs.
const TICK_US: u64 = 40;

/// Plots `svg` (a file's text) on a fresh simulated board; returns the runner's pen-down time,
/// the progress reports' pen-down times in order, the board's pen-down time and its idle time.
fn plot(svg: &str) -> (Duration, Vec<Duration>, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drawing.svg");
    std::fs::write(&path, svg).unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let prepared = prepare::prepare(&path, &config, None).unwrap_or_else(|e| panic!("{e}"));
    let mut link = SimLink::new(SimVersion::V3_0_3);
    let (tx, rx) = mpsc::channel::<Control>();
    let plot = Plot {
        program: &prepared.program,
        config: &config,
        session: runner::session_config(&config, std::time::Duration::from_secs(5)),
        start: Start::Beginning,
        estimate: None,
        ran_on: false,
    };
    let mut reports = Vec::new();
    let report = runner::run(&mut link, plot, &rx, &mut |e| match e {
        RunEvent::Progress(p) => reports.push(p.pen_down),
        RunEvent::PenChange { .. } => tx.send(Control::Resume).unwrap(),
        _ => {}
    })
    .unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let raises = link.pen_raises();
    let record = link.finish();
    assert_eq!(
        record.pen_drops.len(),
        raises.len(),
        "every lowering is raised again"
    );
    let mut board_us = 0;
    for (&drop, &(raise, _)) in record.pen_drops.iter().zip(&raises) {
        let drop_us = drop * TICK_US;
        assert!(raise.as_micros() > drop_us);
        board_us += raise.as_micros() - drop_us;
    }
    let idle = Duration::from_micros((record.stats.idle_s * 1e6).round() as u64);
    (
        report.pen_down,
        reports,
        Duration::from_micros(board_us),
        idle,
    )
}

fn page(body: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200mm" height="150mm" viewBox="0 0 200 150">{body}</svg>"#
    )
}

/// Checks the runner's figure against the board's, and that progress reports count up to it.
fn check(name: &str, svg: &str) {
    let (runner, reports, board, idle) = plot(svg);
    let diff = runner.as_micros().abs_diff(board.as_micros());
    eprintln!(
        "{name}: pen down {:.4} s by the runner, {:.4} s on the board (idle {:.4} s)",
        runner.as_secs_f64(),
        board.as_secs_f64(),
        idle.as_secs_f64()
    );
    assert!(
        runner <= board && diff <= idle.as_micros() + TICK_US,
        "{name}: the runner counts {runner:?} pen down, the board had it down {board:?} \
         (idle {idle:?})"
    );
    assert!(!reports.is_empty(), "{name}: no progress");
    assert!(
        reports.windows(2).all(|w| w[0] <= w[1]),
        "{name}: pen-down time went back"
    );
    assert!(reports.last().copied().unwrap() <= runner);
}

#[test]
fn one_stroke() {
    check(
        "square",
        &page(r#"<path d="M10 10 H60 V60 H10 Z" fill="none" stroke="black"/>"#),
    );
}

#[test]
fn many_strokes_with_travel_between() {
    let mut body = String::new();
    for i in 0..12 {
        let y = 10.0 + f64::from(i) * 9.0;
        body.push_str(&format!(
            r#"<path d="M{} {y} h{}" stroke="black"/><circle cx="150" cy="{y}" r="3" fill="none" stroke="black"/>"#,
            10.0 + f64::from(i),
            40.0 + f64::from(i) * 5.0,
        ));
    }
    check("lines and circles", &page(&body));
}
