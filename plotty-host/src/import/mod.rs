//! SVG import: bytes or a file in, a [`Drawing`] out: the page, its layers of pen strokes
//! (polylines in millimetres, placed on the plotter's travel) and what the user should know.
//!
//! The pipeline:
//! 1. Guards before anything is parsed: size limit (checked on the file's metadata before it is
//!    read), empty input, binary data, compressed SVG.
//! 2. `document`: one scan of the raw XML with `roxmltree` (usvg's own copy) finds the page
//!    attributes, the top-level Inkscape layers (name, id, visibility) and the text elements.
//!    Layers without a unique `id` get one injected so they can be found again after step 3.
//! 3. usvg resolves everything SVG can throw at us (CSS, `use`, nested transforms, units, every
//!    shape turned into a path, text laid out into glyph outlines with the system fonts).
//! 4. `convert`: each visible path with a stroke becomes strokes: transformed to millimetres,
//!    curves flattened to the tolerance (`flatten`), clipped to the plotter's travel
//!    (`clip`) and filed under its layer. Fills are counted, not drawn.
//!
//! Page placement: the page's top-left corner is the plotter's home (0, 0), millimetre for
//! millimetre, +y down. Anything outside `[0, X] × [0, Y]` of the model's travel is cut away
//! (strokes are split where they leave and re-enter) and reported per layer, so the carriage is
//! never driven into an end stop.
//!
//! Text: glyph outlines are drawn as strokes (a plotter cannot fill; the outline is how text is
//! plotted), whatever the text's fill and stroke. Text that produced no outlines (no fonts) is
//! named in a warning.

mod clip;
mod convert;
mod document;
mod error;
mod flatten;
mod layer_name;
mod select;

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use plotty_motion::kinematics::{Model, Point};

pub use self::error::{ClipReport, ImportError, ImportWarning};
pub use self::layer_name::LayerControl;
pub use self::select::{LayerSelection, LayerSpecError};

/// Default curve flattening tolerance: 0.01 mm, well under a pen's line width.
pub const DEFAULT_TOLERANCE_MM: f64 = 0.01;
/// Default largest input accepted, in bytes (100 MiB, `limits.max_file_mb`; the same as the
/// daemon's default `websocket.max_upload_size`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 << 20;
/// Default largest number of line segments a drawing may flatten to (`limits.max_segments`):
/// 10 million, about 700 MB of memory while a job is prepared and some 100 hours of plotting.
pub const DEFAULT_MAX_SEGMENTS: usize = 10_000_000;
/// Millimetres per CSS pixel (96 px per inch): usvg works in pixels.
pub const MM_PER_PX: f64 = 25.4 / 96.0;

/// One pen-down polyline in millimetres, in plotter coordinates.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stroke {
    /// The vertices, drawn in order.
    pub points: Vec<Point>,
}

/// An sRGB colour (the stroke colour a layer uses, to map it to a pen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

/// A `viewBox` in user units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (positive).
    pub width: f64,
    /// Height (positive).
    pub height: f64,
}

/// The SVG page and how its user units map to millimetres.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Page width in millimetres.
    pub width_mm: f64,
    /// Page height in millimetres.
    pub height_mm: f64,
    /// The root `viewBox`, if the document has one.
    pub view_box: Option<ViewBox>,
    /// Millimetres per user unit along x and y (from `width`/`height` over the `viewBox`, or
    /// 96 px per inch without one).
    pub user_unit_mm: (f64, f64),
}

impl Page {
    /// The page after a quarter turn: width and height (and the `viewBox`'s size) swapped.
    fn rotate_quarter(&mut self) {
        std::mem::swap(&mut self.width_mm, &mut self.height_mm);
        let (ux, uy) = self.user_unit_mm;
        self.user_unit_mm = (uy, ux);
        if let Some(v) = &mut self.view_box {
            std::mem::swap(&mut v.width, &mut v.height);
        }
    }
}

/// One layer: a top-level Inkscape layer, or the whole document when it has none.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Position among the document's top-level layers (hidden ones included), 0-based; layers
    /// keep document order. The layer made of content outside every layer (named
    /// `(outside layers)`) shares the index of the layer it is listed before.
    pub index: usize,
    /// AxiDraw layer number: the leading integer of the name, if any.
    pub number: Option<u32>,
    /// The layer's name as written (`inkscape:label`, else its `id`, else `Layer <n>`).
    pub name: String,
    /// The layer group's `id` in the file (empty when it has none).
    pub id: String,
    /// The stroke colour used over the longest drawn length in this layer (black if none).
    pub color: Color,
    /// `!`: pause (pen up, parked) before this layer, e.g. for a pen change.
    pub pause_before: bool,
    /// `+S`: pen-down speed for this layer, percent (1–100).
    pub speed_pct: Option<u8>,
    /// `+H`: pen-down height for this layer, percent (0–100).
    pub height_pct: Option<u8>,
    /// `+D`: delay after this layer, milliseconds.
    pub delay_after_ms: Option<u32>,
    /// `%`: documentation layer, never plotted (its strokes are not imported).
    pub documentation: bool,
    /// The strokes to draw, in file order (until [`crate::optimize`] reorders them).
    pub strokes: Vec<Stroke>,
}

/// An imported drawing, ready for [`crate::optimize`] and plotting.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawing {
    /// The page.
    pub page: Page,
    /// Visible layers in document order (hidden layers are left out; documentation layers are
    /// listed with no strokes).
    pub layers: Vec<Layer>,
    /// Everything the user should know about the import, in the order found.
    pub warnings: Vec<ImportWarning>,
    /// The plotter travel the strokes were clipped to, (X, Y) in millimetres.
    pub travel_mm: (f64, f64),
}

/// Where text gets its fonts from.
#[derive(Clone, Debug, Default)]
pub enum Fonts {
    /// The system's fonts, loaded once per process and only when a document has text.
    #[default]
    System,
    /// No fonts at all: every text element is reported as not converted.
    None,
    /// A font database supplied by the caller.
    Database(Arc<usvg::fontdb::Database>),
}

/// Import settings. [`ImportOptions::default`] is the AxiDraw A4 with 0.01 mm tolerance.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The plotter whose travel the drawing is clipped to.
    pub model: Model,
    /// Largest distance between a curve and its flattened polyline, in millimetres
    /// (0.0001–10).
    pub tolerance_mm: f64,
    /// Largest input accepted, in bytes.
    pub max_file_bytes: u64,
    /// Largest number of line segments the drawing may produce.
    pub max_segments: usize,
    /// Fonts for text.
    pub fonts: Fonts,
    /// Turn a portrait page (taller than wide) a quarter turn counter-clockwise, as the AxiDraw
    /// software's `auto_rotate` does, so that it fits the machine's landscape travel: the
    /// page's top edge runs along the left of the travel, its left edge along the bottom.
    pub auto_rotate: bool,
}

impl Stroke {
    /// A stroke through `points`.
    pub fn new(points: Vec<Point>) -> Self {
        Self { points }
    }

    /// The first vertex.
    pub fn start(&self) -> Option<Point> {
        self.points.first().copied()
    }

    /// The last vertex.
    pub fn end(&self) -> Option<Point> {
        self.points.last().copied()
    }

    /// Drawn length in millimetres.
    pub fn length_mm(&self) -> f64 {
        self.points.windows(2).map(|w| w[0].distance_to(w[1])).sum()
    }

    /// Number of line segments.
    pub fn segment_count(&self) -> usize {
        self.points.len().saturating_sub(1)
    }
}

impl Color {
    /// Black, the colour of strokes whose paint is not a plain colour.
    pub const BLACK: Self = Self { r: 0, g: 0, b: 0 };

    /// A colour from its components.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }
}

impl Layer {
    /// Total number of line segments in this layer.
    pub fn segment_count(&self) -> usize {
        self.strokes.iter().map(Stroke::segment_count).sum()
    }

    /// Total pen-down length in millimetres.
    pub fn length_mm(&self) -> f64 {
        self.strokes.iter().map(Stroke::length_mm).sum()
    }

    /// True if this layer will be drawn (not documentation, has strokes).
    pub fn is_plotted(&self) -> bool {
        !self.documentation && !self.strokes.is_empty()
    }
}

impl Drawing {
    /// Total number of strokes over all layers.
    pub fn stroke_count(&self) -> usize {
        self.layers.iter().map(|l| l.strokes.len()).sum()
    }

    /// Total number of line segments over all layers.
    pub fn segment_count(&self) -> usize {
        self.layers.iter().map(Layer::segment_count).sum()
    }

    /// Keeps only the layers `selection` names; errors when a part of it names no layer.
    pub fn select_layers(&mut self, selection: &LayerSelection) -> Result<(), LayerSpecError> {
        let keep = selection.matching(&self.layers)?;
        let mut i = 0;
        self.layers.retain(|_| {
            let k = keep.contains(&i);
            i += 1;
            k
        });
        Ok(())
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            model: Model::default(),
            tolerance_mm: DEFAULT_TOLERANCE_MM,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_segments: DEFAULT_MAX_SEGMENTS,
            fonts: Fonts::default(),
            auto_rotate: false,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// Imports the SVG file at `path`. The size limit is checked on the file's metadata before a
/// byte is read.
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Drawing, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(ImportError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > options.max_file_bytes {
        return Err(ImportError::TooLarge {
            size: meta.len(),
            limit: options.max_file_bytes,
        });
    }
    // Read at most one byte past the limit: the file may grow between metadata and read.
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(options.max_file_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_err)?;
    import_bytes(&data, options)
}

/// Imports SVG data held in memory.
pub fn import_bytes(data: &[u8], options: &ImportOptions) -> Result<Drawing, ImportError> {
    check_options(options)?;
    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
    if len > options.max_file_bytes {
        return Err(ImportError::TooLarge {
            size: len,
            limit: options.max_file_bytes,
        });
    }
    let text = document::decode(data)?;
    let scan = document::Scan::parse(text)?;
    let mut warnings = scan.page_warnings();
    let prepared = scan.prepared_source();
    let xml = usvg::roxmltree::Document::parse_with_options(
        &prepared.text,
        usvg::roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .map_err(ImportError::from_xml)?;
    let mut usvg_options = usvg::Options {
        image_href_resolver: no_external_images(),
        ..usvg::Options::default()
    };
    if scan.has_text()
        && let Some(db) = font_database(&options.fonts)
    {
        usvg_options.fontdb = db;
    }
    let tree = usvg::Tree::from_xmltree(&xml, &usvg_options).map_err(ImportError::from_usvg)?;
    let mut page = scan.page(&tree);
    // The page width is what a quarter turn maps x from: (x, y) → (y, width − x).
    let quarter_turn = (options.auto_rotate && page.height_mm > page.width_mm).then(|| {
        let width = page.width_mm;
        page.rotate_quarter();
        width
    });
    let converted = convert::convert(
        &tree,
        &scan,
        &prepared.layer_ids,
        options,
        quarter_turn,
        &mut warnings,
    )?;
    Ok(Drawing {
        page,
        layers: converted,
        warnings,
        travel_mm: options.model.travel_mm(),
    })
}

/// The layers of an SVG as a layer selection sees them (name, number, in document order, hidden
/// ones left out), from a scan of the document alone: no geometry, so a submission can check
/// `--layers` at once. Content outside every layer is listed as `(outside layers)`, or as
/// `Layer 1` in a document without layers, as [`import_bytes`] does; their strokes are empty.
///
/// # Errors
/// Not text, or not XML.
pub fn scan_layers(data: &[u8]) -> Result<Vec<Layer>, ImportError> {
    let text = document::decode(data)?;
    let scan = document::Scan::parse(text)?;
    let layer = |index: usize, number: Option<u32>, name: &str, documentation: bool| Layer {
        index,
        number,
        name: name.to_owned(),
        id: String::new(),
        color: Color::BLACK,
        pause_before: false,
        speed_pct: None,
        height_pct: None,
        delay_after_ms: None,
        documentation,
        strokes: Vec::new(),
    };
    if scan.layers.is_empty() {
        return Ok(vec![layer(0, None, "Layer 1", false)]);
    }
    let mut layers = Vec::new();
    for (i, raw) in scan.layers.iter().enumerate() {
        if scan.first_outside == Some(i) {
            layers.push(layer(i, None, "(outside layers)", false));
        }
        if raw.hidden {
            continue;
        }
        let (control, _) = LayerControl::parse(&raw.name);
        layers.push(layer(
            raw.index,
            control.number,
            &raw.name,
            control.documentation,
        ));
    }
    if scan.first_outside == Some(scan.layers.len()) {
        layers.push(layer(scan.layers.len(), None, "(outside layers)", false));
    }
    Ok(layers)
}

/// A 1×1 PNG: what every `<image>` resolves to. usvg then keeps an image node of the right
/// place and size (so the walk counts it in its layer, [`ImportWarning::ImagesIgnored`]) without
/// a byte of the image being read.
const PLACEHOLDER_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The `<image href>` (and `feImage`) resolver: images are never plotted, so none is loaded.
/// usvg's default reads any path it is given (`/dev/zero` grows the process without bound, a
/// FIFO blocks the import forever, and whether a warning appeared told an uploader whether a
/// file exists) and parses `data:image/svg+xml` URIs as whole nested documents. Every href, a
/// path, a URL or a data URI, becomes the same placeholder, so every image gets the same
/// warning whatever its target. (`<use href>` only follows `#id` links inside the document,
/// CSS `@import` rules are skipped by usvg's CSS parser, and fonts come from our database only,
/// so images are the only way out of the document.)
fn no_external_images() -> usvg::ImageHrefResolver<'static> {
    let placeholder = || Some(usvg::ImageKind::PNG(Arc::new(PLACEHOLDER_PNG.to_vec())));
    usvg::ImageHrefResolver {
        resolve_data: Box::new(move |_mime, _data, _options| placeholder()),
        resolve_string: Box::new(move |_href, _options| placeholder()),
    }
}

fn check_options(options: &ImportOptions) -> Result<(), ImportError> {
    let t = options.tolerance_mm;
    if !(1e-4..=10.0).contains(&t) {
        return Err(ImportError::InvalidOption(format!(
            "tolerance {t} mm is out of range: use 0.0001 to 10 mm (default 0.01)"
        )));
    }
    Ok(())
}

/// The font database for `fonts`; the system's is loaded once per process.
fn font_database(fonts: &Fonts) -> Option<Arc<usvg::fontdb::Database>> {
    static SYSTEM: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    match fonts {
        Fonts::System => Some(
            SYSTEM
                .get_or_init(|| {
                    let mut db = usvg::fontdb::Database::new();
                    db.load_system_fonts();
                    fill_generic_families(&mut db);
                    Arc::new(db)
                })
                .clone(),
        ),
        Fonts::None => Some(Arc::new(usvg::fontdb::Database::new())),
        Fonts::Database(db) => Some(db.clone()),
    }
}

/// Points the generic families (serif, sans-serif, monospace) at fonts that exist: usvg falls
/// back to "serif", and fontdb's defaults (Times New Roman, Arial, Courier New) are missing on
/// most Linux systems, which would silently drop all text.
fn fill_generic_families(db: &mut usvg::fontdb::Database) {
    let families: Vec<String> = db
        .faces()
        .filter_map(|face| face.families.first().map(|(name, _)| name.clone()))
        .collect();
    let has = |name: &str| families.iter().any(|f| f == name);
    let pick = |wanted: &[&str], hint: &str| -> Option<String> {
        wanted
            .iter()
            .find(|w| has(w))
            .map(|w| (*w).to_string())
            .or_else(|| families.iter().find(|f| f.contains(hint)).cloned())
            .or_else(|| families.first().cloned())
    };
    if !has("Times New Roman")
        && let Some(f) = pick(&["DejaVu Serif", "Liberation Serif", "Noto Serif"], "Serif")
    {
        db.set_serif_family(f);
    }
    if !has("Arial")
        && let Some(f) = pick(&["DejaVu Sans", "Liberation Sans", "Noto Sans"], "Sans")
    {
        db.set_sans_serif_family(f);
    }
    if !has("Courier New")
        && let Some(f) = pick(
            &["DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono"],
            "Mono",
        )
    {
        db.set_monospace_family(f);
    }
}

#[cfg(test)]
mod tests;
