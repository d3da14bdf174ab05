//! usvg's tree → layers of strokes in plotter millimetres: the tree walk that files every
//! visible stroked path under its layer, transformed, flattened and clipped; fills, images,
//! clip paths and unconverted text are counted for the warnings.

use std::collections::HashMap;

use usvg::tiny_skia_path::PathSegment;

use super::clip::Clip;
use super::document::{Scan, collapse_whitespace};
use super::error::{ClipReport, ImportError, ImportWarning};
use super::flatten::Flattener;
use super::{Color, ImportOptions, Layer, LayerControl, MM_PER_PX, Point, Stroke};

/// Coordinates farther than this from the origin (1 km) are taken as broken.
const ABSURD_MM: f64 = 1e6;

/// Where content goes: a top-level layer (by raw index) or outside all layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bucket {
    Outside,
    Layer(usize),
}

#[derive(Default)]
struct Accum {
    strokes: Vec<Stroke>,
    clip: ClipReport,
    color_length: HashMap<Color, f64>,
}

struct SeenText {
    id: String,
    text: String,
    has_paths: bool,
}

struct Walker<'a> {
    options: &'a ImportOptions,
    /// The page width, when the page is turned a quarter (`auto_rotate`).
    quarter_turn: Option<f64>,
    flattener: Flattener,
    clip: Clip,
    layer_of_id: HashMap<&'a str, usize>,
    skipped: Vec<bool>,
    layers: Vec<Accum>,
    outside: Accum,
    fill_only: usize,
    filled_and_stroked: usize,
    images: usize,
    clip_paths: usize,
    absurd: usize,
    texts: Vec<SeenText>,
    segments: usize,
    line: Vec<Point>,
    mapped: Vec<Point>,
}

/// Walks `tree` into layers (document order), adding warnings.
pub(crate) fn convert(
    tree: &usvg::Tree,
    scan: &Scan<'_>,
    layer_ids: &[String],
    options: &ImportOptions,
    quarter_turn: Option<f64>,
    warnings: &mut Vec<ImportWarning>,
) -> Result<Vec<Layer>, ImportError> {
    let (tx, ty) = options.model.travel_mm();
    let max = Point::new(tx, ty);
    let controls: Vec<(LayerControl, Vec<String>)> = scan
        .layers
        .iter()
        .map(|l| LayerControl::parse(&l.name))
        .collect();
    let skipped: Vec<bool> = scan
        .layers
        .iter()
        .zip(&controls)
        .map(|(l, (c, _))| l.hidden || c.documentation)
        .collect();
    let mut walker = Walker {
        options,
        quarter_turn,
        flattener: Flattener::new(options.tolerance_mm, max),
        clip: Clip::new(max),
        layer_of_id: layer_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect(),
        skipped,
        layers: scan.layers.iter().map(|_| Accum::default()).collect(),
        outside: Accum::default(),
        fill_only: 0,
        filled_and_stroked: 0,
        images: 0,
        clip_paths: 0,
        absurd: 0,
        texts: Vec::new(),
        segments: 0,
        line: Vec::new(),
        mapped: Vec::new(),
    };
    walker.group(tree.root(), Bucket::Outside, false)?;

    // Warnings in a stable order: content problems first, then per layer.
    if walker.fill_only + walker.filled_and_stroked > 0 {
        warnings.push(ImportWarning::FillsNotDrawn {
            fill_only: walker.fill_only,
            filled_and_stroked: walker.filled_and_stroked,
        });
    }
    let unconverted = unconverted_texts(scan, &walker.texts);
    if !unconverted.is_empty() {
        warnings.push(ImportWarning::TextNotConverted { texts: unconverted });
    }
    if walker.images > 0 {
        warnings.push(ImportWarning::ImagesIgnored {
            count: walker.images,
        });
    }
    if walker.clip_paths > 0 {
        warnings.push(ImportWarning::ClipPathsIgnored {
            count: walker.clip_paths,
        });
    }
    if walker.absurd > 0 {
        warnings.push(ImportWarning::AbsurdCoordinates {
            paths: walker.absurd,
        });
    }

    let mut layers = Vec::new();
    let outside = std::mem::take(&mut walker.outside);
    let has_layers = !scan.layers.is_empty();
    let mut outside =
        (!outside.strokes.is_empty() || !has_layers || outside.clip.strokes > 0).then_some(outside);
    let outside_at = if has_layers {
        scan.first_outside.unwrap_or(scan.layers.len())
    } else {
        0
    };
    let mut clipped_total = 0.0;
    for (i, raw) in scan.layers.iter().enumerate() {
        if i == outside_at
            && let Some(acc) = outside.take()
        {
            clipped_total += acc.clip.length_mm;
            layers.push(outside_layer(acc, i, warnings));
        }
        if raw.hidden {
            warnings.push(ImportWarning::HiddenLayer {
                layer: raw.name.clone(),
            });
            continue;
        }
        let (control, problems) = &controls[i];
        for problem in problems {
            warnings.push(ImportWarning::BadLayerControl {
                layer: raw.name.clone(),
                problem: problem.clone(),
            });
        }
        let acc = std::mem::take(&mut walker.layers[i]);
        clipped_total += acc.clip.length_mm;
        let (color, colors) = layer_color(&acc.color_length);
        if colors.len() > 1 {
            warnings.push(ImportWarning::MixedColors {
                layer: raw.name.clone(),
                colors,
            });
        }
        if acc.clip.strokes > 0 {
            warnings.push(ImportWarning::Clipped {
                layer: raw.name.clone(),
                report: acc.clip.clone(),
            });
        }
        layers.push(Layer {
            index: raw.index,
            number: control.number,
            name: raw.name.clone(),
            id: raw.id.clone(),
            color,
            pause_before: control.pause_before,
            speed_pct: control.speed_pct,
            height_pct: control.height_pct,
            delay_after_ms: control.delay_after_ms,
            documentation: control.documentation,
            strokes: if control.documentation {
                Vec::new()
            } else {
                acc.strokes
            },
        });
    }
    if let Some(acc) = outside.take() {
        clipped_total += acc.clip.length_mm;
        let at = scan.layers.len();
        let layer = if has_layers {
            outside_layer(acc, at, warnings)
        } else {
            whole_document_layer(acc, warnings)
        };
        layers.push(layer);
    }
    if layers.iter().all(|l| !l.is_plotted()) {
        return Err(ImportError::NoStrokes {
            fill_only: walker.fill_only,
            outside_travel_mm: clipped_total,
        });
    }
    Ok(layers)
}

impl Walker<'_> {
    fn group(
        &mut self,
        group: &usvg::Group,
        bucket: Bucket,
        text_outline: bool,
    ) -> Result<(), ImportError> {
        for child in group.children() {
            match child {
                usvg::Node::Group(g) => {
                    let mut b = bucket;
                    if b == Bucket::Outside
                        && let Some(&i) = self.layer_of_id.get(g.id())
                    {
                        if self.skipped.get(i).copied().unwrap_or(true) {
                            continue;
                        }
                        b = Bucket::Layer(i);
                    }
                    if g.clip_path().is_some() || g.mask().is_some() {
                        self.clip_paths += 1;
                    }
                    self.group(g, b, text_outline)?;
                }
                usvg::Node::Path(p) => self.path(p, bucket, text_outline)?,
                usvg::Node::Image(_) => self.images += 1,
                usvg::Node::Text(t) => {
                    let text = collapse_whitespace(
                        &t.chunks().iter().map(|c| c.text()).collect::<String>(),
                    );
                    self.texts.push(SeenText {
                        id: t.id().to_string(),
                        text,
                        has_paths: has_paths(t.flattened()),
                    });
                    self.group(t.flattened(), bucket, true)?;
                }
            }
        }
        Ok(())
    }

    fn path(
        &mut self,
        path: &usvg::Path,
        bucket: Bucket,
        text_outline: bool,
    ) -> Result<(), ImportError> {
        if !path.is_visible() {
            return Ok(());
        }
        // A fill only paints something if the path encloses an area (a `line` has a default
        // fill that paints nothing).
        let has_fill = path.fill().is_some() && encloses_area(path.data());
        let paint = match (path.stroke(), path.fill()) {
            (Some(s), _) => {
                if has_fill && !text_outline {
                    self.filled_and_stroked += 1;
                }
                s.paint()
            }
            (None, Some(f)) if text_outline => f.paint(),
            (None, Some(_)) => {
                if has_fill {
                    self.fill_only += 1;
                }
                return Ok(());
            }
            (None, None) => return Ok(()),
        };
        let color = paint_color(paint);

        // Map every control point to plotter millimetres once, and reject broken geometry.
        let ts = path.abs_transform();
        let m = [ts.sx, ts.kx, ts.tx, ts.ky, ts.sy, ts.ty].map(|v| f64::from(v) * MM_PER_PX);
        self.mapped.clear();
        for p in path.data().points() {
            let (x, y) = (f64::from(p.x), f64::from(p.y));
            let mut q = Point::new(m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]);
            if let Some(width) = self.quarter_turn {
                q = Point::new(q.y_mm, width - q.x_mm);
            }
            if !(q.x_mm.abs() <= ABSURD_MM && q.y_mm.abs() <= ABSURD_MM) {
                self.absurd += 1;
                return Ok(());
            }
            self.mapped.push(q);
        }

        let acc = match bucket {
            Bucket::Outside => &mut self.outside,
            Bucket::Layer(i) => match self.layers.get_mut(i) {
                Some(acc) => acc,
                None => return Ok(()),
            },
        };
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let mut next = 0usize;
        let mut take = |n: usize| {
            let s = self.mapped.get(next..next + n);
            next += n;
            s
        };
        let mut drawn = 0.0;
        let mut subpath_start = None;
        for seg in path.data().segments() {
            match seg {
                PathSegment::MoveTo(_) => {
                    drawn += finish(&mut line, &self.clip, acc, &mut self.segments);
                    if let Some(&[p]) = take(1) {
                        line.push(p);
                        subpath_start = Some(p);
                    }
                }
                PathSegment::LineTo(_) => {
                    if let Some(&[p]) = take(1) {
                        push_distinct(&mut line, p);
                    }
                }
                PathSegment::QuadTo(..) => {
                    if let (Some(&[c, p]), Some(&last)) = (take(2), line.last()) {
                        self.flattener.quad(last, c, p, &mut line);
                    }
                }
                PathSegment::CubicTo(..) => {
                    if let (Some(&[c1, c2, p]), Some(&last)) = (take(3), line.last()) {
                        self.flattener.cubic(last, c1, c2, p, &mut line);
                    }
                }
                PathSegment::Close => {
                    if let Some(s) = subpath_start {
                        push_distinct(&mut line, s);
                    }
                    drawn += finish(&mut line, &self.clip, acc, &mut self.segments);
                    if let Some(s) = subpath_start {
                        line.push(s);
                    }
                }
            }
            if self.segments + line.len() > self.options.max_segments {
                return Err(ImportError::TooManySegments {
                    limit: self.options.max_segments,
                });
            }
        }
        drawn += finish(&mut line, &self.clip, acc, &mut self.segments);
        *acc.color_length.entry(color).or_default() += drawn;
        self.line = line;
        if self.segments > self.options.max_segments {
            return Err(ImportError::TooManySegments {
                limit: self.options.max_segments,
            });
        }
        Ok(())
    }
}

/// Clips the finished polyline into `acc`; returns its length.
fn finish(line: &mut Vec<Point>, clip: &Clip, acc: &mut Accum, segments: &mut usize) -> f64 {
    let mut length = 0.0;
    if line.len() >= 2 {
        let before = acc.strokes.len();
        clip.clip(line, &mut acc.strokes, &mut acc.clip);
        for s in &acc.strokes[before..] {
            *segments += s.segment_count();
        }
        length = line.windows(2).map(|w| w[0].distance_to(w[1])).sum();
    }
    line.clear();
    length
}

/// True if some subpath's control polygon has a non-zero area (a fill would paint something).
fn encloses_area(path: &usvg::tiny_skia_path::Path) -> bool {
    let mut area = 0.0f64;
    let mut scale = 0.0f64;
    let mut first: Option<(f64, f64)> = None;
    let mut prev = (0.0, 0.0);
    let close = |first: Option<(f64, f64)>, prev: (f64, f64), area: &mut f64| {
        if let Some(f) = first {
            *area += prev.0 * f.1 - f.0 * prev.1;
        }
    };
    for seg in path.segments() {
        let pts: &[usvg::tiny_skia_path::Point] = match &seg {
            PathSegment::MoveTo(p) => {
                close(first, prev, &mut area);
                first = Some((f64::from(p.x), f64::from(p.y)));
                prev = (f64::from(p.x), f64::from(p.y));
                continue;
            }
            PathSegment::LineTo(p) => std::slice::from_ref(p),
            PathSegment::QuadTo(a, b) => &[*a, *b],
            PathSegment::CubicTo(a, b, c) => &[*a, *b, *c],
            PathSegment::Close => continue,
        };
        for p in pts {
            let q = (f64::from(p.x), f64::from(p.y));
            area += prev.0 * q.1 - q.0 * prev.1;
            scale = scale.max(q.0.abs()).max(q.1.abs());
            prev = q;
        }
    }
    close(first, prev, &mut area);
    area.abs() > 1e-9 * scale * scale
}

fn push_distinct(line: &mut Vec<Point>, p: Point) {
    if line.last() != Some(&p) {
        line.push(p);
    }
}

fn has_paths(g: &usvg::Group) -> bool {
    g.children().iter().any(|c| match c {
        usvg::Node::Path(_) => true,
        usvg::Node::Group(g) => has_paths(g),
        usvg::Node::Text(t) => has_paths(t.flattened()),
        usvg::Node::Image(_) => false,
    })
}

fn paint_color(paint: &usvg::Paint) -> Color {
    let c = match paint {
        usvg::Paint::Color(c) => Some(*c),
        usvg::Paint::LinearGradient(g) => g.stops().first().map(|s| s.color()),
        usvg::Paint::RadialGradient(g) => g.stops().first().map(|s| s.color()),
        usvg::Paint::Pattern(_) => None,
    };
    c.map_or(Color::BLACK, |c| Color::new(c.red, c.green, c.blue))
}

/// The colour with the longest drawn length, and all colours by length (longest first).
fn layer_color(lengths: &HashMap<Color, f64>) -> (Color, Vec<Color>) {
    let mut all: Vec<(Color, f64)> = lengths.iter().map(|(c, l)| (*c, *l)).collect();
    all.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| (a.0.r, a.0.g, a.0.b).cmp(&(b.0.r, b.0.g, b.0.b)))
    });
    let colors: Vec<Color> = all.iter().map(|(c, _)| *c).collect();
    (colors.first().copied().unwrap_or(Color::BLACK), colors)
}

fn outside_layer(acc: Accum, index: usize, warnings: &mut Vec<ImportWarning>) -> Layer {
    let name = "(outside layers)".to_string();
    if !acc.strokes.is_empty() {
        warnings.push(ImportWarning::OutsideLayers {
            strokes: acc.strokes.len(),
        });
    }
    plain_layer(acc, index, name, warnings)
}

fn whole_document_layer(acc: Accum, warnings: &mut Vec<ImportWarning>) -> Layer {
    plain_layer(acc, 0, "Layer 1".to_string(), warnings)
}

fn plain_layer(acc: Accum, index: usize, name: String, warnings: &mut Vec<ImportWarning>) -> Layer {
    let (color, colors) = layer_color(&acc.color_length);
    if colors.len() > 1 {
        warnings.push(ImportWarning::MixedColors {
            layer: name.clone(),
            colors,
        });
    }
    if acc.clip.strokes > 0 {
        warnings.push(ImportWarning::Clipped {
            layer: name.clone(),
            report: acc.clip.clone(),
        });
    }
    Layer {
        index,
        number: None,
        name,
        id: String::new(),
        color,
        pause_before: false,
        speed_pct: None,
        height_pct: None,
        delay_after_ms: None,
        documentation: false,
        strokes: acc.strokes,
    }
}

/// Text elements of the file that usvg dropped or laid out into nothing.
fn unconverted_texts(scan: &Scan<'_>, seen: &[SeenText]) -> Vec<String> {
    scan.texts
        .iter()
        .filter(|raw| {
            let found = seen.iter().find(|s| {
                if raw.id.is_empty() {
                    s.text == raw.text
                } else {
                    s.id == raw.id
                }
            });
            !found.is_some_and(|s| s.has_paths)
        })
        .map(|raw| {
            let mut snippet: String = raw.text.chars().take(30).collect();
            if raw.text.chars().count() > 30 {
                snippet.push('…');
            }
            if raw.id.is_empty() {
                format!("\"{snippet}\"")
            } else {
                format!("#{} \"{snippet}\"", raw.id)
            }
        })
        .collect()
}
