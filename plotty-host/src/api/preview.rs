//! `GET /api/jobs/{id}/preview.svg`: what a job will draw, from its stored SVG through the same
//! steps as the job (import with clipping to the plotter's travel, layer selection,
//! optimisation, the estimate) and [`crate::preview`]: in millimetres on the plotter's frame (the
//! web UI puts the pen position on it as it is), on the job's sheet of paper, in plot order
//! with start, end and layer-start markers, and a legend with the planned time and distances.
//! Preparing can take a second for big drawings, so it runs on a blocking thread and the result is
//! kept next to the job's SVG; the SVG and the options of a job never change.

use std::io::Write;
use std::path::{Path, PathBuf};

use plotty_motion::ebb::FirmwareVersion;

use crate::import::LayerSelection;
use crate::plot::PlotConfig;
use crate::plot::prepare::{self, InputError};
use crate::preview::{Legend, Preview, PreviewOptions};
use crate::settings::{FirmwareChoice, Orientation, PaperSize};

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum PreviewFailure {
    /// The SVG does not import (or has nothing to draw).
    #[error("the job's SVG cannot be drawn: {0}")]
    Import(String),
    /// The job's layer selection matches nothing in the SVG.
    #[error("the job's layer selection does not fit its SVG: {0}")]
    Layers(String),
    /// The plan for the legend could not be made.
    #[error("cannot plan the job: {0}")]
    Plan(String),
}

/// What to render.
pub(super) struct Request {
    /// The job's SVG.
    pub(super) source: PathBuf,
    /// The job's directory (for the cached result).
    pub(super) dir: PathBuf,
    /// The machine and plot settings (the model's travel clips the drawing; the estimate).
    pub(super) config: PlotConfig,
    /// The job's paper and the way round it was asked for.
    pub(super) paper: (PaperSize, Orientation),
    /// The job's layer selection.
    pub(super) layers: Option<String>,
    /// Draw the pen-up moves too.
    pub(super) pen_up: bool,
}

/// The preview SVG, from the cache or freshly rendered (blocking: call on a blocking thread).
pub(super) fn render(r: &Request) -> Result<String, PreviewFailure> {
    // Named for this version of the picture: a preview kept by an older plotty is not shown.
    let cache = r.dir.join(if r.pen_up {
        "preview-2-travel.svg"
    } else {
        "preview-2.svg"
    });
    if let Ok(svg) = std::fs::read_to_string(&cache) {
        return Ok(svg);
    }
    let selection = match &r.layers {
        Some(spec) => Some((
            LayerSelection::parse(spec).map_err(|e| PreviewFailure::Layers(e.to_string()))?,
            spec.as_str(),
        )),
        None => None,
    };
    let prepared = prepare::prepare(
        &r.source,
        &r.config,
        selection.as_ref().map(|(s, t)| (s, *t)),
    )
    .map_err(|e| match e {
        InputError::Layers { .. } | InputError::NothingSelected { .. } => {
            PreviewFailure::Layers(e.to_string())
        }
        InputError::Import { .. } => PreviewFailure::Import(e.to_string()),
    })?;
    let version = match r.config.firmware {
        FirmwareChoice::V2_8 => FirmwareVersion::LAST_V2,
        FirmwareChoice::Auto | FirmwareChoice::V3_0 => FirmwareVersion::LATEST,
    };
    let estimate = crate::plot::estimate::estimate(&prepared.program, &r.config, version)
        .map_err(|e| PreviewFailure::Plan(e.to_string()))?;
    let sheet = crate::paper::check(
        &r.paper.0,
        r.paper.1,
        crate::paper::drawing_extent(&prepared.drawing).as_ref(),
        r.config.axidraw.model,
    )
    .sheet;
    let svg = Preview::from_drawing(&prepared.drawing)
        .with_sheet(sheet)
        .with_legend(Legend::from_estimate(&estimate))
        .to_svg(&PreviewOptions {
            show_pen_up: r.pen_up,
            ..PreviewOptions::default()
        });
    if let Err(e) = store(&cache, &svg) {
        tracing::debug!(path = %cache.display(), error = %e, "cannot keep the preview; it is made again next time");
    }
    Ok(svg)
}

/// Writes `text` to `path` through a temporary file, so a reader never sees half a preview.
fn store(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="100mm" height="100mm" viewBox="0 0 100 100">
<g inkscape:groupmode="layer" inkscape:label="1 outline"><path d="M10 10 L90 10" stroke="#ff0000" fill="none"/></g>
<g inkscape:groupmode="layer" inkscape:label="2 fill"><path d="M10 50 L90 50" stroke="#0000ff" fill="none"/></g>
</svg>"##;

    fn request(dir: &Path, layers: Option<&str>) -> Request {
        let settings = crate::settings::Settings::defaults_for(dir);
        Request {
            source: dir.join("source.svg"),
            dir: dir.to_path_buf(),
            config: PlotConfig::from_settings(&settings),
            paper: crate::paper::of_job(&serde_json::json!({"paper": "A6"}), &settings),
            layers: layers.map(Into::into),
            pen_up: false,
        }
    }

    #[test]
    fn renders_the_selected_layers_and_keeps_the_result() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("source.svg"), SVG).unwrap();
        let svg = render(&request(dir.path(), Some("2"))).unwrap();
        assert!(svg.contains("#0000ff") && !svg.contains("#ff0000"), "{svg}");
        assert!(svg.contains("viewBox"));
        // The job's sheet (A6 auto: both ways hold the strokes and fit the travel, so
        // landscape), its legend and its markers.
        assert!(svg.contains("class=\"sheet\""), "{svg}");
        assert!(svg.contains("A6 landscape (148 × 105 mm)"), "{svg}");
        assert!(
            svg.contains("class=\"legend-layer\" data-layer=\"1\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"start\"") && svg.contains("class=\"end\""),
            "{svg}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("preview-2.svg")).unwrap(),
            svg
        );
        // From the cache now, even with the source gone.
        std::fs::remove_file(dir.path().join("source.svg")).unwrap();
        assert_eq!(render(&request(dir.path(), Some("2"))).unwrap(), svg);
    }

    #[test]
    fn bad_svgs_and_selections_say_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("source.svg"), SVG).unwrap();
        let e = render(&request(dir.path(), Some("7"))).unwrap_err();
        assert!(matches!(e, PreviewFailure::Layers(_)), "{e}");
        std::fs::write(dir.path().join("source.svg"), "<svg><path d=").unwrap();
        let e = render(&request(dir.path(), None)).unwrap_err();
        assert!(matches!(e, PreviewFailure::Import(_)), "{e}");
    }
}
