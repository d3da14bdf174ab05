//! From a file name to a plot program: import (with the model's travel), layer selection,
//! optimisation, and the [`Program`]. Every failure is an [`InputError`] that names the file and
//! says what to do.

use std::path::{Path, PathBuf};

use crate::import::{self, Drawing, ImportError, LayerSelection, LayerSpecError};
use crate::optimize::{self, OptimizeReport};

use super::config::PlotConfig;
use super::program::Program;

/// A file ready to plot.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The file.
    pub path: PathBuf,
    /// The imported, selected and optimised drawing (warnings included).
    pub drawing: Drawing,
    /// What optimisation did (pen-up travel before and after).
    pub optimized: OptimizeReport,
    /// The plot program.
    pub program: Program,
}

/// Why a file cannot be plotted.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The import failed.
    #[error("{}: {source}", path.display())]
    Import {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ImportError,
    },
    /// The layer selection names a layer the file does not have.
    #[error("{}: {source}", path.display())]
    Layers {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LayerSpecError,
    },
    /// The selected layers have nothing to draw.
    #[error("{}: {}", path.display(), self.reason())]
    NothingSelected {
        /// The file.
        path: PathBuf,
        /// The selection as given.
        selection: String,
        /// The plotted layers there are.
        available: String,
    },
}

impl InputError {
    /// What is wrong, without the file's path: for a job, whose file is the daemon's stored copy
    /// (a path that means nothing to the user who submitted it).
    pub fn reason(&self) -> String {
        match self {
            Self::Import { source, .. } => source.to_string(),
            Self::Layers { source, .. } => source.to_string(),
            Self::NothingSelected {
                selection,
                available,
                ..
            } => format!(
                "the selected layers ({selection}) have nothing to draw; choose layers with \
                 strokes (the file's layers: {available})"
            ),
        }
    }
}

/// Imports `path`, keeps the layers `layers` names (all when `None`; `spec` is its text for
/// messages), optimises (or keeps the file order, per `config.keep_order`) and builds the
/// program.
///
/// # Errors
/// Not an SVG, broken, too large, nothing to draw, a selection that names no layer.
pub fn prepare(
    path: &Path,
    config: &PlotConfig,
    layers: Option<(&LayerSelection, &str)>,
) -> Result<Prepared, InputError> {
    let mut drawing = import_selected(path, config, layers)?;
    let (optimized, program) = optimized_program(path, &mut drawing, config)?;
    Ok(Prepared {
        path: path.to_path_buf(),
        drawing,
        optimized,
        program,
    })
}

/// The first half of [`prepare`]: imports `path` and keeps the layers `layers` names (all when
/// `None`; `spec` is its text for messages), in file order. The job pipeline estimates this
/// before it optimises.
///
/// # Errors
/// Not an SVG, broken, too large, nothing to draw, a selection that names no layer or only
/// layers with nothing to draw. (Strokes of zero length count here: the program drops them.)
pub fn import_selected(
    path: &Path,
    config: &PlotConfig,
    layers: Option<(&LayerSelection, &str)>,
) -> Result<Drawing, InputError> {
    let mut drawing = import::import_file(path, &config.import_options()).map_err(|source| {
        InputError::Import {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if let Some((selection, spec)) = layers {
        let available = plotted_names(&drawing);
        drawing
            .select_layers(selection)
            .map_err(|source| InputError::Layers {
                path: path.to_path_buf(),
                source,
            })?;
        if drawing.stroke_count() == 0 {
            return Err(InputError::NothingSelected {
                path: path.to_path_buf(),
                selection: spec.to_owned(),
                available,
            });
        }
    }
    Ok(drawing)
}

/// The second half of [`prepare`]: optimises `drawing` (or keeps the file order, per
/// `config.keep_order`) and builds its program.
///
/// # Errors
/// The optimiser dropped every stroke (all of zero length).
pub fn optimized_program(
    path: &Path,
    drawing: &mut Drawing,
    config: &PlotConfig,
) -> Result<(OptimizeReport, Program), InputError> {
    if let Some(seed) = config.random_start {
        random_start(drawing, seed);
    }
    let optimized = optimize::optimize(drawing, &config.optimize_options());
    let program = Program::new(drawing);
    if program.is_empty() {
        return Err(InputError::nothing_to_draw(path));
    }
    Ok((optimized, program))
}

impl InputError {
    /// Nothing in `path` draws anything (every stroke of zero length).
    pub(crate) fn nothing_to_draw(path: &Path) -> Self {
        Self::Import {
            path: path.to_path_buf(),
            source: ImportError::NoStrokes {
                fill_only: 0,
                outside_travel_mm: 0.0,
            },
        }
    }
}

/// Starts every closed stroke (first vertex = last) at a vertex drawn with `seed`, as the AxiDraw
/// software's `random_start` does so that the pen's touch-down marks do not line up. The same
/// seed gives the same starts, so a job rebuilt after a restart resumes on the same strokes.
pub fn random_start(drawing: &mut Drawing, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for stroke in drawing.layers.iter_mut().flat_map(|l| l.strokes.iter_mut()) {
        let p = &mut stroke.points;
        if p.len() < 3 || p.first() != p.last() {
            continue;
        }
        // Without the closing vertex the loop is p[0..n]; rotate it and close it again.
        p.pop();
        let k = rng.usize(..p.len());
        p.rotate_left(k);
        if let Some(&first) = p.first() {
            p.push(first);
        }
    }
}

/// The names of the layers with strokes, for messages.
fn plotted_names(drawing: &Drawing) -> String {
    let names: Vec<String> = drawing
        .layers
        .iter()
        .filter(|l| l.is_plotted())
        .map(|l| format!("'{}'", l.name))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn config() -> PlotConfig {
        let dir = tempfile::tempdir().unwrap();
        PlotConfig::from_settings(&Settings::defaults_for(dir.path()))
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const LAYERED: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"
        xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
        width="100mm" height="100mm" viewBox="0 0 100 100">
      <g inkscape:groupmode="layer" inkscape:label="1 outline">
        <path d="M10 10 H50 V50" stroke="black" fill="none"/>
      </g>
      <g inkscape:groupmode="layer" inkscape:label="%notes">
        <path d="M20 20 H60" stroke="black" fill="none"/>
      </g>
    </svg>"#;

    #[test]
    fn a_drawing_becomes_a_program() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.svg", LAYERED);
        let prepared = prepare(&p, &config(), None).unwrap();
        assert_eq!(prepared.program.layers().len(), 1);
        assert_eq!(prepared.program.stroke_count(), 1);
    }

    /// Issue 10: `plotty plot` refuses a drawing over `limits.max_segments` or a file over
    /// `limits.max_file_mb`, naming the setting to raise.
    #[test]
    fn limits_name_the_setting_to_raise() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.svg", LAYERED);
        let mut c = config();
        c.limits.max_segments = 2;
        let e = prepare(&p, &c, None).unwrap_err().to_string();
        assert!(
            e.contains("more than 2 line segments") && e.contains("raise limits.max_segments"),
            "{e}"
        );
        let mut c = config();
        c.limits.max_file_bytes = 100;
        let e = prepare(&p, &c, None).unwrap_err().to_string();
        assert!(
            e.contains("over the limit of 100 bytes") && e.contains("raise limits.max_file_mb"),
            "{e}"
        );
        assert!(prepare(&p, &config(), None).is_ok());
    }

    #[test]
    fn bad_inputs_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let c = config();
        let not_svg = write(dir.path(), "n.svg", "hello, world");
        let e = prepare(&not_svg, &c, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", not_svg.display())),
            "{e}"
        );
        let broken = write(
            dir.path(),
            "b.svg",
            "<svg xmlns='http://www.w3.org/2000/svg'><g>",
        );
        let e = prepare(&broken, &c, None).unwrap_err();
        assert!(e.to_string().contains("broken SVG/XML"), "{e}");
        let empty = write(
            dir.path(),
            "e.svg",
            "<svg xmlns='http://www.w3.org/2000/svg' width='10mm' height='10mm'/>",
        );
        assert!(matches!(
            prepare(&empty, &c, None),
            Err(InputError::Import {
                source: ImportError::NoStrokes { .. },
                ..
            })
        ));
        let layered = write(dir.path(), "l.svg", LAYERED);
        let sel = LayerSelection::parse("7").unwrap();
        let e = prepare(&layered, &c, Some((&sel, "7"))).unwrap_err();
        assert!(e.to_string().contains("names no layer"), "{e}");
        let sel = LayerSelection::parse("notes").unwrap();
        let e = prepare(&layered, &c, Some((&sel, "notes"))).unwrap_err();
        assert!(e.to_string().contains("nothing to draw"), "{e}");
        assert!(e.to_string().contains("'1 outline'"), "{e}");
    }

    const TWO_SQUARES_AND_A_LINE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"
        width="100mm" height="100mm" viewBox="0 0 100 100">
      <path d="M10 10 H30 V30 H10 Z" stroke="black" fill="none"/>
      <path d="M60 60 H90 V90 H60 Z" stroke="black" fill="none"/>
      <path d="M5 50 H50" stroke="black" fill="none"/>
    </svg>"#;

    #[test]
    fn random_start_turns_closed_strokes_only_and_the_seed_decides() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s.svg", TWO_SQUARES_AND_A_LINE);
        let drawing = import_selected(&p, &config(), None).unwrap();
        let strokes = |d: &Drawing| -> Vec<Vec<(f64, f64)>> {
            d.layers
                .iter()
                .flat_map(|l| &l.strokes)
                .map(|s| s.points.iter().map(|q| (q.x_mm, q.y_mm)).collect())
                .collect()
        };
        let starts = |seed| {
            let mut d = drawing.clone();
            random_start(&mut d, seed);
            strokes(&d)
        };
        assert_eq!(starts(7), starts(7), "a seed gives the same starts");
        let original = strokes(&drawing);
        let turned = (0..20)
            .map(starts)
            .find(|s| s[0][0] != original[0][0] && s[1][0] != original[1][0])
            .expect("some seed moves both squares' starts");
        for (a, b) in turned.iter().zip(&original).take(2) {
            assert_eq!(a.first(), a.last(), "still closed");
            assert_eq!(a.len(), b.len());
            let mut sa = a[1..].to_vec();
            let mut sb = b[1..].to_vec();
            sa.sort_by(|x, y| x.partial_cmp(y).unwrap());
            sb.sort_by(|x, y| x.partial_cmp(y).unwrap());
            assert_eq!(sa, sb, "the same vertices");
        }
        assert_eq!(turned[2], original[2], "an open stroke keeps its start");
        // Through the plot configuration.
        let mut c = config();
        c.random_start = Some(3);
        c.reordering = crate::settings::Reordering::FileOrder;
        let prepared = prepare(&p, &c, None).unwrap();
        assert_eq!(strokes(&prepared.drawing)[0], starts(3)[0]);
    }

    #[test]
    fn reordering_levels_reach_the_optimiser() {
        use crate::settings::Reordering;
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "s.svg", TWO_SQUARES_AND_A_LINE);
        let with = |r| {
            let mut c = config();
            c.reordering = r;
            prepare(&p, &c, None).unwrap().optimized
        };
        let (none, least, full) = (
            with(Reordering::FileOrder),
            with(Reordering::Adjoining),
            with(Reordering::Full),
        );
        assert!(none.layers[0].kept_file_order && least.layers[0].kept_file_order);
        assert!(!full.layers[0].kept_file_order);
        assert!(full.after.distance_mm < none.after.distance_mm);
    }
}
