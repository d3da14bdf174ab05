//! Pictures of what will be (or was) drawn, and how far two drawings are apart.
//!
//! A [`Preview`] holds pen-down polylines in layer colours, the pen-up moves between them, the
//! page and the plotter's travel, all in millimetres. It renders to SVG text (millimetre units,
//! so it prints at true size) or to PNG through tiny-skia; [`Preview::write`] picks the format
//! from the file extension. [`Preview::from_drawing`] shows a plan; [`Preview::from_polylines`]
//! shows any set of pen-down polylines (e.g. the simulator's pen trace) the same way, so the two
//! can be compared side by side.
//!
//! What makes a preview readable at any zoom (issue 12): pen-up travel is drawn with a
//! non-scaling stroke in SVG (one screen pixel wide however far one zooms in or out) and at least
//! one pixel wide in PNG; the first pen-down point has a green start marker, the last a red end
//! marker; each layer's first stroke carries a numbered marker (its number from 1, as in the
//! legend and everywhere else), and the pen-up moves go from blue (early) to red (late). Numbered
//! layer starts were chosen over a colour ramp on the strokes because the strokes keep their pen
//! colours (which say which pen draws them) and a number is read without a key; the ramp on the
//! pen-up moves, which have no colour of their own, shows the order within a layer. The sheet of
//! paper ([`crate::paper::Sheet`]) is the white area, outlined and named; a [`Legend`] (SVG)
//! gives the planned time and the pen-down and pen-up distances in all and per layer. tiny-skia
//! draws no text, so a PNG has no legend and its layer numbers are seven-segment strokes.
//!
//! How far two drawings are apart ([`max_deviation`], [`hausdorff_mm`]) is geometry, not
//! rendering: it lives in [`crate::deviation`] and is re-exported here for existing callers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tiny_skia::{LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, StrokeDash, Transform};

pub use crate::deviation::{Deviation, hausdorff_mm, max_deviation};
use crate::import::{Color, Drawing, Point};
use crate::paper::Sheet;
use crate::plot::estimate::{Estimate, Hms};

/// Largest PNG side in pixels; larger pictures are scaled down to fit.
const MAX_PNG_SIDE_PX: f64 = 8192.0;
/// Space around the drawing in the picture, mm.
const MARGIN_MM: f64 = 5.0;
/// Pen-up travel colours: the first moves (blue) to the last (red).
const PEN_UP_EARLY: Color = Color::new(0x30, 0x60, 0xe0);
const PEN_UP_LATE: Color = Color::new(0xe0, 0x30, 0x30);
/// Steps of the pen-up colour ramp (one path each).
const PEN_UP_STEPS: usize = 8;
/// Start and end marker colours.
const START_COLOR: Color = Color::new(0x20, 0xa0, 0x40);
const END_COLOR: Color = Color::new(0xd0, 0x20, 0x20);
/// Thinnest line in a PNG, pixels: pen-up travel must stay visible however small the picture.
const MIN_LINE_PX: f64 = 1.0;

/// Rendering settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreviewOptions {
    /// PNG resolution, pixels per millimetre (the SVG is in millimetres).
    pub px_per_mm: f64,
    /// Pen-down line width, mm.
    pub pen_width_mm: f64,
    /// Draw the pen-up moves (dashed).
    pub show_pen_up: bool,
    /// PNG only: the picture's longest side in pixels, instead of `px_per_mm` (at most 8192).
    pub size_px: Option<u32>,
}

/// The legend under an SVG preview: the planned time and distances, in all and per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Legend {
    /// The whole plot.
    pub total: LegendLine,
    /// Each plotted layer, in plot order (numbered from 1).
    pub layers: Vec<LegendLine>,
}

/// One line of a [`Legend`].
#[derive(Clone, Debug, PartialEq)]
pub struct LegendLine {
    /// The layer's name (empty for the total).
    pub name: String,
    /// Planned time, s.
    pub time_s: f64,
    /// The planned time as people read it (`2 min 03.4 s`).
    pub time: String,
    /// Pen-down distance, mm.
    pub pen_down_mm: f64,
    /// Pen-up distance, mm.
    pub pen_up_mm: f64,
}

impl Legend {
    /// The legend of a plot's estimate: its figures, unchanged.
    pub fn from_estimate(e: &Estimate) -> Self {
        Self {
            total: LegendLine {
                name: String::new(),
                time_s: e.total.as_secs_f64(),
                time: Hms(e.total).to_string(),
                pen_down_mm: e.drawn_mm,
                pen_up_mm: e.travel_mm,
            },
            layers: e
                .layers
                .iter()
                .map(|l| LegendLine {
                    name: l.name.clone(),
                    time_s: l.total.as_secs_f64(),
                    time: Hms(l.total).to_string(),
                    pen_down_mm: l.drawn_mm,
                    pen_up_mm: l.travel_mm,
                })
                .collect(),
        }
    }

    /// Text lines: the total, each layer, the paper, what the marks mean.
    fn rows(&self) -> usize {
        self.layers.len() + 3
    }
}

/// Pen-down polylines of one colour.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewLayer {
    /// Pen colour.
    pub color: Color,
    /// Pen-down polylines, mm.
    pub polylines: Vec<Vec<Point>>,
}

/// Something to render: pen-down polylines, pen-up moves, page and travel outlines.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Preview {
    /// Page size (width, height) in mm, outlined if given.
    pub page_mm: Option<(f64, f64)>,
    /// Plotter travel (X, Y) in mm, outlined (dashed) if given.
    pub travel_mm: Option<(f64, f64)>,
    /// Pen-down polylines, drawn in order.
    pub layers: Vec<PreviewLayer>,
    /// Pen-up moves (from, to).
    pub pen_up: Vec<(Point, Point)>,
    /// The sheet of paper as it lies, drawn as the white area and named, if known.
    pub sheet: Option<Sheet>,
    /// The legend under the picture (SVG only), if given.
    pub legend: Option<Legend>,
}

/// Why a preview could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The output extension is neither `.svg` nor `.png`.
    #[error("cannot tell the preview format of {}: name the file .svg or .png", path.display())]
    UnknownFormat {
        /// The output path.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("cannot write the preview to {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The picture could not be rendered or encoded.
    #[error("cannot render the preview: {0}")]
    Render(String),
}

impl Preview {
    /// The plan of a drawing: each plotted layer in its colour, pen-up moves from home through
    /// every stroke and back home, the page and the travel.
    pub fn from_drawing(drawing: &Drawing) -> Self {
        let mut pen_up = Vec::new();
        let mut pos = Point::ORIGIN;
        let mut layers = Vec::new();
        for layer in drawing.layers.iter().filter(|l| l.is_plotted()) {
            let mut polylines = Vec::with_capacity(layer.strokes.len());
            for s in &layer.strokes {
                if let (Some(a), Some(b)) = (s.start(), s.end()) {
                    pen_up.push((pos, a));
                    pos = b;
                    polylines.push(s.points.clone());
                }
            }
            layers.push(PreviewLayer {
                color: layer.color,
                polylines,
            });
        }
        pen_up.push((pos, Point::ORIGIN));
        Self {
            page_mm: Some((drawing.page.width_mm, drawing.page.height_mm)),
            travel_mm: Some(drawing.travel_mm),
            layers,
            pen_up,
            sheet: None,
            legend: None,
        }
    }

    /// The same preview on `sheet`.
    #[must_use]
    pub fn with_sheet(mut self, sheet: Sheet) -> Self {
        self.sheet = Some(sheet);
        self
    }

    /// The same preview with `legend` under it.
    #[must_use]
    pub fn with_legend(mut self, legend: Legend) -> Self {
        self.legend = Some(legend);
        self
    }

    /// The first and last pen-down points.
    fn ends(&self) -> Option<(Point, Point)> {
        let first = self
            .layers
            .iter()
            .flat_map(|l| &l.polylines)
            .find_map(|l| l.iter().find(|p| p.is_finite()))?;
        let last = self
            .layers
            .iter()
            .rev()
            .flat_map(|l| l.polylines.iter().rev())
            .find_map(|l| l.iter().rev().find(|p| p.is_finite()))?;
        Some((*first, *last))
    }

    /// Where each layer starts (its number from 1, its first point); layers with nothing to
    /// draw keep their number and have no marker.
    fn layer_starts(&self) -> Vec<(usize, Point)> {
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.polylines
                    .iter()
                    .find_map(|line| line.iter().find(|p| p.is_finite()))
                    .map(|p| (i + 1, *p))
            })
            .collect()
    }

    /// Size of markers and text, mm: in proportion to the picture, so they read the same on a
    /// postcard and on an A1 sheet.
    fn unit_mm(&self) -> f64 {
        let (x0, y0, x1, y1) = self.drawing_bounds();
        ((x1 - x0).max(y1 - y0) / 200.0).max(0.3)
    }

    /// Any pen-down polylines, e.g. a simulator's trace, with one colour per polyline (black
    /// where `colors` is missing or too short); pen-up moves join consecutive polylines.
    pub fn from_polylines(
        polylines: &[Vec<Point>],
        colors: Option<&[Color]>,
        page_mm: Option<(f64, f64)>,
        travel_mm: Option<(f64, f64)>,
    ) -> Self {
        let mut layers: Vec<PreviewLayer> = Vec::new();
        let mut pen_up = Vec::new();
        let mut pos: Option<Point> = None;
        for (i, line) in polylines.iter().enumerate() {
            let color = colors
                .and_then(|c| c.get(i))
                .copied()
                .unwrap_or(Color::BLACK);
            if let (Some(p), Some(a)) = (pos, line.first()) {
                pen_up.push((p, *a));
            }
            if let Some(b) = line.last() {
                pos = Some(*b);
            }
            match layers.last_mut() {
                Some(l) if l.color == color => l.polylines.push(line.clone()),
                _ => layers.push(PreviewLayer {
                    color,
                    polylines: vec![line.clone()],
                }),
            }
        }
        Self {
            page_mm,
            travel_mm,
            layers,
            pen_up,
            sheet: None,
            legend: None,
        }
    }

    /// The area of the drawing: page, sheet, travel and everything drawn, plus a margin (mm).
    fn drawing_bounds(&self) -> (f64, f64, f64, f64) {
        let mut b = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let mut grow = |p: Point| {
            if p.is_finite() {
                b.0 = b.0.min(p.x_mm);
                b.1 = b.1.min(p.y_mm);
                b.2 = b.2.max(p.x_mm);
                b.3 = b.3.max(p.y_mm);
            }
        };
        let sheet = self.sheet.as_ref().map(|s| (s.width_mm, s.height_mm));
        for (w, h) in [self.page_mm, self.travel_mm, sheet].into_iter().flatten() {
            grow(Point::new(w, h));
        }
        for l in &self.layers {
            for p in l.polylines.iter().flatten() {
                grow(*p);
            }
        }
        (
            b.0 - MARGIN_MM,
            b.1 - MARGIN_MM,
            b.2 + MARGIN_MM,
            b.3 + MARGIN_MM,
        )
    }

    /// The area shown: the drawing and, in SVG, the legend under it (mm).
    fn bounds(&self, with_legend: bool) -> (f64, f64, f64, f64) {
        let (x0, y0, x1, y1) = self.drawing_bounds();
        match &self.legend {
            Some(l) if with_legend => {
                let line = self.unit_mm() * LEGEND_LINE_UNITS;
                (x0, y0, x1, y1 + line * (l.rows() as f64 + 0.5))
            }
            _ => (x0, y0, x1, y1),
        }
    }

    /// The preview as SVG text, in millimetres.
    pub fn to_svg(&self, options: &PreviewOptions) -> String {
        let (x0, y0, x1, y1) = self.bounds(true);
        let (w, h) = (x1 - x0, y1 - y0);
        let unit = self.unit_mm();
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{w:.3}mm\" height=\"{h:.3}mm\" viewBox=\"{x0:.3} {y0:.3} {w:.3} {h:.3}\">"
        );
        let _ = writeln!(
            s,
            "<rect x=\"{x0:.3}\" y=\"{y0:.3}\" width=\"{w:.3}\" height=\"{h:.3}\" fill=\"#f4f4f4\"/>"
        );
        // The sheet is the white area when known; the document's page is then only outlined.
        if let Some(sheet) = &self.sheet {
            let _ = writeln!(
                s,
                "<rect class=\"sheet\" x=\"0\" y=\"0\" width=\"{:.3}\" height=\"{:.3}\" \
                 fill=\"#ffffff\" stroke=\"#606060\" stroke-width=\"{:.3}\"/>",
                sheet.width_mm,
                sheet.height_mm,
                unit * 0.3
            );
            let _ = writeln!(
                s,
                "<text class=\"sheet-label\" x=\"{:.3}\" y=\"{:.3}\" font-family=\"sans-serif\" \
                 font-size=\"{:.3}\" fill=\"#606060\" text-anchor=\"end\">{}</text>",
                sheet.width_mm - unit,
                sheet.height_mm - unit,
                unit * 2.5,
                xml_text(&sheet.label())
            );
        }
        if let Some((pw, ph)) = self.page_mm {
            let fill = if self.sheet.is_some() {
                "none"
            } else {
                "#ffffff"
            };
            let _ = writeln!(
                s,
                "<rect class=\"page\" x=\"0\" y=\"0\" width=\"{pw:.3}\" height=\"{ph:.3}\" \
                 fill=\"{fill}\" stroke=\"#909090\" stroke-width=\"0.3\"/>"
            );
        }
        if let Some((tw, th)) = self.travel_mm {
            let _ = writeln!(
                s,
                "<rect class=\"travel\" x=\"0\" y=\"0\" width=\"{tw:.3}\" height=\"{th:.3}\" \
                 fill=\"none\" stroke=\"#4060c0\" stroke-width=\"0.3\" stroke-dasharray=\"3 2\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<g fill=\"none\" stroke-linecap=\"round\" stroke-linejoin=\"round\" \
             stroke-width=\"{:.3}\">",
            options.pen_width_mm
        );
        for layer in &self.layers {
            let _ = write!(s, "<path stroke=\"{}\" d=\"", layer.color);
            for line in &layer.polylines {
                svg_polyline(&mut s, line);
            }
            let _ = writeln!(s, "\"/>");
        }
        let _ = writeln!(s, "</g>");
        if options.show_pen_up && !self.pen_up.is_empty() {
            // One screen pixel wide at any zoom (the stroke and its dashes are not scaled).
            let _ = writeln!(
                s,
                "<g class=\"pen-up\" fill=\"none\" stroke-width=\"1\" stroke-dasharray=\"4 3\">"
            );
            for (color, moves) in ramp_steps(&self.pen_up) {
                let _ = write!(
                    s,
                    "<path stroke=\"{color}\" vector-effect=\"non-scaling-stroke\" d=\""
                );
                for (a, b) in moves {
                    svg_polyline(&mut s, &[*a, *b]);
                }
                let _ = writeln!(s, "\"/>");
            }
            let _ = writeln!(s, "</g>");
        }
        self.svg_markers(&mut s, unit);
        if let Some(legend) = &self.legend {
            let (_, _, _, bottom) = self.drawing_bounds();
            svg_legend(
                &mut s,
                legend,
                self.sheet.as_ref(),
                x0 + MARGIN_MM,
                bottom,
                unit,
            );
        }
        let _ = writeln!(s, "</svg>");
        s
    }

    /// Start, end and layer-start markers.
    fn svg_markers(&self, s: &mut String, unit: f64) {
        let r = unit * 1.6;
        if let Some((start, end)) = self.ends() {
            let _ = writeln!(
                s,
                "<circle class=\"start\" cx=\"{:.3}\" cy=\"{:.3}\" r=\"{:.3}\" fill=\"{START_COLOR}\" \
                 fill-opacity=\"0.8\"><title>start</title></circle>",
                start.x_mm,
                start.y_mm,
                r * 1.6
            );
            let _ = writeln!(
                s,
                "<rect class=\"end\" x=\"{:.3}\" y=\"{:.3}\" width=\"{:.3}\" height=\"{:.3}\" \
                 fill=\"{END_COLOR}\" fill-opacity=\"0.8\"><title>end</title></rect>",
                end.x_mm - r,
                end.y_mm - r,
                r * 2.0,
                r * 2.0
            );
        }
        let _ = writeln!(
            s,
            "<g class=\"layer-starts\" font-family=\"sans-serif\" font-size=\"{:.3}\" \
             text-anchor=\"middle\" dominant-baseline=\"central\">",
            r * 1.2
        );
        for (n, p) in self.layer_starts() {
            let _ = writeln!(
                s,
                "<g class=\"layer-start\" data-layer=\"{n}\"><circle cx=\"{:.3}\" cy=\"{:.3}\" \
                 r=\"{r:.3}\" fill=\"#ffffff\" stroke=\"#202020\" stroke-width=\"{:.3}\"/>\
                 <text x=\"{:.3}\" y=\"{:.3}\" fill=\"#202020\">{n}</text></g>",
                p.x_mm,
                p.y_mm,
                r * 0.15,
                p.x_mm,
                p.y_mm
            );
        }
        let _ = writeln!(s, "</g>");
    }

    /// The preview as a PNG image.
    pub fn to_png(&self, options: &PreviewOptions) -> Result<Vec<u8>, PreviewError> {
        // The legend is text, which tiny-skia cannot draw; the PNG shows the picture alone.
        let (x0, y0, x1, y1) = self.bounds(false);
        let (w_mm, h_mm) = (x1 - x0, y1 - y0);
        let longest_mm = w_mm.max(h_mm);
        let mut scale = match options.size_px {
            Some(px) => f64::from(px.clamp(1, MAX_PNG_SIDE_PX as u32)) / longest_mm,
            None if options.px_per_mm.is_finite() && options.px_per_mm > 0.0 => options.px_per_mm,
            None => 4.0,
        };
        if longest_mm * scale > MAX_PNG_SIDE_PX {
            scale = MAX_PNG_SIDE_PX / longest_mm;
        }
        // With `size_px`, rounded so that it is the longest side exactly; without, as before.
        let exact = options.size_px.is_some();
        let to_px = |v: f64| {
            let px = if exact {
                (v * scale).round()
            } else {
                (v * scale).ceil()
            };
            px.clamp(1.0, MAX_PNG_SIDE_PX) as u32
        };
        let mut pixmap = Pixmap::new(to_px(w_mm), to_px(h_mm))
            .ok_or_else(|| PreviewError::Render("image size out of range".into()))?;
        pixmap.fill(tiny_skia::Color::from_rgba8(0xf4, 0xf4, 0xf4, 0xff));
        let ts = Transform::from_row(
            scale as f32,
            0.0,
            0.0,
            scale as f32,
            (-x0 * scale) as f32,
            (-y0 * scale) as f32,
        );
        // No line thinner than a pixel: at a small size a 0.15 mm line would vanish.
        let min_mm = MIN_LINE_PX / scale;
        let stroke = |width_mm: f64, dash: Option<(f32, f32)>| Stroke {
            width: width_mm.max(min_mm) as f32,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            dash: dash.and_then(|(on, off)| StrokeDash::new(vec![on, off], 0.0)),
            ..Stroke::default()
        };
        let paint = |c: Color| {
            let mut p = Paint::default();
            p.set_color_rgba8(c.r, c.g, c.b, 0xff);
            p.anti_alias = true;
            p
        };
        let white = paint(Color::new(0xff, 0xff, 0xff));
        if let Some(sheet) = &self.sheet
            && let Some(rect) =
                tiny_skia::Rect::from_xywh(0.0, 0.0, sheet.width_mm as f32, sheet.height_mm as f32)
        {
            pixmap.fill_rect(rect, &white, ts, None);
            let path = PathBuilder::from_rect(rect);
            let s = stroke(0.4, None);
            pixmap.stroke_path(&path, &paint(Color::new(0x60, 0x60, 0x60)), &s, ts, None);
        }
        if let Some((pw, ph)) = self.page_mm
            && let Some(rect) = tiny_skia::Rect::from_xywh(0.0, 0.0, pw as f32, ph as f32)
        {
            if self.sheet.is_none() {
                pixmap.fill_rect(rect, &white, ts, None);
            }
            let path = PathBuilder::from_rect(rect);
            pixmap.stroke_path(
                &path,
                &paint(Color::new(0x90, 0x90, 0x90)),
                &stroke(0.3, None),
                ts,
                None,
            );
        }
        if let Some((tw, th)) = self.travel_mm
            && let Some(rect) = tiny_skia::Rect::from_xywh(0.0, 0.0, tw as f32, th as f32)
        {
            let path = PathBuilder::from_rect(rect);
            let s = stroke(0.3, Some((3.0, 2.0)));
            pixmap.stroke_path(&path, &paint(Color::new(0x40, 0x60, 0xc0)), &s, ts, None);
        }
        let pen = stroke(options.pen_width_mm.max(0.01), None);
        for layer in &self.layers {
            let mut batch = Batch::new(&mut pixmap, paint(layer.color), &pen, ts);
            for line in &layer.polylines {
                batch.polyline(line);
            }
            batch.flush();
        }
        if options.show_pen_up {
            // Dashes of 4 and 3 pixels at any size.
            let (on, off) = ((4.0 / scale) as f32, (3.0 / scale) as f32);
            let s = stroke(0.15, Some((on, off)));
            for (color, moves) in ramp_steps(&self.pen_up) {
                let mut batch = Batch::new(&mut pixmap, paint(color), &s, ts);
                for (a, b) in moves {
                    batch.polyline(&[*a, *b]);
                }
                batch.flush();
            }
        }
        let r = (self.unit_mm() * 1.6) as f32;
        let circle = |p: Point, r: f32| PathBuilder::from_circle(p.x_mm as f32, p.y_mm as f32, r);
        if let Some((start, end)) = self.ends() {
            if let Some(c) = circle(start, r * 1.6) {
                pixmap.fill_path(
                    &c,
                    &paint(START_COLOR),
                    tiny_skia::FillRule::Winding,
                    ts,
                    None,
                );
            }
            if let Some(rect) = tiny_skia::Rect::from_xywh(
                end.x_mm as f32 - r,
                end.y_mm as f32 - r,
                r * 2.0,
                r * 2.0,
            ) {
                pixmap.fill_rect(rect, &paint(END_COLOR), ts, None);
            }
        }
        let ink = paint(Color::new(0x20, 0x20, 0x20));
        for (n, p) in self.layer_starts() {
            if let Some(c) = circle(p, r) {
                pixmap.fill_path(&c, &white, tiny_skia::FillRule::Winding, ts, None);
                let s = stroke(f64::from(r) * 0.15, None);
                pixmap.stroke_path(&c, &ink, &s, ts, None);
            }
            // The number, in seven-segment strokes: tiny-skia draws no text.
            if let Some(path) = seven_segment(n, p, f64::from(r)) {
                let s = stroke(f64::from(r) * 0.16, None);
                pixmap.stroke_path(&path, &ink, &s, ts, None);
            }
        }
        pixmap
            .encode_png()
            .map_err(|e| PreviewError::Render(e.to_string()))
    }

    /// Writes the preview to `path`: SVG for `.svg`, PNG for `.png` (any case).
    pub fn write(&self, path: &Path, options: &PreviewOptions) -> Result<(), PreviewError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let bytes = match ext.as_deref() {
            Some("svg") => self.to_svg(options).into_bytes(),
            Some("png") => self.to_png(options)?,
            _ => {
                return Err(PreviewError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        };
        std::fs::write(path, bytes).map_err(|source| PreviewError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            px_per_mm: 4.0,
            pen_width_mm: 0.4,
            show_pen_up: true,
            size_px: None,
        }
    }
}

/// Height of a legend line, in [`Preview::unit_mm`]s.
const LEGEND_LINE_UNITS: f64 = 4.0;

/// The legend: a line for the whole plot, one per layer, and one saying what the marks mean.
/// Each line carries its figures as data attributes (seconds and mm, as estimated) for programs.
fn svg_legend(s: &mut String, legend: &Legend, sheet: Option<&Sheet>, x: f64, top: f64, unit: f64) {
    let line = unit * LEGEND_LINE_UNITS;
    let _ = writeln!(
        s,
        "<g class=\"legend\" font-family=\"sans-serif\" font-size=\"{:.3}\" fill=\"#202020\">",
        unit * 2.6
    );
    let row = |s: &mut String, class: &str, n: Option<usize>, l: &LegendLine, y: f64| {
        let label = match n {
            Some(n) if l.name.is_empty() => format!("{n}"),
            Some(n) => format!("{n} {}", l.name),
            None => "planned time".to_owned(),
        };
        let layer = n.map_or_else(String::new, |n| format!(" data-layer=\"{n}\""));
        let _ = writeln!(
            s,
            "<text class=\"{class}\"{layer} data-time-s=\"{}\" data-pen-down-mm=\"{}\" \
             data-pen-up-mm=\"{}\" x=\"{x:.3}\" y=\"{y:.3}\">{}: {}, pen down {:.2} m, pen up \
             {:.2} m</text>",
            l.time_s,
            l.pen_down_mm,
            l.pen_up_mm,
            xml_text(&label),
            xml_text(&l.time),
            l.pen_down_mm / 1000.0,
            l.pen_up_mm / 1000.0,
        );
    };
    let mut y = top + line;
    row(s, "legend-total", None, &legend.total, y);
    for (i, l) in legend.layers.iter().enumerate() {
        y += line;
        row(s, "legend-layer", Some(i + 1), l, y);
    }
    if let Some(sheet) = sheet {
        y += line;
        let _ = writeln!(
            s,
            "<text class=\"legend-paper\" x=\"{x:.3}\" y=\"{y:.3}\">paper: {}</text>",
            xml_text(&sheet.label())
        );
    }
    y += line;
    let _ = writeln!(
        s,
        "<text class=\"legend-key\" x=\"{x:.3}\" y=\"{y:.3}\" fill=\"#606060\">green disc: start, \
         red square: end, numbered circles: where each layer starts, dashed: pen-up travel from \
         blue (first) to red (last)</text>"
    );
    let _ = writeln!(s, "</g>");
}

/// The pen-up moves in at most [`PEN_UP_STEPS`] runs of consecutive moves, each with its colour
/// on the ramp: the first run [`PEN_UP_EARLY`], the last [`PEN_UP_LATE`].
fn ramp_steps(moves: &[(Point, Point)]) -> impl Iterator<Item = (Color, &[(Point, Point)])> {
    let per = moves.len().div_ceil(PEN_UP_STEPS).max(1);
    let runs = moves.len().div_ceil(per);
    moves
        .chunks(per)
        .enumerate()
        .map(move |(i, run)| (ramp_color(i, runs), run))
}

/// The colour of run `i` of `runs` on the pen-up ramp.
fn ramp_color(i: usize, runs: usize) -> Color {
    let t = if runs > 1 {
        i as f64 / (runs - 1) as f64
    } else {
        0.0
    };
    let mix = |a: u8, b: u8| {
        (f64::from(a) + (f64::from(b) - f64::from(a)) * t.clamp(0.0, 1.0)).round() as u8
    };
    Color::new(
        mix(PEN_UP_EARLY.r, PEN_UP_LATE.r),
        mix(PEN_UP_EARLY.g, PEN_UP_LATE.g),
        mix(PEN_UP_EARLY.b, PEN_UP_LATE.b),
    )
}

/// `n` in seven-segment strokes centred on `at`, fitting a circle of radius `r` (mm).
fn seven_segment(n: usize, at: Point, r: f64) -> Option<tiny_skia::Path> {
    // Segments a–g as (x0, y0, x1, y1) in a digit box 1 wide and 2 high.
    const SEGMENTS: [(f32, f32, f32, f32); 7] = [
        (0.0, 0.0, 1.0, 0.0),
        (1.0, 0.0, 1.0, 1.0),
        (1.0, 1.0, 1.0, 2.0),
        (0.0, 2.0, 1.0, 2.0),
        (0.0, 1.0, 0.0, 2.0),
        (0.0, 0.0, 0.0, 1.0),
        (0.0, 1.0, 1.0, 1.0),
    ];
    // Bit i lights segment i (a = bit 0).
    const DIGITS: [u8; 10] = [
        0b011_1111, 0b000_0110, 0b101_1011, 0b100_1111, 0b110_0110, 0b110_1101, 0b111_1101,
        0b000_0111, 0b111_1111, 0b110_1111,
    ];
    let digits: Vec<usize> = n
        .to_string()
        .bytes()
        .map(|b| usize::from(b - b'0'))
        .collect();
    let count = digits.len() as f64;
    // Digit height 1.1 r (whatever the count, the number fits the circle).
    let h = (1.1 * r).min(2.6 * r / (count * 0.75 + (count - 1.0) * 0.35).max(1.0));
    let (w, gap) = (h * 0.5, h * 0.18);
    let total = count * w + (count - 1.0) * gap;
    let mut pb = PathBuilder::new();
    for (i, d) in digits.iter().enumerate() {
        let x0 = at.x_mm - total / 2.0 + i as f64 * (w + gap);
        let y0 = at.y_mm - h / 2.0;
        let (sx, sy) = (w as f32, (h / 2.0) as f32);
        for (bit, (ax, ay, bx, by)) in SEGMENTS.iter().enumerate() {
            if DIGITS.get(*d).is_some_and(|m| m & (1 << bit) != 0) {
                pb.move_to(x0 as f32 + ax * sx, y0 as f32 + ay * sy);
                pb.line_to(x0 as f32 + bx * sx, y0 as f32 + by * sy);
            }
        }
    }
    pb.finish()
}

/// `text` with the XML special characters escaped.
fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn svg_polyline(s: &mut String, line: &[Point]) {
    for (i, p) in line.iter().filter(|p| p.is_finite()).enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(s, "{cmd}{:.3} {:.3}", p.x_mm, p.y_mm);
    }
}

/// Vertices stroked at a time in a PNG preview. tiny-skia turns a stroked path into an outline
/// (round joins and caps) and then into edges before it fills a pixel, about 900 bytes a
/// vertex: stroking a layer of 10 million vertices as one path took 7 GB (issue 10). In
/// batches of this many vertices the preview's own memory stays under 10 MB, and as every
/// join and cap is round, a polyline cut between two batches looks the same.
const STROKE_BATCH_POINTS: usize = 8192;

/// Polylines of one paint and stroke, stroked onto a pixmap [`STROKE_BATCH_POINTS`] vertices at
/// a time.
struct Batch<'a> {
    pixmap: &'a mut Pixmap,
    paint: Paint<'static>,
    stroke: &'a Stroke,
    ts: Transform,
    path: PathBuilder,
    points: usize,
}

impl<'a> Batch<'a> {
    fn new(
        pixmap: &'a mut Pixmap,
        paint: Paint<'static>,
        stroke: &'a Stroke,
        ts: Transform,
    ) -> Self {
        Self {
            pixmap,
            paint,
            stroke,
            ts,
            path: PathBuilder::with_capacity(STROKE_BATCH_POINTS + 1, STROKE_BATCH_POINTS + 1),
            points: 0,
        }
    }

    /// Adds `line`, stroking what was collected whenever a batch is full; a long polyline is
    /// cut into pieces that share their end vertices.
    fn polyline(&mut self, line: &[Point]) {
        let mut first = true;
        for p in line.iter().filter(|p| p.is_finite()) {
            let (x, y) = (p.x_mm as f32, p.y_mm as f32);
            if first {
                self.path.move_to(x, y);
                first = false;
            } else {
                self.path.line_to(x, y);
            }
            self.points += 1;
            if self.points >= STROKE_BATCH_POINTS {
                self.flush();
                // Go on from the vertex the batch ended on (a lone move is no path).
                self.path.move_to(x, y);
                self.points = 1;
            }
        }
    }

    /// Strokes what was collected.
    fn flush(&mut self) {
        let path = std::mem::replace(
            &mut self.path,
            PathBuilder::with_capacity(STROKE_BATCH_POINTS + 1, STROKE_BATCH_POINTS + 1),
        );
        self.points = 0;
        if let Some(path) = path.finish() {
            self.pixmap
                .stroke_path(&path, &self.paint, self.stroke, self.ts, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two layers (red, then blue) planned with the default settings: the drawing, its
    /// estimate, and the sheet (A4, the way round the drawing fits).
    fn planned() -> (Drawing, Estimate, Sheet) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.svg");
        std::fs::write(
            &path,
            r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="200mm" height="100mm" viewBox="0 0 200 100">
<g inkscape:groupmode="layer" inkscape:label="1 outline"><path d="M10 10 H190 V90 H10 Z" stroke="#ff0000" fill="none"/><path d="M50 50 H60" stroke="#ff0000"/></g>
<g inkscape:groupmode="layer" inkscape:label="2 detail"><path d="M100 30 L150 70" stroke="#0000ff" fill="none"/></g>
</svg>"##,
        )
        .unwrap();
        let settings = crate::settings::Settings::defaults_for(dir.path());
        let config = crate::plot::PlotConfig::from_settings(&settings);
        let p = crate::plot::prepare::prepare(&path, &config, None).unwrap();
        let e = crate::plot::estimate::estimate(
            &p.program,
            &config,
            plotty_motion::ebb::FirmwareVersion::LATEST,
        )
        .unwrap();
        let sheet = crate::paper::check(
            &settings.paper.size,
            settings.paper.orientation,
            crate::paper::drawing_extent(&p.drawing).as_ref(),
            config.axidraw.model,
        )
        .sheet;
        (p.drawing, e, sheet)
    }

    /// The value of attribute `name` in the (last) element that `tag` starts, in `svg`.
    fn attr<'a>(svg: &'a str, tag: &str, name: &str) -> &'a str {
        let at = svg.find(tag).unwrap_or_else(|| panic!("no {tag} in {svg}"));
        let rest = &svg[at + tag.rfind('<').unwrap_or(0)..];
        let rest = &rest[..rest.find('>').unwrap()];
        let key = format!(" {name}=\"");
        let v = &rest[rest
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {rest}"))
            + key.len()..];
        &v[..v.find('"').unwrap()]
    }

    #[test]
    fn svg_shows_the_sheet_markers_order_and_a_legend_with_the_estimates_figures() {
        let (drawing, e, sheet) = planned();
        let preview = Preview::from_drawing(&drawing)
            .with_sheet(sheet.clone())
            .with_legend(Legend::from_estimate(&e));
        let svg = preview.to_svg(&PreviewOptions::default());
        // The sheet: outlined and named.
        assert_eq!(attr(&svg, "<rect class=\"sheet\"", "width"), "297.000");
        assert_eq!(attr(&svg, "<rect class=\"sheet\"", "height"), "210.000");
        assert!(svg.contains(">A4 landscape (297 × 210 mm)</text>"), "{svg}");
        // Pen-up travel keeps one screen pixel at any zoom, in a ramp of colours.
        let pen_up = &svg[svg.find("<g class=\"pen-up\"").unwrap()..];
        let pen_up = &pen_up[..pen_up.find("</g>").unwrap()];
        let paths = pen_up.matches("<path ").count();
        assert!(paths >= 2, "{pen_up}");
        assert_eq!(
            pen_up
                .matches("vector-effect=\"non-scaling-stroke\"")
                .count(),
            paths
        );
        assert!(
            pen_up.contains(&format!("stroke=\"{PEN_UP_EARLY}\"")),
            "{pen_up}"
        );
        assert!(
            pen_up.contains(&format!("stroke=\"{PEN_UP_LATE}\"")),
            "{pen_up}"
        );
        // Start and end markers at the first and last pen-down points.
        let (first, last) = preview.ends().unwrap();
        let first_plotted = drawing.layers[0].strokes[0].points[0];
        assert_eq!(first, first_plotted);
        assert_eq!(
            attr(&svg, "<circle class=\"start\"", "cx"),
            format!("{:.3}", first.x_mm)
        );
        assert_eq!(
            attr(&svg, "<circle class=\"start\"", "cy"),
            format!("{:.3}", first.y_mm)
        );
        let r: f64 = attr(&svg, "<rect class=\"end\"", "width")
            .parse::<f64>()
            .unwrap()
            / 2.0;
        let end_x: f64 = attr(&svg, "<rect class=\"end\"", "x").parse().unwrap();
        assert!(
            (end_x + r - last.x_mm).abs() < 0.002,
            "{end_x} {r} {last:?}"
        );
        // A numbered marker where each layer starts, numbered from 1 in plot order.
        for (n, layer) in drawing.layers.iter().filter(|l| l.is_plotted()).enumerate() {
            let tag = format!("<g class=\"layer-start\" data-layer=\"{}\"><circle", n + 1);
            let start = layer.strokes[0].points[0];
            assert_eq!(
                attr(&svg, &tag, "cx"),
                format!("{:.3}", start.x_mm),
                "{svg}"
            );
        }
        assert!(!svg.contains("data-layer=\"3\""));
        // The legend: the estimate's own figures, for the plot and for each layer.
        let total = "<text class=\"legend-total\"";
        assert_eq!(
            attr(&svg, total, "data-time-s"),
            e.total.as_secs_f64().to_string()
        );
        assert_eq!(
            attr(&svg, total, "data-pen-down-mm"),
            e.drawn_mm.to_string()
        );
        assert_eq!(attr(&svg, total, "data-pen-up-mm"), e.travel_mm.to_string());
        assert!(
            svg.contains(&format!(
                ">planned time: {}, pen down {:.2} m, pen up {:.2} m</text>",
                Hms(e.total),
                e.drawn_mm / 1000.0,
                e.travel_mm / 1000.0
            )),
            "{svg}"
        );
        assert_eq!(e.layers.len(), 2);
        for (i, l) in e.layers.iter().enumerate() {
            let tag = format!("<text class=\"legend-layer\" data-layer=\"{}\"", i + 1);
            assert_eq!(
                attr(&svg, &tag, "data-time-s"),
                l.total.as_secs_f64().to_string()
            );
            assert_eq!(attr(&svg, &tag, "data-pen-down-mm"), l.drawn_mm.to_string());
            assert_eq!(attr(&svg, &tag, "data-pen-up-mm"), l.travel_mm.to_string());
            assert!(
                svg.contains(&format!(
                    ">{} {}: {}, pen down",
                    i + 1,
                    l.name,
                    Hms(l.total)
                )),
                "{svg}"
            );
        }
        // The legend lies under the drawing, inside the picture.
        let view: Vec<f64> = attr(&svg, "<svg", "viewBox")
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        let key_y: f64 = attr(&svg, "<text class=\"legend-key\"", "y")
            .parse()
            .unwrap();
        assert!(
            key_y > 210.0 && key_y < view[1] + view[3],
            "{key_y} {view:?}"
        );
    }

    /// Width and height of a PNG, from its header.
    fn png_size(png: &[u8]) -> (u32, u32) {
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&png[16..20]), be(&png[20..24]))
    }

    #[test]
    fn png_size_is_the_longest_side_and_defaults_to_4_px_per_mm() {
        let (drawing, _, sheet) = planned();
        let preview = Preview::from_drawing(&drawing).with_sheet(sheet);
        for size in [16, 300, 1001] {
            let png = preview
                .to_png(&PreviewOptions {
                    size_px: Some(size),
                    ..PreviewOptions::default()
                })
                .unwrap();
            let (w, h) = png_size(&png);
            assert_eq!(w.max(h), size, "{w} × {h}");
            // The sheet is landscape; the picture too.
            assert!(w > h, "{w} × {h}");
        }
        // Without --size: 4 px per mm of the widest of travel and sheet, and the margins.
        let (w, _) = png_size(&preview.to_png(&PreviewOptions::default()).unwrap());
        let widest = drawing.travel_mm.0.max(297.0);
        assert_eq!(w, ((widest + 2.0 * MARGIN_MM) * 4.0).ceil() as u32);
    }

    #[test]
    fn png_pen_up_travel_stays_visible_when_small() {
        // One long pen-up move on an empty page, at 0.2 px per mm: a 0.15 mm line would be
        // 0.03 px wide, all but invisible.
        let preview = Preview {
            travel_mm: Some((1000.0, 200.0)),
            pen_up: vec![(Point::new(0.0, 100.0), Point::new(1000.0, 100.0))],
            ..Preview::default()
        };
        let png = preview
            .to_png(&PreviewOptions {
                px_per_mm: 0.2,
                ..PreviewOptions::default()
            })
            .unwrap();
        let pixmap = Pixmap::decode_png(&png).unwrap();
        // The row of the move: (100 + margin) mm down.
        let y = ((100.0 + MARGIN_MM) * 0.2) as u32;
        let darkest = (0..pixmap.width())
            .filter_map(|x| pixmap.pixel(x, y))
            .map(|p| u32::from(p.green()))
            .min()
            .unwrap();
        // The background is 0xf4; the line's colours have green at most 0x60.
        assert!(
            darkest < 0xb0,
            "the pen-up line is too faint: green {darkest:#x}"
        );
    }

    #[test]
    fn unknown_extension_and_unwritable_path_are_errors() {
        let p = Preview::from_polylines(
            &[vec![Point::new(1.0, 1.0), Point::new(5.0, 5.0)]],
            None,
            None,
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let err = p
            .write(&dir.path().join("x.jpg"), &PreviewOptions::default())
            .unwrap_err();
        assert!(matches!(err, PreviewError::UnknownFormat { .. }));
        assert!(err.to_string().contains(".svg or .png"));
        let err = p
            .write(
                &dir.path().join("missing/dir/x.png"),
                &PreviewOptions::default(),
            )
            .unwrap_err();
        assert!(matches!(err, PreviewError::Write { .. }), "{err}");
    }

    /// Issue 10: a polyline longer than a stroke batch is drawn whole: its segment across the
    /// cut (here the only long one) is there.
    #[test]
    fn png_polylines_longer_than_a_batch_are_drawn_whole() {
        let mut line: Vec<Point> = (0..STROKE_BATCH_POINTS)
            .map(|i| Point::new(10.0 + i as f64 * 1e-4, 50.0))
            .collect();
        line.push(Point::new(190.0, 50.0));
        let p = Preview::from_polylines(&[line], None, None, None);
        let options = PreviewOptions {
            show_pen_up: false,
            ..PreviewOptions::default()
        };
        let img = tiny_skia::Pixmap::decode_png(&p.to_png(&options).unwrap()).unwrap();
        // The picture starts 5 mm left of and above the origin, 4 px a millimetre.
        let at = |x_mm: f64| {
            img.pixel(((x_mm + 5.0) * 4.0) as u32, (55.0 * 4.0) as u32)
                .unwrap()
        };
        for x_mm in [20.0, 100.0, 180.0] {
            assert!(
                at(x_mm).red() < 128,
                "no line at x = {x_mm} mm: {:?}",
                at(x_mm)
            );
        }
    }

    #[test]
    fn png_and_svg_render() {
        let lines = vec![
            vec![Point::new(10.0, 10.0), Point::new(100.0, 80.0)],
            vec![
                Point::new(20.0, 90.0),
                Point::new(150.0, 20.0),
                Point::new(30.0, 30.0),
            ],
        ];
        let colors = [Color::new(0, 0, 255), Color::new(255, 0, 0)];
        let p = Preview::from_polylines(
            &lines,
            Some(&colors),
            Some((210.0, 148.0)),
            Some((300.0, 218.0)),
        );
        assert_eq!(p.layers.len(), 2);
        assert_eq!(p.pen_up.len(), 1);
        let png = p.to_png(&PreviewOptions::default()).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let img = tiny_skia::Pixmap::decode_png(&png).unwrap();
        // Some pixel is pure-ish blue (the first line), some red.
        let px = img.pixels();
        assert!(
            px.iter()
                .any(|c| c.blue() > 200 && c.red() < 60 && c.green() < 60)
        );
        assert!(
            px.iter()
                .any(|c| c.red() > 200 && c.blue() < 60 && c.green() < 80)
        );
        let svg = p.to_svg(&PreviewOptions::default());
        assert!(svg.contains("stroke=\"#0000ff\""));
        assert!(svg.contains("M10.000 10.000L100.000 80.000"));
        // Our own SVG parses.
        usvg::Tree::from_str(&svg, &usvg::Options::default()).unwrap();
    }
}
