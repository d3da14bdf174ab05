//! `plotty-fw-sim`: serve the simulated EBB on a pseudo-terminal.
//!
//! `plotty-fw-sim serve` prints the device path (`/dev/pts/N`) as the first line on stdout, serves
//! until SIGINT/SIGTERM/SIGHUP (or an injected vanish fault), then writes the pen trace and prints
//! statistics on stdout. Diagnostics go to stderr, among them each time the board drops off USB
//! (`RB`, an unplug fault) and comes back on a new pty behind the same `--link`. While served, the
//! board's USB identity is published for port listings (`plotty_fw_sim::announce`).

use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};

use plotty_fw_sim::FirmwareVersion;
use plotty_fw_sim::announce::{self, PortCard};
use plotty_fw_sim::board::{Board, UsbDrop};
use plotty_fw_sim::fault::{self, FaultConfig, FaultInjector, FaultSpec};
use plotty_fw_sim::pty::{self, PtyEvent, ServeOptions, StopHandle};
use plotty_fw_sim::render::{self, RenderOptions};
use plotty_fw_sim::runner::{ClockMode, Exit};

/// A tick-exact EiBotBoard (EBB) firmware simulator.
#[derive(Debug, Parser)]
#[command(name = "plotty-fw-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a simulated board on a pseudo-terminal until SIGINT/SIGTERM.
    ///
    /// Prints the device path on the first line of stdout; open it with any program that talks
    /// EBB over a serial port. On exit writes the trace and prints statistics.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Also create a symbolic link to the device at PATH (removed on exit, and while the board
    /// is off USB). A link matching /dev/ttyACM* is in pyserial's port listing (needs root).
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
    /// Firmware version to simulate: 3.0.3, 2.8.1 or 2.6.5 (SM only, no LM).
    #[arg(long, value_name = "VERSION", default_value = "3.0.3")]
    firmware: FirmwareVersion,
    /// The board's nickname at power-on (what QT answers, and its USB serial number), as if
    /// set by an earlier ST.
    #[arg(long, value_name = "NAME")]
    nickname: Option<String>,
    /// How long the board is off USB after RB (reboot and enumeration), e.g. 2s or 500ms;
    /// wall-clock time, and as much simulated time.
    // The default is `pty::DEFAULT_REBOOT_DELAY`, written for the help text.
    #[arg(long, value_name = "TIME", default_value = "2s", value_parser = parse_delay)]
    reboot_delay: Duration,
    /// Follow the wall clock instead of running as fast as commands allow.
    #[arg(long)]
    realtime: bool,
    /// Write the pen trace as SVG to this file on exit.
    #[arg(long, value_name = "OUT.svg")]
    trace: Option<PathBuf>,
    /// Write the pen trace as PNG to this file on exit.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Leave pen-up travel out of the pictures.
    #[arg(long)]
    no_travel: bool,
    /// Pen colours, cycled per stroke (#rgb, #rrggbb or colour names), comma-separated.
    #[arg(long, value_name = "COLORS", value_delimiter = ',')]
    colors: Vec<String>,
    /// Seed of the fault injector (default: random, printed on stderr).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Inject a fault (repeatable): drop|dup|garble[-to-board|-to-host]=RATE, late=RATE:MS,
    /// reset@WHEN, vanish@WHEN, unplug[=AFTER]@WHEN (plugged back AFTER later, default 2s),
    /// button@WHEN, low-power[=V][@WHEN]; WHEN is a command count N, Xs or Xms of simulated time.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<FaultSpec>,
}

/// `--reboot-delay`: `Xs` or `Xms`.
fn parse_delay(text: &str) -> Result<Duration, String> {
    fault::parse_duration_ticks(text)
        .map(|ticks| Duration::from_micros(ticks.saturating_mul(40)))
        .ok_or_else(|| format!("{text:?} is not a time such as 2s or 500ms"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plotty-fw-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Block the stop signals before any thread exists, so every thread inherits the mask and
    // only the waiting thread below receives them.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
        .thread_block()
        .context("cannot block SIGINT/SIGTERM for the signal thread")?;

    let mut faults = FaultConfig::default();
    for spec in &args.faults {
        faults.apply(*spec);
    }
    faults.validate()?;
    let render_options = RenderOptions {
        pen_colors: if args.colors.is_empty() {
            RenderOptions::default().pen_colors
        } else {
            args.colors.clone()
        },
        show_travel: !args.no_travel,
        ..RenderOptions::default()
    };
    render_options.validate()?;
    // Open the outputs now: an unwritable path should fail before a long simulation, not after.
    let create = |path: &PathBuf| {
        File::create(path).with_context(|| format!("cannot write {}", path.display()))
    };
    let svg_file = args.trace.as_ref().map(create).transpose()?;
    let png_file = args.png.as_ref().map(create).transpose()?;

    let mut board = Board::new(args.firmware);
    if let Some(name) = &args.nickname {
        board.firmware_mut().set_nickname(name)?;
    }
    if !faults.is_empty() || args.seed.is_some() {
        let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
        eprintln!("plotty-fw-sim: fault seed {seed} (repeat with --seed {seed})");
        board.set_faults(FaultInjector::new(seed, faults));
    }
    let clock = if args.realtime {
        ClockMode::Realtime
    } else {
        ClockMode::AsFastAsPossible
    };

    let stop = StopHandle::new()?;
    let signal_stop = stop.clone();
    thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            if signals.wait().is_ok() {
                signal_stop.stop();
            }
        })
        .context("cannot start the signal thread")?;

    let options = ServeOptions {
        link: args.link.clone(),
        clock,
        reboot_delay: args.reboot_delay,
    };
    let ports_dir = announce::ports_dir();
    let mut first = true;
    let mut card: Option<PortCard> = None;
    let firmware = args.firmware;
    let exit = {
        let mut events = |event: PtyEvent<'_>| match event {
            PtyEvent::Attached { server, nickname } => {
                let device = server.link_path().unwrap_or(server.path());
                if first {
                    first = false;
                    let mut stdout = io::stdout().lock();
                    // A closed stdout is not an error: the device can still be found through
                    // --link.
                    let _ = writeln!(stdout, "{}", server.path().display());
                    let _ = stdout.flush();
                    if let Some(link) = server.link_path() {
                        eprintln!(
                            "plotty-fw-sim: linked {} -> {}",
                            link.display(),
                            server.path().display()
                        );
                    }
                    eprintln!(
                        "plotty-fw-sim: EBB firmware {firmware} on {} ({}); stop with Ctrl-C or SIGTERM",
                        server.path().display(),
                        if args.realtime {
                            "real time"
                        } else {
                            "as fast as possible"
                        },
                    );
                } else {
                    eprintln!(
                        "plotty-fw-sim: back on USB as {}{}",
                        server.path().display(),
                        server
                            .link_path()
                            .map(|l| format!(" (linked at {})", l.display()))
                            .unwrap_or_default(),
                    );
                }
                let name = String::from_utf8_lossy(nickname);
                card = match PortCard::publish(&ports_dir, device, server.path(), &name) {
                    Ok(card) => Some(card),
                    Err(e) => {
                        eprintln!(
                            "plotty-fw-sim: warning: cannot publish the USB identity in {}: {e}",
                            ports_dir.display()
                        );
                        None
                    }
                };
            }
            PtyEvent::Detached { why, off } => {
                card = None;
                let why = match why {
                    UsbDrop::Reboot => "rebooted (RB)",
                    UsbDrop::Unplug { .. } => "unplugged (injected fault)",
                };
                eprintln!(
                    "plotty-fw-sim: {why}: off USB for {:.3} s",
                    off.as_secs_f64()
                );
            }
        };
        pty::serve_board(&mut board, &options, &stop, &mut events)?
    };
    drop(card);

    let now = board.now_ticks();
    let commands = board.commands_received();
    let resets = board.resets();
    let usb_drops = board.usb_drops();
    let observer = board.into_observer();
    let report = observer.stats.report(now);
    let trace = observer.trace.finish();
    if let Some(mut file) = svg_file {
        let svg = render::to_svg(&trace, &render_options)?;
        file.write_all(svg.as_bytes())
            .and_then(|()| file.flush())
            .context("cannot write the trace SVG")?;
    }
    if let Some(mut file) = png_file {
        let png = render::to_png(&trace, &render_options)?;
        file.write_all(&png)
            .and_then(|()| file.flush())
            .context("cannot write the trace PNG")?;
    }

    let mut out = io::stdout().lock();
    let ended = match exit {
        Exit::Stopped => "stopped",
        Exit::HostClosed => "host closed the line",
        Exit::Vanished => "board vanished (injected fault)",
        // serve_board brings a detached board back; it never ends there.
        Exit::Detached(_) => "board off USB",
    };
    let _ = writeln!(out, "{ended}");
    let _ = writeln!(out, "firmware           {}", args.firmware);
    let _ = writeln!(out, "commands received  {commands}");
    if resets > 0 {
        let _ = writeln!(out, "resets             {resets} (injected)");
    }
    if usb_drops > 0 {
        let _ = writeln!(out, "USB drops          {usb_drops} (RB or unplugged)");
    }
    let _ = writeln!(out, "{report}");
    // The moves' straight-line lengths (what the host commanded); the trace's step-by-step
    // path is longer on slanted lines by the staircase of its steps.
    let _ = writeln!(
        out,
        "pen-down distance  {:.3} mm in {} strokes; pen-up travel {:.3} mm{}",
        report.pen_down_mm,
        trace.strokes.len(),
        report.pen_up_mm,
        if trace.truncated {
            " (trace truncated)"
        } else {
            ""
        },
    );
    let _ = out.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_delays_parse_and_the_default_is_the_library_one() {
        assert_eq!(parse_delay("2s"), Ok(pty::DEFAULT_REBOOT_DELAY));
        assert_eq!(parse_delay("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_delay("2").is_err());
        let cli = Cli::try_parse_from(["plotty-fw-sim", "serve"]).unwrap();
        let Command::Serve(args) = cli.command;
        assert_eq!(args.reboot_delay, pty::DEFAULT_REBOOT_DELAY);
    }
}
