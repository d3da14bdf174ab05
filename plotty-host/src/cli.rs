//! The command line, as clap derive types only. Validation and merging with the environment and the
//! config file happen in [`crate::settings`]; nothing else reads these types.
//!
//! Defaults are shown in the help but not set here, so that a value given on the command line can
//! be told apart from one that was not (the command line overrides the config file only when
//! given).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::logging::LogLevel;

/// plotty: a job queue and daemon for AxiDraw pen plotters.
#[derive(Debug, Parser)]
#[command(name = "plotty", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `plotty` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: job queue, devices and the WebSocket/HTTP API.
    ///
    /// Exit codes: 0 after a clean shutdown, 2 configuration, 3 database, 4 listening socket or
    /// PID file, 5 device, 1 anything else.
    Daemon(DaemonArgs),
    /// Check the configuration, the database or the device; exit 0 only when all is well.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Write a commented config file (`init`), or show the settings the daemon would run with
    /// and where each comes from (`show`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Submit SVG files to the running daemon; prints the new jobs' ids, one per line.
    Add(AddArgs),
    /// List the jobs in queue order (priority, then submission).
    #[command(alias = "queue")]
    Jobs(JobsArgs),
    /// Show one job: state, layers, estimates against the time taken, history.
    Job(JobIdArgs),
    /// The daemon, the device and the queue on one screen.
    Status(ClientArgs),
    /// Send a READY job added without --start to the plotter (it plots as soon as the plotter is
    /// free; put the paper in first).
    Start(JobIdArgs),
    /// Pause a running plot (it stops at a safe point with the pen up).
    Pause(JobIdArgs),
    /// Continue a paused plot (a READY job is started with `start`).
    Resume(JobIdArgs),
    /// Stop a job wherever it is, a running plot included.
    Abort(JobIdArgs),
    /// Take a job that has not started plotting out of the queue.
    Cancel(JobIdArgs),
    /// Queue a failed or aborted job again (as a new job; prints its id).
    Retry(JobIdArgs),
    /// Delete a finished job (COMPLETED, ABORTED or FAILED) and its files.
    Delete(JobIdArgs),
    /// Move the plotter by hand: home, walk, pen-up, pen-down, toggle, align, motors-on|off; or
    /// show its firmware version; list the boards connected and name them (list, name).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Watch the daemon live: job states, plot progress, device and system status.
    ///
    /// Reconnects (with a growing pause, up to 10 s) when the daemon restarts; Ctrl-C ends it.
    Monitor(MonitorArgs),
    /// Plot SVG files now, without the daemon: on the AxiDraw, or on the built-in simulator when
    /// none is connected (it says so).
    ///
    /// Imports and optimises each file (printing warnings and the pen-up travel saved), then
    /// plots it with a progress bar. Ctrl-C pauses at once with the pen up and asks whether to
    /// resume or abort; a second Ctrl-C aborts (pen up, carriage home). Layers marked `!` stop
    /// for a pen change and wait for Enter. Several files are plotted one after another.
    ///
    /// Exit codes: 0 plotted, 2 configuration, 5 device, 6 unusable input, 7 aborted,
    /// 1 anything else.
    Plot(PlotArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `plotty completions bash > ~/.local/share/bash-completion/completions/plotty`;
    /// zsh: into a directory of `$fpath` as `_plotty`; fish:
    /// `~/.config/fish/completions/plotty.fish`.
    Completions(CompletionsArgs),
    /// Write the man pages: `plotty.1` to standard output, or with DIR the pages of plotty and
    /// every subcommand (`plotty-add.1`, …) into DIR (e.g. ~/.local/share/man/man1).
    Man(ManArgs),
}

/// `plotty completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `plotty man [DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write every page into (created if missing) [default: plotty.1 to standard
    /// output].
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How to reach the daemon (every client command).
#[derive(Clone, Debug, Args)]
pub struct ClientArgs {
    /// The daemon's address [default: websocket.host of the config, else localhost].
    #[arg(long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// The daemon's port [default: from the workspace's daemon.json, else websocket.port, else 8766].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// API key, when the daemon requires one [default: websocket.api_key of the config].
    #[arg(
        long,
        value_name = "KEY",
        env = "PLOTTY_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Print the daemon's JSON instead of text (one message per line for `monitor`).
    #[arg(long)]
    pub json: bool,
    /// Where the daemon's configuration is (to find its port and key).
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `plotty add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// SVG files to plot; `-` reads one from standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Job name [default: the file name; `stdin.svg` for `-`].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Layers to plot: numbers, ranges and names, e.g. `1,3-4,outline` [default: all].
    #[arg(long, value_name = "SPEC")]
    pub layers: Option<String>,
    /// Paper size: A0–A6, Letter, Legal, Tabloid, … or WIDTHxHEIGHT in mm, optionally with
    /// `portrait` or `landscape` (`'A4 landscape'`) [default: paper.default_size, paper.orientation].
    #[arg(long, value_name = "SIZE")]
    pub paper: Option<String>,
    /// Queue priority; higher runs first.
    #[arg(
        long,
        value_name = "P",
        allow_negative_numbers = true,
        default_value_t = 0
    )]
    pub priority: i32,
    /// Start plotting as soon as the job is ready and the plotter is free [default: the job waits
    /// at READY for `plotty start ID`].
    #[arg(long)]
    pub start: bool,
    /// Plot on this plotter only (its name in the daemon's `devices`) [default: any plotter
    /// that meets the job's `--tag`s and `--device-model`].
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Plot only on a plotter with this tag (a pen colour, a paper size); repeat for several,
    /// all needed.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Plot only on a plotter configured as this AxiDraw model (1–7). Not axicli's `--model`,
    /// which tells the plan what machine to expect.
    #[arg(long, value_name = "N")]
    pub device_model: Option<u8>,
    /// Queue N copies: N jobs of the same file and options (axicli's --copies).
    #[arg(long, value_name = "N", alias = "copies", help_heading = AXICLI)]
    pub copies: Option<u32>,
    /// Seconds the plotter waits after its previous plot before starting this job (each copy),
    /// to change the sheet (axicli's --page_delay).
    #[arg(
        long,
        value_name = "SECONDS",
        alias = "page_delay",
        help_heading = AXICLI,
        allow_negative_numbers = true
    )]
    pub page_delay: Option<f64>,
    /// The job's plot options.
    #[command(flatten)]
    pub run: RunArgs,
    /// The daemon.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The heading of the axicli-style options in the help.
const AXICLI: &str = "AxiDraw options (axicli's; `--speed_pendown` spellings work too)";

/// The AxiDraw software's per-run options (axicli's names, `-` or `_`), for `plot` and `add`:
/// they override the configuration for this plot or job only, and are checked by the same
/// rules as the config file's `device` keys.
#[derive(Clone, Debug, Default, Args)]
pub struct RunArgs {
    /// Pen-down speed, percent of the maximum, 1–110 [default: device.speed_pendown, 25].
    #[arg(long, value_name = "PCT", alias = "speed_pendown", help_heading = AXICLI)]
    pub speed_pendown: Option<f64>,
    /// Pen-up speed, percent, 1–200 [default: device.speed_penup, 75].
    #[arg(long, value_name = "PCT", alias = "speed_penup", help_heading = AXICLI)]
    pub speed_penup: Option<f64>,
    /// Acceleration, percent, 1–110 [default: device.accel, 75].
    #[arg(long, value_name = "PCT", help_heading = AXICLI)]
    pub accel: Option<f64>,
    /// Pen-up height, percent, 0–100 [default: device.pen_pos_up, 60].
    #[arg(long, value_name = "PCT", alias = "pen_pos_up", help_heading = AXICLI)]
    pub pen_pos_up: Option<f64>,
    /// Pen-down height, percent, 0–100 [default: device.pen_pos_down, 30].
    #[arg(long, value_name = "PCT", alias = "pen_pos_down", help_heading = AXICLI)]
    pub pen_pos_down: Option<f64>,
    /// Pen raising speed, percent, 1–200 [default: device.pen_rate_raise, 75].
    #[arg(long, value_name = "PCT", alias = "pen_rate_raise", help_heading = AXICLI)]
    pub pen_rate_raise: Option<f64>,
    /// Pen lowering speed, percent, 1–200 [default: device.pen_rate_lower, 50].
    #[arg(long, value_name = "PCT", alias = "pen_rate_lower", help_heading = AXICLI)]
    pub pen_rate_lower: Option<f64>,
    /// AxiDraw model: 1–7 as axicli, or a name: V3/A4, A3 (SE/A3), XLX, MiniKit, A1, A2, B6
    /// [default: device.model, 1].
    #[arg(long, value_name = "MODEL", help_heading = AXICLI)]
    pub model: Option<String>,
    /// Stroke order as axicli's levels: 0 file order with adjoining paths connected, 1–3 reorder
    /// and reverse for the least pen-up travel (plotty always picks directions), 4 none (as
    /// --keep-order) [default: 2].
    #[arg(long, value_name = "0-4", help_heading = AXICLI, conflicts_with = "keep_order")]
    pub reordering: Option<u8>,
    /// Plot strokes in file order and direction (no reordering, joining or merging; axicli's
    /// --reordering 4).
    #[arg(long)]
    pub keep_order: bool,
    /// Start each closed path at a random vertex, so their touch-down marks do not line up.
    #[arg(long, alias = "random_start", help_heading = AXICLI)]
    pub random_start: bool,
    /// Turn a portrait page (taller than wide) a quarter turn counter-clockwise to fit the
    /// landscape travel, as axicli does by default [default: off, the page is placed as drawn].
    #[arg(long, alias = "auto_rotate", help_heading = AXICLI, overrides_with = "no_rotate")]
    pub auto_rotate: bool,
    /// Place the page as drawn, never turned (axicli's --no_rotate; plotty's default).
    #[arg(long, alias = "no_rotate", help_heading = AXICLI, overrides_with = "auto_rotate")]
    pub no_rotate: bool,
    /// Constant-speed pen-down moves (no acceleration visible in the line; slower).
    #[arg(long, alias = "const_speed", help_heading = AXICLI)]
    pub const_speed: bool,
}

/// `plotty jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in these states (comma-separated, e.g. `QUEUED,PLOTTING`).
    #[arg(long, value_name = "STATES")]
    pub state: Option<String>,
    /// At most this many.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// The daemon.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Commands about one job.
#[derive(Debug, Args)]
pub struct JobIdArgs {
    /// The job's id (as printed by `plotty add` and `plotty jobs`), or its start when no other
    /// job's id starts the same way.
    #[arg(value_name = "ID")]
    pub id: String,
    /// The daemon.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `plotty device …`: allowed while the plotter is idle and while its job is paused (the
/// resume then starts from where the carriage really is).
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Move to the home position (pen up first). With the motors off, the carriage's place
    /// becomes home: push it into the home corner (top left) first.
    Home(DeviceArgs),
    /// Move by X and Y millimetres with the pen up (like axicli's walk_mmx/walk_mmy); the
    /// motors must be on and the move must stay inside the travel.
    Walk(WalkArgs),
    /// Raise the pen.
    PenUp(DeviceArgs),
    /// Lower the pen.
    PenDown(DeviceArgs),
    /// Raise the pen if it is down, else lower it (axicli's toggle).
    Toggle(DeviceArgs),
    /// Pen up and motors off, to line up paper and pen by hand (axicli's align mode); then
    /// push the carriage home and run `plotty device home`.
    Align(DeviceArgs),
    /// Switch the motors on (they hold the carriage).
    MotorsOn(DeviceArgs),
    /// Switch the motors off (the carriage can then be moved by hand).
    MotorsOff(DeviceArgs),
    /// Show the firmware version of the plotter.
    Version(DeviceArgs),
    /// List the AxiDraws connected to this computer: port, USB serial number, nickname and
    /// firmware version. Talks to the boards directly, not through the daemon: a board the
    /// daemon has open shows as busy.
    ///
    /// Boards are found by USB id 04D8:FD92 (and, when PLOTTY_FW_SIM_PORTS is set, the boards
    /// `plotty-fw-sim serve` announces there). Exit codes: 0 listed (also when none is
    /// connected), 5 the ports cannot be listed.
    List(DeviceListArgs),
    /// Give a board a nickname (stored in its flash with the firmware's ST command, at most 16
    /// letters, digits and signs such as - or _; firmware 2.5.4 and later), so that
    /// `device.nickname` finds it whatever port it is plugged into.
    ///
    /// The board is the one on --port, the one named --nickname, or the only one connected.
    /// Stop the daemon first if it has the board open. The board reports the new name as its
    /// USB serial number once it restarts (unplug it or switch it off and on). Exit codes: 0
    /// named, 2 the name is not valid, 5 no such board, several boards, or the board refused.
    Name(DeviceNameArgs),
}

/// `plotty device list`.
#[derive(Debug, Args)]
pub struct DeviceListArgs {
    /// Print one JSON object: `boards`, a list of `port`, `serial`, `nickname` (empty: none
    /// set; null: not read), `firmware_version`, `problem` (why the board could not be asked).
    #[arg(long)]
    pub json: bool,
}

/// `plotty device name NEW`.
#[derive(Debug, Args)]
pub struct DeviceNameArgs {
    /// The new nickname.
    #[arg(value_name = "NEW")]
    pub new: String,
    /// The board on this port.
    #[arg(long, value_name = "PORT", conflicts_with = "nickname")]
    pub port: Option<String>,
    /// The board that has this nickname now.
    #[arg(long, value_name = "OLD")]
    pub nickname: Option<String>,
    /// Print one JSON object (`port`, `nickname`, `previous`) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// `plotty device walk X Y`.
#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Millimetres along x (right is positive).
    #[arg(value_name = "X", allow_negative_numbers = true)]
    pub x_mm: f64,
    /// Millimetres along y (away from home is positive).
    #[arg(value_name = "Y", allow_negative_numbers = true)]
    pub y_mm: f64,
    /// The device and the daemon.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Options of `plotty device …`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The device: its name (`devices`, `device.name`), else its id (`simulator`, the port)
    /// [default: the only one attached].
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// The daemon.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `plotty monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Channels to watch, comma-separated: jobs, devices (or device), system, all.
    #[arg(long, value_name = "LIST", default_value = "jobs,devices,system")]
    pub channels: String,
    /// Only messages about this job on the jobs channel.
    #[arg(long, value_name = "ID")]
    pub job: Option<String>,
    /// Keep trying when no daemon is listening yet, instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// The daemon.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `plotty plot FILE...`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// SVG files to plot, in order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Where to plot: `auto` (the first AxiDraw found by USB id, else the simulator), `axidraw`
    /// (an AxiDraw, an error when none is found), `sim` (the built-in simulator) or a serial port
    /// such as /dev/ttyACM0 [default: device.type and device.port of the config].
    #[arg(long, value_name = "auto|axidraw|sim|PORT")]
    pub device: Option<String>,
    /// Render what will be drawn (pen-down in layer colours, pen-up travel dashed) to OUT.svg
    /// or OUT.png and exit without plotting. With several files, OUT is a directory.
    #[arg(long, value_name = "OUT", conflicts_with_all = ["estimate", "render", "realtime"])]
    pub preview: Option<PathBuf>,
    /// Print the planned plot time (per layer) and exit: plans only, moves nothing.
    #[arg(long)]
    pub estimate: bool,
    /// With --estimate: also run the plan on the built-in simulator (never on a plotter) and
    /// print the simulated time, its difference from the plan and the largest deviation of the
    /// simulated pen from the plan. Takes as long as simulating the plot does.
    #[arg(long, requires = "estimate")]
    pub verify: bool,
    /// With --estimate: print the estimates as JSON on standard output (one object with a
    /// `files` list; times in seconds, lengths in mm) and nothing else there.
    #[arg(long, requires = "estimate", conflicts_with = "verify")]
    pub json: bool,
    /// Plot the files N times each (axicli's --copies; Enter between copies on a plotter, for
    /// the next sheet, unless --page-delay is given).
    #[arg(long, value_name = "N", alias = "copies", help_heading = AXICLI)]
    pub copies: Option<u32>,
    /// Seconds to wait between copies instead of waiting for Enter (axicli's --page_delay).
    #[arg(
        long,
        value_name = "SECONDS",
        alias = "page_delay",
        help_heading = AXICLI,
        allow_negative_numbers = true
    )]
    pub page_delay: Option<f64>,
    /// The plot options.
    #[command(flatten)]
    pub run: RunArgs,
    /// Plot only these layers: numbers (`1`), ranges (`2-4`) and names, comma-separated.
    #[arg(long, value_name = "SPEC")]
    pub layers: Option<String>,
    /// Paper size: A0–A6, Letter, Legal, Tabloid, … or WIDTHxHEIGHT in mm, optionally with
    /// `portrait` or `landscape` (`'A4 landscape'`), checked against the drawing and the travel
    /// [default: paper.default_size, paper.orientation].
    #[arg(long, value_name = "SIZE")]
    pub paper: Option<String>,
    /// After a simulated plot, render the simulator's pen trace (like --preview) to OUT.svg,
    /// OUT.png, or into the directory DIR (one `<file>.svg` per input).
    #[arg(long, value_name = "OUT|DIR")]
    pub render: Option<PathBuf>,
    /// Longest side of a PNG --preview or --render, pixels (16–8192) [default: 4 pixels per mm].
    #[arg(long, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(16..=8192))]
    pub size: Option<u32>,
    /// Run the simulator at the speed of the real machine instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Configuration file [default: $XDG_CONFIG_HOME/plotty/config.yaml; env: PLOTTY_CONFIG].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl PlotArgs {
    /// The options of `plotty plot ARGS…` as the command line gives them (for benchmarks and
    /// tests that run the plot command in-process, without naming every field).
    ///
    /// # Errors
    /// The arguments are not a valid `plotty plot` command line.
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        let all = ["plotty", "plot"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .chain(args.into_iter().map(Into::into));
        match Cli::try_parse_from(all)?.command {
            Command::Plot(a) => Ok(a),
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                "not a `plotty plot` command line",
            )),
        }
    }
}

/// `plotty check …`.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Load the configuration as the daemon would and report every problem with its fix.
    Config(CheckArgs),
    /// Open the database (without changing it) and report its schema, integrity and contents.
    Database(CheckArgs),
    /// Look for the plotter and ask it for its firmware version.
    Device(CheckArgs),
}

/// `plotty config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write the example configuration (every key with its default and a comment) to
    /// $XDG_CONFIG_HOME/plotty/config.yaml, or to PATH; an existing file is kept unless --force.
    Init(ConfigInitArgs),
    /// Show the settings `plotty daemon` would run with (defaults, config file, environment,
    /// command line merged) and where each value comes from; the API key is masked.
    Show(ConfigShowArgs),
}

/// `plotty config init`.
#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    /// Where to write it [default: $XDG_CONFIG_HOME/plotty/config.yaml].
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `plotty config show`: the `plotty daemon` options that choose settings, so that the output
/// is what `plotty daemon` with the same options runs with.
#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// As `plotty daemon --host`.
    #[arg(long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// As `plotty daemon --port`.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// As `plotty daemon --log-level`.
    #[arg(long, value_name = "LEVEL", ignore_case = true)]
    pub log_level: Option<LogLevel>,
    /// Print one JSON object (`config_file`, and `settings`: a list of `key`, `value`, `origin`
    /// default|file|env|command line, with `file` and `line`, `variable` or `option`).
    #[arg(long)]
    pub json: bool,
}

/// The options of every `plotty check` command.
#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    /// Where the configuration comes from.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the report as one JSON object (`subject`, `passed`, `problems`, and `items` with
    /// `status` ok|warning|problem, `what`, `detail`, `fix`) instead of lines of text.
    #[arg(long)]
    pub json: bool,
}

/// Where the configuration comes from (for the `check` and client commands).
#[derive(Clone, Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/plotty/config.yaml; env: PLOTTY_CONFIG].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Workspace directory [default: $XDG_DATA_HOME/plotty/workspace; env: PLOTTY_WORKSPACE].
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// `plotty daemon` (the manual's options; `-h` is `--host`, so help is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct DaemonArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Bind address of the WebSocket/HTTP server [default: localhost].
    #[arg(short = 'h', long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// Port of the WebSocket/HTTP server; 0 picks a free port [default: 8766].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Working directory for jobs, database and logs, created if missing
    /// [default: $XDG_DATA_HOME/plotty/workspace; env: PLOTTY_WORKSPACE].
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Logging verbosity, overrides the config file [default: info].
    #[arg(short = 'l', long, value_name = "LEVEL", ignore_case = true)]
    pub log_level: Option<LogLevel>,
    /// Configuration file [default: $XDG_CONFIG_HOME/plotty/config.yaml; env: PLOTTY_CONFIG].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PID file, written once the port is bound, locked while running, removed on exit.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Run in the background; returns once the daemon is listening and prints its PID.
    #[arg(short = 'd', long)]
    pub daemonize: bool,
    /// Run as this user after binding the port (requires root) [default: current user].
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Run as this group after binding the port (requires root) [default: the user's group].
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Process priority, -20 (highest) to 19 (lowest); below 0 requires root [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub nice: Option<i32>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn daemon_short_flags_follow_the_manual() {
        let cli = Cli::try_parse_from([
            "plotty",
            "daemon",
            "-h",
            "0.0.0.0",
            "-p",
            "0",
            "-w",
            "ws",
            "-l",
            "WARNING",
            "-c",
            "c.yaml",
            "-d",
            "-u",
            "plotty",
            "-g",
            "dialout",
            "--nice",
            "-5",
            "--pid-file",
            "p.pid",
        ])
        .unwrap();
        let Command::Daemon(a) = cli.command else {
            panic!("not the daemon command");
        };
        assert_eq!(a.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(a.port, Some(0));
        assert_eq!(a.log_level, Some(LogLevel::Warning));
        assert!(a.daemonize);
        assert_eq!(
            (a.user.as_deref(), a.group.as_deref()),
            (Some("plotty"), Some("dialout"))
        );
        assert_eq!(a.nice, Some(-5));
        assert_eq!(a.pid_file, Some(PathBuf::from("p.pid")));
    }

    #[test]
    fn daemon_help_is_long_only_and_bad_values_are_refused() {
        let e = Cli::try_parse_from(["plotty", "daemon", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = e.to_string();
        assert!(
            help.contains("-h, --host <ADDRESS>") && help.contains("[default: 8766]"),
            "{help}"
        );
        assert!(
            Cli::try_parse_from(["plotty", "daemon", "-h"]).is_err(),
            "-h needs an address"
        );
        assert!(Cli::try_parse_from(["plotty", "daemon", "--nice", "20"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "daemon", "-l", "verbose"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "daemon", "-p", "70000"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "check", "device", "-c", "x.yaml"]).is_ok());
    }

    #[test]
    fn client_commands_parse() {
        let cli = Cli::try_parse_from([
            "plotty",
            "add",
            "a.svg",
            "b.svg",
            "--priority",
            "-2",
            "--start",
            "--paper",
            "A3",
            "--port",
            "9000",
            "--json",
        ])
        .unwrap();
        let Command::Add(a) = cli.command else {
            panic!("not add");
        };
        assert_eq!(a.files.len(), 2);
        assert_eq!((a.priority, a.start), (-2, true));
        assert_eq!((a.client.port, a.client.json), (Some(9000), true));
        let cli = Cli::try_parse_from(["plotty", "queue"]).unwrap();
        assert!(matches!(cli.command, Command::Jobs(_)));
        let cli = Cli::try_parse_from(["plotty", "device", "pen-up", "--device", "sim"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Device(DeviceCommand::PenUp(_))
        ));
        let cli = Cli::try_parse_from(["plotty", "monitor", "--channels", "jobs", "--job", "j1"])
            .unwrap();
        assert!(matches!(cli.command, Command::Monitor(m) if m.job.as_deref() == Some("j1")));
        assert!(
            Cli::try_parse_from(["plotty", "add"]).is_err(),
            "a file is required"
        );
        assert!(
            Cli::try_parse_from(["plotty", "pause"]).is_err(),
            "an id is required"
        );
    }

    #[test]
    fn plot_arguments() {
        let cli = Cli::try_parse_from([
            "plotty",
            "plot",
            "a.svg",
            "b.svg",
            "--device",
            "sim",
            "--estimate",
            "--keep-order",
            "--layers",
            "1,3-4",
            "--render",
            "out",
            "-c",
            "c.yaml",
        ])
        .unwrap();
        let Command::Plot(a) = cli.command else {
            panic!("not the plot command");
        };
        assert_eq!(a.files.len(), 2);
        assert_eq!(a.device.as_deref(), Some("sim"));
        assert!(a.estimate && a.run.keep_order && !a.realtime);
        assert_eq!(a.layers.as_deref(), Some("1,3-4"));
        assert!(
            Cli::try_parse_from(["plotty", "plot"]).is_err(),
            "a file is required"
        );
        assert!(
            Cli::try_parse_from([
                "plotty",
                "plot",
                "a.svg",
                "--preview",
                "p.svg",
                "--estimate"
            ])
            .is_err()
        );
    }
}
