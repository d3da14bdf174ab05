//! Which plotters exist: the configured plotters (`devices`, or the one `device` section) → the
//! link each device task opens, and what jobs may ask of a plotter.
//!
//! - `target`: one plotter's settings → its [`Opener`] (found by [`super::discover`]: a named
//!   port, the first AxiDraw by USB id, or the simulator), and the search `auto` keeps up while
//!   it runs on the simulator.
//! - [`Requirements`] and [`Profile`]: what a job asks (a plotter by name, a model, tags) and
//!   what a plotter offers; [`Profile::meets`] is the one rule the queue, the submission check
//!   and the PostgreSQL claim apply.

use serde::{Deserialize, Serialize};

use super::discover::{self, DeviceRequest, SimulatorReason, Target};
use super::identity::Identity;
use super::link::{Opener, SimPace};
use super::scan::{self, Discovery};
use crate::daemon::{StartContext, StartError};
use crate::events::{Alert, DaemonEvent, Severity};
use crate::exit::ExitCode;
use crate::settings::DeviceSettings;

/// What `target` found for a plotter.
#[derive(Debug)]
pub struct Chosen {
    /// How its link opens.
    pub opener: Opener,
    /// The search to keep up while `auto` found no AxiDraw and runs on the simulator.
    pub scan: Option<Discovery>,
    /// How to find its board again on another port (a board found by a search, not a fixed
    /// `port`): see the `follow` module.
    pub follow: Option<Discovery>,
}

/// The link of the plotter `device` (`discovery`: how `auto` looks for an AxiDraw, `None`: the
/// system's USB search; `siblings`: the daemon's other plotters, whose ports its searches
/// leave alone), the search to keep up when `auto` found none and runs on the
/// simulator (an alert says so), and how to follow its board to another port.
///
/// # Errors
/// The plotter cannot be found or does not answer (exit code `Device`).
pub(super) async fn target(
    device: &DeviceSettings,
    discovery: Option<Discovery>,
    siblings: &scan::Siblings,
    pace: SimPace,
    ctx: &StartContext,
) -> Result<Chosen, StartError> {
    let settings = device.clone();
    let discovery = discovery
        .unwrap_or_else(|| Discovery::system(device.baud_rate))
        .sharing(siblings);
    let search = discovery.clone();
    let target = tokio::task::spawn_blocking(move || {
        let wanted = Identity::of(&settings);
        discover::choose(&DeviceRequest::Config, &settings, || search.list(&wanted))
    })
    .await
    .map_err(|e| StartError::new(format!("device discovery ended abnormally: {e}")))?
    .map_err(|e| StartError {
        message: named(device, e),
        exit_code: Some(ExitCode::Device),
    })?;
    let opener = match &target {
        Target::Simulator { .. } => Opener::simulator(device.firmware, pace),
        Target::Serial { port, .. } => {
            let (p, baud) = (port.clone(), device.baud_rate);
            let probe = std::sync::Arc::clone(&discovery.probe);
            let version = tokio::task::spawn_blocking(move || probe(&p))
                .await
                .map_err(|e| StartError::new(format!("probing {port} ended abnormally: {e}")))?
                .map_err(|e| StartError {
                    message: named(device, e),
                    exit_code: Some(ExitCode::Device),
                })?;
            tracing::info!(port = %port, firmware = %version, device = ?device.name, "plotter found");
            Opener::Serial {
                port: port.clone(),
                baud,
                identity: Identity::of(device),
            }
        }
    };
    let id = device.name.clone().unwrap_or_else(|| opener.device_id());
    let follow = super::follow::discovery_for(device, &discovery);
    let scan = match target {
        Target::Simulator {
            reason: SimulatorReason::NoneFound,
        } => {
            // Jobs still run (the configuration asks for `auto`), but nobody may take a
            // simulated plot for a drawn one.
            tracing::warn!("{}: {target}; {}", label(device), scan::NOTICE);
            let _ = ctx.ledger.bus().send(DaemonEvent::Alert(Alert {
                severity: Severity::Warning,
                title: "no AxiDraw found: plotting on the simulator".into(),
                message: scan::NOTICE.into(),
                source: "device".into(),
                metadata: serde_json::json!({ "device_id": id }),
            }));
            Some(discovery)
        }
        _ => {
            tracing::info!("{}: {target}", label(device));
            None
        }
    };
    Ok(Chosen {
        opener,
        scan,
        follow,
    })
}

/// How the log names the plotter `device`: `device` alone for the unnamed `device` section (as
/// before there were several), `device NAME` otherwise.
fn label(device: &DeviceSettings) -> String {
    match &device.name {
        Some(name) => format!("device {name}"),
        None => "device".to_owned(),
    }
}

/// `error` about the plotter `device`, named when it has a name (several may fail alike).
fn named(device: &DeviceSettings, error: impl std::fmt::Display) -> String {
    match &device.name {
        Some(name) => format!("device `{name}`: {error}"),
        None => error.to_string(),
    }
}

/// What a job asks of the plotter that draws it (all given parts must hold; none: any plotter).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Requirements {
    /// This plotter, by name (`plotty add --device NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// An AxiDraw of this model number (1–7, as `device.model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<u8>,
    /// Tags the plotter must all have (letter case does not count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Requirements {
    /// Whether any plotter meets these (nothing is asked).
    pub fn is_empty(&self) -> bool {
        self.device.is_none() && self.model.is_none() && self.tags.is_empty()
    }

    /// Checks the words: a plotter name and tags as the config spells them, a model 1–7.
    ///
    /// # Errors
    /// What is wrong, for the submitter.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(d) = &self.device
            && !crate::settings::is_name_word(d)
        {
            return Err(format!(
                "`{d}` is not a plotter name (1–64 letters, digits, `-`, `_` or `.`)"
            ));
        }
        if let Some(m) = self.model
            && plotty_motion::kinematics::Model::from_number(m).is_none()
        {
            return Err(format!("{m} is not an AxiDraw model number (1–7)"));
        }
        for t in &self.tags {
            if !crate::settings::is_name_word(t) {
                return Err(format!(
                    "`{t}` is not a tag (1–64 letters, digits, `-`, `_` or `.`)"
                ));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Requirements {
    /// `device left, model 2, tags a3+black`, or `any plotter`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = &self.device {
            parts.push(format!("device {d}"));
        }
        if let Some(m) = self.model {
            parts.push(format!("model {m}"));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags {}", self.tags.join("+")));
        }
        if parts.is_empty() {
            f.write_str("any plotter")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What a plotter offers a job's requirements.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct Profile {
    /// Its name (the device id).
    pub name: String,
    /// Its AxiDraw model number.
    pub model: u8,
    /// Its tags.
    pub tags: Vec<String>,
}

impl Profile {
    /// The profile of the configured plotter `device`, known as `id`.
    pub fn of(id: &str, device: &DeviceSettings) -> Self {
        Self {
            name: id.to_owned(),
            model: device.axidraw.model.number(),
            tags: device.tags.clone(),
        }
    }

    /// Whether this plotter meets `req`: its name when one is asked, its model when one is
    /// asked, and every tag asked among its tags (names and tags compare without letter case).
    pub fn meets(&self, req: &Requirements) -> bool {
        req.device
            .as_deref()
            .is_none_or(|d| d.eq_ignore_ascii_case(&self.name))
            && req.model.is_none_or(|m| m == self.model)
            && req
                .tags
                .iter()
                .all(|t| self.tags.iter().any(|o| o.eq_ignore_ascii_case(t)))
    }
}

/// The refusal of a job whose requirements `req` none of `plotters` meets, naming each
/// plotter with its model and tags.
pub fn unmet(req: &Requirements, plotters: &[Profile]) -> String {
    let list: Vec<String> = plotters
        .iter()
        .map(|p| describe(&p.name, None, p.model, &p.tags))
        .collect();
    refusal("", req, &list)
}

/// [`unmet`] on a farm: `plotters` are every live daemon's (daemon name, plotter), each named
/// with its daemon.
pub fn unmet_in_farm(req: &Requirements, plotters: &[(String, crate::store::Plotter)]) -> String {
    let list: Vec<String> = plotters
        .iter()
        .map(|(daemon, p)| describe(&p.name, Some(daemon.as_str()), p.model, &p.tags))
        .collect();
    refusal(" of the farm", req, &list)
}

/// One plotter in a refusal: `` `left` on daemon `a` (model 2, tags a3, red) ``.
fn describe(name: &str, daemon: Option<&str>, model: u8, tags: &[String]) -> String {
    let on = daemon.map_or(String::new(), |d| format!(" on daemon `{d}`"));
    let tags = if tags.is_empty() {
        "no tags".to_owned()
    } else {
        format!("tags {}", tags.join(", "))
    };
    format!("`{name}`{on} (model {model}, {tags})")
}

/// The refusal's words, with what to do.
fn refusal(scope: &str, req: &Requirements, list: &[String]) -> String {
    format!(
        "no plotter{scope} can ever draw this job ({req}): the plotters are {}; ask for one of \
         them (`--device NAME`, `--tag T`, `--device-model N`), or add a plotter that meets it \
         to a daemon's `devices`",
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join("; ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plotter(name: &str, model: u8, tags: &[&str]) -> Profile {
        Profile {
            name: name.into(),
            model,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn a_plotter_meets_what_it_has_and_nothing_else() {
        let left = plotter("left", 2, &["a3", "Black"]);
        let any = Requirements::default();
        assert!(left.meets(&any));
        let by_name = Requirements {
            device: Some("LEFT".into()),
            ..any.clone()
        };
        assert!(left.meets(&by_name));
        assert!(!plotter("right", 2, &["a3"]).meets(&by_name));
        let tags = Requirements {
            tags: vec!["black".into(), "a3".into()],
            ..any.clone()
        };
        assert!(left.meets(&tags));
        assert!(
            !plotter("x", 2, &["a3"]).meets(&tags),
            "every tag is needed"
        );
        let model = Requirements {
            model: Some(1),
            ..any
        };
        assert!(!left.meets(&model));
        assert!(plotter("x", 1, &[]).meets(&model));
    }

    #[test]
    fn requirements_words_are_checked_and_a_refusal_names_the_plotters() {
        let bad = Requirements {
            tags: vec!["a 3".into()],
            ..Requirements::default()
        };
        assert!(bad.validate().unwrap_err().contains("not a tag"));
        let model = Requirements {
            model: Some(9),
            ..Requirements::default()
        };
        assert!(model.validate().is_err());
        let req = Requirements {
            tags: vec!["red".into()],
            ..Requirements::default()
        };
        let msg = unmet(
            &req,
            &[plotter("left", 2, &["a3"]), plotter("right", 1, &[])],
        );
        assert!(msg.contains("`left` (model 2, tags a3)"), "{msg}");
        assert!(msg.contains("`right` (model 1, no tags)"), "{msg}");
        assert!(msg.contains("tags red"), "{msg}");
    }
}
