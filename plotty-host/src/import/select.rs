//! Choosing layers to plot: a comma-separated spec of layer numbers (`3`), ranges (`3-5`) and
//! names (`outline`, matched without case, against the full name or the name without its
//! layer-control prefix and tokens). Every part must name at least one layer.

use std::fmt;
use std::str::FromStr;

use super::Layer;

/// A parsed layer selection, e.g. `"1,3-4,outline"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSelection {
    items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Number(u32),
    Range(u32, u32),
    Name(String),
}

/// A layer spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerSpecError {
    /// The spec, or one of its comma-separated parts, is empty.
    #[error("empty layer selection part in '{spec}': give layer numbers (1,3-4) or names")]
    Empty {
        /// The whole spec.
        spec: String,
    },
    /// A range whose start is after its end.
    #[error("layer range '{item}' runs backwards: write it low-high, e.g. 2-5")]
    BadRange {
        /// The range as written.
        item: String,
    },
    /// A part names no layer.
    #[error("layer selection '{item}' names no layer; the layers are: {available}")]
    NoMatch {
        /// The part as written.
        item: String,
        /// The layers there are, e.g. `1 "outline", "notes"`.
        available: String,
    },
}

impl LayerSelection {
    /// Parses a spec.
    pub fn parse(spec: &str) -> Result<Self, LayerSpecError> {
        let empty = || LayerSpecError::Empty {
            spec: spec.to_string(),
        };
        if spec.trim().is_empty() {
            return Err(empty());
        }
        let mut items = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(empty());
            }
            items.push(parse_item(part)?);
        }
        Ok(Self { items })
    }

    /// Positions in `layers` of the layers selected, in their order; errors if a part of the
    /// spec matches none.
    pub fn matching(&self, layers: &[Layer]) -> Result<Vec<usize>, LayerSpecError> {
        let mut selected = vec![false; layers.len()];
        for item in &self.items {
            let mut any = false;
            for (i, layer) in layers.iter().enumerate() {
                if item.matches(layer) {
                    selected[i] = true;
                    any = true;
                }
            }
            if !any {
                return Err(LayerSpecError::NoMatch {
                    item: item.to_string(),
                    available: describe(layers),
                });
            }
        }
        Ok(selected
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.then_some(i))
            .collect())
    }
}

impl Item {
    fn matches(&self, layer: &Layer) -> bool {
        match self {
            Self::Number(n) => layer.number == Some(*n),
            Self::Range(a, b) => layer.number.is_some_and(|n| (*a..=*b).contains(&n)),
            Self::Name(name) => {
                layer.name.trim().eq_ignore_ascii_case(name)
                    || display_name(&layer.name).eq_ignore_ascii_case(name)
            }
        }
    }
}

impl FromStr for LayerSelection {
    type Err = LayerSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Range(a, b) => write!(f, "{a}-{b}"),
            Self::Name(s) => write!(f, "{s}"),
        }
    }
}

fn parse_item(part: &str) -> Result<Item, LayerSpecError> {
    if let Ok(n) = part.parse::<u32>() {
        return Ok(Item::Number(n));
    }
    if let Some((a, b)) = part.split_once('-')
        && let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>())
    {
        if a > b {
            return Err(LayerSpecError::BadRange {
                item: part.to_string(),
            });
        }
        return Ok(Item::Range(a, b));
    }
    Ok(Item::Name(part.to_string()))
}

/// The layer name without `%`, `!`, the leading number and the `+S/+H/+D` tokens.
fn display_name(name: &str) -> String {
    let rest = name.trim_start();
    let rest = rest.strip_prefix('%').unwrap_or(rest).trim_start();
    let rest = rest.strip_prefix('!').unwrap_or(rest).trim_start();
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.split_whitespace()
        .filter(|w| {
            let b = w.as_bytes();
            !(b.len() >= 3
                && b[0] == b'+'
                && matches!(b[1].to_ascii_uppercase(), b'S' | b'H' | b'D')
                && b[2..].iter().all(u8::is_ascii_digit))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(layers: &[Layer]) -> String {
    if layers.is_empty() {
        return "(none)".to_string();
    }
    layers
        .iter()
        .map(|l| match l.number {
            Some(n) => format!("{n} \"{}\"", l.name),
            None => format!("\"{}\"", l.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Color, Layer};

    fn layer(number: Option<u32>, name: &str) -> Layer {
        Layer {
            index: 0,
            number,
            name: name.to_string(),
            id: String::new(),
            color: Color::BLACK,
            pause_before: false,
            speed_pct: None,
            height_pct: None,
            delay_after_ms: None,
            documentation: false,
            strokes: Vec::new(),
        }
    }

    fn layers() -> Vec<Layer> {
        vec![
            layer(Some(1), "1 outline"),
            layer(Some(2), "!2 blue +S30"),
            layer(Some(3), "3 red"),
            layer(Some(4), "4 green"),
            layer(None, "notes"),
        ]
    }

    #[test]
    fn numbers_ranges_and_names() {
        let sel = LayerSelection::parse("1,3-4").unwrap();
        assert_eq!(sel.matching(&layers()).unwrap(), vec![0, 2, 3]);
        let sel = LayerSelection::parse(" blue , NOTES ").unwrap();
        assert_eq!(sel.matching(&layers()).unwrap(), vec![1, 4]);
        let sel = LayerSelection::parse("3 red").unwrap();
        assert_eq!(sel.matching(&layers()).unwrap(), vec![2]);
        let sel = LayerSelection::parse("2-2,2").unwrap();
        assert_eq!(sel.matching(&layers()).unwrap(), vec![1]);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(
            LayerSelection::parse(""),
            Err(LayerSpecError::Empty { .. })
        ));
        assert!(matches!(
            LayerSelection::parse("1,,2"),
            Err(LayerSpecError::Empty { .. })
        ));
        assert!(matches!(
            LayerSelection::parse("5-2"),
            Err(LayerSpecError::BadRange { .. })
        ));
        let err = LayerSelection::parse("1,7")
            .unwrap()
            .matching(&layers())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("'7' names no layer"), "{msg}");
        assert!(msg.contains("2 \"!2 blue +S30\""), "{msg}");
        let err = LayerSelection::parse("purple")
            .unwrap()
            .matching(&layers())
            .unwrap_err();
        assert!(matches!(err, LayerSpecError::NoMatch { .. }));
        let err = LayerSelection::parse("5-9")
            .unwrap()
            .matching(&layers())
            .unwrap_err();
        assert!(err.to_string().contains("'5-9'"));
    }
}
