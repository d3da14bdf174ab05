//! `plotty plot FILE...`: the one-shot plot without a daemon, a thin layer over
//! [`prepare`], [`estimate`], [`runner`] and
//! [`crate::devices`] (discovery and links).
//!
//! 1. Settings (`-c`), the layer selection, then every file imported and optimised before
//!    anything moves (a bad file stops the command before the first plot): warnings and the
//!    pen-up travel saved are printed.
//! 2. `--preview OUT`: renders the plan and exits. `--estimate`: prints the planned time and
//!    exits (it plans only, whatever the device). `--estimate --verify`: also runs the plan on
//!    the simulator (never on a plotter) and prints the simulated time, its difference from the
//!    plan and the trace's largest deviation.
//! 3. Otherwise each file is plotted on the chosen device with a progress bar. Ctrl-C pauses at
//!    once (pen up) and asks whether to resume or abort; a second Ctrl-C aborts (pen up, park at
//!    home). Pen-change layers wait for Enter. After a simulated plot, the simulator's trace is
//!    compared with the plan (largest deviation, [`crate::deviation`]) and rendered with
//!    `--render`, and what the simulated board saw is printed: the times its motion queue ran
//!    empty mid-plot and the highest step rate per motor ([`board_report`]).

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, Sender};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_fw_sim::stats::StatsReport;
use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::time::Duration;

use crate::cli::PlotArgs;
use crate::devices::discover::{self, DeviceRequest, PROBE_TIMEOUT, SimulatorReason, Target};
use crate::devices::link::serial::SerialLink;
use crate::devices::link::sim::{SimLink, SimRecord};
use crate::devices::link::{DeviceError, Link};
use crate::exit::ExitCode;
use crate::import::{Color, LayerSelection, LayerSpecError, Point};
use crate::preview::{Legend, Preview, PreviewError, PreviewOptions};
use crate::settings::{
    self, ConfigError, FirmwareChoice, Overrides, RunOptions, Settings, Sources,
};
use crate::wording::counted;

use super::config::PlotConfig;
use super::estimate::{self, Estimate, Hms};
use super::prepare::{self, InputError, Prepared};
use super::program::{Program, Start};
use super::runner::{self, Control, Outcome, PauseCause, Plot, RunError, RunEvent, RunReport};

/// Sampling step of the plan-versus-trace comparison, mm.
const COMPARE_STEP_MM: f64 = 0.05;

/// Why `plotty plot` failed.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A per-run option (`--speed-pendown`, …) is out of range.
    #[error(transparent)]
    Options(#[from] settings::run::OptionsError),
    /// `--paper` names no paper size.
    #[error("--paper: {0}")]
    PaperSpec(String),
    /// `--layers` is malformed.
    #[error("--layers: {0}")]
    LayerSpec(LayerSpecError),
    /// A file cannot be plotted.
    #[error(transparent)]
    Input(#[from] InputError),
    /// An output (preview, rendering) cannot be written.
    #[error(transparent)]
    Output(#[from] PreviewError),
    /// The device cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The plot failed.
    #[error("{}: {source}", file.display())]
    Run {
        /// The file being plotted.
        file: PathBuf,
        /// Why (boxed: a device failure carries its checkpoint).
        source: Box<RunError>,
    },
    /// The plan cannot be made.
    #[error("{}: cannot plan the plot: {detail}", file.display())]
    Plan {
        /// The file.
        file: PathBuf,
        /// Why.
        detail: String,
    },
    /// The user aborted.
    #[error("{}: aborted; the pen is up and the carriage parked at home", file.display())]
    Aborted {
        /// The file being plotted.
        file: PathBuf,
    },
    /// The paper check found nothing to draw (`crate::paper::check`).
    #[error("{}: {detail}", file.display())]
    Paper {
        /// The file.
        file: PathBuf,
        /// Why.
        detail: String,
    },
    /// Writing to the terminal failed.
    #[error("cannot write the report: {0}")]
    Console(#[from] io::Error),
}

impl PlotError {
    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) | Self::Options(_) | Self::PaperSpec(_) => ExitCode::Config,
            Self::LayerSpec(_) | Self::Input(_) | Self::Paper { .. } => ExitCode::Input,
            Self::Device(_) => ExitCode::Device,
            Self::Run { source, .. } => match **source {
                RunError::Plan(_) | RunError::Config(_) => ExitCode::Failure,
                _ => ExitCode::Device,
            },
            Self::Aborted { .. } => ExitCode::Aborted,
            Self::Output(_) | Self::Plan { .. } | Self::Console(_) => ExitCode::Failure,
        }
    }
}

/// Runs `plotty plot` with `args`, writing its report to `out`.
///
/// # Errors
/// See [`PlotError`]; the first error ends the command.
pub fn run(args: &PlotArgs, out: &mut dyn Write) -> Result<(), PlotError> {
    let sources = Sources::system(Overrides {
        config: args.config.clone(),
        ..Overrides::default()
    });
    let settings = settings::load(&sources)?;
    run_with(args, &settings, out)
}

/// [`run`] with settings already loaded.
///
/// # Errors
/// See [`PlotError`].
pub fn run_with(
    args: &PlotArgs,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), PlotError> {
    if args.json {
        // Standard output carries the JSON alone; the rest of the report is not printed.
        let mut files = Vec::new();
        run_text(args, settings, &mut io::sink(), &mut |path, e, copies| {
            files.push(serde_json::json!({
                "file": path.display().to_string(),
                "estimate": e.to_json(),
                "copies": copies.count,
                "page_delay_s": copies.page_delay_s,
                "total_with_copies_s": copies.total_s(e),
            }));
        })?;
        writeln!(out, "{}", serde_json::json!({ "files": files }))?;
        return Ok(());
    }
    run_text(args, settings, out, &mut |_, _, _| {})
}

/// How many times each file is plotted (`--copies`, `--page-delay`).
#[derive(Clone, Copy, Debug)]
struct Copies {
    count: u32,
    page_delay_s: f64,
}

impl Copies {
    /// The time of every copy of a file with estimate `e`, the delays between them included.
    fn total_s(self, e: &Estimate) -> f64 {
        let n = f64::from(self.count);
        e.total.as_secs_f64() * n + self.page_delay_s * (n - 1.0)
    }
}

/// [`run_with`] printing text; `estimated` gets each file's estimate.
fn run_text(
    args: &PlotArgs,
    settings: &Settings,
    out: &mut dyn Write,
    estimated: &mut dyn FnMut(&Path, &Estimate, Copies),
) -> Result<(), PlotError> {
    let mut run = RunOptions::from_args(&args.run, args.copies, args.page_delay)?;
    run.choose_seed();
    let config = PlotConfig::for_run(settings, &run)?;
    let settings = &settings.with_run(&run)?;
    let copies = Copies {
        count: run.copies(),
        page_delay_s: run.page_delay.unwrap_or(0.0),
    };
    let selection = match &args.layers {
        Some(spec) => Some((
            LayerSelection::parse(spec).map_err(PlotError::LayerSpec)?,
            spec.as_str(),
        )),
        None => None,
    };
    let paper = match &args.paper {
        Some(text) => {
            let (size, orientation) =
                crate::paper::parse_choice_explained(text).map_err(PlotError::PaperSpec)?;
            Paper {
                size,
                orientation: orientation.unwrap_or(settings.paper.orientation),
                origin: "--paper",
            }
        }
        None => Paper {
            size: settings.paper.size.clone(),
            orientation: settings.paper.orientation,
            origin: "paper.default_size, paper.orientation",
        },
    };
    let mut files = Vec::with_capacity(args.files.len());
    let mut sheets = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let prepared = prepare::prepare(path, &config, selection.as_ref().map(|(s, t)| (s, *t)))?;
        report_prepared(&prepared, out)?;
        sheets.push(check_paper(&prepared, &paper, &config)?);
        files.push(prepared);
    }
    let several = files.len() > 1;
    let preview_options = PreviewOptions {
        size_px: args.size,
        ..PreviewOptions::default()
    };
    if let Some(target) = &args.preview {
        // Planned as for the simulator (the firmware the settings force, else the latest): a
        // preview needs no device.
        let planned_for = planned_firmware(
            &Target::Simulator {
                reason: SimulatorReason::Requested,
            },
            &config,
        );
        for (p, sheet) in files.iter().zip(sheets) {
            let path = output_path(target, &p.path, several)?;
            let e = estimate::estimate(&p.program, &config, planned_for).map_err(|e| {
                PlotError::Plan {
                    file: p.path.clone(),
                    detail: e.to_string(),
                }
            })?;
            Preview::from_drawing(&p.drawing)
                .with_sheet(sheet)
                .with_legend(Legend::from_estimate(&e))
                .write(&path, &preview_options)?;
            writeln!(
                out,
                "{}: preview written to {}",
                p.path.display(),
                path.display()
            )?;
        }
        return Ok(());
    }
    let target = if args.verify {
        // A check of the plan: never on a plotter, whatever the device settings say.
        Target::Simulator {
            reason: SimulatorReason::Requested,
        }
    } else {
        let request = DeviceRequest::parse(args.device.as_deref());
        let wanted = crate::devices::identity::Identity::of(&settings.device);
        let baud = settings.device.baud_rate;
        discover::choose(&request, &settings.device, || discover::list(&wanted, baud))?
    };
    writeln!(out, "device: {target}")?;
    let planned_for = planned_firmware(&target, &config);
    let mut estimates = Vec::with_capacity(files.len());
    for p in &files {
        let e =
            estimate::estimate(&p.program, &config, planned_for).map_err(|e| PlotError::Plan {
                file: p.path.clone(),
                detail: e.to_string(),
            })?;
        write!(out, "{}: {e}", p.path.display())?;
        if copies.count > 1 {
            writeln!(
                out,
                "{}: {} copies: {}{}",
                p.path.display(),
                copies.count,
                Hms(Duration::from_micros((copies.total_s(&e) * 1e6) as u64)),
                if copies.page_delay_s > 0.0 {
                    " with the page delays"
                } else {
                    ""
                },
            )?;
        }
        estimated(&p.path, &e, copies);
        estimates.push(e);
    }
    if args.estimate && !args.verify {
        return Ok(());
    }
    let console = Console::start()?;
    // `--estimate --verify` checks the plan once, however many copies there are.
    let runs = if args.estimate { 1 } else { copies.count };
    for (i, (p, e)) in files.iter().zip(estimates).enumerate() {
        for copy in 0..runs {
            if copy > 0 {
                writeln!(
                    out,
                    "{}: copy {} of {}",
                    p.path.display(),
                    copy + 1,
                    copies.count
                )?;
            }
            if i > 0 || copy > 0 {
                between_pages(&target, copies, args.realtime, &console, &p.path, out)?;
            }
            plot_one(
                p,
                e.clone(),
                planned_for,
                &target,
                &config,
                settings,
                args,
                several,
                &console,
                out,
            )?;
        }
    }
    Ok(())
}

/// Between two sheets: `--page-delay` seconds (on a plotter, or on the simulator in real time),
/// else on a plotter a prompt for the next sheet.
fn between_pages(
    target: &Target,
    copies: Copies,
    realtime: bool,
    console: &Console,
    next: &Path,
    out: &mut dyn Write,
) -> Result<(), PlotError> {
    let real = !target.is_simulator() || realtime;
    if copies.page_delay_s > 0.0 {
        if real {
            writeln!(out, "waiting {:.1} s (--page-delay)", copies.page_delay_s)?;
            std::thread::sleep(std::time::Duration::from_secs_f64(copies.page_delay_s));
        }
        return Ok(());
    }
    if !target.is_simulator() {
        console.wait_for_paper(next, out)?;
    }
    Ok(())
}

/// The firmware an estimate is made for before connecting: the simulator's, or the one the
/// settings force, else the latest.
fn planned_firmware(target: &Target, config: &PlotConfig) -> FirmwareVersion {
    match (target, config.firmware) {
        (_, FirmwareChoice::V2_8) => FirmwareVersion::LAST_V2,
        _ => FirmwareVersion::LATEST,
    }
}

/// The paper of this run and where it was set (for the warnings).
struct Paper {
    size: settings::PaperSize,
    orientation: settings::Orientation,
    origin: &'static str,
}

/// The paper check of `p` (the run's paper against its strokes and the model's travel):
/// warnings printed, an error returned; the sheet as it lies, for the preview.
fn check_paper(
    p: &Prepared,
    paper: &Paper,
    config: &PlotConfig,
) -> Result<crate::paper::Sheet, PlotError> {
    let check = crate::paper::check(
        &paper.size,
        paper.orientation,
        crate::paper::drawing_extent(&p.drawing).as_ref(),
        config.axidraw.model,
    );
    for w in &check.warnings {
        eprintln!(
            "plotty: warning: {}: {w} ({})",
            p.path.display(),
            paper.origin
        );
    }
    if let Some(e) = check.errors.first() {
        return Err(PlotError::Paper {
            file: p.path.clone(),
            detail: e.clone(),
        });
    }
    Ok(check.sheet)
}

/// Prints what the import and the optimiser did.
fn report_prepared(p: &Prepared, out: &mut dyn Write) -> io::Result<()> {
    let name = p.path.display();
    for w in &p.drawing.warnings {
        eprintln!("plotty: warning: {name}: {w}");
    }
    for l in p.program.layers().iter().filter(|l| l.height_pct.is_some()) {
        eprintln!(
            "plotty: warning: {name}: layer '{}': +H (pen height) is not applied yet; the pen goes \
             to device.pen_pos_down",
            l.name
        );
    }
    let layers = p.program.layers().len() as u64;
    writeln!(
        out,
        "{name}: {}, {}, {}; pen-up travel {:.2} m → {:.2} m ({} → {})",
        counted(layers, "layer"),
        counted(p.drawing.stroke_count() as u64, "stroke"),
        counted(p.drawing.segment_count() as u64, "segment"),
        p.optimized.before.distance_mm / 1000.0,
        p.optimized.after.distance_mm / 1000.0,
        counted(p.optimized.before.lifts as u64, "lift"),
        p.optimized.after.lifts,
    )
}

/// Where the preview or rendering of `file` goes: `target` itself for one file named `.svg` or
/// `.png`, else `target/<file stem>.svg` (the directory is created).
fn output_path(target: &Path, file: &Path, several: bool) -> Result<PathBuf, PreviewError> {
    // `out.jpg` is a file name with a format plotty cannot write, not a directory to create.
    if let Some(ext) = target.extension().and_then(|e| e.to_str())
        && !ext.eq_ignore_ascii_case("svg")
        && !ext.eq_ignore_ascii_case("png")
        && !target.is_dir()
    {
        return Err(PreviewError::UnknownFormat {
            path: target.to_path_buf(),
        });
    }
    let has_format = target
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("svg") || e.eq_ignore_ascii_case("png"));
    if has_format && !several && !target.is_dir() {
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| PreviewError::Write {
                path: target.to_path_buf(),
                source,
            })?;
        }
        return Ok(target.to_path_buf());
    }
    let (dir, ext) = if has_format && several {
        // `out.png` with several files: `out/<stem>.png`.
        let ext = target
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("svg")
            .to_ascii_lowercase();
        (target.with_extension(""), ext)
    } else {
        (target.to_path_buf(), "svg".to_owned())
    };
    std::fs::create_dir_all(&dir).map_err(|source| PreviewError::Write {
        path: dir.clone(),
        source,
    })?;
    let stem = file
        .file_stem()
        .map_or_else(|| "plot".into(), |s| s.to_string_lossy().into_owned());
    Ok(dir.join(format!("{stem}.{ext}")))
}

/// Plots one prepared file on `target`.
#[allow(clippy::too_many_arguments)]
fn plot_one(
    p: &Prepared,
    estimate: Estimate,
    planned_for: FirmwareVersion,
    target: &Target,
    config: &PlotConfig,
    settings: &Settings,
    args: &PlotArgs,
    several: bool,
    console: &Console,
    out: &mut dyn Write,
) -> Result<(), PlotError> {
    let session = runner::session_config(config, settings.device.timeout);
    let plot = Plot {
        program: &p.program,
        config,
        session,
        start: Start::Beginning,
        estimate: Some((planned_for, estimate)),
        ran_on: false,
    };
    let fail = |source| PlotError::Run {
        file: p.path.clone(),
        source: Box::new(source),
    };
    match target {
        Target::Simulator { .. } => {
            let version = match config.firmware {
                FirmwareChoice::V2_8 => SimVersion::V2_8_1,
                _ => SimVersion::V3_0_3,
            };
            let mut link = SimLink::new(version);
            if args.realtime {
                link = link.realtime();
            }
            let report = console.run(&mut link, plot, &p.program).map_err(fail)?;
            let record = link.finish();
            if report.outcome != Outcome::Completed {
                return Err(PlotError::Aborted {
                    file: p.path.clone(),
                });
            }
            report_simulated(p, &report, &record, args, several, out)?;
        }
        Target::Serial { port, .. } => {
            let version = discover::probe(port, settings.device.baud_rate, PROBE_TIMEOUT)?;
            writeln!(out, "{port}: EBB firmware {version}")?;
            let mut link = SerialLink::open(port, settings.device.baud_rate)?;
            let report = console.run(&mut link, plot, &p.program).map_err(fail)?;
            if report.outcome != Outcome::Completed {
                return Err(PlotError::Aborted {
                    file: p.path.clone(),
                });
            }
            writeln!(
                out,
                "{}: plotted in {} (plan {}); the carriage is home, motors on",
                p.path.display(),
                Hms(report.duration),
                Hms(report.estimate.total)
            )?;
        }
    }
    Ok(())
}

/// Prints the simulated time against the plan and the trace against the plan; renders the
/// trace with `--render`.
fn report_simulated(
    p: &Prepared,
    report: &RunReport,
    record: &SimRecord,
    args: &PlotArgs,
    several: bool,
    out: &mut dyn Write,
) -> Result<(), PlotError> {
    let planned = report.estimate.total.as_secs_f64();
    let simulated = report.duration.as_secs_f64();
    let diff = if planned > 0.0 {
        (simulated / planned - 1.0) * 100.0
    } else {
        0.0
    };
    let comparison = compare(&p.program, record);
    writeln!(
        out,
        "{}: simulated plot time {simulated:.1} s ({}), plan {planned:.1} s ({diff:+.2} %); \
         largest deviation between plan and trace {:.4} mm",
        p.path.display(),
        Hms(report.duration),
        comparison.deviation_mm,
    )?;
    writeln!(out, "{}: {}", p.path.display(), board_report(&record.stats))?;
    if record.trace.truncated {
        eprintln!(
            "plotty: warning: {}: the trace was too long to record in full; the comparison \
             covers its first part",
            p.path.display()
        );
    }
    if let Some(target) = &args.render {
        let path = output_path(target, &p.path, several)?;
        let options = PreviewOptions {
            size_px: args.size,
            ..PreviewOptions::default()
        };
        trace_preview(p, record).write(&path, &options)?;
        writeln!(
            out,
            "{}: simulator trace written to {}",
            p.path.display(),
            path.display()
        )?;
    }
    Ok(())
}

/// What the simulated board saw, for people: the times its motion FIFO ran empty between two
/// commands (the host did not keep it fed: the pen stood still mid-plot) and the highest step
/// rate each motor reached (the AxiDraw's limit is 25,000 steps/s).
pub fn board_report(stats: &StatsReport) -> String {
    let gaps = match stats.idle_gaps {
        0 => "the motion queue never ran empty mid-plot".to_owned(),
        1 => format!(
            "the motion queue ran empty once mid-plot ({:.3} s)",
            stats.idle_s
        ),
        n => format!(
            "the motion queue ran empty {n} times mid-plot ({:.3} s in all, longest {:.3} s)",
            stats.idle_s, stats.longest_idle_s
        ),
    };
    format!(
        "simulator: {gaps}; highest step rate motor 1 {:.0} steps/s, motor 2 {:.0} steps/s",
        stats.max_step_rate[0], stats.max_step_rate[1]
    )
}

/// How the simulator's trace compares with the plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// The larger of the two one-sided deviations (trace from plan, plan from trace), mm.
    pub deviation_mm: f64,
}

/// The largest distance between the plan's strokes and the trace's, both ways.
pub fn compare(program: &Program, record: &SimRecord) -> Comparison {
    let plan: Vec<Vec<Point>> = program.polylines().into_iter().flatten().collect();
    let trace = trace_polylines(record);
    Comparison {
        deviation_mm: crate::deviation::hausdorff_mm(&plan, &trace, COMPARE_STEP_MM),
    }
}

/// The trace's pen-down strokes as polylines in mm.
pub fn trace_polylines(record: &SimRecord) -> Vec<Vec<Point>> {
    record
        .trace
        .strokes
        .iter()
        .map(|s| s.iter().map(|p| Point::new(p.x, p.y)).collect())
        .collect()
}

/// The trace as a preview: each stroke in the colour of the layer it was drawn in.
pub fn trace_preview(p: &Prepared, record: &SimRecord) -> Preview {
    let layers = p.program.layers();
    let colors: Vec<Color> = record
        .pen_drops
        .iter()
        .map(|&tick| {
            record
                .layers
                .iter()
                .rev()
                .find(|(at, _)| *at <= tick)
                .and_then(|(_, l)| layers.get(*l))
                .map_or(Color::BLACK, |l| l.color)
        })
        .collect();
    Preview::from_polylines(
        &trace_polylines(record),
        Some(&colors),
        Some((p.drawing.page.width_mm, p.drawing.page.height_mm)),
        Some(p.drawing.travel_mm),
    )
}

/// The terminal side of a plot: Ctrl-C, answers typed at prompts, the progress bar.
///
/// Two helper threads turn the terminal into [`Control`]s: one for Ctrl-C (the first pauses,
/// the next aborts), one reading answers from stdin while a prompt is open (Enter resumes, `a`
/// aborts; a closed stdin aborts).
struct Console {
    controls_tx: Sender<Control>,
    controls: mpsc::Receiver<Control>,
    /// [`PLOTTING`], [`PROMPT`] or [`ABORTING`].
    state: Arc<AtomicU8>,
    stdin_closed: Arc<AtomicBool>,
}

/// Console state: plotting; Ctrl-C pauses.
const PLOTTING: u8 = 0;
/// Console state: a pause was asked for, or a prompt is open; Ctrl-C aborts, stdin answers.
const PROMPT: u8 = 1;
/// Console state: aborting.
const ABORTING: u8 = 2;

impl Console {
    /// Installs the Ctrl-C handler and the stdin reader.
    fn start() -> io::Result<Self> {
        let (controls_tx, controls) = mpsc::channel();
        let state = Arc::new(AtomicU8::new(PLOTTING));
        let (ready_tx, ready) = mpsc::channel();
        {
            let tx = controls_tx.clone();
            let state = state.clone();
            std::thread::Builder::new()
                .name("plotty-ctrl-c".into())
                .spawn(move || ctrl_c_loop(&tx, &state, &ready_tx))?;
        }
        ready
            .recv()
            .map_err(|_| io::Error::other("the Ctrl-C handler did not start"))??;
        let stdin_closed = Arc::new(AtomicBool::new(false));
        {
            let closed = stdin_closed.clone();
            let state = state.clone();
            let tx = controls_tx.clone();
            std::thread::Builder::new()
                .name("plotty-stdin".into())
                .spawn(move || stdin_loop(&tx, &state, &closed))?;
        }
        Ok(Self {
            controls_tx,
            controls,
            state,
            stdin_closed,
        })
    }

    /// Runs a plot with the progress bar and prompts.
    fn run<L: Link>(
        &self,
        link: &mut L,
        plot: Plot<'_>,
        program: &Program,
    ) -> Result<RunReport, RunError> {
        // Answers and Ctrl-Cs left from a previous file do not carry over.
        while self.controls.try_recv().is_ok() {}
        self.state.store(PLOTTING, Ordering::SeqCst);
        let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut on_event = |event: RunEvent| self.on_event(&bar, program, event);
        let result = runner::run(link, plot, &self.controls, &mut on_event);
        bar.finish_and_clear();
        result
    }

    fn on_event(&self, bar: &ProgressBar, program: &Program, event: RunEvent) {
        let layer_name = |l: usize| {
            program
                .layers()
                .get(l)
                .map_or_else(String::new, |x| x.name.clone())
        };
        match event {
            RunEvent::Connected { firmware } => {
                bar.println(format!("connected: EBB firmware {firmware}"));
            }
            RunEvent::Resuming {
                stored, located, ..
            } => {
                bar.println(super::locate::describe(&located, stored.as_ref()));
            }
            RunEvent::Started { planned } => {
                bar.set_length(planned.as_millis().max(1));
                bar.set_message(format!("plan {}", Hms(planned)));
            }
            RunEvent::Progress(p) => {
                bar.set_position(p.done.as_millis());
                let left =
                    Duration::from_micros(p.planned.as_micros().saturating_sub(p.done.as_micros()));
                bar.set_message(format!(
                    "layer '{}' · {} of {} · ETA {}",
                    layer_name(p.layer),
                    Hms(p.elapsed),
                    Hms(p.planned),
                    Hms(left)
                ));
            }
            RunEvent::Layer { index } => {
                if program.layers().len() > 1 {
                    bar.println(format!("layer '{}'", layer_name(index)));
                }
            }
            RunEvent::PenChange { layer } => {
                bar.suspend(|| {
                    eprintln!(
                        "pen change: the pen is up and the carriage home. Put in the pen for \
                         layer '{}', then press Enter (type a and Enter, or Ctrl-C, to abort).",
                        layer_name(layer)
                    );
                });
                self.open_prompt();
            }
            RunEvent::PowerLost => {
                bar.suspend(|| {
                    eprintln!(
                        "the motor supply dropped since the last check, however briefly: the \
                         motors may have slipped steps"
                    );
                });
            }
            RunEvent::Paused {
                cause: PauseCause::PowerLost,
                checkpoint,
            } => {
                bar.suspend(|| {
                    eprintln!(
                        "stopped with the pen up (layer '{}', stroke {}) and the motors off: \
                         check the drawing and the power supply, push the carriage into its \
                         home corner, and plot again",
                        layer_name(checkpoint.layer),
                        checkpoint.stroke + 1
                    );
                });
            }
            RunEvent::Paused { checkpoint, .. } => {
                bar.suspend(|| {
                    eprintln!(
                        "paused with the pen up (layer '{}', stroke {}). Press Enter to resume, \
                         or type a and Enter (or Ctrl-C again) to abort.",
                        layer_name(checkpoint.layer),
                        checkpoint.stroke + 1
                    );
                });
                self.open_prompt();
            }
            RunEvent::Resumed => {
                self.state.store(PLOTTING, Ordering::SeqCst);
                bar.println("resumed");
            }
            RunEvent::Aborting => {
                self.state.store(ABORTING, Ordering::SeqCst);
                bar.println("aborting: stopping, pen up");
            }
            RunEvent::Aborted => bar.println("aborted: the pen is up; parking at home"),
            RunEvent::Checkpoint { .. } | RunEvent::Power { low: false, .. } => {}
            RunEvent::Power { voltage, low: true } => {
                bar.suspend(|| {
                    eprintln!(
                        "the motor supply is low or off (QC reads {voltage}; the AxiDraw needs \
                         250 or more): check the plotter's power supply"
                    );
                });
            }
        }
    }

    /// A prompt is open: stdin answers it (or Ctrl-C aborts).
    fn open_prompt(&self) {
        if self.state.load(Ordering::SeqCst) != ABORTING {
            self.state.store(PROMPT, Ordering::SeqCst);
        }
        if self.stdin_closed.load(Ordering::SeqCst) {
            eprintln!("plotty: no one can answer (stdin is closed): aborting");
            let _ = self.controls_tx.send(Control::Abort);
        }
    }

    /// Between files on a real plotter: wait for new paper.
    fn wait_for_paper(&self, next: &Path, out: &mut dyn Write) -> Result<(), PlotError> {
        writeln!(
            out,
            "next: {}. Change the paper, then press Enter (type a and Enter, or Ctrl-C, to stop).",
            next.display()
        )?;
        out.flush()?;
        while self.controls.try_recv().is_ok() {}
        self.open_prompt();
        match self.controls.recv() {
            Ok(Control::Resume) => Ok(()),
            _ => Err(PlotError::Aborted {
                file: next.to_path_buf(),
            }),
        }
    }
}

/// Reads answers: while a prompt is open, a line that starts with `a` aborts, any other line
/// resumes. At the end of stdin an open prompt (or the next one) aborts.
fn stdin_loop(tx: &Sender<Control>, state: &AtomicU8, closed: &AtomicBool) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if state.load(Ordering::SeqCst) != PROMPT {
            continue;
        }
        let control = if line.trim().to_ascii_lowercase().starts_with('a') {
            state.store(ABORTING, Ordering::SeqCst);
            Control::Abort
        } else {
            Control::Resume
        };
        if tx.send(control).is_err() {
            return;
        }
    }
    closed.store(true, Ordering::SeqCst);
    if state.load(Ordering::SeqCst) == PROMPT {
        let _ = tx.send(Control::Abort);
    }
}

/// Turns Ctrl-C into controls: the first pauses, a second (while paused or at a prompt) aborts.
fn ctrl_c_loop(tx: &Sender<Control>, state: &AtomicU8, ready: &Sender<io::Result<()>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async {
        let mut int =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
        let _ = ready.send(Ok(()));
        while int.recv().await.is_some() {
            let control = if state.load(Ordering::SeqCst) == PLOTTING {
                state.store(PROMPT, Ordering::SeqCst);
                eprintln!("\npausing (Ctrl-C again to abort)…");
                Control::Pause
            } else {
                state.store(ABORTING, Ordering::SeqCst);
                eprintln!("\naborting…");
                Control::Abort
            };
            if tx.send(control).is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let f = Path::new("drawings/star.svg");
        assert_eq!(
            output_path(&d.join("p.png"), f, false).unwrap(),
            d.join("p.png")
        );
        assert_eq!(
            output_path(&d.join("out"), f, false).unwrap(),
            d.join("out/star.svg")
        );
        assert!(d.join("out").is_dir());
        assert_eq!(
            output_path(&d.join("r.png"), f, true).unwrap(),
            d.join("r/star.png")
        );
    }

    #[test]
    fn board_report_names_gaps_and_step_rates() {
        let mut stats = plotty_fw_sim::stats::Stats::new().report(0);
        stats.max_step_rate = [12_345.4, 8_000.0];
        assert_eq!(
            board_report(&stats),
            "simulator: the motion queue never ran empty mid-plot; highest step rate motor 1 \
             12345 steps/s, motor 2 8000 steps/s"
        );
        stats.idle_gaps = 3;
        stats.idle_s = 0.25;
        stats.longest_idle_s = 0.125;
        assert!(
            board_report(&stats).starts_with(
                "simulator: the motion queue ran empty 3 times mid-plot (0.250 s in all, \
                 longest 0.125 s);"
            ),
            "{}",
            board_report(&stats)
        );
    }

    /// Issue 10's figures: peak memory (`VmHWM`, reset through `/proc/self/clear_refs` between
    /// the phases) of `plotty plot --estimate` (import, optimisation, program, plan) and of
    /// `--preview out.png` on a random walk of `PLOTTY_MEASURE_SEGMENTS` segments (default
    /// 2,000,000; generated here, never committed), and the resident memory once everything is
    /// dropped and the heap trimmed. Run: `cargo test -p plotty-host --lib measure_memory --
    /// --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: slow, prints figures"]
    fn measure_memory_of_a_big_random_walk() {
        let segments: usize = std::env::var("PLOTTY_MEASURE_SEGMENTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2_000_000);
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("walk.svg");
        crate::testing::write_random_walk(&svg, segments).unwrap();
        let mut settings = Settings::defaults_for(dir.path());
        settings.limits.max_segments = segments + 1;
        settings.limits.max_file_bytes = u64::MAX;
        let config = PlotConfig::from_settings(&settings);
        let kib = |key: &str| -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let reset_peak = || std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let size = std::fs::metadata(&svg).unwrap().len();
        println!("random walk: {segments} segments, {size} bytes");
        println!("before: RSS {} KiB", kib("VmRSS:"));

        reset_peak();
        let prepared = prepare::prepare(&svg, &config, None).unwrap();
        let e = estimate::estimate(&prepared.program, &config, FirmwareVersion::LATEST).unwrap();
        println!(
            "estimate ({:.0} s planned): peak {} KiB",
            e.total.as_secs_f64(),
            kib("VmHWM:")
        );

        reset_peak();
        let out = dir.path().join("out.png");
        Preview::from_drawing(&prepared.drawing)
            .write(&out, &PreviewOptions::default())
            .unwrap();
        println!("preview png: peak {} KiB", kib("VmHWM:"));

        drop(prepared);
        crate::daemon::sys::trim_heap();
        println!("after, trimmed: RSS {} KiB", kib("VmRSS:"));
    }
}
