//! The README's quick start, in process: `plotty plot examples/*.svg --device sim --render OUT`
//! (import, optimise, plan, plot on the built-in simulator, compare the trace with the plan,
//! render the trace), timed in CPU time of the process. Before issue 13 the plan-versus-trace
//! check (`deviation::hausdorff_mm`) took 85 % of it.
//!
//! Times are CPU time (user + system, `getrusage`), not wall-clock time: the machines this runs
//! on are shared. Budget (issue 13): well under a second.
//!
//! Run: `cargo bench --bench quickstart` (5 runs, the fastest and the median printed); with
//! `--test`, or as `cargo test --bench quickstart`, one run.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot run should stop loudly

#[path = "quick.rs"]
mod quick;

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use plotty_host::cli::PlotArgs;

/// CPU time used so far by the whole process.
fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage works on Linux");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// The example drawings of the quick start, in name order (as the shell expands the glob).
fn examples() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    files
}

fn main() {
    let runs = if quick::quick() { 1 } else { 5 };
    let files = examples();
    let out_dir = tempfile::tempdir().expect("a temporary directory");
    let render = out_dir.path().join("out");
    let mut command_line: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    command_line.extend(["--device", "sim", "--render"].map(std::ffi::OsStr::new));
    command_line.push(render.as_os_str());
    let args = PlotArgs::parse_from(command_line).expect("a plot command line");
    let settings = plotty_host::settings::Settings::defaults_for(out_dir.path());
    let mut report = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..runs {
        report.clear();
        let start = cpu_time();
        plotty_host::plot::command::run_with(&args, &settings, &mut report)
            .expect("the quick start plots");
        totals.push(cpu_time() - start);
    }
    totals.sort();
    let text = String::from_utf8_lossy(&report);
    for line in text
        .lines()
        .filter(|l| l.contains("simulated plot time") || l.contains("simulator: the motion queue"))
    {
        println!("{line}");
    }
    println!(
        "quickstart/plot_examples_sim_render: {} files, CPU fastest {:.3} s, median {:.3} s \
         ({runs} runs)",
        files.len(),
        totals[0].as_secs_f64(),
        totals[totals.len() / 2].as_secs_f64()
    );
}
