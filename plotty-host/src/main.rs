//! The `plotty` binary: parse the command line, run the library, print, map errors to exit codes.
//!
//! Exit codes: 0 success, 1 failure, 2 configuration (and command-line usage), 3 database,
//! 4 listening socket or PID file, 5 device, 6 unusable input (`plotty plot`), 7 aborted by the
//! user (`plotty plot`). A closed stdout (`plotty check config | head -1`) is not an error.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use plotty_host::app::{self, Outcome};
use plotty_host::cli::Cli;
use plotty_host::daemon;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0; usage errors to stderr with code 2.
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    match app::run(cli) {
        Ok(Outcome::Report { report, exit, json }) => {
            let mut out = io::stdout().lock();
            let written = if json {
                writeln!(out, "{}", report.to_json())
            } else {
                report.write_to(&mut out)
            };
            match written.and_then(|()| out.flush()) {
                Ok(()) => exit.into(),
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit.into(),
                Err(e) => fail(&anyhow::Error::from(e), 1),
            }
        }
        Ok(Outcome::Daemon(daemon::Outcome::Detached { pid, address })) => {
            let mut out = io::stdout().lock();
            let _ = writeln!(
                out,
                "plotty daemon started: PID {pid}, listening on {address}"
            );
            ExitCode::SUCCESS
        }
        Ok(Outcome::Text(text)) => {
            let mut out = io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(&anyhow::Error::from(e), 1),
            }
        }
        Ok(Outcome::Client(exit)) => exit.into(),
        Ok(Outcome::Daemon(daemon::Outcome::Stopped) | Outcome::Plotted | Outcome::Generated) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = e.exit_code().code();
            fail(&anyhow::Error::from(e), code)
        }
    }
}

/// Prints the error and every cause that its message does not already include.
fn fail(e: &anyhow::Error, code: u8) -> ExitCode {
    let mut err = io::stderr().lock();
    let mut shown = e.to_string();
    let _ = writeln!(err, "plotty: {shown}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            let _ = writeln!(err, "  caused by: {text}");
            shown.push_str(&text);
        }
    }
    ExitCode::from(code)
}
