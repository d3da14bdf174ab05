//! `GET /api/jobs/{id}/preview.svg`: what a job will draw, from its stored SVG through the import
//! (layers, selection, clipping to the plotter's travel) and [`crate::preview`], in millimetres on
//! the plotter's frame (the web UI puts the pen position on it as it is). Importing can take a
//! second for big drawings, so it runs on a blocking thread and the result is kept next to the
//! job's SVG (`preview.svg`); the SVG and the layer selection of a job never change.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::import::{self, ImportOptions, LayerSelection, Model};
use crate::preview::{Preview, PreviewOptions};

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum PreviewFailure {
    /// The SVG does not import.
    #[error("the job's SVG cannot be drawn: {0}")]
    Import(String),
    /// The job's layer selection matches nothing in the SVG.
    #[error("the job's layer selection does not fit its SVG: {0}")]
    Layers(String),
}

/// What to render.
pub(super) struct Request {
    /// The job's SVG.
    pub(super) source: PathBuf,
    /// The job's directory (for the cached result).
    pub(super) dir: PathBuf,
    /// The plotter (its travel clips the drawing).
    pub(super) model: Model,
    /// The job's layer selection.
    pub(super) layers: Option<String>,
    /// Draw the pen-up moves too.
    pub(super) pen_up: bool,
}

/// The preview SVG, from the cache or freshly rendered (blocking: call on a blocking thread).
pub(super) fn render(r: &Request) -> Result<String, PreviewFailure> {
    let cache = r.dir.join(if r.pen_up {
        "preview-travel.svg"
    } else {
        "preview.svg"
    });
    if let Ok(svg) = std::fs::read_to_string(&cache) {
        return Ok(svg);
    }
    let options = ImportOptions {
        model: r.model,
        ..ImportOptions::default()
    };
    let mut drawing = import::import_file(&r.source, &options)
        .map_err(|e| PreviewFailure::Import(e.to_string()))?;
    if let Some(spec) = &r.layers {
        let selection =
            LayerSelection::parse(spec).map_err(|e| PreviewFailure::Layers(e.to_string()))?;
        drawing
            .select_layers(&selection)
            .map_err(|e| PreviewFailure::Layers(e.to_string()))?;
    }
    let svg = Preview::from_drawing(&drawing).to_svg(&PreviewOptions {
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
        Request {
            source: dir.join("source.svg"),
            dir: dir.to_path_buf(),
            model: Model::default(),
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
        assert_eq!(
            std::fs::read_to_string(dir.path().join("preview.svg")).unwrap(),
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
