//! Pictures of what will be (or was) drawn, and how far two drawings are apart.
//!
//! A [`Preview`] holds pen-down polylines in layer colours, the pen-up moves between them, the
//! page and the plotter's travel, all in millimetres. It renders to SVG text (millimetre units,
//! so it prints at true size) or to PNG through tiny-skia; [`Preview::write`] picks the format
//! from the file extension. [`Preview::from_drawing`] shows a plan; [`Preview::from_polylines`]
//! shows any set of pen-down polylines (e.g. the simulator's pen trace) the same way, so the two
//! can be compared side by side.
//!
//! How far two drawings are apart ([`max_deviation`], [`hausdorff_mm`]) is geometry, not
//! rendering: it lives in [`crate::deviation`] and is re-exported here for existing callers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tiny_skia::{LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, StrokeDash, Transform};

pub use crate::deviation::{Deviation, hausdorff_mm, max_deviation};
use crate::import::{Color, Drawing, Point};

/// Largest PNG side in pixels; larger pictures are scaled down to fit.
const MAX_PNG_SIDE_PX: f64 = 8192.0;
/// Space around the drawing in the picture, mm.
const MARGIN_MM: f64 = 5.0;
/// Pen-up travel colour.
const PEN_UP_COLOR: Color = Color::new(0xe0, 0x30, 0x30);

/// Rendering settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreviewOptions {
    /// PNG resolution, pixels per millimetre (the SVG is in millimetres).
    pub px_per_mm: f64,
    /// Pen-down line width, mm.
    pub pen_width_mm: f64,
    /// Draw the pen-up moves (dashed).
    pub show_pen_up: bool,
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
        }
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
        }
    }

    /// The area shown: page, travel and everything drawn, plus a margin (mm).
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let mut b = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let mut grow = |p: Point| {
            if p.is_finite() {
                b.0 = b.0.min(p.x_mm);
                b.1 = b.1.min(p.y_mm);
                b.2 = b.2.max(p.x_mm);
                b.3 = b.3.max(p.y_mm);
            }
        };
        for (w, h) in [self.page_mm, self.travel_mm].into_iter().flatten() {
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

    /// The preview as SVG text, in millimetres.
    pub fn to_svg(&self, options: &PreviewOptions) -> String {
        let (x0, y0, x1, y1) = self.bounds();
        let (w, h) = (x1 - x0, y1 - y0);
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
        if let Some((pw, ph)) = self.page_mm {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"0\" width=\"{pw:.3}\" height=\"{ph:.3}\" fill=\"#ffffff\" \
                 stroke=\"#909090\" stroke-width=\"0.3\"/>"
            );
        }
        if let Some((tw, th)) = self.travel_mm {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"0\" width=\"{tw:.3}\" height=\"{th:.3}\" fill=\"none\" \
                 stroke=\"#4060c0\" stroke-width=\"0.3\" stroke-dasharray=\"3 2\"/>"
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
            let _ = write!(
                s,
                "<path fill=\"none\" stroke=\"{PEN_UP_COLOR}\" stroke-width=\"0.15\" \
                 stroke-dasharray=\"1 1\" d=\""
            );
            for (a, b) in &self.pen_up {
                svg_polyline(&mut s, &[*a, *b]);
            }
            let _ = writeln!(s, "\"/>");
        }
        let _ = writeln!(s, "</svg>");
        s
    }

    /// The preview as a PNG image.
    pub fn to_png(&self, options: &PreviewOptions) -> Result<Vec<u8>, PreviewError> {
        let (x0, y0, x1, y1) = self.bounds();
        let (w_mm, h_mm) = (x1 - x0, y1 - y0);
        let mut scale = if options.px_per_mm.is_finite() && options.px_per_mm > 0.0 {
            options.px_per_mm
        } else {
            4.0
        };
        let longest = w_mm.max(h_mm) * scale;
        if longest > MAX_PNG_SIDE_PX {
            scale *= MAX_PNG_SIDE_PX / longest;
        }
        let to_px = |v: f64| (v * scale).ceil().clamp(1.0, MAX_PNG_SIDE_PX) as u32;
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
        let stroke = |width_mm: f64, dash: Option<(f32, f32)>| Stroke {
            width: width_mm as f32,
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
        if let Some((pw, ph)) = self.page_mm
            && let Some(rect) = tiny_skia::Rect::from_xywh(0.0, 0.0, pw as f32, ph as f32)
        {
            pixmap.fill_rect(rect, &paint(Color::new(0xff, 0xff, 0xff)), ts, None);
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
            let s = stroke(0.15, Some((1.0, 1.0)));
            let mut batch = Batch::new(&mut pixmap, paint(PEN_UP_COLOR), &s, ts);
            for (a, b) in &self.pen_up {
                batch.polyline(&[*a, *b]);
            }
            batch.flush();
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
        }
    }
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
