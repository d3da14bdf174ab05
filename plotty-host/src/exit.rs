//! The documented exit codes of `plotty`.

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
    /// The device cannot be found or set up.
    Device,
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
            _ => Self::Failure,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        Self::from(c.code())
    }
}
