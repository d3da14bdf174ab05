//! Per-run options: the AxiDraw software's command-line habits (`axicli --speed_pendown 30
//! --pen_pos_down 35 --model 2 --copies 3 …`) for one `plotty plot` or one job of `plotty add`,
//! overriding the configuration for that run only.
//!
//! The names are axicli's. Values are checked by the same rules as the config file's keys (the
//! settings' validation), so `--speed-pendown 500` is refused exactly as `device.speed_pendown:
//! 500` is. A job keeps its options (as JSON, in its metadata) so that the daemon plans and
//! plots it, and rebuilds it after a restart, with the same values.

use plotty_motion::kinematics::Model;
use serde::{Deserialize, Serialize};

use super::validate::{self, RunProblem};
use super::{Problem, Settings};

/// Per-run options out of range (every problem, each naming its option and the fix).
#[derive(Debug, thiserror::Error)]
#[error("{}", OptionList(.0))]
pub struct OptionsError(pub Vec<Problem>);

struct OptionList<'a>(&'a [Problem]);

impl std::fmt::Display for OptionList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid plot option: {one}"),
            many => {
                write!(f, "invalid plot options, {} problems:", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// How much the optimiser may change the stroke order, as axicli's `reordering` levels.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reordering {
    /// axicli 4 ("none"), `--keep-order`: strokes exactly in file order and direction, no
    /// joining or merging.
    FileOrder,
    /// axicli 0 ("least: only connect adjoining paths"): file order and direction; pen-up hops
    /// shorter than 0.15 mm (paths that adjoin) are drawn pen down.
    Adjoining,
    /// axicli 1 and 2 ("basic", "full") and 3: reorder, reverse and join strokes for the least
    /// pen-up time (the optimiser always chooses each stroke's direction). plotty's default.
    #[default]
    Full,
}

impl Reordering {
    /// The level for axicli's `reordering` number (0–4).
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            0 => Some(Self::Adjoining),
            1..=3 => Some(Self::Full),
            4 => Some(Self::FileOrder),
            _ => None,
        }
    }
}

/// The per-run options; `None`: the configuration's value.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Pen-down speed, percent of the XY ceiling (`device.speed_pendown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_pendown: Option<f64>,
    /// Pen-up speed, percent (`device.speed_penup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_penup: Option<f64>,
    /// Acceleration, percent (`device.accel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accel: Option<f64>,
    /// Pen-up height, percent (`device.pen_pos_up`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pen_pos_up: Option<f64>,
    /// Pen-down height, percent (`device.pen_pos_down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pen_pos_down: Option<f64>,
    /// Raising speed, percent (`device.pen_rate_raise`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pen_rate_raise: Option<f64>,
    /// Lowering speed, percent (`device.pen_rate_lower`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pen_rate_lower: Option<f64>,
    /// AxiDraw model number 1–7 (`device.model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<u8>,
    /// Constant-speed pen-down moves (`device.const_speed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub const_speed: Option<bool>,
    /// axicli reordering level 0–4 (see [`Reordering`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reordering: Option<u8>,
    /// Start each closed path at a random vertex (axicli `random_start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_start: Option<bool>,
    /// The seed of `random_start`, chosen once per run or job so that a rebuilt job (after a
    /// restart) starts its paths where the first build did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Turn a portrait page (taller than wide) a quarter turn counter-clockwise to fit the
    /// machine's landscape travel (axicli `auto_rotate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_rotate: Option<bool>,
    /// Plot this many times (axicli `copies`, 1–9999).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies: Option<u32>,
    /// Seconds to wait between copies (axicli `page_delay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_delay: Option<f64>,
}

impl RunOptions {
    /// The names of the options, axicli's spelling (also the HTTP API's query fields).
    pub const NAMES: [&'static str; 14] = [
        "speed_pendown",
        "speed_penup",
        "accel",
        "pen_pos_up",
        "pen_pos_down",
        "pen_rate_raise",
        "pen_rate_lower",
        "model",
        "const_speed",
        "reordering",
        "random_start",
        "auto_rotate",
        "copies",
        "page_delay",
    ];

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The options as `(name, value)` text pairs, axicli's names (what [`RunOptions::set`]
    /// reads back), for a query string.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut num = |name, v: Option<f64>| {
            if let Some(v) = v {
                out.push((name, v.to_string()));
            }
        };
        num("speed_pendown", self.speed_pendown);
        num("speed_penup", self.speed_penup);
        num("accel", self.accel);
        num("pen_pos_up", self.pen_pos_up);
        num("pen_pos_down", self.pen_pos_down);
        num("pen_rate_raise", self.pen_rate_raise);
        num("pen_rate_lower", self.pen_rate_lower);
        num("page_delay", self.page_delay);
        if let Some(m) = self.model {
            out.push(("model", m.to_string()));
        }
        if let Some(r) = self.reordering {
            out.push(("reordering", r.to_string()));
        }
        if let Some(c) = self.copies {
            out.push(("copies", c.to_string()));
        }
        for (name, v) in [
            ("const_speed", self.const_speed),
            ("random_start", self.random_start),
            ("auto_rotate", self.auto_rotate),
        ] {
            if let Some(v) = v {
                out.push((name, v.to_string()));
            }
        }
        out
    }

    /// Sets option `name` (axicli's spelling) from text, as a query string or form gives it;
    /// ranges are checked later, by [`Settings::with_run`].
    ///
    /// # Errors
    /// An unknown name, or text that is not a number, a model or a boolean.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let v = value.trim();
        let number = || {
            v.parse::<f64>()
                .map_err(|_| format!("`{name}={value}` is not a number"))
        };
        let whole = || {
            v.parse::<u32>()
                .map_err(|_| format!("`{name}={value}` is not a whole number"))
        };
        let flag = || match v.to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(format!("`{name}={value}`: use true or false")),
        };
        match name {
            "speed_pendown" => self.speed_pendown = Some(number()?),
            "speed_penup" => self.speed_penup = Some(number()?),
            "accel" => self.accel = Some(number()?),
            "pen_pos_up" => self.pen_pos_up = Some(number()?),
            "pen_pos_down" => self.pen_pos_down = Some(number()?),
            "pen_rate_raise" => self.pen_rate_raise = Some(number()?),
            "pen_rate_lower" => self.pen_rate_lower = Some(number()?),
            "page_delay" => self.page_delay = Some(number()?),
            "model" => self.model = Some(parse_model(v)?.number()),
            "reordering" => {
                self.reordering = Some(u8::try_from(whole()?).unwrap_or(u8::MAX));
            }
            "copies" => self.copies = Some(whole()?),
            "const_speed" => self.const_speed = Some(flag()?),
            "random_start" => self.random_start = Some(flag()?),
            "auto_rotate" => self.auto_rotate = Some(flag()?),
            _ => return Err(format!("`{name}` is not a plot option")),
        }
        Ok(())
    }

    /// The reordering level (the default when not given).
    pub fn reordering(&self) -> Reordering {
        self.reordering
            .and_then(Reordering::from_level)
            .unwrap_or_default()
    }

    /// The number of copies (1 when not given).
    pub fn copies(&self) -> u32 {
        self.copies.unwrap_or(1)
    }

    /// The seed of `random_start`, when it is on.
    pub fn random_start_seed(&self) -> Option<u64> {
        (self.random_start == Some(true)).then(|| self.seed.unwrap_or(0))
    }

    /// Gives `random_start` its seed, if it is on and has none yet (once per run or job).
    pub fn choose_seed(&mut self) {
        if self.random_start == Some(true) && self.seed.is_none() {
            self.seed = Some(fastrand::u64(..));
        }
    }
}

/// An AxiDraw model by axicli number (`1`–`7`) or name: `V3`, `A4`, `SE/A4`, `A3`, `V3/A3`,
/// `SE-A3`, `XLX`, `MiniKit`, `A1`, `A2`, `B6` (case, spaces, `-`, `/` and `_` do not matter;
/// an `AxiDraw` prefix is allowed).
///
/// # Errors
/// Any other text, with the accepted values.
pub fn parse_model(text: &str) -> Result<Model, String> {
    let key: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '/' | '_'))
        .collect::<String>()
        .to_ascii_uppercase();
    let key = key.strip_prefix("AXIDRAW").unwrap_or(&key);
    let model = match key {
        "1" | "A4" | "V2" | "V3" | "SE" | "SEA4" | "V3A4" | "V3SEA4" => Some(Model::A4),
        "2" | "A3" | "V3A3" | "SEA3" | "V3SEA3" => Some(Model::A3),
        "3" | "XLX" | "V3XLX" => Some(Model::Xlx),
        "4" | "MINIKIT" | "MINI" => Some(Model::MiniKit),
        "5" | "A1" | "SEA1" => Some(Model::A1),
        "6" | "A2" | "SEA2" => Some(Model::A2),
        "7" | "B6" | "V3B6" => Some(Model::B6),
        _ => None,
    };
    model.ok_or_else(|| {
        format!(
            "`{text}` is not an AxiDraw model: use 1 or V3/A4, 2 or A3 (SE/A3), 3 or XLX, \
             4 or MiniKit, 5 or A1 (SE/A1), 6 or A2 (SE/A2), 7 or B6"
        )
    })
}

impl RunOptions {
    /// The options given on the command line (`copies` and `page_delay` where the command has
    /// them). Flags that were not given stay `None`, so the configuration decides.
    ///
    /// # Errors
    /// A `--model` that names no model.
    pub fn from_args(
        a: &crate::cli::RunArgs,
        copies: Option<u32>,
        page_delay: Option<f64>,
    ) -> Result<Self, OptionsError> {
        let model = match a.model.as_deref() {
            None => None,
            Some(text) => Some(
                parse_model(text)
                    .map_err(|e| {
                        OptionsError(vec![validate::run_problem(
                            "--model",
                            e,
                            validate::MODEL_FIX,
                        )])
                    })?
                    .number(),
            ),
        };
        let reordering = if a.keep_order { Some(4) } else { a.reordering };
        let auto_rotate = if a.auto_rotate {
            Some(true)
        } else if a.no_rotate {
            Some(false)
        } else {
            None
        };
        Ok(Self {
            speed_pendown: a.speed_pendown,
            speed_penup: a.speed_penup,
            accel: a.accel,
            pen_pos_up: a.pen_pos_up,
            pen_pos_down: a.pen_pos_down,
            pen_rate_raise: a.pen_rate_raise,
            pen_rate_lower: a.pen_rate_lower,
            model,
            const_speed: a.const_speed.then_some(true),
            reordering,
            random_start: a.random_start.then_some(true),
            seed: None,
            auto_rotate,
            copies,
            page_delay,
        })
    }
}

impl Settings {
    /// These settings with the per-run options `o` applied: the AxiDraw settings they name, and
    /// the motion limits derived from them (a percent speed given for the run replaces the
    /// configured pen-down speed whichever spelling, percent or mm/s, the file used). Every
    /// value is checked by the config file's rules; the problems name the command-line option.
    ///
    /// # Errors
    /// Every value out of range, together.
    pub fn with_run(&self, o: &RunOptions) -> Result<Self, OptionsError> {
        let mut s = self.clone();
        let mut problems: Vec<Problem> = Vec::new();
        let mut check = |rule: &validate::Rule, v: Option<f64>| -> Option<f64> {
            let v = v?;
            match rule.check_run(v) {
                Ok(v) => Some(v),
                Err(RunProblem(p)) => {
                    problems.push(p);
                    None
                }
            }
        };
        let ad = &mut s.device.axidraw;
        let speed_pendown = check(&validate::SPEED_PENDOWN, o.speed_pendown);
        let speed_penup = check(&validate::SPEED_PENUP, o.speed_penup);
        let accel = check(&validate::ACCEL, o.accel);
        let pen_pos_up = check(&validate::PEN_POS_UP, o.pen_pos_up);
        let pen_pos_down = check(&validate::PEN_POS_DOWN, o.pen_pos_down);
        let pen_rate_raise = check(&validate::PEN_RATE_RAISE, o.pen_rate_raise);
        let pen_rate_lower = check(&validate::PEN_RATE_LOWER, o.pen_rate_lower);
        // Used by `plot` between copies; checked here with the rest.
        check(&validate::PAGE_DELAY, o.page_delay);
        if let Some(n) = o.model {
            match Model::from_number(n) {
                Some(m) => ad.model = m,
                None => problems.push(validate::run_problem(
                    "--model",
                    format!("{n} is not an AxiDraw model number"),
                    validate::MODEL_FIX,
                )),
            }
        }
        if let Some(r) = o.reordering
            && Reordering::from_level(r).is_none()
        {
            problems.push(validate::run_problem(
                "--reordering",
                format!("{r} is not a reordering level"),
                "use 0 (connect adjoining paths), 1 or 2 (reorder), 3 (as 2) or 4 (none)",
            ));
        }
        if let Some(c) = o.copies
            && !(1..=9999).contains(&c)
        {
            problems.push(validate::run_problem(
                "--copies",
                format!("{c} is out of range"),
                "use a value from 1 to 9999",
            ));
        }
        if !problems.is_empty() {
            return Err(OptionsError(problems));
        }
        if let Some(v) = speed_pendown {
            ad.speed_pendown = v;
        }
        if let Some(v) = speed_penup {
            ad.speed_penup = v;
        }
        if let Some(v) = accel {
            ad.accel = v;
        }
        if let Some(v) = pen_pos_up {
            ad.pen_pos_up = v;
        }
        if let Some(v) = pen_pos_down {
            ad.pen_pos_down = v;
        }
        if let Some(v) = pen_rate_raise {
            ad.pen_rate_raise = v;
        }
        if let Some(v) = pen_rate_lower {
            ad.pen_rate_lower = v;
        }
        if let Some(v) = o.const_speed {
            ad.const_speed = v;
        }
        // The motion limits follow the options given, by the AxiDraw rules (reference §4); the
        // rest keep the configured values (a `motion` section's own numbers included).
        let ad = s.device.axidraw;
        let m = &mut s.motion;
        if speed_pendown.is_some() || o.const_speed.is_some() {
            m.pen_down_speed_mm_s = ad.pen_down_speed_mm_s();
        }
        if speed_penup.is_some() {
            m.pen_up_speed_mm_s = ad.pen_up_speed_mm_s();
        }
        if accel.is_some() {
            m.pen_down_accel_mm_s2 = ad.pen_down_accel_mm_s2();
            m.pen_up_accel_mm_s2 = ad.pen_up_accel_mm_s2();
        }
        let pen_moved = pen_pos_up.is_some() || pen_pos_down.is_some();
        if pen_moved || pen_rate_raise.is_some() {
            m.pen_lift_s = f64::from(ad.pen_raise_ms()) / 1000.0;
        }
        if pen_moved || pen_rate_lower.is_some() {
            m.pen_drop_s = f64::from(ad.pen_lower_ms()) / 1000.0;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings::defaults_for(std::path::Path::new("/tmp/plotty-run-options"))
    }

    #[test]
    fn speeds_follow_the_axidraw_rule_and_only_what_was_given_changes() {
        let base = defaults();
        let run = base
            .with_run(&RunOptions {
                speed_pendown: Some(50.0),
                ..RunOptions::default()
            })
            .unwrap();
        assert!(
            (run.motion.pen_down_speed_mm_s - 100.4).abs() < 0.1,
            "{}",
            run.motion.pen_down_speed_mm_s
        );
        assert_eq!(run.motion.pen_up_speed_mm_s, base.motion.pen_up_speed_mm_s);
        assert_eq!(run.device.axidraw.speed_pendown, 50.0);
        let run = base
            .with_run(&RunOptions {
                accel: Some(50.0),
                pen_pos_down: Some(10.0),
                model: Some(2),
                ..RunOptions::default()
            })
            .unwrap();
        assert!(run.motion.pen_down_accel_mm_s2 < base.motion.pen_down_accel_mm_s2);
        assert!(
            run.motion.pen_drop_s > base.motion.pen_drop_s,
            "a longer way down"
        );
        assert_eq!(run.device.axidraw.model, Model::A3);
        assert_eq!(base.with_run(&RunOptions::default()).unwrap(), base);
    }

    #[test]
    fn out_of_range_values_are_refused_by_the_config_files_rules_all_together() {
        let Err(OptionsError(p)) = defaults().with_run(&RunOptions {
            speed_pendown: Some(500.0),
            pen_pos_up: Some(-1.0),
            model: Some(9),
            reordering: Some(5),
            copies: Some(0),
            page_delay: Some(f64::NAN),
            ..RunOptions::default()
        }) else {
            panic!("accepted");
        };
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "--speed-pendown",
                "--pen-pos-up",
                "--page-delay",
                "--model",
                "--reordering",
                "--copies"
            ]
        );
        let shown = OptionsError(p).to_string();
        assert!(
            shown.starts_with("invalid plot options, 6 problems:\n  --speed-pendown: 500 is out of range (fix: use a value from 1 to 110 %)"),
            "{shown}"
        );
    }

    #[test]
    fn options_travel_as_text_and_back() {
        let o = RunOptions {
            speed_pendown: Some(30.0),
            model: Some(2),
            reordering: Some(4),
            random_start: Some(true),
            auto_rotate: Some(false),
            copies: Some(2),
            page_delay: Some(1.5),
            ..RunOptions::default()
        };
        let mut back = RunOptions::default();
        for (k, v) in o.to_pairs() {
            back.set(k, &v).unwrap();
        }
        assert_eq!(back, o);
        assert!(back.set("speed_pendown", "fast").is_err());
        assert!(back.set("pen_height", "3").is_err());
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(serde_json::from_value::<RunOptions>(json).unwrap(), o);
    }

    #[test]
    fn models_by_number_and_name() {
        for (text, model) in [
            ("1", Model::A4),
            ("V3", Model::A4),
            ("SE/A3", Model::A3),
            ("se-a3", Model::A3),
            ("AxiDraw V3 XLX", Model::Xlx),
            ("minikit", Model::MiniKit),
            ("A1", Model::A1),
            ("6", Model::A2),
            ("V3/B6", Model::B6),
        ] {
            assert_eq!(parse_model(text), Ok(model), "{text}");
        }
        assert!(parse_model("8").unwrap_err().contains("MiniKit"));
    }

    #[test]
    fn reordering_levels_map_to_the_optimiser() {
        assert_eq!(Reordering::from_level(0), Some(Reordering::Adjoining));
        assert_eq!(Reordering::from_level(2), Some(Reordering::Full));
        assert_eq!(Reordering::from_level(4), Some(Reordering::FileOrder));
        assert_eq!(Reordering::from_level(5), None);
        assert_eq!(RunOptions::default().reordering(), Reordering::Full);
    }
}
