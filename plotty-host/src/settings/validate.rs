//! Turns the parsed file plus the command line and environment into [`Settings`], collecting every
//! problem with its location instead of stopping at the first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plotty_motion::kinematics::{AxiDrawSettings, Model, PenLift};

use super::file::{
    CornerRuleKind, LimitModel, MotionPreset, RawCommand, RawConfig, RawDevice, RawHook, RawMotion,
};
use super::locate::{self, Position};
use super::{
    ApiKey, ConfigError, ConfigSource, CornerRule, DatabaseSettings, DeviceKind, DeviceSettings,
    MotionLimits, Note, OriginPolicy, PaperSettings, PaperSize, PenSettings, Problem, Settings,
    Sources, WebSocketSettings, absolute,
};
use crate::hooks::{Hook, HookSet};
use crate::job::JobState;
use crate::logging::{LogFormat, LogSettings};

/// Known paper sizes, portrait, mm.
pub(crate) const PAPER_SIZES: &[(&str, f64, f64)] = &[
    ("A0", 841.0, 1189.0),
    ("A1", 594.0, 841.0),
    ("A2", 420.0, 594.0),
    ("A3", 297.0, 420.0),
    ("A4", 210.0, 297.0),
    ("A5", 148.0, 210.0),
    ("A6", 105.0, 148.0),
    ("Letter", 215.9, 279.4),
    ("Legal", 215.9, 355.6),
    ("Tabloid", 279.4, 431.8),
    ("Postcard", 100.0, 148.0),
];

/// The range of a setting that is both a `device` key of the config file and a per-run option
/// of `plotty plot` and `plotty add` (axicli's names): one rule for both.
pub(super) struct Rule {
    /// axicli's name, the key under `device` (`speed_pendown`).
    pub(super) name: &'static str,
    /// Smallest value.
    pub(super) lo: f64,
    /// Largest value.
    pub(super) hi: f64,
    /// Unit for the message (` %`).
    pub(super) unit: &'static str,
    /// The default, used in place of a wrong value while the other problems are collected.
    pub(super) fallback: f64,
}

/// `device.speed_pendown`, `--speed-pendown`.
pub(super) const SPEED_PENDOWN: Rule = Rule::percent("speed_pendown", 1.0, 110.0, 25.0);
/// `device.speed_penup`, `--speed-penup`.
pub(super) const SPEED_PENUP: Rule = Rule::percent("speed_penup", 1.0, 200.0, 75.0);
/// `device.accel`, `--accel`.
pub(super) const ACCEL: Rule = Rule::percent("accel", 1.0, 110.0, 75.0);
/// `device.pen_pos_up`, `--pen-pos-up`.
pub(super) const PEN_POS_UP: Rule = Rule::percent("pen_pos_up", 0.0, 100.0, 60.0);
/// `device.pen_pos_down`, `--pen-pos-down`.
pub(super) const PEN_POS_DOWN: Rule = Rule::percent("pen_pos_down", 0.0, 100.0, 30.0);
/// `device.pen_rate_raise`, `--pen-rate-raise`.
pub(super) const PEN_RATE_RAISE: Rule = Rule::percent("pen_rate_raise", 1.0, 200.0, 75.0);
/// `device.pen_rate_lower`, `--pen-rate-lower`.
pub(super) const PEN_RATE_LOWER: Rule = Rule::percent("pen_rate_lower", 1.0, 200.0, 50.0);
/// `--page-delay` (seconds between copies; an hour at most).
pub(super) const PAGE_DELAY: Rule = Rule {
    name: "page_delay",
    lo: 0.0,
    hi: 3600.0,
    unit: " seconds",
    fallback: 0.0,
};

/// How to name a model (file key and option).
pub(super) const MODEL_FIX: &str =
    "use 1 (V3/SE A4), 2 (V3/SE A3), 3 (V3 XLX), 4 (MiniKit), 5 (SE/A1), 6 (SE/A2) or 7 (V3/B6)";

/// A problem of a per-run option.
pub(super) struct RunProblem(pub(super) Problem);

impl Rule {
    const fn percent(name: &'static str, lo: f64, hi: f64, fallback: f64) -> Self {
        Self {
            name,
            lo,
            hi,
            unit: " %",
            fallback,
        }
    }

    /// `v` as the per-run option `--<name>`, checked as the file's key is.
    pub(super) fn check_run(&self, v: f64) -> Result<f64, RunProblem> {
        let mut c = Collector {
            file: None,
            text: None,
            problems: Vec::new(),
            notes: Vec::new(),
            removed: Vec::new(),
        };
        let key = format!("--{}", self.name.replace('_', "-"));
        let v = c.range(&key, v, self.lo, self.hi, self.unit, self.fallback);
        match c.problems.pop() {
            Some(p) => Err(RunProblem(p)),
            None => Ok(v),
        }
    }
}

/// A problem of the per-run option `key` (`--model`).
pub(super) fn run_problem(key: &str, message: impl Into<String>, fix: &str) -> Problem {
    Problem {
        file: None,
        location: None,
        key: key.to_owned(),
        message: message.into(),
        fix: Some(fix.to_owned()),
    }
}

/// Collects problems and notes, locating keys in the file text.
struct Collector<'a> {
    file: Option<&'a Path>,
    text: Option<&'a str>,
    problems: Vec<Problem>,
    notes: Vec<Note>,
    /// Keys reported and removed while parsing: the item that held one is not reported again
    /// for what its removal left (a hook whose only action was misspelt has "no action").
    removed: Vec<String>,
}

impl<'a> Collector<'a> {
    fn locate(&self, key: &str) -> Option<Position> {
        if key.starts_with('-') || key.starts_with("PLOTTY_") {
            return None;
        }
        self.text
            .and_then(|t| locate::locate(t, &locate::parse_path(key)))
    }

    /// True when the file spells out `key` itself (locating finds the deepest prefix, so a
    /// missing key is told from its section by position).
    fn has_key(&self, key: &str) -> bool {
        let parent = key.rsplit_once('.').map(|(p, _)| p);
        match (self.locate(key), parent.and_then(|p| self.locate(p))) {
            (Some(at), Some(section)) => at != section,
            (found, None) => found.is_some(),
            (None, Some(_)) => false,
        }
    }

    fn problem(&mut self, key: &str, message: impl Into<String>, fix: impl Into<String>) {
        let holds_removed = |r: &String| {
            r.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        if self.removed.iter().any(holds_removed) {
            return;
        }
        let from_file = !(key.starts_with('-') || key.starts_with("PLOTTY_"));
        let fix: String = fix.into();
        self.problems.push(Problem {
            file: self.file.filter(|_| from_file).map(Path::to_path_buf),
            location: self.locate(key),
            key: key.to_owned(),
            message: message.into(),
            fix: (!fix.is_empty()).then_some(fix),
        });
    }

    fn note(&mut self, key: &str, message: impl Into<String>, advice: impl Into<String>) {
        self.notes.push(Note {
            key: key.to_owned(),
            location: self.locate(key),
            message: message.into(),
            advice: advice.into(),
        });
    }

    /// `v` if it is finite and within `lo..=hi`, else a problem (and `fallback`).
    fn range(&mut self, key: &str, v: f64, lo: f64, hi: f64, unit: &str, fallback: f64) -> f64 {
        if v.is_finite() && v >= lo && v <= hi {
            v
        } else {
            self.problem(
                key,
                format!("{v} is out of range"),
                format!("use a value from {lo} to {hi}{unit}"),
            );
            fallback
        }
    }

    /// The value of the file key of `rule` in the section `prefix`, checked by it.
    fn rule(&mut self, prefix: &str, rule: &Rule, v: f64) -> f64 {
        self.range(
            &format!("{prefix}.{}", rule.name),
            v,
            rule.lo,
            rule.hi,
            rule.unit,
            rule.fallback,
        )
    }

    fn seconds(&mut self, key: &str, v: f64, lo: f64, hi: f64, fallback: f64) -> Duration {
        Duration::from_secs_f64(self.range(key, v, lo, hi, " seconds", fallback))
    }
}

/// Builds the settings; `text` is the config file's content (`None`: no file).
pub(super) fn validate(
    sources: &Sources,
    config: ConfigSource,
    text: Option<&str>,
) -> Result<Settings, ConfigError> {
    let file = config.path.clone();
    let mut c = Collector {
        file: file.as_deref(),
        text,
        problems: Vec::new(),
        notes: Vec::new(),
        removed: Vec::new(),
    };
    let raw = match text {
        None => RawConfig::default(),
        Some(t) => match parse_file(&mut c, t) {
            Some(raw) => raw,
            None => return Err(ConfigError::Invalid(c.problems)),
        },
    };
    let home = sources.defaults.home.as_deref();
    let config_dir = config
        .path
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| sources.env.cwd.clone(), Path::to_path_buf);

    let workspace = workspace(&mut c, sources, &raw, &config_dir);
    let websocket = websocket(&mut c, sources, &raw);
    let database = database(&mut c, &raw, &workspace, home);
    let devices = devices(&mut c, &raw);
    let Some(device) = devices.first().cloned() else {
        return Err(ConfigError::Invalid(c.problems));
    };
    let motion = motion(&mut c, raw.motion.as_ref(), &device.axidraw);
    // Each plotter plans with the limits its own settings give (the `motion` section, when
    // there is one, is checked once above and applies to all).
    let device_motion = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if i == 0 {
                // The first plotter's, checked against the file (`device.*` percent keys).
                return motion;
            }
            let mut quiet = Collector {
                file: None,
                text: None,
                problems: Vec::new(),
                notes: Vec::new(),
                removed: Vec::new(),
            };
            self::motion(&mut quiet, raw.motion.as_ref(), &d.axidraw)
        })
        .collect();
    let logging = logging(&mut c, sources, &raw, &workspace, home);
    let hooks = hooks(&mut c, raw.hooks.as_ref(), &config_dir, home);
    let paper = paper(&mut c, &raw);
    let pens = pens(&mut c, &raw);
    let limits = limits(&mut c, &raw.limits);
    let daemon = daemon(&mut c, &raw.daemon);
    let shutdown = super::ShutdownSettings {
        finish: raw.shutdown.finish,
        timeout: c.seconds("shutdown.timeout", raw.shutdown.timeout, 0.0, 3600.0, 60.0),
    };

    if !c.problems.is_empty() {
        // In file order, so that a user can work through them from the top; problems of the
        // command line and environment come first.
        c.problems
            .sort_by_key(|p| (p.file.is_some(), p.location.map(|l| (l.line, l.column))));
        return Err(ConfigError::Invalid(c.problems));
    }
    c.notes
        .sort_by_key(|n| n.location.map(|l| (l.line, l.column)));
    Ok(Settings {
        config,
        workspace,
        websocket,
        database,
        device,
        devices,
        device_motion,
        motion,
        logging,
        hooks,
        paper,
        pens,
        shutdown,
        limits,
        daemon,
        notes: c.notes,
    })
}

/// Most problems one file may report from parsing: each costs a parse of what is left, and a
/// file with more is not a configuration anyone edits by hand.
const MAX_PARSE_PROBLEMS: usize = 100;

/// Parses the file text, collecting every unknown key and every value of the wrong type rather
/// than stopping at the first (serde stops there, so two misspelt keys used to give one
/// problem). The text is read once into a YAML tree; each failing key is reported, removed from
/// the tree, and what is left is parsed again until it parses, so the keys that remain are still
/// checked (ranges, cross-checks) by the rest of the validation. `None` when the text is not
/// YAML, or the tree cannot be repaired (the problems say why).
fn parse_file(c: &mut Collector<'_>, text: &str) -> Option<RawConfig> {
    let mut tree = match yaml_serde::from_str::<yaml_serde::Value>(text) {
        Ok(tree) => tree,
        Err(e) => {
            c.problems.push(parse_problem(c.file, &e));
            return None;
        }
    };
    for _ in 0..=MAX_PARSE_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, Option<RawConfig>>(&tree) {
            Ok(raw) => return Some(raw.unwrap_or_default()),
            Err(e) => e,
        };
        let path: Vec<locate::Segment> = error
            .path()
            .iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Map { key } => {
                    Some(locate::Segment::Key(key.clone()))
                }
                serde_path_to_error::Segment::Seq { index } => Some(locate::Segment::Index(*index)),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let mut problem = describe(
            c.file,
            None,
            key_path(&path),
            error.into_inner().to_string(),
        );
        problem.location = c.text.and_then(|t| locate::locate(t, &path));
        c.removed.push(problem.key.clone());
        c.problems.push(problem);
        if c.problems.len() > MAX_PARSE_PROBLEMS || !remove(&mut tree, &path) {
            return None;
        }
    }
    None
}

/// `a.b[2].c` from its segments.
fn key_path(path: &[locate::Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            locate::Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            locate::Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Removes the key at `path` from `tree` (for a list item, the whole list: removing one item
/// would renumber the others in later messages). False when there is nothing to remove.
fn remove(tree: &mut yaml_serde::Value, path: &[locate::Segment]) -> bool {
    let Some(last_key) = path
        .iter()
        .rposition(|s| matches!(s, locate::Segment::Key(_)))
    else {
        return false;
    };
    let mut node = tree;
    for s in &path[..last_key] {
        let next = match s {
            locate::Segment::Key(k) => node.get_mut(k.as_str()),
            locate::Segment::Index(i) => node.get_mut(*i),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (&path[last_key], node.as_mapping_mut()) {
        (locate::Segment::Key(k), Some(map)) => map.remove(k.as_str()).is_some(),
        _ => false,
    }
}

/// A parser error with the key path and location yaml_serde reports, plus a suggestion for
/// misspelt keys.
fn parse_problem(file: Option<&Path>, e: &yaml_serde::Error) -> Problem {
    let location = e.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    let mut msg = e.to_string();
    if let Some(l) = &location {
        let suffix = format!(" at line {} column {}", l.line, l.column);
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped.to_owned();
        }
    }
    // yaml_serde prefixes messages with the path of the value: `websocket.port: invalid …`.
    let (key, message) = match msg.split_once(": ") {
        Some((path, rest)) if is_key_path(path) => (path.to_owned(), rest.to_owned()),
        _ => (String::new(), msg.clone()),
    };
    describe(file, location, key, message)
}

/// The problem of serde's `message` about the value at `key`: an unknown key becomes "unknown
/// key" with the closest valid key as the fix, an unknown variant lists the valid values.
fn describe(
    file: Option<&Path>,
    location: Option<Position>,
    mut key: String,
    mut message: String,
) -> Problem {
    let mut fix = None;
    if let Some(field) = between(&message, "unknown field `", "`") {
        let expected = expected_names(&message);
        // A path from the parsed tree ends with the unknown key already; yaml_serde's own
        // messages stop at the mapping that holds it.
        let last = key.rsplit(['.', ']']).next().unwrap_or_default();
        if last != field {
            key = if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
        }
        let suggestion = closest(&field, &expected);
        message = "unknown key".into();
        fix = Some(match suggestion {
            Some(s) => format!(
                "did you mean `{s}`? valid keys here: {}",
                expected.join(", ")
            ),
            None if expected.is_empty() => "remove it".into(),
            None => format!("remove it; valid keys here: {}", expected.join(", ")),
        });
    } else if let Some(variant) = between(&message, "unknown variant `", "`") {
        let expected = expected_names(&message);
        fix = Some(format!("use one of: {}", expected.join(", ")));
        message = format!("`{variant}` is not a valid value");
    } else if message.contains("more than one document") {
        fix = Some("keep one YAML document: remove the extra `---` lines".into());
    } else if message.starts_with("duplicate field") {
        fix = Some("each key may appear once; remove the repeated one".into());
    }
    if key.is_empty() {
        key = "(file)".into();
    }
    Problem {
        file: file.map(Path::to_path_buf),
        location,
        key,
        message,
        fix,
    }
}

fn is_key_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'))
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(s[from..from + len].to_owned())
}

/// The backticked names after "expected" in a serde message.
fn expected_names(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
fn closest(word: &str, candidates: &[String]) -> Option<String> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn workspace(c: &mut Collector<'_>, s: &Sources, raw: &RawConfig, config_dir: &Path) -> PathBuf {
    let home = s.defaults.home.as_deref();
    let cwd = &s.env.cwd;
    if let Some(p) = &s.overrides.workspace {
        return absolute(cwd, p, home);
    }
    if let Some(p) = s.env.workspace.as_ref().filter(|p| !p.is_empty()) {
        return absolute(cwd, Path::new(p), home);
    }
    if let Some(p) = &raw.workspace {
        return absolute(config_dir, p, home);
    }
    match &s.defaults.workspace {
        Some(p) => p.clone(),
        None => {
            c.problem(
                "--workspace",
                "no workspace directory: there is no home directory for the default \
                 $XDG_DATA_HOME/plotty/workspace",
                "give --workspace DIR, set PLOTTY_WORKSPACE, or set HOME",
            );
            PathBuf::from("/nonexistent")
        }
    }
}

fn websocket(c: &mut Collector<'_>, s: &Sources, raw: &RawConfig) -> WebSocketSettings {
    let w = &raw.websocket;
    let host = s.overrides.host.clone().unwrap_or_else(|| w.host.clone());
    let host_key = if s.overrides.host.is_some() {
        "--host"
    } else {
        "websocket.host"
    };
    if host.trim().is_empty() || host.chars().any(char::is_whitespace) {
        c.problem(
            host_key,
            format!("`{host}` is not a host name or address"),
            "use localhost, 0.0.0.0 (all interfaces) or an address of this machine",
        );
    }
    let port = s.overrides.port.unwrap_or(w.port);

    let env_key = match &s.env.api_key {
        None => None,
        Some(k) => match k.to_str() {
            Some(k) if !k.trim().is_empty() => Some(ApiKey::new(k)),
            Some(_) => {
                c.problem(
                    "PLOTTY_API_KEY",
                    "is set but empty",
                    "unset it or give it a key",
                );
                None
            }
            None => {
                c.problem(
                    "PLOTTY_API_KEY",
                    "is not valid UTF-8",
                    "use a key of plain text",
                );
                None
            }
        },
    };
    let file_key = match &w.api_key {
        Some(k) if k.trim().is_empty() => {
            c.problem(
                "websocket.api_key",
                "is empty",
                "set a key (e.g. `openssl rand -hex 32`) or write `api_key: null`",
            );
            None
        }
        Some(k) => Some(ApiKey::new(k.clone())),
        None => None,
    };
    let api_key = env_key.or(file_key);
    if w.authenticate && api_key.is_none() {
        c.problem(
            "websocket.authenticate",
            "is true but there is no API key",
            "set websocket.api_key in the file or the PLOTTY_API_KEY environment variable",
        );
    }
    if let Some(k) = &api_key {
        if !w.authenticate {
            c.note(
                "websocket.api_key",
                "an API key is set but websocket.authenticate is false, so it is not checked",
                "set websocket.authenticate: true to require it",
            );
        } else if k.expose().len() < 16 {
            c.note(
                "websocket.api_key",
                "the API key is shorter than 16 characters",
                "use a longer random key (`openssl rand -hex 32`)",
            );
        }
    }
    if !w.authenticate && !is_loopback(&host) {
        c.note(
            host_key,
            format!("the API listens on {host} without authentication"),
            "anyone who can reach this port can control the plotter: set websocket.authenticate \
             and an API key, or bind to localhost",
        );
    }
    if w.max_connections == 0 {
        c.problem(
            "websocket.max_connections",
            "is 0",
            "allow at least 1 connection",
        );
    }
    if w.message_rate_limit == 0 {
        c.problem(
            "websocket.message_rate_limit",
            "is 0",
            "allow at least 1 message per minute",
        );
    }
    if w.max_upload_size.0 < 1024 {
        c.problem(
            "websocket.max_upload_size",
            format!("is {} bytes", w.max_upload_size.0),
            "allow at least 1KB (the default is 100MB)",
        );
    }
    let heartbeat_interval = c.seconds(
        "websocket.heartbeat_interval",
        w.heartbeat_interval,
        1.0,
        3600.0,
        30.0,
    );
    let allowed_origins = origins(c, &w.allowed_origins.0);
    let allowed_hosts = hosts(c, &w.allowed_hosts.0);
    if w.max_http_connections < 2 {
        c.problem(
            "websocket.max_http_connections",
            format!("is {}", w.max_http_connections),
            "allow at least 2 HTTP connections (the default is 256)",
        );
    }
    let header_timeout = c.seconds(
        "websocket.header_timeout",
        w.header_timeout,
        0.05,
        3600.0,
        10.0,
    );
    if !w.enabled {
        c.note(
            "websocket.enabled",
            "the WebSocket/HTTP API is disabled: clients cannot reach the daemon",
            "set websocket.enabled: true to serve it",
        );
    }
    WebSocketSettings {
        enabled: w.enabled,
        host,
        port,
        authenticate: w.authenticate,
        api_key,
        max_connections: w.max_connections,
        heartbeat_interval,
        allowed_origins,
        message_rate_limit: w.message_rate_limit,
        max_upload_size: w.max_upload_size.0,
        allowed_hosts,
        max_http_connections: w.max_http_connections,
        header_timeout,
    }
}

/// `limits:` (issue 10). The largest values keep a drawing's memory within what a host has: an
/// imported segment costs about 70 bytes until the plan is made.
fn limits(c: &mut Collector<'_>, raw: &super::file::RawLimits) -> super::LimitSettings {
    let default = super::file::RawLimits::default();
    let max_segments = if (1..=MAX_SEGMENTS_LIMIT).contains(&raw.max_segments) {
        raw.max_segments
    } else {
        c.problem(
            "limits.max_segments",
            format!("{} is out of range", raw.max_segments),
            format!(
                "use 1 to {MAX_SEGMENTS_LIMIT} (default {}; about 70 bytes of memory a segment)",
                default.max_segments
            ),
        );
        default.max_segments
    };
    let mb = c.range(
        "limits.max_file_mb",
        raw.max_file_mb,
        0.001,
        MAX_FILE_MB_LIMIT,
        " MiB",
        default.max_file_mb,
    );
    super::LimitSettings {
        max_segments: usize::try_from(max_segments).unwrap_or(usize::MAX),
        max_file_bytes: (mb * 1_048_576.0).round() as u64,
    }
}

/// Largest `limits.max_segments` accepted.
const MAX_SEGMENTS_LIMIT: u64 = 1_000_000_000;
/// Largest `limits.max_file_mb` accepted (10 GiB).
const MAX_FILE_MB_LIMIT: f64 = 10_240.0;

/// `websocket.allowed_hosts`: bare host names or addresses, lower case, IPv6 without brackets.
fn hosts(c: &mut Collector<'_>, list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let key = format!("websocket.allowed_hosts[{i}]");
        let lower = h.trim().trim_end_matches('.').to_ascii_lowercase();
        if lower == "*" {
            out.push(lower);
            continue;
        }
        let bare = lower
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(&lower);
        let is_v6 = bare.parse::<std::net::Ipv6Addr>().is_ok();
        let valid = !bare.is_empty()
            && (is_v6
                || bare
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.'));
        if valid {
            out.push(bare.to_owned());
        } else {
            c.problem(
                &key,
                format!("`{h}` is not a host name"),
                "write the name or address alone, without scheme, port or path \
                 (e.g. plotter.local or 192.168.1.20), or `*` for any host",
            );
        }
    }
    if out.iter().any(|h| h == "*") {
        c.note(
            "websocket.allowed_hosts",
            "`*` accepts any Host header: without an API key, a web page can reach the daemon \
             through DNS rebinding",
            "list the names clients use instead, or set websocket.authenticate and an API key",
        );
    }
    out
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn origins(c: &mut Collector<'_>, list: &[String]) -> OriginPolicy {
    if list.is_empty() {
        return OriginPolicy::SameHost;
    }
    if list.iter().any(|o| o.trim() == "*") {
        if list.len() > 1 {
            c.note(
                "websocket.allowed_origins",
                "`*` allows every origin, so the other entries have no effect",
                "keep only `*`, or list the origins without it",
            );
        }
        return OriginPolicy::Any;
    }
    let mut out = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let key = format!("websocket.allowed_origins[{i}]");
        let lower = o.trim().trim_end_matches('/').to_ascii_lowercase();
        let valid = ["http://", "https://"].iter().any(|scheme| {
            lower
                .strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && !rest.contains(' '))
        });
        if valid {
            out.push(lower);
        } else {
            c.problem(
                &key,
                format!("`{o}` is not an origin"),
                "write scheme://host[:port] without a path, e.g. https://studio.example.org, or `*`",
            );
        }
    }
    OriginPolicy::List(out)
}

fn database(
    c: &mut Collector<'_>,
    raw: &RawConfig,
    workspace: &Path,
    home: Option<&Path>,
) -> DatabaseSettings {
    let d = &raw.database;
    let postgres = d.url.as_deref().and_then(|url| {
        let url = url.trim();
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return None;
        }
        let parsed = crate::store::tls::split_url(url).and_then(|(rest, _)| {
            rest.parse::<tokio_postgres::Config>()
                .map_err(|e| e.to_string())
        });
        if let Err(e) = parsed {
            c.problem(
                "database.url",
                format!(
                    "`{}` is not a PostgreSQL URL: {e}",
                    crate::store::postgres::redact(url)
                ),
                "write postgresql://user:password@host:5432/database",
            );
        }
        Some(super::PostgresUrl(url.to_owned()))
    });
    let path = match &d.url {
        None => workspace.join("plotty.db"),
        Some(_) if postgres.is_some() => workspace.join("plotty.db"),
        Some(url) => match database_path(url) {
            Ok(p) => {
                if p.starts_with("workspace") {
                    c.note(
                        "database.url",
                        format!(
                            "relative paths are relative to the workspace, so the database is {}",
                            workspace.join(&p).display()
                        ),
                        "write sqlite:///plotty.db for <workspace>/plotty.db",
                    );
                }
                absolute(workspace, &p, home)
            }
            Err(e) => {
                c.problem("database.url", e, "write sqlite:///plotty.db (relative to the workspace) or sqlite:////absolute/path.db");
                workspace.join("plotty.db")
            }
        },
    };
    if d.pool_size == 0 || d.pool_size > 64 {
        c.problem(
            "database.pool_size",
            format!("{} is out of range", d.pool_size),
            "use 1 to 64",
        );
    }
    if d.max_overflow != 20 && postgres.is_none() {
        c.note(
            "database.max_overflow",
            "is accepted for compatibility but has no effect with SQLite",
            "you can remove it",
        );
    }
    let lease_ttl = c.seconds("database.lease_ttl", d.lease_ttl, 1.0, 3600.0, 30.0);
    if d.lease_ttl != 30.0 && postgres.is_none() {
        c.note(
            "database.lease_ttl",
            "has no effect with SQLite (one daemon per database, no leases)",
            "you can remove it",
        );
    }
    DatabaseSettings {
        path,
        postgres,
        pool_size: d.pool_size,
        max_overflow: d.max_overflow,
        lease_ttl,
    }
}

/// The `daemon` section: the name defaults to the host name.
fn daemon(c: &mut Collector<'_>, raw: &super::file::RawDaemon) -> super::DaemonSettings {
    let name = match raw.name.as_deref().map(str::trim) {
        Some(n) if n.is_empty() || n.len() > 128 || n.chars().any(char::is_control) => {
            c.problem(
                "daemon.name",
                "must be 1 to 128 characters without control characters",
                "write a short name such as `studio-left`",
            );
            host_name()
        }
        Some(n) => n.to_owned(),
        None => host_name(),
    };
    super::DaemonSettings { name }
}

/// This machine's host name (`localhost` when it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}

/// The file of a `database.url`: `sqlite:///relative`, `sqlite:////absolute` or a plain path.
fn database_path(url: &str) -> Result<PathBuf, String> {
    let url = url.trim();
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest.strip_prefix('/')
            .ok_or_else(|| format!("`{url}`: a SQLite URL has three slashes (sqlite:///file.db)"))?
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(format!(
            "`{scheme}` databases are not supported: plotty stores its queue in SQLite or \
             PostgreSQL (postgresql://…)"
        ));
    } else {
        url
    };
    if path.is_empty() || path.contains(":memory:") {
        return Err(format!("`{url}` does not name a file"));
    }
    Ok(PathBuf::from(path))
}

/// One plotter's settings from its section (`prefix`: `device` or `devices[N]`).
fn device(c: &mut Collector<'_>, prefix: &str, d: &RawDevice) -> DeviceSettings {
    let key = |k: &str| format!("{prefix}.{k}");
    let model = Model::from_number(d.model).unwrap_or_else(|| {
        c.problem(
            &key("model"),
            format!("{} is not an AxiDraw model number", d.model),
            MODEL_FIX,
        );
        Model::A4
    });
    let pen_lift = match d.penlift {
        1 | 2 => PenLift::Standard,
        3 => PenLift::NarrowBand,
        n => {
            c.problem(
                &key("penlift"),
                format!("{n} is not a pen-lift mechanism"),
                "use 1 or 2 (standard servo) or 3 (narrow-band brushless servo)",
            );
            PenLift::Standard
        }
    };
    let axidraw = AxiDrawSettings {
        model,
        resolution: d.resolution.0,
        pen_lift,
        speed_pendown: c.rule(prefix, &SPEED_PENDOWN, d.speed_pendown),
        speed_penup: c.rule(prefix, &SPEED_PENUP, d.speed_penup),
        accel: c.rule(prefix, &ACCEL, d.accel),
        pen_pos_up: c.rule(prefix, &PEN_POS_UP, d.pen_pos_up),
        pen_pos_down: c.rule(prefix, &PEN_POS_DOWN, d.pen_pos_down),
        pen_rate_raise: c.rule(prefix, &PEN_RATE_RAISE, d.pen_rate_raise),
        pen_rate_lower: c.rule(prefix, &PEN_RATE_LOWER, d.pen_rate_lower),
        pen_delay_up: delay(c, &key("pen_delay_up"), d.pen_delay_up),
        pen_delay_down: delay(c, &key("pen_delay_down"), d.pen_delay_down),
        cornering: c.range(&key("cornering"), d.cornering, 0.1, 1000.0, "", 10.0),
        const_speed: d.const_speed,
    };
    if axidraw.pen_pos_up <= axidraw.pen_pos_down {
        c.note(
            &key("pen_pos_up"),
            format!(
                "pen up ({} %) is not above pen down ({} %)",
                axidraw.pen_pos_up, axidraw.pen_pos_down
            ),
            "normally pen_pos_up is larger; check that this is intended",
        );
    }
    if d.baud_rate == 0 {
        c.problem(
            &key("baud_rate"),
            "is 0",
            "use 9600 (the EBB ignores the rate over USB)",
        );
    }
    let timeout = c.seconds(&key("timeout"), d.timeout, 1.0, 3600.0, 30.0);
    let port = d
        .port
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("auto"))
        .map(str::to_owned);
    if d.kind == DeviceKind::Simulator && port.is_some() {
        c.note(
            &key("port"),
            format!("is ignored: {prefix}.type is simulator"),
            format!("set {prefix}.type: axidraw to use the port"),
        );
    }
    let (nickname, serial) = identity(c, prefix, d, port.is_some());
    DeviceSettings {
        name: d.name.as_deref().map(str::trim).map(str::to_owned),
        tags: d.tags.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
        kind: d.kind,
        port,
        nickname,
        serial,
        baud_rate: d.baud_rate,
        timeout,
        axidraw,
        firmware: d.firmware,
    }
}

/// The plotters: the `devices` list, or the one `device` section (a farm of one plotter, named
/// by `device.name` or, without one, by its device id as before: `simulator` or its port).
/// Empty only with problems recorded.
fn devices(c: &mut Collector<'_>, raw: &RawConfig) -> Vec<DeviceSettings> {
    let Some(list) = raw.devices.as_ref() else {
        let d = device(c, "device", &raw.device);
        names_and_tags(c, "device", &d, false);
        return vec![d];
    };
    if c.has_key("device") {
        c.problem(
            "devices",
            "both a `device` section and a `devices` list are set",
            "keep one: `device` is a farm of one plotter, `devices` lists several (move the \
             `device` settings into an entry of `devices`)",
        );
    }
    if list.is_empty() {
        c.problem(
            "devices",
            "lists no plotter",
            "add an entry (name, type, port, model, tags) or use a `device` section",
        );
        return Vec::new();
    }
    let mut out: Vec<DeviceSettings> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let prefix = format!("devices[{i}]");
        let d = device(c, &prefix, raw);
        names_and_tags(c, &prefix, &d, true);
        if let Some(name) = &d.name
            && let Some(j) = out.iter().position(|o| {
                o.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        {
            c.problem(
                &format!("{prefix}.name"),
                format!("`{name}` is also the name of devices[{j}]"),
                "give each plotter a name of its own (letter case does not count)",
            );
        }
        if d.kind != DeviceKind::Simulator {
            let same_port = out.iter().position(|o| {
                o.kind != DeviceKind::Simulator && o.port.is_some() && o.port == d.port
            });
            // An entry with neither a port nor an identity takes the first AxiDraw found.
            let searches = |o: &DeviceSettings| {
                o.kind != DeviceKind::Simulator
                    && o.port.is_none()
                    && o.nickname.is_none()
                    && o.serial.is_none()
            };
            let both_search = out.iter().position(searches).filter(|_| searches(&d));
            let same_identity = out.iter().position(|o| {
                o.kind != DeviceKind::Simulator
                    && ((o.nickname.is_some() && o.nickname == d.nickname)
                        || (o.serial.is_some() && o.serial == d.serial))
            });
            if let Some(j) = same_identity {
                c.problem(
                    &format!("{prefix}.nickname"),
                    format!("names the same board as devices[{j}] (same nickname or serial)"),
                    "give each plotter the identity of its own board (`plotty device list`)",
                );
            }
            match (&d.port, same_port, both_search) {
                (Some(port), Some(j), _) => c.problem(
                    &format!("{prefix}.port"),
                    format!("`{port}` is also the port of devices[{j}]"),
                    "two plotters cannot share a serial port: give each its own",
                ),
                (None, _, Some(j)) => c.problem(
                    &format!("{prefix}.port"),
                    format!(
                        "is not set here nor in devices[{j}]: both would take the first AxiDraw \
                         found"
                    ),
                    "give each AxiDraw its port (`port: /dev/ttyACM0`) or its board's `nickname`",
                ),
                _ => {}
            }
        }
        out.push(d);
    }
    out
}

/// Longest plotter name or tag: a word shown in tables and URLs, not a description.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `word` may be a plotter name or a tag: 1–64 ASCII letters, digits, `-`, `_`, `.`,
/// not starting with `-` (it goes in URLs, on command lines and in SQL text comparisons).
pub fn is_name_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= MAX_NAME_LEN
        && !word.starts_with('-')
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks the name (required when `named`) and the tags of the plotter in section `prefix`.
fn names_and_tags(c: &mut Collector<'_>, prefix: &str, d: &DeviceSettings, named: bool) {
    match &d.name {
        None if named => c.problem(
            &format!("{prefix}.name"),
            "is missing",
            "give each plotter of `devices` a name (`name: left`): jobs and clients use it",
        ),
        Some(name) if !is_name_word(name) => c.problem(
            &format!("{prefix}.name"),
            format!("`{name}` is not a plotter name"),
            "use 1–64 letters, digits, `-`, `_` or `.` (not starting with `-`)",
        ),
        _ => {}
    }
    for (i, tag) in d.tags.iter().enumerate() {
        let key = format!("{prefix}.tags[{i}]");
        if !is_name_word(tag) {
            c.problem(
                &key,
                format!("`{tag}` is not a tag"),
                "use 1–64 letters, digits, `-`, `_` or `.` per tag (`tags: [a3, black]`)",
            );
        } else if d.tags[..i].iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            c.problem(
                &key,
                format!("`{tag}` is listed twice"),
                "list each tag once",
            );
        }
    }
}

/// A plotter's `nickname` and `serial`: checked as the board stores them, and not beside its
/// `port` (two ways of choosing the board that could disagree).
fn identity(
    c: &mut Collector<'_>,
    prefix: &str,
    d: &RawDevice,
    has_port: bool,
) -> (Option<String>, Option<String>) {
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let nickname = text(&d.nickname).filter(|n| {
        crate::devices::identity::check_nickname(n)
            .map_err(|e| {
                c.problem(
                    &format!("{prefix}.nickname"),
                    e,
                    "use 1 to 16 letters, digits, `-` or `_` (`plotty device list` shows the \
                     boards' names)",
                );
            })
            .is_ok()
    });
    let serial = text(&d.serial);
    for (key, set) in [
        (format!("{prefix}.nickname"), nickname.is_some()),
        (format!("{prefix}.serial"), serial.is_some()),
    ] {
        if set && has_port {
            c.problem(
                &key,
                "is given with the port: both choose the board",
                "keep the port to use that port whatever board is on it, or remove it to \
                 find the board by its name wherever it is plugged in",
            );
        } else if set && d.kind == DeviceKind::Simulator {
            c.note(
                &key,
                "is ignored: the type is simulator",
                "set `type: axidraw` to use the board",
            );
        }
    }
    (nickname, serial)
}

fn delay(c: &mut Collector<'_>, key: &str, ms: i32) -> i32 {
    if (-1000..=60_000).contains(&ms) {
        ms
    } else {
        c.problem(
            key,
            format!("{ms} ms is out of range"),
            "use -1000 to 60000 ms",
        );
        0
    }
}

fn motion(c: &mut Collector<'_>, raw: Option<&RawMotion>, ad: &AxiDrawSettings) -> MotionLimits {
    let derived = MotionLimits {
        pen_down_speed_mm_s: ad.pen_down_speed_mm_s(),
        pen_down_accel_mm_s2: ad.pen_down_accel_mm_s2(),
        pen_up_speed_mm_s: ad.pen_up_speed_mm_s(),
        pen_up_accel_mm_s2: ad.pen_up_accel_mm_s2(),
        corner_rule: CornerRule::AxiDraw {
            deviation_mm: ad.cornering_deviation_mm(),
        },
        pen_lift_s: f64::from(ad.pen_raise_ms()) / 1000.0,
        pen_drop_s: f64::from(ad.pen_lower_ms()) / 1000.0,
        per_motor_limits: true,
        limits: LimitModel::Xy,
    };
    let Some(m) = raw else {
        return derived;
    };
    // The percent keys of `device` and these mm/s keys are two spellings of one setting: a
    // percent given in the file converts by the AxiDraw rule (reference §4) and wins over a
    // preset; giving both spellings is a problem naming both.
    let given = |c: &Collector<'_>, key: &str| c.has_key(&format!("device.{key}"));
    let spelled = [
        (
            "speed_pendown",
            "pen_down_speed_mm_s",
            m.pen_down_speed_mm_s,
            "mm/s",
        ),
        (
            "speed_penup",
            "pen_up_speed_mm_s",
            m.pen_up_speed_mm_s,
            "mm/s",
        ),
        (
            "accel",
            "pen_down_accel_mm_s2",
            m.pen_down_accel_mm_s2,
            "mm/s²",
        ),
        ("accel", "pen_up_accel_mm_s2", m.pen_up_accel_mm_s2, "mm/s²"),
        ("pen_rate_raise", "pen_lift_s", m.pen_lift_s, "seconds"),
        ("pen_rate_lower", "pen_drop_s", m.pen_drop_s, "seconds"),
    ];
    for (percent, mm, value, unit) in spelled {
        if value.is_some() && given(c, percent) {
            c.problem(
                &format!("motion.{mm}"),
                format!(
                    "`motion.{mm}` and `device.{percent}` are two spellings of the same setting \
                     (the percent converts to {unit} by the model's rule)"
                ),
                format!("keep one: remove `device.{percent}` or `motion.{mm}`"),
            );
        }
    }
    let preset = match m.preset {
        MotionPreset::Axidraw => derived,
        MotionPreset::Comparison => MotionLimits::COMPARISON,
    };
    let pick = |given: bool, from_percent: f64, from_preset: f64| {
        if given { from_percent } else { from_preset }
    };
    let base = MotionLimits {
        pen_down_speed_mm_s: pick(
            given(c, "speed_pendown"),
            derived.pen_down_speed_mm_s,
            preset.pen_down_speed_mm_s,
        ),
        pen_up_speed_mm_s: pick(
            given(c, "speed_penup"),
            derived.pen_up_speed_mm_s,
            preset.pen_up_speed_mm_s,
        ),
        pen_down_accel_mm_s2: pick(
            given(c, "accel"),
            derived.pen_down_accel_mm_s2,
            preset.pen_down_accel_mm_s2,
        ),
        pen_up_accel_mm_s2: pick(
            given(c, "accel"),
            derived.pen_up_accel_mm_s2,
            preset.pen_up_accel_mm_s2,
        ),
        pen_lift_s: pick(
            given(c, "pen_rate_raise"),
            derived.pen_lift_s,
            preset.pen_lift_s,
        ),
        pen_drop_s: pick(
            given(c, "pen_rate_lower"),
            derived.pen_drop_s,
            preset.pen_drop_s,
        ),
        ..preset
    };
    let mut pos = |key: &str, v: Option<f64>, fallback: f64, unit: &str| match v {
        Some(v) => c.range(
            &format!("motion.{key}"),
            v,
            f64::MIN_POSITIVE,
            1.0e6,
            unit,
            fallback,
        ),
        None => fallback,
    };
    let pen_down_speed_mm_s = pos(
        "pen_down_speed_mm_s",
        m.pen_down_speed_mm_s,
        base.pen_down_speed_mm_s,
        " mm/s",
    );
    let pen_down_accel_mm_s2 = pos(
        "pen_down_accel_mm_s2",
        m.pen_down_accel_mm_s2,
        base.pen_down_accel_mm_s2,
        " mm/s²",
    );
    let pen_up_speed_mm_s = pos(
        "pen_up_speed_mm_s",
        m.pen_up_speed_mm_s,
        base.pen_up_speed_mm_s,
        " mm/s",
    );
    let pen_up_accel_mm_s2 = pos(
        "pen_up_accel_mm_s2",
        m.pen_up_accel_mm_s2,
        base.pen_up_accel_mm_s2,
        " mm/s²",
    );
    let base_deviation = match base.corner_rule {
        CornerRule::AxiDraw { deviation_mm } | CornerRule::JunctionDeviation { deviation_mm } => {
            deviation_mm
        }
        CornerRule::MotorJump { .. } => ad.cornering_deviation_mm(),
    };
    let deviation_mm = pos(
        "corner_deviation_mm",
        m.corner_deviation_mm,
        base_deviation,
        " mm",
    );
    let limits = m.limits.unwrap_or(base.limits);
    let max_jump_hz = match m.corner_jump_hz {
        Some(v) => c.range(
            "motion.corner_jump_hz",
            v,
            plotty_motion::plan::MIN_CORNER_JUMP_HZ,
            plotty_motion::plan::MAX_CORNER_JUMP_HZ,
            " steps/s",
            super::DEFAULT_CORNER_JUMP_HZ,
        ),
        None => super::DEFAULT_CORNER_JUMP_HZ,
    };
    let corner_rule = match m.corner_rule {
        Some(CornerRuleKind::Axidraw) => CornerRule::AxiDraw { deviation_mm },
        Some(CornerRuleKind::Junction) => CornerRule::JunctionDeviation { deviation_mm },
        Some(CornerRuleKind::MotorJump) => CornerRule::MotorJump { max_jump_hz },
        // Per-motor limits take corners as the motors allow unless told otherwise.
        None if limits == LimitModel::PerMotor => CornerRule::MotorJump { max_jump_hz },
        None => match base.corner_rule {
            CornerRule::AxiDraw { .. } => CornerRule::AxiDraw { deviation_mm },
            CornerRule::JunctionDeviation { .. } => CornerRule::JunctionDeviation { deviation_mm },
            CornerRule::MotorJump { .. } => CornerRule::MotorJump { max_jump_hz },
        },
    };
    let mut time = |key: &str, v: Option<f64>, fallback: f64| match v {
        Some(v) => c.range(&format!("motion.{key}"), v, 0.0, 10.0, " s", fallback),
        None => fallback,
    };
    let pen_lift_s = time("pen_lift_s", m.pen_lift_s, base.pen_lift_s);
    let pen_drop_s = time("pen_drop_s", m.pen_drop_s, base.pen_drop_s);
    MotionLimits {
        pen_down_speed_mm_s,
        pen_down_accel_mm_s2,
        pen_up_speed_mm_s,
        pen_up_accel_mm_s2,
        corner_rule,
        pen_lift_s,
        pen_drop_s,
        per_motor_limits: m.per_motor_limits.unwrap_or(base.per_motor_limits),
        limits,
    }
}

fn logging(
    c: &mut Collector<'_>,
    s: &Sources,
    raw: &RawConfig,
    workspace: &Path,
    home: Option<&Path>,
) -> LogSettings {
    let l = &raw.logging;
    let file = match &l.file {
        Some(p) => {
            if p.starts_with("workspace") {
                c.note(
                    "logging.file",
                    format!(
                        "relative paths are relative to the workspace, so the log is {}",
                        workspace.join(p).display()
                    ),
                    "write logs/plotty.log for <workspace>/logs/plotty.log",
                );
            }
            absolute(workspace, p, home)
        }
        None => workspace.join("logs").join("plotty.log"),
    };
    if file.file_name().is_none() || file == workspace {
        c.problem(
            "logging.file",
            "does not name a file",
            "e.g. logs/plotty.log",
        );
    }
    let format = match l.format.trim().to_ascii_lowercase().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other if other.contains("%(") => {
            c.note(
                "logging.format",
                "Python logging format strings are not supported; using the text format",
                "write `format: text` or `format: json`",
            );
            LogFormat::Text
        }
        _ => {
            c.problem(
                "logging.format",
                format!("`{}` is not a log format", l.format),
                "use text or json",
            );
            LogFormat::Text
        }
    };
    if l.backup_count > 1000 {
        c.problem(
            "logging.backup_count",
            format!("{} is too many", l.backup_count),
            "use 0 to 1000",
        );
    }
    LogSettings {
        level: s.overrides.log_level.unwrap_or(l.level),
        file,
        max_size: l.max_size.0,
        backup_count: l.backup_count,
        format,
        audit: l.audit,
        security_events: l.security_events,
    }
}

fn hooks(
    c: &mut Collector<'_>,
    raw: Option<&BTreeMap<String, Option<Vec<RawHook>>>>,
    config_dir: &Path,
    home: Option<&Path>,
) -> HookSet {
    let mut by_state: BTreeMap<JobState, Vec<Hook>> = BTreeMap::new();
    for (name, list) in raw.into_iter().flatten() {
        let key = format!("hooks.{name}");
        let Ok(state) = name.parse::<JobState>() else {
            let states: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            let suggestion = closest(
                name,
                &states.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            );
            c.problem(
                &key,
                format!("`{name}` is not a job state"),
                match suggestion {
                    Some(s) => format!("did you mean `{s}`? states: {}", states.join(", ")),
                    None => format!("use one of: {}", states.join(", ")),
                },
            );
            continue;
        };
        for (i, h) in list.iter().flatten().enumerate() {
            let item = format!("{key}[{i}]");
            let timeout = h
                .timeout
                .map(|t| c.seconds(&format!("{item}.timeout"), t, 0.1, 3600.0, 30.0));
            let given = [h.command.is_some(), h.script.is_some(), h.webhook.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if given != 1 {
                c.problem(
                    &item,
                    if given == 0 {
                        "has no action"
                    } else {
                        "has more than one action"
                    },
                    "give exactly one of command, script or webhook per list item",
                );
                continue;
            }
            let (field, result) = if let Some(cmd) = &h.command {
                (
                    "command",
                    match cmd {
                        RawCommand::Shell(text) => Hook::command(text, timeout),
                        RawCommand::Argv(items) => Hook::command_argv(items, timeout),
                    },
                )
            } else if let Some(p) = &h.script {
                (
                    "script",
                    Hook::script(&absolute(config_dir, p, home), timeout),
                )
            } else if let Some(url) = &h.webhook {
                ("webhook", Hook::webhook(url, timeout))
            } else {
                continue;
            };
            match result {
                Ok(hook) => by_state.entry(state).or_default().push(hook),
                Err(e) => c.problem(
                    &format!("{item}.{field}"),
                    e.message,
                    e.fix.unwrap_or_default(),
                ),
            }
        }
    }
    HookSet::new(by_state)
}

fn paper(c: &mut Collector<'_>, raw: &RawConfig) -> PaperSettings {
    let p = &raw.paper;
    let size = parse_paper(&p.default_size).unwrap_or_else(|| {
        let names: Vec<_> = PAPER_SIZES.iter().map(|(n, _, _)| *n).collect();
        c.problem(
            "paper.default_size",
            format!("`{}` is not a paper size", p.default_size),
            format!(
                "use {} or WIDTHxHEIGHT in mm (e.g. 300x200)",
                names.join(", ")
            ),
        );
        PaperSize {
            name: "A4".into(),
            width_mm: 210.0,
            height_mm: 297.0,
        }
    });
    let max_margin = size.width_mm.min(size.height_mm) / 2.0;
    let margin_mm = c.range(
        "paper.margin_mm",
        p.margin_mm,
        0.0,
        max_margin - 1.0,
        " mm",
        10.0,
    );
    PaperSettings {
        size,
        margin_mm,
        orientation: p.orientation,
    }
}

/// A named size or `WxH[mm]`.
pub(crate) fn parse_paper(text: &str) -> Option<PaperSize> {
    let t = text.trim();
    if let Some((name, w, h)) = PAPER_SIZES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(t))
    {
        return Some(PaperSize {
            name: (*name).to_owned(),
            width_mm: *w,
            height_mm: *h,
        });
    }
    let dims = t.to_ascii_lowercase();
    let dims = dims.strip_suffix("mm").unwrap_or(&dims);
    let (w, h) = dims.split_once(['x', '×'])?;
    let (w, h): (f64, f64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    let ok = |v: f64| (10.0..=5000.0).contains(&v);
    (ok(w) && ok(h)).then(|| PaperSize {
        name: t.to_owned(),
        width_mm: w.min(h),
        height_mm: w.max(h),
    })
}

fn pens(c: &mut Collector<'_>, raw: &RawConfig) -> Vec<PenSettings> {
    let mut out = Vec::new();
    for (name, p) in raw.pens.iter().flatten() {
        let key = format!("pens.{name}");
        if name.trim().is_empty() {
            c.problem(&key, "a pen needs a name", "");
        }
        let width_mm = p
            .width_mm
            .map(|w| c.range(&format!("{key}.width_mm"), w, 0.01, 50.0, " mm", 0.5));
        let speed_cap_mm_s = p.speed_cap_mm_s.map(|v| {
            c.range(
                &format!("{key}.speed_cap_mm_s"),
                v,
                0.1,
                1000.0,
                " mm/s",
                50.0,
            )
        });
        let color = p.color.as_ref().and_then(|col| {
            let hex = col.trim().strip_prefix('#').unwrap_or("");
            if (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
                Some(format!("#{}", hex.to_ascii_lowercase()))
            } else {
                c.problem(
                    &format!("{key}.color"),
                    format!("`{col}` is not a colour"),
                    "write it as #rrggbb (e.g. #1a1aff) or #rgb",
                );
                None
            }
        });
        out.push(PenSettings {
            name: name.clone(),
            width_mm,
            color,
            speed_cap_mm_s,
        });
    }
    out
}

impl MotionLimits {
    /// The comparison limits of the benchmark suite (`bench/README.md`): pen down 50 mm/s and
    /// 200 mm/s², junction deviation 0.127 mm; pen up 200 mm/s and 400 mm/s²; pen lift and drop
    /// 0.12 s; one XY speed limit (no per-motor limits).
    pub const COMPARISON: Self = Self {
        pen_down_speed_mm_s: 50.0,
        pen_down_accel_mm_s2: 200.0,
        pen_up_speed_mm_s: 200.0,
        pen_up_accel_mm_s2: 400.0,
        corner_rule: CornerRule::JunctionDeviation {
            deviation_mm: 0.127,
        },
        pen_lift_s: 0.12,
        pen_drop_s: 0.12,
        per_motor_limits: false,
        limits: LimitModel::Xy,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let keys: Vec<String> = ["enabled", "host", "authenticate", "api_key"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(
            closest("authentication", &keys).as_deref(),
            Some("authenticate")
        );
        assert_eq!(closest("apikey", &keys).as_deref(), Some("api_key"));
        assert_eq!(closest("zzzzzz", &keys), None);
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            database_path("sqlite:///plotty.db").unwrap(),
            PathBuf::from("plotty.db")
        );
        assert_eq!(
            database_path("sqlite:////var/lib/p.db").unwrap(),
            PathBuf::from("/var/lib/p.db")
        );
        assert_eq!(
            database_path("/srv/p.db").unwrap(),
            PathBuf::from("/srv/p.db")
        );
        assert!(
            database_path("postgresql://u@h/db")
                .unwrap_err()
                .contains("SQLite")
        );
        assert!(database_path("sqlite://host/p.db").is_err());
        assert!(database_path("sqlite:///:memory:").is_err());
    }

    #[test]
    fn paper_sizes() {
        assert_eq!(parse_paper("a3").unwrap().width_mm, 297.0);
        let p = parse_paper("300x200mm").unwrap();
        assert_eq!((p.width_mm, p.height_mm), (200.0, 300.0));
        assert!(parse_paper("B5").is_none());
        assert!(parse_paper("0x0").is_none());
    }

    /// A key of one section: absent, a good value, or a value of the wrong type.
    type Slot = (&'static str, &'static str, &'static str);

    /// Per section: keys with a good and a bad value, and misspellings of keys.
    const SECTIONS: &[(&str, &[Slot], &[&str])] = &[
        (
            "websocket",
            &[
                ("port", "9000", "many"),
                ("max_connections", "5", "[1]"),
                ("heartbeat_interval", "10", "soon"),
                ("enabled", "true", "maybe"),
            ],
            &["prot", "max_conections", "hearbeat"],
        ),
        (
            "device",
            &[
                ("model", "2", "two"),
                ("type", "sim", "plotter"),
                ("speed_pendown", "30", "fast"),
            ],
            &["modle", "tpye"],
        ),
        (
            "logging",
            &[("level", "debug", "loud"), ("max_size", "5MB", "10XB")],
            &["levle"],
        ),
    ];

    /// A config file from the choices (0 absent, 1 good, 2 bad per key; a misspelling
    /// present or not) and the problem keys it must give, in file order.
    fn config_of(choices: &[u8], typos: &[bool]) -> (String, Vec<String>) {
        let (mut text, mut expected) = (String::new(), Vec::new());
        let (mut c, mut t) = (choices.iter(), typos.iter());
        for (section, slots, misspelt) in SECTIONS {
            text.push_str(&format!("{section}:\n"));
            for (key, good, bad) in *slots {
                match c.next().copied().unwrap_or(0) % 3 {
                    1 => text.push_str(&format!("  {key}: {good}\n")),
                    2 => {
                        text.push_str(&format!("  {key}: {bad}\n"));
                        expected.push(format!("{section}.{key}"));
                    }
                    _ => {}
                }
            }
            for key in *misspelt {
                if t.next().copied().unwrap_or(false) {
                    text.push_str(&format!("  {key}: 1\n"));
                    expected.push(format!("{section}.{key}"));
                }
            }
        }
        (text, expected)
    }

    proptest::proptest! {
        /// Issue 12 item 6: whatever mix of misspelt keys and values of the wrong type a file
        /// has, each is one problem at its key, and nothing else is reported.
        #[test]
        fn every_unknown_key_and_wrong_type_is_one_problem(
            choices in proptest::collection::vec(0u8..3, 9),
            typos in proptest::collection::vec(proptest::bool::ANY, 6),
        ) {
            let (text, expected) = config_of(&choices, &typos);
            let sources = Sources::default();
            let source = ConfigSource {
                path: Some(PathBuf::from("/c.yaml")),
                origin: super::super::Origin::CommandLine,
                found: true,
            };
            let found: Vec<String> = match validate(&sources, source, Some(&text)) {
                Ok(_) => Vec::new(),
                Err(ConfigError::Invalid(p)) => p
                    .into_iter()
                    .filter(|p| p.file.is_some())
                    .map(|p| p.key)
                    .collect(),
                Err(e) => panic!("{e}"),
            };
            proptest::prop_assert_eq!(found, expected, "{}", text);
        }
    }
}
