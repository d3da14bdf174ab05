//! `plotty check config`: load the configuration as the daemon would and report each part, every
//! problem with its location and fix, and the notes worth knowing.

use std::path::Path;

use super::{ConfigError, CornerRule, DeviceKind, OriginPolicy, Settings, Sources, load};
use crate::check::Report;

/// Loads the configuration from `sources` and reports on it; the settings when they are usable.
pub fn check(sources: &Sources) -> (Report, Option<Settings>) {
    let mut r = Report::new("configuration");
    let settings = match load(sources) {
        Ok(s) => s,
        Err(ConfigError::Invalid(problems)) => {
            for p in problems {
                let at = match (&p.file, p.location) {
                    (Some(f), Some(l)) => format!("{}:{}:{}: ", f.display(), l.line, l.column),
                    (Some(f), None) => format!("{}: ", f.display()),
                    (None, _) => String::new(),
                };
                let fix = p.fix.clone().unwrap_or_else(|| "correct the value".into());
                r.problem(p.key.clone(), format!("{at}{}", p.message), fix);
            }
            return (r, None);
        }
        Err(e @ ConfigError::Missing { .. }) => {
            r.problem(
                "config file",
                e.to_string(),
                "create the file or correct the path",
            );
            return (r, None);
        }
        Err(e @ ConfigError::Read { .. }) => {
            r.problem(
                "config file",
                e.to_string(),
                "make the file readable for the daemon's user",
            );
            return (r, None);
        }
    };
    report_settings(&settings, &mut r);
    (r, Some(settings))
}

fn report_settings(s: &Settings, r: &mut Report) {
    match (&s.config.path, s.config.found) {
        (Some(p), true) => r.ok(
            "config file",
            format!("{} (from {})", p.display(), s.config.origin),
        ),
        (Some(p), false) => r.ok(
            "config file",
            format!(
                "{} does not exist; using the built-in defaults",
                p.display()
            ),
        ),
        (None, _) => r.warn(
            "config file",
            "no default location (no home directory); using the built-in defaults",
            "set HOME or give --config",
        ),
    }
    directory(r, "workspace", &s.workspace);
    let w = &s.websocket;
    if w.enabled {
        let auth = if w.authenticate {
            "API key required"
        } else {
            "no authentication"
        };
        let origins = match &w.allowed_origins {
            OriginPolicy::SameHost => "same host only".to_owned(),
            OriginPolicy::Any => "any origin".to_owned(),
            OriginPolicy::List(l) => l.join(", "),
        };
        let hosts = if w.authenticate {
            "any (the API key is required)".to_owned()
        } else if w.allowed_hosts.is_empty() {
            "the listen address and localhost only".to_owned()
        } else {
            format!(
                "the listen address, localhost, {}",
                w.allowed_hosts.join(", ")
            )
        };
        r.ok(
            "websocket",
            format!(
                "{}:{}, {auth}, up to {} clients, ping every {} s, origins: {origins}, host \
                 names: {hosts}, up to {} HTTP connections, headers within {} s",
                w.host,
                w.port,
                w.max_connections,
                w.heartbeat_interval.as_secs_f64(),
                w.max_http_connections,
                w.header_timeout.as_secs_f64()
            ),
        );
    } else {
        r.ok("websocket", "disabled");
    }
    if let Some(url) = &s.database.postgres {
        r.ok("database", format!("PostgreSQL {}", url.shown()));
    } else {
        r.ok("database", s.database.path.display().to_string());
        if let Some(dir) = s.database.path.parent() {
            directory(r, "database directory", dir);
        }
    }
    let d = &s.device;
    let kind = match d.kind {
        DeviceKind::Auto => "auto (the first AxiDraw found, else the simulator)",
        DeviceKind::Axidraw => "axidraw",
        DeviceKind::Simulator => "simulator",
    };
    r.ok(
        "device",
        format!(
            "{kind}, port {}, {}, firmware {}, timeout {} s",
            d.port.as_deref().unwrap_or("auto"),
            d.axidraw.model,
            d.firmware,
            d.timeout.as_secs_f64()
        ),
    );
    let m = &s.motion;
    let corner = match m.corner_rule {
        CornerRule::AxiDraw { deviation_mm } => format!("AxiDraw cornering {deviation_mm:.4} mm"),
        CornerRule::JunctionDeviation { deviation_mm } => {
            format!("junction deviation {deviation_mm} mm")
        }
        CornerRule::MotorJump { max_jump_hz } => {
            format!("corner jump {max_jump_hz} steps/s per motor")
        }
    };
    let model = match m.limits {
        crate::settings::LimitModel::Xy => "XY limits",
        crate::settings::LimitModel::PerMotor => "per-motor limits derived from them",
    };
    r.ok(
        "motion limits",
        format!(
            "pen down {:.1} mm/s {:.0} mm/s², pen up {:.1} mm/s {:.0} mm/s², {corner}, pen lift \
             {} s drop {} s, {model}, 25 kHz motor cap {}",
            m.pen_down_speed_mm_s,
            m.pen_down_accel_mm_s2,
            m.pen_up_speed_mm_s,
            m.pen_up_accel_mm_s2,
            m.pen_lift_s,
            m.pen_drop_s,
            if m.per_motor_limits { "on" } else { "off" }
        ),
    );
    let l = &s.logging;
    r.ok(
        "logging",
        format!(
            "{} at {}, {} format, rotate at {} keeping {}",
            l.file.display(),
            l.level,
            match l.format {
                crate::logging::LogFormat::Text => "text",
                crate::logging::LogFormat::Json => "json",
            },
            super::units::ByteSize(l.max_size),
            l.backup_count
        ),
    );
    if let Some(dir) = l.file.parent() {
        directory(r, "log directory", dir);
    }
    if s.hooks.is_empty() {
        r.ok("hooks", "none");
    } else {
        let per_state: Vec<String> = s
            .hooks
            .iter()
            .map(|(state, hooks)| format!("{state}: {}", hooks.len()))
            .collect();
        r.ok("hooks", per_state.join(", "));
    }
    r.ok(
        "paper",
        format!(
            "{} ({} × {} mm), margin {} mm, {}",
            s.paper.size.name,
            s.paper.size.width_mm,
            s.paper.size.height_mm,
            s.paper.margin_mm,
            crate::paper::orientation_name(s.paper.orientation)
        ),
    );
    if !s.pens.is_empty() {
        let names: Vec<_> = s.pens.iter().map(|p| p.name.as_str()).collect();
        r.ok("pens", names.join(", "));
    }
    for n in &s.notes {
        let what = match n.location {
            Some(p) => format!("{} (line {})", n.key, p.line),
            None => n.key.clone(),
        };
        r.warn(what, n.message.clone(), n.advice.clone());
    }
}

/// An existing writable directory, or one that can be created.
fn directory(r: &mut Report, what: &str, dir: &Path) {
    if dir.is_dir() {
        match crate::store::check::probe_writable(dir) {
            Ok(()) => r.ok(what, format!("{} (writable)", dir.display())),
            Err(e) => r.problem(
                what,
                format!("{} is not writable: {e}", dir.display()),
                format!("`chown` it to the daemon's user or choose another {what}"),
            ),
        }
    } else if dir.exists() {
        r.problem(
            what,
            format!("{} exists but is not a directory", dir.display()),
            format!("move it away or choose another {what}"),
        );
    } else {
        let parent = dir.ancestors().skip(1).find(|a| a.is_dir());
        match parent.map(crate::store::check::probe_writable) {
            Some(Ok(())) => r.ok(what, format!("{} (created at start)", dir.display())),
            Some(Err(e)) => r.problem(
                what,
                format!(
                    "{} does not exist and cannot be created: {e}",
                    dir.display()
                ),
                "create it and give it to the daemon's user",
            ),
            None => r.problem(
                what,
                format!("{} cannot be created", dir.display()),
                "choose another path",
            ),
        }
    }
}
