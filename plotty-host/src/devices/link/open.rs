//! The device task's link: the simulator or a serial port behind one type, and how to open it
//! again after it failed (a vanished port is reopened for the next run, a simulator board that
//! "vanished" is replaced by a freshly powered one). A port chosen by `device.nickname` or
//! `device.serial` is checked at every opening to still have that board behind it, so that a
//! re-plug that moved the plotters never sends one's job to the other.

use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_fw_sim::fault::{FaultConfig, FaultInjector};
use plotty_motion::time::Instant;

use crate::devices::identity::{self, Identity};
use crate::devices::link::serial::SerialLink;
use crate::devices::link::sim::SimLink;
use crate::devices::link::{DeviceError, Link};
use crate::settings::FirmwareChoice;

/// How the simulator's time passes in the daemon.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SimPace {
    /// Paced to the wall clock: a simulated plot takes as long as a real one (the default: the
    /// simulator stands in for a plotter, so pause and abort have time to act).
    #[default]
    Realtime,
    /// As fast as the machine runs it (tests).
    Fast,
}

/// How to open a device's link.
#[derive(Clone, Debug)]
pub enum Opener {
    /// The built-in simulator.
    Simulator {
        /// Its firmware.
        version: SimVersion,
        /// Its pace.
        pace: SimPace,
        /// Faults every board opened gets (tests: a board that vanishes mid-plot).
        faults: Option<FaultConfig>,
    },
    /// A serial port.
    Serial {
        /// The port's path.
        port: String,
        /// Baud rate.
        baud: u32,
        /// The board that must be behind it (`device.nickname`/`device.serial`; none set: any).
        identity: Identity,
    },
}

/// An open link of either kind.
pub enum AnyLink {
    /// The simulator.
    Sim(Box<SimLink>),
    /// A serial port.
    Serial(Box<SerialLink>),
}

impl Opener {
    /// The simulator for the firmware choice of the settings.
    pub fn simulator(firmware: FirmwareChoice, pace: SimPace) -> Self {
        let version = match firmware {
            FirmwareChoice::V2_8 => SimVersion::V2_8_1,
            FirmwareChoice::Auto | FirmwareChoice::V3_0 => SimVersion::V3_0_3,
        };
        Self::Simulator {
            version,
            pace,
            faults: None,
        }
    }

    /// The device id (`simulator`, or the port's path).
    pub fn device_id(&self) -> String {
        match self {
            Self::Simulator { .. } => "simulator".into(),
            Self::Serial { port, .. } => port.clone(),
        }
    }

    /// The serial port's path (`None`: the simulator).
    pub fn port(&self) -> Option<&str> {
        match self {
            Self::Simulator { .. } => None,
            Self::Serial { port, .. } => Some(port),
        }
    }

    /// `simulator` or `axidraw`.
    pub fn device_type(&self) -> &'static str {
        match self {
            Self::Simulator { .. } => "simulator",
            Self::Serial { .. } => "axidraw",
        }
    }

    /// Opens the link (blocking for a serial port).
    ///
    /// # Errors
    /// The port cannot be opened.
    pub fn open(&self) -> Result<AnyLink, DeviceError> {
        match self {
            Self::Simulator {
                version,
                pace,
                faults,
            } => {
                let mut link = SimLink::new(*version);
                if let Some(f) = faults {
                    link = link.with_faults(FaultInjector::new(1, f.clone()));
                }
                let link = match pace {
                    SimPace::Realtime => link.realtime(),
                    SimPace::Fast => link,
                };
                Ok(AnyLink::Sim(Box::new(link)))
            }
            Self::Serial {
                port,
                baud,
                identity,
            } => {
                let mut link = SerialLink::open(port, *baud)?;
                if identity.is_set() {
                    identity::verify(
                        &mut link,
                        port,
                        identity,
                        crate::devices::discover::find_boards,
                    )?;
                }
                Ok(AnyLink::Serial(Box::new(link)))
            }
        }
    }
}

impl Link for AnyLink {
    fn name(&self) -> &str {
        match self {
            Self::Sim(l) => l.name(),
            Self::Serial(l) => l.name(),
        }
    }

    fn now(&mut self) -> Instant {
        match self {
            Self::Sim(l) => l.now(),
            Self::Serial(l) => l.now(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        match self {
            Self::Sim(l) => l.write(bytes),
            Self::Serial(l) => l.write(bytes),
        }
    }

    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        match self {
            Self::Sim(l) => l.read(out),
            Self::Serial(l) => l.read(out),
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        match self {
            Self::Sim(l) => l.wait(deadline),
            Self::Serial(l) => l.wait(deadline),
        }
    }

    fn is_simulated(&self) -> bool {
        match self {
            Self::Sim(l) => l.is_simulated(),
            Self::Serial(l) => l.is_simulated(),
        }
    }

    fn pen_servo(&self) -> Option<u16> {
        match self {
            Self::Sim(l) => l.pen_servo(),
            Self::Serial(l) => l.pen_servo(),
        }
    }

    fn layer_reached(&mut self, index: usize) {
        match self {
            Self::Sim(l) => l.layer_reached(index),
            Self::Serial(l) => l.layer_reached(index),
        }
    }
}
