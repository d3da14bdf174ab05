//! The documented exit codes of `plotty`: 0 success, 1 any other failure, 2 configuration (and
//! command-line usage), 3 database, 4 listening socket or PID file, 5 device, 6 unusable input
//! (`plotty plot`: not an SVG, nothing to draw, a layer spec that names no layer), 7 aborted by
//! the user (`plotty plot`).

/// How `plotty` ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExitCode {
    /// Done, or a clean shutdown.
    Success,
    /// Any other failure.
    Failure,
    /// The configuration (file, environment, command line) is unusable. Also clap's usage errors.
    Config,
    /// The database cannot be opened, checked or migrated.
    Database,
    /// The listening socket or the PID file cannot be claimed.
    Bind,
    /// The device cannot be found or set up, or failed during a plot.
    Device,
    /// The input (an SVG file or a layer selection) cannot be plotted: `plotty plot` says what
    /// is wrong with it.
    Input,
    /// `plotty plot` was aborted by the user (the pen is up and the carriage parked).
    Aborted,
}

impl ExitCode {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Config => 2,
            Self::Database => 3,
            Self::Bind => 4,
            Self::Device => 5,
            Self::Input => 6,
            Self::Aborted => 7,
        }
    }

    /// The code for a process exit status (unknown values are `Failure`).
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Success,
            2 => Self::Config,
            3 => Self::Database,
            4 => Self::Bind,
            5 => Self::Device,
            6 => Self::Input,
            7 => Self::Aborted,
            _ => Self::Failure,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        Self::from(c.code())
    }
}
