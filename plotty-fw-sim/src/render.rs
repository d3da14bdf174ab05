//! Pictures of a pen trace: SVG text and PNG images, so a person can look at what the simulated
//! plotter drew.
//!
//! The SVG is in millimetres (+y down, as on the AxiDraw): pen-down polylines in black (or a
//! palette cycled per stroke, which shows the drawing order), a pen dip without motion as a dot,
//! and optionally the pen-up travel as thin dashed light-grey lines. The page spans the trace's
//! bounds and home (0, 0), plus a margin, unless a fixed page is given. The PNG is that SVG
//! rendered by resvg on a white background.

use std::fmt::Write as _;

use crate::trace::{PointMm, Trace};

/// Largest PNG side in pixels; larger pages are rendered at a reduced scale.
const MAX_PNG_SIDE_PX: f64 = 8192.0;

/// How to draw a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Colours of pen-down strokes, cycled per stroke; each `#rgb`, `#rrggbb` or a lower-case
    /// SVG colour name. Default: black only.
    pub pen_colors: Vec<String>,
    /// Pen-down line width in millimetres (default 0.3, a fine felt tip).
    pub stroke_width_mm: f64,
    /// Draw pen-up travel as dashed light-grey lines (default true).
    pub show_travel: bool,
    /// The page drawn.
    pub page: Page,
    /// PNG resolution in pixels per millimetre (default 4, about 100 dpi).
    pub png_px_per_mm: f64,
}

/// The page area of the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Page {
    /// The bounds of the trace and home, plus this margin in millimetres on each side.
    FitTrace {
        /// Margin in millimetres.
        margin_mm: f64,
    },
    /// A fixed page from home (0, 0): e.g. the AxiDraw's travel of 300 × 218 mm.
    Fixed {
        /// Width in millimetres.
        width_mm: f64,
        /// Height in millimetres.
        height_mm: f64,
    },
}

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A pen colour is not `#rgb`, `#rrggbb` or a colour name.
    #[error("pen colour {0:?} is not #rgb, #rrggbb or a lower-case SVG colour name")]
    BadColor(String),
    /// A size option is not a positive finite number.
    #[error("{0} must be a positive number")]
    BadSize(&'static str),
    /// The generated SVG did not parse (a bug: please report it).
    #[error("internal error: the trace SVG did not parse: {0}")]
    Svg(#[from] usvg::Error),
    /// The image could not be allocated.
    #[error("cannot allocate a {width}×{height} pixel image")]
    Pixmap {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// The page rectangle in millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ViewBox {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            pen_colors: vec!["black".to_owned()],
            stroke_width_mm: 0.3,
            show_travel: true,
            page: Page::FitTrace { margin_mm: 5.0 },
            png_px_per_mm: 4.0,
        }
    }
}

impl RenderOptions {
    /// Checks colours and sizes.
    pub fn validate(&self) -> Result<(), RenderError> {
        for color in &self.pen_colors {
            if !is_color(color) {
                return Err(RenderError::BadColor(color.clone()));
            }
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.stroke_width_mm) {
            return Err(RenderError::BadSize("the stroke width"));
        }
        if !positive(self.png_px_per_mm) {
            return Err(RenderError::BadSize("the PNG resolution"));
        }
        match self.page {
            Page::FitTrace { margin_mm } if !(margin_mm.is_finite() && margin_mm >= 0.0) => {
                Err(RenderError::BadSize("the page margin"))
            }
            Page::Fixed {
                width_mm,
                height_mm,
            } if !(positive(width_mm) && positive(height_mm)) => {
                Err(RenderError::BadSize("the page size"))
            }
            _ => Ok(()),
        }
    }

    fn view_box(&self, trace: &Trace) -> ViewBox {
        match self.page {
            Page::Fixed {
                width_mm,
                height_mm,
            } => ViewBox {
                x: 0.0,
                y: 0.0,
                width: width_mm,
                height: height_mm,
            },
            Page::FitTrace { margin_mm } => {
                let origin = PointMm { x: 0.0, y: 0.0 };
                let (min, max) = trace
                    .bounds(self.show_travel)
                    .map_or((origin, origin), |b| (b.min, b.max));
                let x = min.x.min(0.0) - margin_mm;
                let y = min.y.min(0.0) - margin_mm;
                ViewBox {
                    x,
                    y,
                    // At least 1 mm so an empty trace still makes a page.
                    width: (max.x.max(0.0) + margin_mm - x).max(1.0),
                    height: (max.y.max(0.0) + margin_mm - y).max(1.0),
                }
            }
        }
    }
}

/// The trace as an SVG document (millimetre units).
pub fn to_svg(trace: &Trace, options: &RenderOptions) -> Result<String, RenderError> {
    options.validate()?;
    let vb = options.view_box(trace);
    let mut svg = String::new();
    // Writing to a String cannot fail; the results are ignored below for that reason.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.3}mm\" height=\"{h:.3}mm\" \
         viewBox=\"{x:.3} {y:.3} {w:.3} {h:.3}\">\n\
         <title>plotty-fw-sim pen trace</title>\n\
         <rect x=\"{x:.3}\" y=\"{y:.3}\" width=\"{w:.3}\" height=\"{h:.3}\" fill=\"white\"/>\n",
        x = vb.x,
        y = vb.y,
        w = vb.width,
        h = vb.height,
    );
    if options.show_travel && !trace.travel.is_empty() {
        let width = (options.stroke_width_mm / 3.0).max(0.05);
        let _ = writeln!(
            svg,
            "<g id=\"travel\" fill=\"none\" stroke=\"#c8c8c8\" stroke-width=\"{width:.3}\" \
             stroke-dasharray=\"{d:.3} {d:.3}\">",
            d = width * 6.0,
        );
        for line in &trace.travel {
            write_polyline(&mut svg, line, None);
        }
        svg.push_str("</g>\n");
    }
    let _ = writeln!(
        svg,
        "<g id=\"strokes\" fill=\"none\" stroke-width=\"{:.3}\" stroke-linecap=\"round\" \
         stroke-linejoin=\"round\">",
        options.stroke_width_mm
    );
    let black = ["black".to_owned()];
    let colors = if options.pen_colors.is_empty() {
        &black[..]
    } else {
        &options.pen_colors[..]
    };
    for (line, color) in trace.strokes.iter().zip(colors.iter().cycle()) {
        if let [dot] = line.as_slice() {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.3}\" cy=\"{:.3}\" r=\"{:.3}\" fill=\"{color}\"/>",
                dot.x,
                dot.y,
                options.stroke_width_mm / 2.0
            );
        } else {
            write_polyline(&mut svg, line, Some(color));
        }
    }
    svg.push_str("</g>\n</svg>\n");
    Ok(svg)
}

/// The trace rendered to a PNG image (white background).
pub fn to_png(trace: &Trace, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let pixmap = to_pixmap(trace, options)?;
    pixmap
        .encode_png()
        .map_err(|e| RenderError::Png(e.to_string()))
}

/// The trace rendered to pixels (white background), e.g. to inspect them.
pub fn to_pixmap(trace: &Trace, options: &RenderOptions) -> Result<tiny_skia::Pixmap, RenderError> {
    let svg = to_svg(trace, options)?;
    let tree = usvg::Tree::from_str(&svg, &usvg::Options::default())?;
    let vb = options.view_box(trace);
    let scale = options
        .png_px_per_mm
        .min(MAX_PNG_SIDE_PX / vb.width)
        .min(MAX_PNG_SIDE_PX / vb.height);
    // Both sides are at most MAX_PNG_SIDE_PX here, so the casts cannot overflow.
    let width = (vb.width * scale).ceil().max(1.0) as u32;
    let height = (vb.height * scale).ceil().max(1.0) as u32;
    let mut pixmap =
        tiny_skia::Pixmap::new(width, height).ok_or(RenderError::Pixmap { width, height })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let size = tree.size();
    let transform = tiny_skia::Transform::from_scale(
        width as f32 / size.width(),
        height as f32 / size.height(),
    );
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    Ok(pixmap)
}

fn write_polyline(svg: &mut String, line: &[PointMm], color: Option<&String>) {
    svg.push_str("<polyline points=\"");
    for (i, p) in line.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(svg, "{sep}{:.3},{:.3}", p.x, p.y);
    }
    match color {
        Some(color) => {
            let _ = writeln!(svg, "\" stroke=\"{color}\"/>");
        }
        None => svg.push_str("\"/>\n"),
    }
}

/// `#rgb`, `#rrggbb` or a lower-case word (an SVG colour name; unknown names render black).
fn is_color(text: &str) -> bool {
    match text.strip_prefix('#') {
        Some(hex) => matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => {
            !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Trace {
        let p = |x, y| PointMm { x, y };
        Trace {
            strokes: vec![
                vec![
                    p(10.0, 10.0),
                    p(40.0, 10.0),
                    p(40.0, 40.0),
                    p(10.0, 40.0),
                    p(10.0, 10.0),
                ],
                vec![p(60.0, 25.0)],
            ],
            travel: vec![
                vec![p(0.0, 0.0), p(10.0, 10.0)],
                vec![p(10.0, 10.0), p(60.0, 25.0)],
            ],
            truncated: false,
        }
    }

    /// Pixels darker than mid-grey.
    fn dark_pixels(pixmap: &tiny_skia::Pixmap) -> usize {
        pixmap
            .pixels()
            .iter()
            .filter(|p| u32::from(p.red()) + u32::from(p.green()) + u32::from(p.blue()) < 3 * 128)
            .count()
    }

    #[test]
    fn svg_contains_the_strokes_and_the_page() {
        let svg = to_svg(&square(), &RenderOptions::default()).unwrap();
        assert!(svg.contains(
            "points=\"10.000,10.000 40.000,10.000 40.000,40.000 10.000,40.000 10.000,10.000\""
        ));
        assert!(svg.contains("<circle cx=\"60.000\" cy=\"25.000\""));
        assert!(svg.contains("stroke-dasharray"));
        // Home plus the 5 mm margin: -5 … 65 × -5 … 45.
        assert!(svg.contains("viewBox=\"-5.000 -5.000 70.000 50.000\""));
        usvg::Tree::from_str(&svg, &usvg::Options::default()).unwrap();
    }

    #[test]
    fn travel_can_be_hidden_and_colours_cycle() {
        let options = RenderOptions {
            show_travel: false,
            pen_colors: vec!["#f00".to_owned(), "blue".to_owned()],
            ..RenderOptions::default()
        };
        let svg = to_svg(&square(), &options).unwrap();
        assert!(!svg.contains("travel"));
        assert!(svg.contains("stroke=\"#f00\""));
        assert!(svg.contains("fill=\"blue\""));
    }

    #[test]
    fn png_shows_the_square() {
        let options = RenderOptions::default();
        let pixmap = to_pixmap(&square(), &options).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (280, 200));
        // 120 mm of 0.3 mm line at 4 px/mm ≈ 480 px × 1.2 px; antialiasing blurs it: expect a few
        // hundred dark pixels, and a mostly white page.
        let dark = dark_pixels(&pixmap);
        assert!((200..4000).contains(&dark), "{dark} dark pixels");
        // The top edge of the square (y = 10 mm → row 60) is dark in its middle, row 100 is not.
        let px = |x: u32, y: u32| pixmap.pixel(x, y).unwrap();
        assert!(px(20 + 100, 60).red() < 128);
        assert!(px(20 + 100, 100).red() > 200);
        let png = to_png(&square(), &options).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let empty = to_pixmap(&Trace::default(), &options).unwrap();
        assert_eq!(dark_pixels(&empty), 0);
    }

    #[test]
    fn fixed_pages_and_huge_pages() {
        let options = RenderOptions {
            page: Page::Fixed {
                width_mm: 300.0,
                height_mm: 218.0,
            },
            ..RenderOptions::default()
        };
        assert!(
            to_svg(&square(), &options)
                .unwrap()
                .contains("viewBox=\"0.000 0.000 300.000 218.000\"")
        );
        let options = RenderOptions {
            page: Page::Fixed {
                width_mm: 100_000.0,
                height_mm: 10.0,
            },
            ..RenderOptions::default()
        };
        let pixmap = to_pixmap(&square(), &options).unwrap();
        assert!(pixmap.width() <= 8192);
    }

    #[test]
    fn bad_options_are_rejected() {
        for options in [
            RenderOptions {
                pen_colors: vec!["\"/><script>".to_owned()],
                ..RenderOptions::default()
            },
            RenderOptions {
                stroke_width_mm: f64::NAN,
                ..RenderOptions::default()
            },
            RenderOptions {
                png_px_per_mm: 0.0,
                ..RenderOptions::default()
            },
            RenderOptions {
                page: Page::Fixed {
                    width_mm: -1.0,
                    height_mm: 1.0,
                },
                ..RenderOptions::default()
            },
        ] {
            assert!(to_svg(&square(), &options).is_err());
        }
    }
}
