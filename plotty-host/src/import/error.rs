//! What can go wrong in an import ([`ImportError`]: nothing is drawn) and what the user should
//! know about one that worked ([`ImportWarning`]). Every message names the problem and what to do.

use std::fmt;
use std::path::PathBuf;

use super::Color;

/// How much of one layer lay outside the plotter's travel and was cut away.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClipReport {
    /// Strokes that were cut (shortened, split or removed entirely).
    pub strokes: usize,
    /// Pen-down length removed, in millimetres.
    pub length_mm: f64,
}

/// Why an SVG could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The path names a directory.
    #[error("{} is a directory: give the path of an SVG file", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The input is larger than the configured limit.
    #[error(
        "the file is {size} bytes, over the limit of {limit} bytes (limits.max_file_mb): simplify \
         the drawing, or raise limits.max_file_mb in the config file"
    )]
    TooLarge {
        /// Size of the input in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The input is empty.
    #[error("the file is empty: give an SVG file with a drawing in it")]
    Empty,
    /// The input is not text, or is another kind of file.
    #[error("not an SVG file ({what}): give an SVG file")]
    NotSvg {
        /// What it looks like instead.
        what: String,
    },
    /// Compressed SVG (`.svgz`).
    #[error(
        "compressed SVG (.svgz) is not supported: decompress it first (gunzip -c file.svgz > file.svg)"
    )]
    Compressed,
    /// The XML is not well formed.
    #[error(
        "broken SVG/XML at line {line}, column {column}: {message}; fix the file or re-export it"
    )]
    Xml {
        /// 1-based line of the problem.
        line: u32,
        /// 1-based column of the problem.
        column: u32,
        /// The parser's description.
        message: String,
    },
    /// The page size is zero, negative or unusable.
    #[error(
        "the SVG has no usable page size: give the <svg> element a width and height (e.g. \
         width=\"210mm\" height=\"297mm\") or a viewBox"
    )]
    InvalidSize,
    /// More elements than usvg accepts.
    #[error("the SVG has more than 1,000,000 elements: simplify the drawing")]
    TooManyElements,
    /// Flattening would produce more segments than allowed.
    #[error(
        "the drawing flattens to more than {limit} line segments (limits.max_segments): simplify \
         it, or raise limits.max_segments in the config file (about 70 bytes of memory a segment)"
    )]
    TooManySegments {
        /// The limit.
        limit: usize,
    },
    /// Nothing to draw: no visible stroked shape in any plotted layer.
    #[error("{}", no_strokes_message(*fill_only, *outside_travel_mm))]
    NoStrokes {
        /// Shapes that have a fill and no stroke.
        fill_only: usize,
        /// Length of strokes that lay entirely outside the plotter's travel, in mm.
        outside_travel_mm: f64,
    },
    /// An import option is out of range.
    #[error("invalid import option: {0}")]
    InvalidOption(String),
}

/// Something the user should know about a successful import.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ImportWarning {
    /// The `<svg>` has no width or height; the page size was taken from elsewhere.
    PageSizeAssumed {
        /// How the size was decided.
        how: String,
    },
    /// Width or height is a percentage, which has no physical size.
    PageSizeRelative,
    /// Filled shapes: their fills are not drawn.
    FillsNotDrawn {
        /// Shapes with a fill and no stroke: not drawn at all.
        fill_only: usize,
        /// Shapes with a fill and a stroke: only the outline is drawn.
        filled_and_stroked: usize,
    },
    /// Text elements that produced no outlines (no usable font).
    TextNotConverted {
        /// A description of each: its id and the start of its text.
        texts: Vec<String>,
    },
    /// Part of a layer lay outside the plotter's travel and was cut away.
    Clipped {
        /// Layer name.
        layer: String,
        /// How much.
        report: ClipReport,
    },
    /// A hidden layer was skipped.
    HiddenLayer {
        /// Layer name.
        layer: String,
    },
    /// A layer-control token in a layer name was malformed or out of range; it is ignored.
    BadLayerControl {
        /// Layer name.
        layer: String,
        /// The problem.
        problem: String,
    },
    /// Shapes outside every layer in a layered document; they form a layer of their own.
    OutsideLayers {
        /// Number of strokes.
        strokes: usize,
    },
    /// A layer uses several stroke colours but is drawn with one pen.
    MixedColors {
        /// Layer name.
        layer: String,
        /// The colours, most used first.
        colors: Vec<Color>,
    },
    /// `<image>` elements: images are never plotted, nor loaded (whatever the href names).
    ImagesIgnored {
        /// How many.
        count: usize,
    },
    /// Clip paths and masks are not applied to strokes.
    ClipPathsIgnored {
        /// Groups or shapes with a clip path or mask.
        count: usize,
    },
    /// Shapes with coordinates that are not finite or absurdly far away were skipped.
    AbsurdCoordinates {
        /// How many paths.
        paths: usize,
    },
}

impl ImportError {
    /// An XML parse error with its position.
    pub(crate) fn from_xml(e: usvg::roxmltree::Error) -> Self {
        let pos = e.pos();
        Self::Xml {
            line: pos.row,
            column: pos.col,
            message: strip_position(&e.to_string()),
        }
    }

    /// A usvg error.
    pub(crate) fn from_usvg(e: usvg::Error) -> Self {
        match e {
            usvg::Error::ParsingFailed(x) => Self::from_xml(x),
            usvg::Error::ElementsLimitReached => Self::TooManyElements,
            usvg::Error::InvalidSize => Self::InvalidSize,
            usvg::Error::NotAnUtf8Str => Self::NotSvg {
                what: "not UTF-8 text".into(),
            },
            usvg::Error::SvgzFeatureNotEnabled | usvg::Error::MalformedGZip => Self::Compressed,
        }
    }
}

impl fmt::Display for ClipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stroke{} cut, {:.1} mm removed",
            self.strokes,
            plural(self.strokes),
            self.length_mm
        )
    }
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PageSizeAssumed { how } => write!(f, "the <svg> has no width/height: {how}"),
            Self::PageSizeRelative => write!(
                f,
                "the page width/height is a percentage, which has no physical size: the viewBox \
                 was taken as pixels at 96 per inch; give width and height in mm"
            ),
            Self::FillsNotDrawn {
                fill_only,
                filled_and_stroked,
            } => {
                write!(f, "fills are not drawn (plotty draws strokes):")?;
                if *fill_only > 0 {
                    write!(
                        f,
                        " {fill_only} filled shape{} without a stroke skipped",
                        plural(*fill_only)
                    )?;
                }
                if *fill_only > 0 && *filled_and_stroked > 0 {
                    write!(f, ",")?;
                }
                if *filled_and_stroked > 0 {
                    write!(
                        f,
                        " {filled_and_stroked} filled shape{} drawn as outline only",
                        plural(*filled_and_stroked)
                    )?;
                }
                Ok(())
            }
            Self::TextNotConverted { texts } => write!(
                f,
                "{} text element{} could not be converted to outlines (no usable font), not \
                 drawn: {}; install the fonts or convert the text to paths (Inkscape: Path > \
                 Object to Path)",
                texts.len(),
                plural(texts.len()),
                texts.join(", ")
            ),
            Self::Clipped { layer, report } => write!(
                f,
                "layer '{layer}': outside the plotter's travel, {report}; move or scale the \
                 drawing, or choose the right plotter model"
            ),
            Self::HiddenLayer { layer } => write!(f, "hidden layer '{layer}' skipped"),
            Self::BadLayerControl { layer, problem } => {
                write!(f, "layer '{layer}': {problem}, ignored")
            }
            Self::OutsideLayers { strokes } => write!(
                f,
                "{strokes} stroke{} outside every layer: drawn as a layer of their own",
                plural(*strokes)
            ),
            Self::MixedColors { layer, colors } => {
                write!(f, "layer '{layer}' uses {} stroke colours (", colors.len())?;
                for (i, c) in colors.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{c}")?;
                }
                write!(
                    f,
                    ") but is drawn with one pen; put each colour on its own layer for pen changes"
                )
            }
            Self::ImagesIgnored { count } => write!(
                f,
                "{count} image{} skipped: images are not plotted (plotty draws strokes; trace \
                 an image into paths to plot it)",
                plural(*count)
            ),
            Self::ClipPathsIgnored { count } => write!(
                f,
                "{count} clip path{}/mask{} not applied: clipped-away parts are drawn too",
                plural(*count),
                plural(*count)
            ),
            Self::AbsurdCoordinates { paths } => write!(
                f,
                "{paths} shape{} with coordinates that are not finite or more than 1 km away \
                 skipped",
                plural(*paths)
            ),
        }
    }
}

fn no_strokes_message(fill_only: usize, outside_travel_mm: f64) -> String {
    if outside_travel_mm > 0.0 {
        format!(
            "nothing to draw: all strokes ({outside_travel_mm:.1} mm) lie outside the plotter's \
             travel; move the drawing onto the page or choose the right plotter model"
        )
    } else if fill_only > 0 {
        format!(
            "nothing to draw: only filled shapes ({fill_only}): plotty draws strokes; give the \
             shapes a stroke (e.g. stroke=\"black\" fill=\"none\")"
        )
    } else {
        "nothing to draw: the SVG has no visible stroked shapes in any plotted layer".to_string()
    }
}

/// roxmltree appends " at L:C" to its messages; we report the position separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at ") {
        Some(i) if msg[i + 4..].chars().all(|c| c.is_ascii_digit() || c == ':') => {
            msg[..i].to_string()
        }
        _ => msg.to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
