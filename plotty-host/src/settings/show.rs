//! `plotty config show`: the settings `plotty daemon` would run with, one line per key, each
//! with where its value came from (the default, a line of the config file, an environment
//! variable, the command line).
//!
//! The values are read from the validated [`Settings`] that [`super::load`] builds, so what is
//! shown is what runs; the origin of a key is found from the same [`Sources`] (the command line
//! and environment override a few keys) and from the file text ([`super::locate`]), so there is
//! no second settings model to keep in step. Secrets (the API key) are masked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::locate::{self, Segment};
use super::units::ByteSize;
use super::{ConfigError, ConfigSource, CornerRule, OriginPolicy, Settings, Sources};
use crate::logging::LogFormat;

/// What `api_key` is shown as when one is set.
pub const MASK: &str = "********";

/// The merged settings and where each value came from.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The config file used (or looked for).
    pub config: ConfigSource,
    /// One entry per key, in the order of the example config.
    pub entries: Vec<Entry>,
}

/// One key's value and origin.
#[derive(Clone, PartialEq, Debug)]
pub struct Entry {
    /// The key, dotted (`websocket.port`, `hooks.COMPLETED[0]`).
    pub key: String,
    /// The value the daemon runs with (`null`: none).
    pub value: Value,
    /// Who chose it.
    pub origin: ValueOrigin,
}

/// Who chose a value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ValueOrigin {
    /// The built-in default.
    Default,
    /// The built-in default, computed from other settings (`device`, the workspace).
    Derived {
        /// What it was computed from.
        from: &'static str,
    },
    /// The config file.
    File {
        /// The file.
        path: PathBuf,
        /// The key's line, from 1.
        line: Option<usize>,
    },
    /// An environment variable.
    Environment(&'static str),
    /// A command-line option.
    CommandLine(&'static str),
}

/// Loads the configuration as the daemon would and lists every setting with its origin.
///
/// # Errors
/// The configuration cannot be used (the same problems `plotty check config` lists).
pub fn show(sources: &Sources) -> Result<Shown, ConfigError> {
    let (config, text) = super::read_config(sources)?;
    let settings = super::validate::validate(sources, config.clone(), text.as_deref())?;
    // The text parsed when `validate` accepted it; an empty or comment-only file is no tree.
    let tree = text
        .as_deref()
        .and_then(|t| yaml_serde::from_str::<yaml_serde::Value>(t).ok())
        .unwrap_or(yaml_serde::Value::Null);
    let origins = Origins {
        sources,
        file: config.path.as_deref().filter(|_| config.found),
        text: text.as_deref(),
        tree: &tree,
    };
    let entries = entries(&settings, &origins);
    Ok(Shown { config, entries })
}

/// Finds who set a key.
struct Origins<'a> {
    sources: &'a Sources,
    file: Option<&'a Path>,
    text: Option<&'a str>,
    tree: &'a yaml_serde::Value,
}

impl Origins<'_> {
    /// The origin of `key`: the command line or environment where they override it (the same
    /// precedence `validate` applies), else the file when it has the key, else the default.
    fn of(&self, key: &str) -> ValueOrigin {
        let o = &self.sources.overrides;
        let env = &self.sources.env;
        let set = |v: &Option<std::ffi::OsString>| v.as_ref().is_some_and(|v| !v.is_empty());
        match key {
            "workspace" if o.workspace.is_some() => return ValueOrigin::CommandLine("--workspace"),
            "workspace" if set(&env.workspace) => {
                return ValueOrigin::Environment("PLOTTY_WORKSPACE");
            }
            "websocket.host" if o.host.is_some() => return ValueOrigin::CommandLine("--host"),
            "websocket.port" if o.port.is_some() => return ValueOrigin::CommandLine("--port"),
            "logging.level" if o.log_level.is_some() => {
                return ValueOrigin::CommandLine("--log-level");
            }
            "websocket.api_key" if set(&env.api_key) => {
                return ValueOrigin::Environment("PLOTTY_API_KEY");
            }
            _ => {}
        }
        self.in_file(&locate::parse_path(key))
            .unwrap_or(ValueOrigin::Default)
    }

    /// `of`, with `from` as the origin of a default computed from other settings.
    fn derived(&self, key: &str, from: &'static str) -> ValueOrigin {
        match self.of(key) {
            ValueOrigin::Default => ValueOrigin::Derived { from },
            other => other,
        }
    }

    /// The file's origin when it has the key at `path`.
    fn in_file(&self, path: &[Segment]) -> Option<ValueOrigin> {
        let file = self.file?;
        let mut node = self.tree;
        for s in path {
            node = match s {
                Segment::Key(k) => node.get(k.as_str())?,
                Segment::Index(i) => node.get(*i)?,
            };
        }
        Some(ValueOrigin::File {
            path: file.to_path_buf(),
            line: self
                .text
                .and_then(|t| locate::locate(t, path))
                .map(|p| p.line),
        })
    }

    /// The key a hook state is written with in the file (`completed` or `COMPLETED`).
    fn hook_state_key(&self, state: crate::job::JobState) -> Option<String> {
        let map = self.tree.get("hooks")?.as_mapping()?;
        map.keys()
            .filter_map(|k| k.as_str())
            .find(|k| k.parse::<crate::job::JobState>().ok() == Some(state))
            .map(str::to_owned)
    }
}

/// Every setting of `s`, keyed as in the config file.
fn entries(s: &Settings, o: &Origins<'_>) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut add = |key: &str, value: Value, origin: ValueOrigin| {
        out.push(Entry {
            key: key.to_owned(),
            value,
            origin,
        });
    };
    let path = |p: &Path| Value::from(p.display().to_string());
    let secs = |d: std::time::Duration| json!(d.as_secs_f64());

    add("workspace", path(&s.workspace), o.of("workspace"));

    let w = &s.websocket;
    let origins = match &w.allowed_origins {
        OriginPolicy::SameHost => json!([]),
        OriginPolicy::Any => json!(["*"]),
        OriginPolicy::List(l) => json!(l),
    };
    for (key, value) in [
        ("enabled", json!(w.enabled)),
        ("host", json!(w.host)),
        ("port", json!(w.port)),
        ("authenticate", json!(w.authenticate)),
        // Never the key itself: the output may be pasted into an issue.
        (
            "api_key",
            w.api_key.as_ref().map_or(Value::Null, |_| json!(MASK)),
        ),
        ("max_connections", json!(w.max_connections)),
        ("heartbeat_interval", secs(w.heartbeat_interval)),
        ("allowed_origins", origins),
        ("message_rate_limit", json!(w.message_rate_limit)),
        (
            "max_upload_size",
            json!(ByteSize(w.max_upload_size).to_string()),
        ),
        ("allowed_hosts", json!(w.allowed_hosts)),
        ("max_http_connections", json!(w.max_http_connections)),
        ("header_timeout", secs(w.header_timeout)),
    ] {
        let key = format!("websocket.{key}");
        let origin = o.of(&key);
        add(&key, value, origin);
    }

    let d = &s.database;
    add(
        "database.url",
        match &d.postgres {
            Some(url) => json!(url.shown()),
            None => path(&d.path),
        },
        o.derived("database.url", "the workspace"),
    );
    add(
        "database.pool_size",
        json!(d.pool_size),
        o.of("database.pool_size"),
    );
    add(
        "database.max_overflow",
        json!(d.max_overflow),
        o.of("database.max_overflow"),
    );
    add(
        "database.lease_ttl",
        secs(d.lease_ttl),
        o.of("database.lease_ttl"),
    );
    add(
        "daemon.name",
        json!(s.daemon.name),
        o.derived("daemon.name", "the host name"),
    );

    // One block per plotter: `devices[N].*` for a `devices` list, else the `device` section.
    let listed = o.tree.get("devices").is_some();
    for (i, dev) in s.devices.iter().enumerate() {
        let prefix = if listed {
            format!("devices[{i}]")
        } else {
            "device".to_owned()
        };
        for (key, value) in [("name", json!(dev.name)), ("tags", json!(dev.tags))] {
            let key = format!("{prefix}.{key}");
            let origin = o.of(&key);
            add(&key, value, origin);
        }
        let ad = &dev.axidraw;
        let kind = super::DeviceKind::SPELLINGS
            .iter()
            .find(|(_, k)| *k == dev.kind)
            .map_or("auto", |(name, _)| name);
        let penlift = match ad.pen_lift {
            plotty_motion::kinematics::PenLift::Standard => 1,
            plotty_motion::kinematics::PenLift::NarrowBand => 3,
        };
        let resolution = match ad.resolution {
            plotty_motion::kinematics::Resolution::High => "high",
            plotty_motion::kinematics::Resolution::Low => "low",
        };
        for (key, value) in [
            ("type", json!(kind)),
            ("port", json!(dev.port.as_deref().unwrap_or("auto"))),
            ("nickname", json!(dev.nickname)),
            ("serial", json!(dev.serial)),
            ("baud_rate", json!(dev.baud_rate)),
            ("timeout", secs(dev.timeout)),
            ("model", json!(ad.model.number())),
            ("pen_pos_up", json!(ad.pen_pos_up)),
            ("pen_pos_down", json!(ad.pen_pos_down)),
            ("speed_pendown", json!(ad.speed_pendown)),
            ("speed_penup", json!(ad.speed_penup)),
            ("accel", json!(ad.accel)),
            ("cornering", json!(ad.cornering)),
            ("resolution", json!(resolution)),
            ("firmware", json!(dev.firmware.to_string())),
            ("pen_rate_raise", json!(ad.pen_rate_raise)),
            ("pen_rate_lower", json!(ad.pen_rate_lower)),
            ("pen_delay_up", json!(ad.pen_delay_up)),
            ("pen_delay_down", json!(ad.pen_delay_down)),
            ("penlift", json!(penlift)),
            ("const_speed", json!(ad.const_speed)),
        ] {
            let key = format!("{prefix}.{key}");
            let origin = o.of(&key);
            add(&key, value, origin);
        }
    }

    let m = &s.motion;
    let (corner_rule, deviation_mm, jump_hz) = match m.corner_rule {
        CornerRule::AxiDraw { deviation_mm } => ("axidraw", Some(deviation_mm), None),
        CornerRule::JunctionDeviation { deviation_mm } => ("junction", Some(deviation_mm), None),
        CornerRule::MotorJump { max_jump_hz } => ("motor_jump", None, Some(max_jump_hz)),
    };
    let limits = match m.limits {
        super::LimitModel::Xy => "xy",
        super::LimitModel::PerMotor => "per_motor",
    };
    // The preset is not kept in the settings (it only picks the base values): as written.
    let preset = o
        .tree
        .get("motion")
        .and_then(|m| m.get("preset"))
        .and_then(yaml_serde::Value::as_str)
        .unwrap_or("axidraw")
        .to_ascii_lowercase();
    for (key, value) in [
        ("preset", json!(preset)),
        ("pen_down_speed_mm_s", json!(m.pen_down_speed_mm_s)),
        ("pen_down_accel_mm_s2", json!(m.pen_down_accel_mm_s2)),
        ("pen_up_speed_mm_s", json!(m.pen_up_speed_mm_s)),
        ("pen_up_accel_mm_s2", json!(m.pen_up_accel_mm_s2)),
        ("corner_rule", json!(corner_rule)),
        ("corner_deviation_mm", json!(deviation_mm)),
        ("corner_jump_hz", json!(jump_hz)),
        ("limits", json!(limits)),
        ("pen_lift_s", json!(m.pen_lift_s)),
        ("pen_drop_s", json!(m.pen_drop_s)),
        ("per_motor_limits", json!(m.per_motor_limits)),
    ] {
        let key = format!("motion.{key}");
        let origin = if key == "motion.preset" {
            o.of(&key)
        } else {
            o.derived(&key, "the motion preset and device")
        };
        add(&key, value, origin);
    }

    let l = &s.logging;
    let format = match l.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    add(
        "logging.level",
        json!(l.level.as_str()),
        o.of("logging.level"),
    );
    add(
        "logging.file",
        path(&l.file),
        o.derived("logging.file", "the workspace"),
    );
    for (key, value) in [
        ("max_size", json!(ByteSize(l.max_size).to_string())),
        ("backup_count", json!(l.backup_count)),
        ("format", json!(format)),
        ("audit", json!(l.audit)),
        ("security_events", json!(l.security_events)),
    ] {
        let key = format!("logging.{key}");
        let origin = o.of(&key);
        add(&key, value, origin);
    }

    if s.hooks.is_empty() {
        add("hooks", json!({}), o.of("hooks"));
    }
    for (state, hooks) in s.hooks.iter() {
        let written = o
            .hook_state_key(state)
            .unwrap_or_else(|| state.as_str().to_owned());
        for (i, h) in hooks.iter().enumerate() {
            let key = format!("hooks.{written}[{i}]");
            let mut value = serde_json::Map::new();
            value.insert(h.kind().to_owned(), json!(masked_target(h)));
            value.insert("timeout".to_owned(), json!(h.timeout.as_secs_f64()));
            let origin = o.of(&key);
            add(
                &format!("hooks.{}[{i}]", state.as_str()),
                Value::Object(value),
                origin,
            );
        }
    }

    let p = &s.paper;
    add(
        "paper.default_size",
        json!(p.size.name),
        o.of("paper.default_size"),
    );
    add(
        "paper.margin_mm",
        json!(p.margin_mm),
        o.of("paper.margin_mm"),
    );
    let orientation = crate::paper::orientation_name(p.orientation);
    add(
        "paper.orientation",
        json!(orientation),
        o.of("paper.orientation"),
    );

    if s.pens.is_empty() {
        add("pens", json!({}), o.of("pens"));
    }
    for pen in &s.pens {
        let key = format!("pens.{}", pen.name);
        let value = json!({
            "width_mm": pen.width_mm,
            "color": pen.color,
            "speed_cap_mm_s": pen.speed_cap_mm_s,
        });
        let origin = o.of(&key);
        add(&key, value, origin);
    }

    let finish = match s.shutdown.finish {
        super::file::ShutdownFinish::Stroke => "stroke",
        super::file::ShutdownFinish::Job => "job",
    };
    add("shutdown.finish", json!(finish), o.of("shutdown.finish"));
    add(
        "shutdown.timeout",
        secs(s.shutdown.timeout),
        o.of("shutdown.timeout"),
    );
    add(
        "limits.max_segments",
        json!(s.limits.max_segments),
        o.of("limits.max_segments"),
    );
    add(
        "limits.max_file_mb",
        json!(s.limits.max_file_bytes as f64 / 1_048_576.0),
        o.of("limits.max_file_mb"),
    );
    out
}

/// A hook's target, with the credentials a webhook URL may carry (user, password, query
/// string) masked.
fn masked_target(h: &crate::hooks::Hook) -> String {
    let target = h.target();
    if h.kind() != "webhook" {
        return target;
    }
    let (scheme, rest) = target.split_once("://").unwrap_or(("", &target));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?{MASK}"),
        None => path.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

impl Shown {
    /// The entries as text: a header naming the config file, then `key: value  # origin`
    /// lines, aligned.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        let _ = match (&c.path, c.found) {
            (Some(p), true) => writeln!(
                out,
                "# The settings `plotty daemon` would run with; config file {} (from {}).",
                p.display(),
                c.origin
            ),
            (Some(p), false) => writeln!(
                out,
                "# The settings `plotty daemon` would run with; no config file ({} does not \
                 exist).",
                p.display()
            ),
            (None, _) => writeln!(
                out,
                "# The settings `plotty daemon` would run with; no config file."
            ),
        };
        let rows: Vec<(String, String)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    format!("{}: {}", e.key, text_value(&e.value)),
                    e.origin.to_string(),
                )
            })
            .collect();
        let width = rows
            .iter()
            .map(|(kv, _)| kv.chars().count())
            .max()
            .unwrap_or(0);
        for (kv, origin) in rows {
            let _ = writeln!(out, "{kv:width$}  # {origin}");
        }
        out
    }

    /// The entries as JSON: `config_file` (`path`, `origin`, `found`) and `settings`, a list of
    /// `{key, value, origin}` with `file` and `line`, `variable` or `option` as the origin
    /// needs.
    pub fn to_json(&self) -> Value {
        let settings: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut v = json!({"key": e.key, "value": e.value});
                let (origin, extra) = match &e.origin {
                    ValueOrigin::Default => ("default", None),
                    ValueOrigin::Derived { from } => {
                        ("default", Some(("derived_from", json!(from))))
                    }
                    ValueOrigin::File { path, line } => {
                        v["file"] = json!(path.display().to_string());
                        ("file", Some(("line", json!(line))))
                    }
                    ValueOrigin::Environment(var) => ("env", Some(("variable", json!(var)))),
                    ValueOrigin::CommandLine(opt) => ("command line", Some(("option", json!(opt)))),
                };
                v["origin"] = json!(origin);
                if let Some((k, x)) = extra {
                    v[k] = x;
                }
                v
            })
            .collect();
        let c = &self.config;
        json!({
            "config_file": {
                "path": c.path.as_ref().map(|p| p.display().to_string()),
                "origin": c.origin.to_string(),
                "found": c.found,
            },
            "settings": settings,
        })
    }
}

/// A value as written in YAML flow style: strings bare, lists `[a, b]`, nothing as `~`.
fn text_value(v: &Value) -> String {
    match v {
        Value::Null => "~".to_owned(),
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(text_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}: {}", text_value(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        // Derived limits are long fractions: four decimals are plenty to read (JSON keeps all).
        Value::Number(n) if n.is_f64() => {
            let text = format!("{:.4}", n.as_f64().unwrap_or_default());
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        other => other.to_string(),
    }
}

impl std::fmt::Display for ValueOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Derived { from } => write!(f, "default, from {from}"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
            Self::Environment(var) => write!(f, "env {var}"),
            Self::CommandLine(option) => write!(f, "command line {option}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Defaults, Environment, Overrides};

    fn sources(dir: &Path) -> Sources {
        Sources {
            overrides: Overrides::default(),
            env: Environment {
                cwd: dir.join("cwd"),
                ..Environment::default()
            },
            defaults: Defaults {
                config_file: Some(dir.join("xdg-config/plotty/config.yaml")),
                workspace: Some(dir.join("xdg-data/plotty/workspace")),
                home: Some(dir.join("home")),
            },
        }
    }

    fn entry<'a>(shown: &'a Shown, key: &str) -> &'a Entry {
        shown
            .entries
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no {key} in {:#?}", shown.entries))
    }

    /// The keys of the example config, the commented-out ones too (`# port: …`), as dotted
    /// paths of the leaves; under `hooks` and `pens` the names are the user's, so only the
    /// section counts.
    fn example_keys() -> Vec<String> {
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut leaves: Vec<String> = Vec::new();
        for line in super::super::init::EXAMPLE.lines() {
            // `  # api_key: …` is the key `api_key` at indent 2, `#   preset: …` at 2 too.
            let before = line.len() - line.trim_start().len();
            let line = line.trim_start();
            let line = line.strip_prefix("# ").unwrap_or(line);
            let indent = before + line.len() - line.trim_start().len();
            let content = line.trim_start();
            let Some((key, _)) = content.split_once(':') else {
                continue;
            };
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let path = match stack.last() {
                Some((_, parent)) => format!("{parent}.{key}"),
                None => key.to_owned(),
            };
            let section = path.split('.').next().unwrap_or_default();
            if (section == "hooks" || section == "pens") && path != section {
                continue;
            }
            // The `devices` list replaces the `device` section when used; it is shown as
            // `devices[N].*`, one block per entry (see `every_plotter_of_devices_is_shown`).
            if section == "devices" {
                if path == section {
                    stack.push((indent, path));
                }
                continue;
            }
            // A key with children is not a leaf.
            if let Some((_, parent)) = stack.last() {
                leaves.retain(|l| l != parent);
            }
            stack.push((indent, path.clone()));
            if !leaves.contains(&path) {
                leaves.push(path);
            }
        }
        leaves
    }

    /// Issue 15: with a `devices` list, each plotter's settings are shown under its index.
    #[test]
    fn every_plotter_of_devices_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "devices:\n  - name: left\n    type: sim\n    tags: [a3]\n  - name: right\n    type: sim\n    model: 2\n",
        )
        .unwrap();
        let mut s = sources(dir.path());
        s.overrides.config = Some(file);
        let shown = show(&s).unwrap();
        assert_eq!(entry(&shown, "devices[0].name").value, json!("left"));
        assert_eq!(entry(&shown, "devices[0].tags").value, json!(["a3"]));
        assert_eq!(entry(&shown, "devices[1].model").value, json!(2));
        assert!(
            matches!(
                entry(&shown, "devices[1].model").origin,
                ValueOrigin::File { .. }
            ),
            "{:?}",
            entry(&shown, "devices[1].model").origin
        );
        assert!(!shown.entries.iter().any(|e| e.key.starts_with("device.")));
    }

    /// Issue 12 item 2: `config show` lists every key of the example config, and nothing the
    /// example leaves out.
    #[test]
    fn every_key_of_the_example_config_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let shown = show(&sources(dir.path())).unwrap();
        let keys = example_keys();
        // The parser of the example found its commented keys too.
        for k in [
            "workspace",
            "websocket.api_key",
            "device.port",
            "motion.preset",
            "hooks",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
        assert!(keys.len() > 60, "{keys:?}");
        let shown_keys: Vec<&str> = shown.entries.iter().map(|e| e.key.as_str()).collect();
        for k in &keys {
            assert!(shown_keys.contains(&k.as_str()), "`{k}` is not shown");
        }
        for k in &shown_keys {
            assert!(keys.iter().any(|x| x == k), "`{k}` is not in the example");
        }
        // With no file everything is a default.
        assert!(
            shown
                .entries
                .iter()
                .all(|e| matches!(e.origin, ValueOrigin::Default | ValueOrigin::Derived { .. }))
        );
    }

    /// Issue 12 item 2: each value says where it came from: a file line, an environment
    /// variable, the command line, the default.
    #[test]
    fn origins_of_file_environment_command_line_and_default_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(
            &file,
            "# mine\nwebsocket:\n  authenticate: true\n  port: 9000\n  api_key: key-from-the-file-0123\ndevice:\n  type: sim\nhooks:\n  completed:\n    - webhook: http://127.0.0.1:8080/x?token=s3cret\n",
        )
        .unwrap();
        let mut s = sources(dir.path());
        s.overrides.config = Some(file.clone());
        s.overrides.workspace = Some(dir.path().join("ws"));
        s.env.api_key = Some("key-from-the-environment".into());
        let shown = show(&s).unwrap();

        let port = entry(&shown, "websocket.port");
        assert_eq!(port.value, json!(9000));
        assert_eq!(
            port.origin,
            ValueOrigin::File {
                path: file.clone(),
                line: Some(4)
            }
        );
        assert_eq!(entry(&shown, "device.type").value, json!("simulator"));
        let key = entry(&shown, "websocket.api_key");
        assert_eq!(
            (&key.value, &key.origin),
            (&json!(MASK), &ValueOrigin::Environment("PLOTTY_API_KEY"))
        );
        let ws = entry(&shown, "workspace");
        assert_eq!(ws.origin, ValueOrigin::CommandLine("--workspace"));
        assert_eq!(
            entry(&shown, "database.url").value,
            json!(dir.path().join("ws/plotty.db").display().to_string())
        );
        let host = entry(&shown, "websocket.host");
        assert_eq!(
            (&host.value, &host.origin),
            (&json!("localhost"), &ValueOrigin::Default)
        );
        let hook = entry(&shown, "hooks.COMPLETED[0]");
        assert_eq!(
            hook.origin,
            ValueOrigin::File {
                path: file.clone(),
                line: Some(10)
            }
        );

        let text = shown.to_text();
        let json = shown.to_json().to_string();
        for out in [&text, &json] {
            for secret in ["key-from-the-file", "key-from-the-environment", "s3cret"] {
                assert!(!out.contains(secret), "{secret} shown in {out}");
            }
        }
        let line = |k: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{k}: ")))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("websocket.port"),
            format!("websocket.port: 9000 # {}:4", file.display())
        );
        assert_eq!(
            line("websocket.api_key"),
            "websocket.api_key: ******** # env PLOTTY_API_KEY"
        );
        assert_eq!(
            line("websocket.host"),
            "websocket.host: localhost # default"
        );
        assert_eq!(
            line("motion.pen_down_speed_mm_s"),
            "motion.pen_down_speed_mm_s: 50.2106 # default, from the motion preset and device"
        );
        let v: Value = serde_json::from_str(&json).unwrap();
        let port = v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "websocket.port")
            .unwrap();
        assert_eq!(
            port,
            &json!({"key": "websocket.port", "value": 9000, "origin": "file",
                    "file": file.display().to_string(), "line": 4})
        );
    }

    #[test]
    fn an_invalid_configuration_is_the_same_error_as_for_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "websocket:\n  prot: 1\n").unwrap();
        let mut s = sources(dir.path());
        s.overrides.config = Some(file);
        let shown = show(&s).unwrap_err().to_string();
        assert_eq!(shown, super::super::load(&s).unwrap_err().to_string());
        assert!(shown.contains("websocket.prot"), "{shown}");
    }
}
