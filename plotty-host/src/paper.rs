//! Paper: the sheet a job is drawn on, checked against the drawing and the plotter's travel by
//! one rule, [`check`], which `plotty plot`, the daemon's submission (`POST /api/jobs`, so
//! `plotty add` prints its answer) and the daemon's analysis all call.
//!
//! The sheet lies with its top-left corner at the carriage's home, like the drawing's page
//! (import puts the page's origin there), so "fits" means the drawing's far corner is on the
//! sheet. The orientation says which way round: portrait has the long side along y, landscape
//! along x (the long axis of every AxiDraw's travel); `auto` (the default) takes the way round
//! that fits the drawing, then the one that fits the travel. The rule:
//!
//! - a drawing entirely outside the travel is an error (nothing would be drawn; the import also
//!   refuses such a file);
//! - a drawing (or, at submission, its page) reaching beyond the travel is a warning: that part
//!   is cut away;
//! - a drawing larger than the sheet is a warning naming both sizes and a size and orientation
//!   that fits (e.g. "A4 landscape");
//! - a sheet larger than the travel is a warning: part of it cannot be reached.

use std::fmt::Write as _;

use plotty_motion::kinematics::Model;
use serde_json::{Value, json};

use crate::import::Drawing;
use crate::settings::{Orientation, PAPER_SIZES, PaperSize, Settings, parse_paper};

/// Sizes within this much count as equal (rounding of units and transforms).
const TOLERANCE_MM: f64 = 0.5;

/// How far into a submitted file the `<svg>` element is looked for.
const PAGE_SNIFF_BYTES: usize = 64 * 1024;

/// The sheet as it lies on the plotter.
#[derive(Clone, PartialEq, Debug)]
pub struct Sheet {
    /// The size's name (`A4`, `300x200`).
    pub name: String,
    /// Along x (to the right of home), mm.
    pub width_mm: f64,
    /// Along y (away from home, towards the user), mm.
    pub height_mm: f64,
    /// Which way round it lies (never [`Orientation::Auto`]).
    pub orientation: Orientation,
}

/// Where the drawing lies, mm from home.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Extent {
    /// Top-left corner.
    pub min_mm: (f64, f64),
    /// Bottom-right corner.
    pub max_mm: (f64, f64),
    /// What was measured.
    pub kind: ExtentKind,
}

/// What an [`Extent`] measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExtentKind {
    /// The strokes to draw (after import).
    Strokes,
    /// The document's page (at submission, before the file is imported).
    Page,
}

/// What [`check`] found.
#[derive(Clone, PartialEq, Debug)]
pub struct PaperCheck {
    /// The sheet, turned the way it lies.
    pub sheet: Sheet,
    /// What the user should know; the plot can go on.
    pub warnings: Vec<String>,
    /// What makes the plot pointless (nothing would be drawn).
    pub errors: Vec<String>,
}

/// A paper given as text: a size and, optionally, the way round (`A4`, `A4 landscape`,
/// `a3-portrait`, `300x200mm`); `None` when the size is unknown.
pub fn parse_choice(text: &str) -> Option<(PaperSize, Option<Orientation>)> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    for (word, orientation) in [
        ("landscape", Orientation::Landscape),
        ("portrait", Orientation::Portrait),
        ("auto", Orientation::Auto),
    ] {
        if let Some(size) = lower.strip_suffix(word) {
            let size = size.trim_end_matches([' ', '-', '_', ':', ',']);
            // The name as written, without the orientation.
            let size = &t[..size.len()];
            return parse_paper(size).map(|p| (p, Some(orientation)));
        }
    }
    parse_paper(t).map(|p| (p, None))
}

/// [`parse_choice`] with the error a user reads: what was given and what is accepted.
///
/// # Errors
/// `text` names no paper size.
pub fn parse_choice_explained(text: &str) -> Result<(PaperSize, Option<Orientation>), String> {
    parse_choice(text).ok_or_else(|| {
        format!(
            "`{}` is not a paper size: use A0–A6, Letter, Legal, Tabloid, … or WIDTHxHEIGHT \
             in mm (300x200), optionally with portrait or landscape (`A4 landscape`)",
            text.trim()
        )
    })
}

impl Sheet {
    /// `paper` turned to `orientation` (`Auto` is taken as landscape).
    pub fn new(paper: &PaperSize, orientation: Orientation) -> Self {
        let (short, long) = (
            paper.width_mm.min(paper.height_mm),
            paper.width_mm.max(paper.height_mm),
        );
        let (width_mm, height_mm, orientation) = match orientation {
            Orientation::Portrait => (short, long, Orientation::Portrait),
            Orientation::Landscape | Orientation::Auto => (long, short, Orientation::Landscape),
        };
        Self {
            name: paper.name.clone(),
            width_mm,
            height_mm,
            orientation,
        }
    }

    /// `A4 landscape (297 × 210 mm)`.
    pub fn label(&self) -> String {
        format!(
            "{} {} ({} × {} mm)",
            self.name,
            orientation_name(self.orientation),
            mm(self.width_mm),
            mm(self.height_mm)
        )
    }

    /// The sheet as JSON (`name`, `orientation`, `width_mm`, `height_mm`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "orientation": orientation_name(self.orientation),
            "width_mm": self.width_mm,
            "height_mm": self.height_mm,
        })
    }

    fn holds(&self, w: f64, h: f64) -> bool {
        w <= self.width_mm + TOLERANCE_MM && h <= self.height_mm + TOLERANCE_MM
    }
}

impl Extent {
    /// The page of a document `width_mm` × `height_mm` (its origin is at home).
    pub fn page(width_mm: f64, height_mm: f64) -> Self {
        Self {
            min_mm: (0.0, 0.0),
            max_mm: (width_mm, height_mm),
            kind: ExtentKind::Page,
        }
    }

    /// How far from home the drawing reaches (its far corner), mm.
    fn reach(&self) -> (f64, f64) {
        (self.max_mm.0.max(0.0), self.max_mm.1.max(0.0))
    }

    fn what(&self) -> &'static str {
        match self.kind {
            ExtentKind::Strokes => "the drawing reaches",
            ExtentKind::Page => "the drawing's page is",
        }
    }
}

impl PaperCheck {
    /// The findings as JSON (`sheet`, `warnings`, `errors`), as the daemon records them.
    pub fn to_json(&self) -> Value {
        json!({
            "sheet": self.sheet.to_json(),
            "warnings": self.warnings,
            "errors": self.errors,
        })
    }
}

/// Checks `paper`, laid `orientation`, against the drawing (`None` when nothing is known of it)
/// and the travel of `model`. The one rule for every path (module doc).
pub fn check(
    paper: &PaperSize,
    orientation: Orientation,
    drawing: Option<&Extent>,
    model: Model,
) -> PaperCheck {
    let travel = model.travel_mm();
    let sheet = choose_sheet(paper, orientation, drawing, travel);
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let travel_text = format!(
        "the travel of the {} ({} × {} mm)",
        model.name(),
        mm(travel.0),
        mm(travel.1)
    );
    if let Some(d) = drawing {
        let (rx, ry) = d.reach();
        let outside = d.min_mm.0 >= travel.0 - TOLERANCE_MM
            || d.min_mm.1 >= travel.1 - TOLERANCE_MM
            || d.max_mm.0 <= TOLERANCE_MM
            || d.max_mm.1 <= TOLERANCE_MM;
        if outside {
            errors.push(format!(
                "the drawing (x {}–{} mm, y {}–{} mm) lies entirely outside {travel_text}: \
                 nothing would be drawn; move it onto the page or set the right model \
                 (device.model)",
                mm(d.min_mm.0),
                mm(d.max_mm.0),
                mm(d.min_mm.1),
                mm(d.max_mm.1),
            ));
        } else if rx > travel.0 + TOLERANCE_MM || ry > travel.1 + TOLERANCE_MM {
            warnings.push(format!(
                "{} {} × {} mm, beyond {travel_text}: what lies outside it is cut away",
                d.what(),
                mm(rx),
                mm(ry)
            ));
        }
        if !sheet.holds(rx, ry) && errors.is_empty() {
            let mut w = format!(
                "{} {} × {} mm, larger than the paper, {}: ",
                d.what(),
                mm(rx),
                mm(ry),
                sheet.label()
            );
            match suggestion(paper, &sheet, rx, ry, travel) {
                Some(s) => {
                    let _ = write!(w, "{s} fits (or scale the drawing)");
                }
                None => {
                    let _ = write!(
                        w,
                        "no standard size fits; scale the drawing or use a size such as {}x{}",
                        rx.ceil(),
                        ry.ceil()
                    );
                }
            }
            warnings.push(w);
        }
    }
    if sheet.width_mm > travel.0 + TOLERANCE_MM || sheet.height_mm > travel.1 + TOLERANCE_MM {
        let mut w = format!(
            "the paper, {}, is larger than {travel_text}: only its top-left {} × {} mm can be \
             drawn on",
            sheet.label(),
            mm(sheet.width_mm.min(travel.0)),
            mm(sheet.height_mm.min(travel.1)),
        );
        let turned = Sheet::new(paper, other(sheet.orientation));
        if turned.width_mm <= travel.0 + TOLERANCE_MM && turned.height_mm <= travel.1 + TOLERANCE_MM
        {
            let _ = write!(w, " (turned, {} fits)", turned.label());
        }
        warnings.push(w);
    }
    PaperCheck {
        sheet,
        warnings,
        errors,
    }
}

/// The way round the sheet lies: as asked, or for `Auto` the first of landscape and portrait
/// that holds the drawing and then fits the travel.
fn choose_sheet(
    paper: &PaperSize,
    orientation: Orientation,
    drawing: Option<&Extent>,
    travel: (f64, f64),
) -> Sheet {
    if orientation != Orientation::Auto {
        return Sheet::new(paper, orientation);
    }
    let score = |s: &Sheet| {
        let holds = drawing.is_none_or(|d| {
            let (x, y) = d.reach();
            s.holds(x, y)
        });
        let in_travel =
            s.width_mm <= travel.0 + TOLERANCE_MM && s.height_mm <= travel.1 + TOLERANCE_MM;
        (holds, in_travel)
    };
    let landscape = Sheet::new(paper, Orientation::Landscape);
    let portrait = Sheet::new(paper, Orientation::Portrait);
    if score(&portrait) > score(&landscape) {
        portrait
    } else {
        landscape
    }
}

/// A paper that holds a drawing reaching `x` × `y` mm: the same size turned, else the smallest
/// known size (in the travel if one is), e.g. `A4 landscape`.
fn suggestion(
    paper: &PaperSize,
    sheet: &Sheet,
    x: f64,
    y: f64,
    travel: (f64, f64),
) -> Option<String> {
    let turned = Sheet::new(paper, other(sheet.orientation));
    if turned.holds(x, y) {
        return Some(format!(
            "{} {}",
            turned.name,
            orientation_name(turned.orientation)
        ));
    }
    let mut fitting: Vec<(bool, f64, Sheet)> = PAPER_SIZES
        .iter()
        .flat_map(|(name, w, h)| {
            let size = PaperSize {
                name: (*name).to_owned(),
                width_mm: *w,
                height_mm: *h,
            };
            [
                Sheet::new(&size, Orientation::Landscape),
                Sheet::new(&size, Orientation::Portrait),
            ]
        })
        .filter(|s| s.holds(x, y))
        .map(|s| {
            let outside_travel =
                s.width_mm > travel.0 + TOLERANCE_MM || s.height_mm > travel.1 + TOLERANCE_MM;
            (outside_travel, s.width_mm * s.height_mm, s)
        })
        .collect();
    fitting.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    fitting
        .first()
        .map(|(_, _, s)| format!("{} {}", s.name, orientation_name(s.orientation)))
}

/// Where the strokes of `drawing` lie (`None` when it has none).
pub fn drawing_extent(drawing: &Drawing) -> Option<Extent> {
    let mut b: Option<((f64, f64), (f64, f64))> = None;
    for p in drawing
        .layers
        .iter()
        .flat_map(|l| &l.strokes)
        .flat_map(|s| &s.points)
        .filter(|p| p.is_finite())
    {
        let ((x0, y0), (x1, y1)) = b.unwrap_or(((p.x_mm, p.y_mm), (p.x_mm, p.y_mm)));
        b = Some((
            (x0.min(p.x_mm), y0.min(p.y_mm)),
            (x1.max(p.x_mm), y1.max(p.y_mm)),
        ));
    }
    b.map(|(min_mm, max_mm)| Extent {
        min_mm,
        max_mm,
        kind: ExtentKind::Strokes,
    })
}

/// The paper a job was submitted with (its metadata's `paper` and `orientation`), else the
/// configured one.
pub fn of_job(metadata: &Value, settings: &Settings) -> (PaperSize, Orientation) {
    let (size, orientation) = metadata
        .get("paper")
        .and_then(Value::as_str)
        .and_then(parse_choice)
        .unwrap_or_else(|| (settings.paper.size.clone(), None));
    let orientation = orientation
        .or_else(|| {
            metadata
                .get("orientation")
                .and_then(Value::as_str)
                .and_then(parse_orientation)
        })
        .unwrap_or(settings.paper.orientation);
    (size, orientation)
}

/// `portrait`, `landscape` or `auto` (any case).
pub fn parse_orientation(text: &str) -> Option<Orientation> {
    match text.trim().to_ascii_lowercase().as_str() {
        "portrait" => Some(Orientation::Portrait),
        "landscape" => Some(Orientation::Landscape),
        "auto" => Some(Orientation::Auto),
        _ => None,
    }
}

/// The page size of a submitted SVG from its `<svg>` element's `width`, `height` and `viewBox`
/// (read like the import reads them: units to mm, unitless and `px` at 96 per inch, a missing
/// one from the viewBox); `None` when the file does not say (percentages, no sizes at all).
pub fn page_extent(bytes: &[u8]) -> Option<Extent> {
    let head = &bytes[..bytes.len().min(PAGE_SNIFF_BYTES)];
    let text = String::from_utf8_lossy(head);
    let start = find_svg_element(&text)?;
    let attrs = attributes(&text[start..])?;
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let view_box = get("viewBox").and_then(|v| {
        let n: Vec<f64> = v
            .split([' ', ',', '\t', '\n', '\r'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        (n.len() == 4 && n[2] > 0.0 && n[3] > 0.0).then(|| (n[2], n[3]))
    });
    let width = get("width").map(length_mm);
    let height = get("height").map(length_mm);
    let px = 25.4 / 96.0;
    let (w, h) = match (width, height, view_box) {
        (Some(w), Some(h), _) => (w?, h?),
        (Some(w), None, Some((vw, vh))) => {
            let w = w?;
            (w, w * vh / vw)
        }
        (None, Some(h), Some((vw, vh))) => {
            let h = h?;
            (h * vw / vh, h)
        }
        (None, None, Some((vw, vh))) => (vw * px, vh * px),
        _ => return None,
    };
    (w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0).then(|| Extent::page(w, h))
}

/// Byte offset of the first `<svg` element (with or without a namespace prefix).
fn find_svg_element(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find('<') {
        let at = from + i;
        let rest = &text[at + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
            .collect();
        if name == "svg" || name.ends_with(":svg") {
            return Some(at + 1 + name.len());
        }
        from = at + 1;
    }
    None
}

/// The attributes of the element whose text starts at `tag` (just after its name), up to `>`.
fn attributes(tag: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = tag;
    loop {
        rest = rest.trim_start();
        if rest.starts_with('>') || rest.starts_with("/>") {
            return Some(out);
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_owned();
        if name.contains(['>', '<']) {
            return None;
        }
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = after[1..].find(quote)?;
        out.push((name, after[1..=end].to_owned()));
        rest = &after[end + 2..];
    }
}

/// An SVG length in mm (`None` for a percentage or something unreadable).
fn length_mm(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().ok()?;
    let per = match unit.trim() {
        "" | "px" => 25.4 / 96.0,
        "mm" => 1.0,
        "cm" => 10.0,
        "in" => 25.4,
        "pt" => 25.4 / 72.0,
        "pc" => 25.4 / 6.0,
        "Q" => 0.25,
        _ => return None,
    };
    Some(value * per)
}

const fn other(o: Orientation) -> Orientation {
    match o {
        Orientation::Portrait => Orientation::Landscape,
        Orientation::Landscape | Orientation::Auto => Orientation::Portrait,
    }
}

/// The word for a way round.
pub const fn orientation_name(o: Orientation) -> &'static str {
    match o {
        Orientation::Portrait => "portrait",
        Orientation::Landscape => "landscape",
        Orientation::Auto => "auto",
    }
}

/// A length as people write it: `297`, `215.9`.
fn mm(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(name: &str) -> PaperSize {
        parse_paper(name).unwrap()
    }

    fn strokes(w: f64, h: f64) -> Extent {
        Extent {
            min_mm: (0.0, 0.0),
            max_mm: (w, h),
            kind: ExtentKind::Strokes,
        }
    }

    #[test]
    fn a_landscape_a4_drawing_on_a6_names_both_sizes_and_a4_landscape() {
        let c = check(
            &size("A6"),
            Orientation::Auto,
            Some(&strokes(297.0, 210.0)),
            Model::A4,
        );
        assert!(c.errors.is_empty(), "{c:?}");
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        let w = &c.warnings[0];
        assert!(w.contains("297 × 210 mm"), "{w}");
        assert!(w.contains("A6 landscape (148 × 105 mm)"), "{w}");
        assert!(w.contains("A4 landscape fits"), "{w}");
    }

    #[test]
    fn a_drawing_that_fits_turned_suggests_the_orientation() {
        let c = check(
            &size("A4"),
            Orientation::Portrait,
            Some(&strokes(290.0, 200.0)),
            Model::A4,
        );
        assert!(
            c.warnings.iter().any(
                |w| w.contains("A4 portrait (210 × 297 mm)") && w.contains("A4 landscape fits")
            ),
            "{c:?}"
        );
        // Auto turns it by itself, and A4 landscape is within the A4 model's travel.
        let c = check(
            &size("A4"),
            Orientation::Auto,
            Some(&strokes(290.0, 200.0)),
            Model::A4,
        );
        assert_eq!(c.sheet.orientation, Orientation::Landscape);
        assert!(c.warnings.is_empty() && c.errors.is_empty(), "{c:?}");
    }

    #[test]
    fn paper_larger_than_the_travel_is_a_warning() {
        let c = check(&size("A3"), Orientation::Landscape, None, Model::A4);
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        let w = &c.warnings[0];
        assert!(
            w.contains("A3 landscape (420 × 297 mm)")
                && w.contains("AxiDraw V3/SE A4 (300 × 217.9 mm)"),
            "{w}"
        );
        assert!(
            check(&size("A3"), Orientation::Landscape, None, Model::A3)
                .warnings
                .is_empty()
        );
        // A portrait A4 does not fit the A4 model's travel, turned it does.
        let c = check(&size("A4"), Orientation::Portrait, None, Model::A4);
        assert!(c.warnings[0].contains("turned, A4 landscape"), "{c:?}");
    }

    #[test]
    fn a_drawing_outside_the_travel_is_an_error_and_beyond_it_a_warning() {
        let outside = Extent {
            min_mm: (400.0, 10.0),
            max_mm: (450.0, 50.0),
            kind: ExtentKind::Strokes,
        };
        let c = check(&size("A3"), Orientation::Auto, Some(&outside), Model::A4);
        assert_eq!(c.errors.len(), 1, "{c:?}");
        assert!(c.errors[0].contains("entirely outside"), "{c:?}");
        let c = check(
            &size("A3"),
            Orientation::Landscape,
            Some(&Extent::page(420.0, 297.0)),
            Model::A4,
        );
        assert!(c.errors.is_empty());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("the drawing's page is 420 × 297 mm, beyond the travel")),
            "{c:?}"
        );
    }

    #[test]
    fn a_drawing_that_fits_gets_nothing() {
        let c = check(
            &size("A4"),
            Orientation::Auto,
            Some(&strokes(200.0, 150.0)),
            Model::A4,
        );
        assert_eq!((c.warnings.len(), c.errors.len()), (0, 0), "{c:?}");
        assert_eq!(c.sheet.label(), "A4 landscape (297 × 210 mm)");
    }

    #[test]
    fn nothing_standard_fits_a_huge_drawing() {
        let c = check(
            &size("A4"),
            Orientation::Auto,
            Some(&strokes(2000.0, 1500.0)),
            Model::A1,
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("no standard size fits")),
            "{c:?}"
        );
    }

    #[test]
    fn paper_text_with_an_orientation() {
        let (p, o) = parse_choice("A4 landscape").unwrap();
        assert_eq!((p.name.as_str(), o), ("A4", Some(Orientation::Landscape)));
        let (p, o) = parse_choice("letter-portrait").unwrap();
        assert_eq!(
            (p.name.as_str(), o),
            ("Letter", Some(Orientation::Portrait))
        );
        let (p, o) = parse_choice("300x200mm").unwrap();
        assert_eq!((p.width_mm, p.height_mm, o), (200.0, 300.0, None));
        assert!(parse_choice("B5 landscape").is_none());
        assert!(parse_choice("landscape").is_none());
    }

    #[test]
    fn page_sizes_of_submitted_files() {
        let page = |svg: &str| page_extent(svg.as_bytes()).map(|e| e.max_mm);
        assert_eq!(
            page(
                r#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="297mm" height="210mm" viewBox="0 0 297 210">"#
            ),
            Some((297.0, 210.0))
        );
        let (w, h) = page(r#"<svg width='8.5in' height="11in"/>"#).unwrap();
        assert!((w - 215.9).abs() < 1e-9 && (h - 279.4).abs() < 1e-9);
        let (w, h) = page(r#"<svg viewBox="0,0,96,192">"#).unwrap();
        assert!((w - 25.4).abs() < 1e-9 && (h - 50.8).abs() < 1e-9);
        let (w, h) = page(r#"<svg width="100mm" viewBox="0 0 10 5">"#).unwrap();
        assert!((w - 100.0).abs() < 1e-9 && (h - 50.0).abs() < 1e-9);
        assert_eq!(page(r#"<svg width="100%" height="100%">"#), None);
        assert_eq!(page("<svg>"), None);
        assert_eq!(page("<html>"), None);
        assert_eq!(page(r#"<svg width="1"#), None);
    }
}
