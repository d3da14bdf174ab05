//! Import tests on hand-made SVGs: units and transforms, every shape and its flattening error,
//! fills, text, layers and layer control, clipping, and every kind of bad input.

use proptest::prelude::*;

use super::*;
use crate::optimize::point_segment_distance;

const TOL: f64 = 0.01;

/// A valid 1×1 PNG.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn svg_mm(w: f64, h: f64, body: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" \
         xmlns:inkscape=\"http://www.inkscape.org/namespaces/inkscape\" \
         width=\"{w}mm\" height=\"{h}mm\" viewBox=\"0 0 {w} {h}\">{body}</svg>"
    )
}

fn import(svg: &str) -> Drawing {
    import_bytes(svg.as_bytes(), &ImportOptions::default()).unwrap()
}

fn import_err(svg: &[u8]) -> ImportError {
    import_bytes(svg, &ImportOptions::default()).unwrap_err()
}

fn all_points(d: &Drawing) -> Vec<Point> {
    d.layers
        .iter()
        .flat_map(|l| l.strokes.iter().flat_map(|s| s.points.iter().copied()))
        .collect()
}

fn close(a: Point, b: Point) -> bool {
    a.distance_to(b) < 1e-4
}

fn only_stroke(d: &Drawing) -> &Stroke {
    assert_eq!(d.layers.len(), 1);
    assert_eq!(d.layers[0].strokes.len(), 1, "{:?}", d.layers[0].strokes);
    &d.layers[0].strokes[0]
}

/// Largest distance from the polyline (its vertices and points along each segment) to the
/// analytic curve, measured by `dist`, and from the curve's samples back to the polyline.
fn max_error(line: &[Point], dist: impl Fn(Point) -> f64, curve: &[Point]) -> f64 {
    let mut worst = 0.0f64;
    for w in line.windows(2) {
        for k in 0..=8 {
            let t = f64::from(k) / 8.0;
            let p = Point::new(
                w[0].x_mm + t * (w[1].x_mm - w[0].x_mm),
                w[0].y_mm + t * (w[1].y_mm - w[0].y_mm),
            );
            worst = worst.max(dist(p));
        }
    }
    for c in curve {
        let d = line
            .windows(2)
            .map(|w| point_segment_distance(*c, w[0], w[1]))
            .fold(f64::INFINITY, f64::min);
        worst = worst.max(d);
    }
    worst
}

/// Two-sided distance between the polyline and a dense polyline of the analytic curve.
fn dense_error(line: &[Point], curve: &[Point]) -> f64 {
    super::flatten::tests::hausdorff(curve, line)
}

// ---- units, page, transforms -------------------------------------------------------------

#[test]
fn millimetre_page_maps_one_to_one() {
    let d = import(&svg_mm(
        210.0,
        297.0,
        "<line x1=\"10\" y1=\"20\" x2=\"90\" y2=\"20\" stroke=\"black\"/>",
    ));
    assert!((d.page.width_mm - 210.0).abs() < 1e-4);
    assert!((d.page.height_mm - 297.0).abs() < 1e-4);
    assert!((d.page.user_unit_mm.0 - 1.0).abs() < 1e-5);
    let s = only_stroke(&d);
    assert!(close(s.points[0], Point::new(10.0, 20.0)));
    assert!(close(s.points[1], Point::new(90.0, 20.0)));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn inches_centimetres_points_picas_and_pixels() {
    let cases = [
        ("4in", "2in", "0 0 4 2", 25.4),
        ("10cm", "5cm", "0 0 10 5", 10.0),
        ("288pt", "144pt", "0 0 4 2", 25.4),
        ("24pc", "12pc", "0 0 4 2", 25.4),
        ("384px", "192px", "0 0 4 2", 25.4),
        ("384", "192", "0 0 4 2", 25.4),
    ];
    for (w, h, vb, unit_mm) in cases {
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"{vb}\"><line x1=\"1\" y1=\"1\" x2=\"3\" y2=\"1\" stroke=\"#000\"/></svg>"
        );
        let d = import(&svg);
        let s = only_stroke(&d);
        assert!(
            close(s.points[0], Point::new(unit_mm, unit_mm)),
            "{w}: {:?}",
            s.points
        );
        assert!(
            close(s.points[1], Point::new(3.0 * unit_mm, unit_mm)),
            "{w}"
        );
        assert!((d.page.user_unit_mm.0 - unit_mm).abs() < 1e-3, "{w}");
    }
}

#[test]
fn pixels_without_viewbox_are_96_per_inch() {
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"480\">\
               <line x1=\"0\" y1=\"96\" x2=\"96\" y2=\"96\" stroke=\"red\"/></svg>";
    let d = import(svg);
    let s = only_stroke(&d);
    assert!(close(s.points[1], Point::new(25.4, 25.4)));
    assert!((d.page.width_mm - 254.0).abs() < 1e-3);
    assert_eq!(d.page.view_box, None);
}

#[test]
fn missing_size_uses_viewbox_with_warning() {
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 96 48\">\
               <line x1=\"0\" y1=\"0\" x2=\"96\" y2=\"0\" stroke=\"black\"/></svg>";
    let d = import(svg);
    assert!((d.page.width_mm - 25.4).abs() < 1e-4);
    assert!(
        matches!(d.warnings[0], ImportWarning::PageSizeAssumed { .. }),
        "{:?}",
        d.warnings
    );
    assert!(d.warnings[0].to_string().contains("96 per inch"));
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" height=\"100%\" \
               viewBox=\"0 0 96 48\"><line x1=\"0\" y1=\"0\" x2=\"96\" y2=\"0\" stroke=\"black\"/></svg>";
    let d = import(svg);
    assert_eq!(d.warnings[0], ImportWarning::PageSizeRelative);
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\">\
               <line x1=\"0\" y1=\"0\" x2=\"96\" y2=\"0\" stroke=\"black\"/></svg>";
    let d = import(svg);
    assert!(matches!(
        d.warnings[0],
        ImportWarning::PageSizeAssumed { .. }
    ));
}

#[test]
fn nested_transforms_and_scaled_groups() {
    let d = import(&svg_mm(
        200.0,
        200.0,
        "<g transform=\"translate(10,5)\"><g transform=\"scale(2)\">\
         <line x1=\"0\" y1=\"0\" x2=\"10\" y2=\"0\" stroke=\"black\"/></g></g>\
         <g transform=\"rotate(90 50 50)\"><line x1=\"50\" y1=\"50\" x2=\"60\" y2=\"50\" stroke=\"black\"/></g>\
         <svg x=\"100\" y=\"100\" width=\"50\" height=\"50\" viewBox=\"0 0 10 10\">\
         <line x1=\"0\" y1=\"0\" x2=\"10\" y2=\"10\" stroke=\"black\"/></svg>",
    ));
    let s = &d.layers[0].strokes;
    assert_eq!(s.len(), 3);
    assert!(close(s[0].points[0], Point::new(10.0, 5.0)));
    assert!(close(s[0].points[1], Point::new(30.0, 5.0)));
    assert!(close(s[1].points[0], Point::new(50.0, 50.0)));
    assert!(close(s[1].points[1], Point::new(50.0, 60.0)));
    assert!(close(s[2].points[0], Point::new(100.0, 100.0)));
    assert!(close(s[2].points[1], Point::new(150.0, 150.0)));
}

#[test]
fn viewbox_scale_applies_to_coordinates() {
    // 1 user unit = 0.5 mm.
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100mm\" height=\"50mm\" \
               viewBox=\"0 0 200 100\"><line x1=\"20\" y1=\"20\" x2=\"180\" y2=\"20\" stroke=\"black\"/></svg>";
    let d = import(svg);
    let s = only_stroke(&d);
    assert!(close(s.points[0], Point::new(10.0, 10.0)));
    assert!(close(s.points[1], Point::new(90.0, 10.0)));
    assert!((d.page.user_unit_mm.0 - 0.5).abs() < 1e-5);
}

// ---- shapes and flattening ---------------------------------------------------------------

#[test]
fn straight_shapes() {
    let d = import(&svg_mm(
        200.0,
        200.0,
        "<g stroke=\"black\" fill=\"none\">\
         <rect x=\"10\" y=\"10\" width=\"30\" height=\"20\"/>\
         <line x1=\"0\" y1=\"100\" x2=\"50\" y2=\"150\"/>\
         <polyline points=\"60,60 70,60 70,70\"/>\
         <polygon points=\"100,100 120,100 110,120\"/></g>",
    ));
    let s = &d.layers[0].strokes;
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].points.len(), 5, "rect is closed");
    assert!(close(s[0].points[0], s[0].points[4]));
    assert!(close(s[0].points[2], Point::new(40.0, 30.0)));
    assert_eq!(s[1].points.len(), 2);
    assert_eq!(s[2].points.len(), 3, "polyline stays open");
    assert_eq!(s[3].points.len(), 4, "polygon closes");
    assert!(close(s[3].points[0], s[3].points[3]));
}

#[test]
fn circle_flattened_within_tolerance() {
    for r in [0.5, 5.0, 80.0] {
        let d = import(&svg_mm(
            300.0,
            200.0,
            &format!("<circle cx=\"150\" cy=\"100\" r=\"{r}\" stroke=\"black\" fill=\"none\"/>"),
        ));
        let s = only_stroke(&d);
        let c = Point::new(150.0, 100.0);
        let curve: Vec<Point> = (0..2000)
            .map(|i| {
                let a = std::f64::consts::TAU * f64::from(i) / 2000.0;
                Point::new(c.x_mm + r * a.cos(), c.y_mm + r * a.sin())
            })
            .collect();
        let err = max_error(&s.points, |p| (p.distance_to(c) - r).abs(), &curve);
        assert!(err <= TOL + 2e-5, "r = {r}: error {err}");
        assert!(close(s.points[0], *s.points.last().unwrap()), "closed");
        // Not absurdly over-sampled: the optimal count is π / acos(1 − tol/r).
        let optimal = std::f64::consts::PI / (1.0 - TOL / r).acos();
        assert!(
            (s.points.len() as f64) < 2.0 * optimal + 8.0,
            "r = {r}: {}",
            s.points.len()
        );
    }
}

#[test]
fn ellipse_and_rounded_rect_within_tolerance() {
    let d = import(&svg_mm(
        300.0,
        200.0,
        "<ellipse cx=\"150\" cy=\"100\" rx=\"120\" ry=\"40\" stroke=\"black\" fill=\"none\"/>",
    ));
    let s = only_stroke(&d);
    let curve: Vec<Point> = (0..20000)
        .map(|i| {
            let a = std::f64::consts::TAU * f64::from(i) / 20000.0;
            Point::new(150.0 + 120.0 * a.cos(), 100.0 + 40.0 * a.sin())
        })
        .collect();
    let err = dense_error(&s.points, &curve);
    // The dense reference polyline itself is within 120·(2π/20000)²/8 ≈ 1.5e-6 mm.
    assert!(err <= TOL + 1e-5, "ellipse error {err}");

    let d = import(&svg_mm(
        300.0,
        200.0,
        "<rect x=\"10\" y=\"10\" width=\"200\" height=\"150\" rx=\"60\" stroke=\"black\" fill=\"none\"/>",
    ));
    let s = only_stroke(&d);
    // Corner arc centred (70, 70), radius 60, for points in that corner region.
    let c = Point::new(70.0, 70.0);
    for p in s.points.iter().filter(|p| p.x_mm < 70.0 && p.y_mm < 70.0) {
        assert!((p.distance_to(c) - 60.0).abs() < 1e-4, "{p:?}");
    }
    for w in s.points.windows(2) {
        let m = Point::new(0.5 * (w[0].x_mm + w[1].x_mm), 0.5 * (w[0].y_mm + w[1].y_mm));
        if m.x_mm < 69.0 && m.y_mm < 69.0 {
            assert!(60.0 - m.distance_to(c) <= TOL + 1e-5, "{m:?}");
        }
    }
}

#[test]
fn path_arcs_and_curves_within_tolerance() {
    // A semicircular arc (centre 100,100, radius 80), a cubic and a quadratic.
    let d = import(&svg_mm(
        300.0,
        200.0,
        "<g stroke=\"black\" fill=\"none\">\
         <path d=\"M 20 100 A 80 80 0 0 1 180 100\"/>\
         <path d=\"M 10 190 C 60 120 150 230 290 150\"/>\
         <path d=\"M 10 10 Q 150 120 290 10\"/></g>",
    ));
    let s = &d.layers[0].strokes;
    assert_eq!(s.len(), 3);
    let c = Point::new(100.0, 100.0);
    let arc: Vec<Point> = (0..=2000)
        .map(|i| {
            let a = std::f64::consts::PI * (1.0 + f64::from(i) / 2000.0);
            Point::new(c.x_mm + 80.0 * a.cos(), c.y_mm + 80.0 * a.sin())
        })
        .collect();
    let err = max_error(&s[0].points, |p| (p.distance_to(c) - 80.0).abs(), &arc);
    assert!(err <= TOL + 2e-5, "arc error {err}");

    let bez = |t: f64| {
        let u = 1.0 - t;
        let (a, b, cc, dd) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
        Point::new(
            a * 10.0 + b * 60.0 + cc * 150.0 + dd * 290.0,
            a * 190.0 + b * 120.0 + cc * 230.0 + dd * 150.0,
        )
    };
    let cubic: Vec<Point> = (0..=20000).map(|i| bez(f64::from(i) / 20000.0)).collect();
    let err = dense_error(&s[1].points, &cubic);
    assert!(err <= TOL + 1e-5, "cubic error {err}");

    let quad: Vec<Point> = (0..=20000)
        .map(|i| {
            let t = f64::from(i) / 20000.0;
            let u = 1.0 - t;
            Point::new(
                u * u * 10.0 + 2.0 * u * t * 150.0 + t * t * 290.0,
                u * u * 10.0 + 2.0 * u * t * 120.0 + t * t * 10.0,
            )
        })
        .collect();
    let err = dense_error(&s[2].points, &quad);
    assert!(err <= TOL + 1e-5, "quad error {err}");
}

#[test]
fn tolerance_is_configurable() {
    let svg = svg_mm(
        300.0,
        200.0,
        "<circle cx=\"150\" cy=\"100\" r=\"50\" stroke=\"black\" fill=\"none\"/>",
    );
    let count = |tol: f64| {
        let o = ImportOptions {
            tolerance_mm: tol,
            ..ImportOptions::default()
        };
        import_bytes(svg.as_bytes(), &o).unwrap().segment_count()
    };
    assert!(count(0.001) > 2 * count(0.1));
    let o = ImportOptions {
        tolerance_mm: 0.0,
        ..ImportOptions::default()
    };
    assert!(matches!(
        import_bytes(svg.as_bytes(), &o),
        Err(ImportError::InvalidOption(_))
    ));
}

// ---- fills, colours, images, text --------------------------------------------------------

#[test]
fn fills_are_counted_not_drawn() {
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<rect x=\"1\" y=\"1\" width=\"5\" height=\"5\" fill=\"red\"/>\
         <rect x=\"10\" y=\"1\" width=\"5\" height=\"5\"/>\
         <circle cx=\"50\" cy=\"50\" r=\"10\" fill=\"blue\" stroke=\"green\"/>",
    ));
    assert_eq!(d.layers[0].strokes.len(), 1);
    assert_eq!(
        d.warnings,
        vec![ImportWarning::FillsNotDrawn {
            fill_only: 2,
            filled_and_stroked: 1
        }]
    );
    let msg = d.warnings[0].to_string();
    assert!(
        msg.contains("2 filled shapes without a stroke skipped"),
        "{msg}"
    );
    assert_eq!(d.layers[0].color, Color::new(0, 128, 0));
}

#[test]
fn only_fills_is_an_error_that_says_what_to_do() {
    let err = import_err(
        svg_mm(
            100.0,
            100.0,
            "<rect x=\"1\" y=\"1\" width=\"5\" height=\"5\" fill=\"red\"/>",
        )
        .as_bytes(),
    );
    let msg = err.to_string();
    assert!(matches!(err, ImportError::NoStrokes { fill_only: 1, .. }));
    assert!(msg.contains("only filled shapes"), "{msg}");
    assert!(msg.contains("give the shapes a stroke"), "{msg}");
    let err = import_err(svg_mm(100.0, 100.0, "").as_bytes());
    assert!(
        err.to_string().contains("no visible stroked shapes"),
        "{err}"
    );
}

#[test]
fn layer_colour_is_the_longest_used_and_mixes_are_reported() {
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<line x1=\"0\" y1=\"1\" x2=\"90\" y2=\"1\" stroke=\"#123456\"/>\
         <line x1=\"0\" y1=\"2\" x2=\"10\" y2=\"2\" stroke=\"red\"/>\
         <line x1=\"0\" y1=\"3\" x2=\"10\" y2=\"3\" stroke=\"red\"/>",
    ));
    assert_eq!(d.layers[0].color, Color::new(0x12, 0x34, 0x56));
    assert_eq!(
        d.warnings,
        vec![ImportWarning::MixedColors {
            layer: "Layer 1".into(),
            colors: vec![Color::new(0x12, 0x34, 0x56), Color::new(255, 0, 0)]
        }]
    );
}

#[test]
fn invisible_shapes_and_images_are_skipped() {
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<line x1=\"0\" y1=\"1\" x2=\"90\" y2=\"1\" stroke=\"black\"/>\
         <line x1=\"0\" y1=\"2\" x2=\"90\" y2=\"2\" stroke=\"black\" visibility=\"hidden\"/>\
         <line x1=\"0\" y1=\"3\" x2=\"90\" y2=\"3\" stroke=\"black\" style=\"display:none\"/>\
         <defs><line id=\"l\" x1=\"0\" y1=\"4\" x2=\"90\" y2=\"4\" stroke=\"black\"/></defs>\
         <image x=\"0\" y=\"0\" width=\"1\" height=\"1\" href=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\"/>",
    ));
    assert_eq!(d.layers[0].strokes.len(), 1);
    assert_eq!(d.warnings, vec![ImportWarning::ImagesIgnored { count: 1 }]);
}

/// Issue 10: an `<image>` is never loaded, whatever its href names: a FIFO (which blocked the
/// import forever), `/dev/zero` (which grew the process without bound), a real image, a missing
/// file and a data URI all import at once with the same warning, so the warning tells nothing
/// about which files exist. Each import runs on a thread of its own under a watchdog.
#[test]
fn images_are_never_loaded_whatever_their_href() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let real = dir.path().join("real.png");
    std::fs::write(&real, PNG_1X1).unwrap();
    let hrefs = [
        fifo.display().to_string(),
        "/dev/zero".to_owned(),
        real.display().to_string(),
        dir.path().join("missing.png").display().to_string(),
        format!(
            "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'><image width='1' height='1' href='{}'/></svg>",
            fifo.display()
        ),
    ];
    for href in hrefs {
        let svg = svg_mm(
            100.0,
            100.0,
            &format!(
                "<line x1=\"0\" y1=\"1\" x2=\"90\" y2=\"1\" stroke=\"black\"/>\
                 <image x=\"0\" y=\"0\" width=\"10\" height=\"10\" href=\"{}\"/>",
                href.replace('<', "&lt;").replace('\'', "&apos;")
            ),
        );
        let path = dir.path().join("drawing.svg");
        std::fs::write(&path, svg).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(import_file(&path, &ImportOptions::default()).map(|d| d.warnings));
        });
        let warnings = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the import of <image href=\"{href}\"> did not end"))
            .unwrap();
        assert_eq!(
            warnings,
            vec![ImportWarning::ImagesIgnored { count: 1 }],
            "{href}"
        );
        assert!(
            warnings[0].to_string().contains("images are not plotted"),
            "{}",
            warnings[0]
        );
    }
}

#[test]
fn text_becomes_outlines_when_fonts_exist() {
    let svg = svg_mm(
        200.0,
        100.0,
        "<text x=\"10\" y=\"50\" font-size=\"20\" font-family=\"sans-serif\">Hello</text>\
         <line x1=\"0\" y1=\"90\" x2=\"10\" y2=\"90\" stroke=\"black\"/>",
    );
    let d = import(&svg);
    let has_fonts = !usvg::fontdb::Database::new().is_empty() || {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        !db.is_empty()
    };
    if has_fonts {
        assert!(d.layers[0].strokes.len() > 5, "glyph outlines expected");
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        // The glyphs sit around the baseline at x ≥ 10 mm, y ≈ 50 mm.
        let pts = all_points(&d);
        assert!(
            pts.iter()
                .any(|p| p.x_mm > 10.0 && p.x_mm < 80.0 && p.y_mm > 35.0 && p.y_mm < 51.0)
        );
    } else {
        assert!(matches!(
            d.warnings[0],
            ImportWarning::TextNotConverted { .. }
        ));
        // The outlines were not checked: `.ci/run` installs fonts-dejavu-core, so in CI this
        // is a failure.
        crate::testing::skip(
            "text_becomes_outlines_when_fonts_exist",
            "no fonts on this machine: the glyph outlines are not checked",
            crate::testing::InCi::Provides,
        );
    }
}

#[test]
fn text_without_fonts_is_reported_by_name() {
    let svg = svg_mm(
        200.0,
        100.0,
        "<text id=\"title\" x=\"10\" y=\"50\" font-size=\"20\">Hello   plotter</text>\
         <text x=\"10\" y=\"80\">anonymous</text>\
         <line x1=\"0\" y1=\"90\" x2=\"10\" y2=\"90\" stroke=\"black\"/>",
    );
    let o = ImportOptions {
        fonts: Fonts::None,
        ..ImportOptions::default()
    };
    let d = import_bytes(svg.as_bytes(), &o).unwrap();
    assert_eq!(d.layers[0].strokes.len(), 1);
    assert_eq!(
        d.warnings,
        vec![ImportWarning::TextNotConverted {
            texts: vec!["#title \"Hello plotter\"".into(), "\"anonymous\"".into()]
        }]
    );
    assert!(d.warnings[0].to_string().contains("Object to Path"));
    // Text only, no fonts: nothing to draw.
    let svg = svg_mm(200.0, 100.0, "<text x=\"10\" y=\"50\">Hello</text>");
    assert!(matches!(
        import_bytes(svg.as_bytes(), &o),
        Err(ImportError::NoStrokes { .. })
    ));
}

// ---- layers ------------------------------------------------------------------------------

fn layer(attrs: &str, body: &str) -> String {
    format!("<g inkscape:groupmode=\"layer\" {attrs}>{body}</g>")
}

const LINE: &str = "<line x1=\"10\" y1=\"10\" x2=\"20\" y2=\"10\" stroke=\"black\"/>";

#[test]
fn layers_in_document_order_with_control() {
    let body = [
        layer("id=\"a\" inkscape:label=\"1 black\"", LINE),
        layer(
            "id=\"b\" inkscape:label=\"!2 red +S30 +H40 +D500\"",
            "<line x1=\"10\" y1=\"20\" x2=\"20\" y2=\"20\" stroke=\"red\"/>",
        ),
        layer("id=\"c\" inkscape:label=\"% notes\"", LINE),
        layer("id=\"d\" inkscape:label=\"3 bad +S200\"", LINE),
        layer(
            "id=\"e\" inkscape:label=\"4 hidden\" style=\"display:none\"",
            LINE,
        ),
        layer(
            "id=\"f\" inkscape:label=\"5 hidden too\" visibility=\"hidden\"",
            LINE,
        ),
        layer(
            "id=\"g\" inkscape:label=\"6 hidden three\" style=\"fill:none; visibility : hidden\"",
            LINE,
        ),
    ]
    .concat();
    let d = import(&svg_mm(100.0, 100.0, &body));
    let names: Vec<&str> = d.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "1 black",
            "!2 red +S30 +H40 +D500",
            "% notes",
            "3 bad +S200"
        ]
    );
    let l = &d.layers[1];
    assert_eq!(
        (
            l.index,
            l.number,
            l.pause_before,
            l.speed_pct,
            l.height_pct,
            l.delay_after_ms
        ),
        (1, Some(2), true, Some(30), Some(40), Some(500))
    );
    assert_eq!(l.id, "b");
    assert_eq!(l.color, Color::new(255, 0, 0));
    assert!(d.layers[2].documentation && d.layers[2].strokes.is_empty());
    assert_eq!(d.layers[3].speed_pct, None);
    assert_eq!(d.layers[3].strokes.len(), 1);
    assert!(d.warnings.contains(&ImportWarning::BadLayerControl {
        layer: "3 bad +S200".into(),
        problem: "+S200: pen-down speed must be 1 to 100 %".into()
    }));
    for hidden in ["4 hidden", "5 hidden too", "6 hidden three"] {
        assert!(d.warnings.contains(&ImportWarning::HiddenLayer {
            layer: hidden.into()
        }));
    }
    // Layers 1 and 2, none from the documentation layer, one from layer 3.
    assert_eq!(d.stroke_count(), 3);
}

#[test]
fn layers_without_or_with_duplicate_ids_are_found() {
    let body = [
        layer("inkscape:label=\"1 first\"", LINE),
        layer(
            "id=\"dup\" inkscape:label=\"2 second\"",
            "<line x1=\"30\" y1=\"30\" x2=\"40\" y2=\"30\" stroke=\"black\"/>",
        ),
        "<g id=\"dup\"><line x1=\"50\" y1=\"50\" x2=\"60\" y2=\"50\" stroke=\"black\"/></g>".into(),
        layer(
            "",
            "<line x1=\"70\" y1=\"70\" x2=\"80\" y2=\"70\" stroke=\"black\"/>",
        ),
    ]
    .concat();
    let d = import(&svg_mm(100.0, 100.0, &body));
    let summary: Vec<(&str, usize, f64)> = d
        .layers
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.strokes.len(),
                l.strokes[0].points[0].y_mm,
            )
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!((summary[0].0, summary[0].1), ("1 first", 1));
    assert!((summary[1].2 - 30.0).abs() < 1e-4);
    assert_eq!(summary[2].0, "(outside layers)");
    assert!((summary[2].2 - 50.0).abs() < 1e-4);
    assert_eq!(summary[3].0, "Layer 3");
    assert!((summary[3].2 - 70.0).abs() < 1e-4);
    assert_eq!(d.layers[1].id, "dup");
    assert!(
        d.warnings
            .contains(&ImportWarning::OutsideLayers { strokes: 1 })
    );
}

#[test]
fn sub_layers_belong_to_their_top_level_layer() {
    let body = layer(
        "id=\"top\" inkscape:label=\"1 top\"",
        &format!(
            "{LINE}{}",
            layer(
                "id=\"sub\" inkscape:label=\"2 sub\"",
                "<line x1=\"10\" y1=\"30\" x2=\"20\" y2=\"30\" stroke=\"black\"/>"
            )
        ),
    );
    let d = import(&svg_mm(100.0, 100.0, &body));
    assert_eq!(d.layers.len(), 1);
    assert_eq!(d.layers[0].strokes.len(), 2);
}

#[test]
fn layer_selection_on_a_drawing() {
    let body = [
        layer("inkscape:label=\"1 a\"", LINE),
        layer("inkscape:label=\"2 b\"", LINE),
        layer("inkscape:label=\"3 c\"", LINE),
    ]
    .concat();
    let mut d = import(&svg_mm(100.0, 100.0, &body));
    d.select_layers(&LayerSelection::parse("1,3").unwrap())
        .unwrap();
    let names: Vec<&str> = d.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["1 a", "3 c"]);
    let err = d
        .select_layers(&LayerSelection::parse("2").unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("'2' names no layer"), "{err}");
    assert!(err.to_string().contains("1 \"1 a\", 3 \"3 c\""), "{err}");
}

// ---- clipping ----------------------------------------------------------------------------

#[test]
fn strokes_beyond_the_travel_are_split_and_reported() {
    // A4 travel is 299.974 × 217.932 mm; the page is wider.
    let (tx, _) = Model::A4.travel_mm();
    let d = import(&svg_mm(
        400.0,
        200.0,
        "<polyline points=\"250,100 350,100 350,110 250,110\" stroke=\"black\" fill=\"none\"/>\
         <line x1=\"10\" y1=\"10\" x2=\"20\" y2=\"10\" stroke=\"black\"/>",
    ));
    let s = &d.layers[0].strokes;
    assert_eq!(s.len(), 3);
    assert!(close(s[0].points[1], Point::new(tx, 100.0)));
    assert!(close(s[1].points[0], Point::new(tx, 110.0)));
    let removed = 2.0 * (350.0 - tx) + 10.0;
    match &d.warnings[..] {
        [ImportWarning::Clipped { layer, report }] => {
            assert_eq!(layer, "Layer 1");
            assert_eq!(report.strokes, 1);
            assert!(
                (report.length_mm - removed).abs() < 1e-3,
                "{}",
                report.length_mm
            );
        }
        w => panic!("{w:?}"),
    }
    // A bigger plotter takes it all.
    let o = ImportOptions {
        model: Model::A3,
        ..ImportOptions::default()
    };
    let svg = svg_mm(
        400.0,
        200.0,
        "<polyline points=\"250,100 350,100\" stroke=\"black\"/>",
    );
    let d = import_bytes(svg.as_bytes(), &o).unwrap();
    assert!(d.warnings.is_empty());
}

#[test]
fn everything_outside_the_travel_is_an_error() {
    let err = import_err(
        svg_mm(
            1000.0,
            1000.0,
            "<line x1=\"500\" y1=\"500\" x2=\"600\" y2=\"500\" stroke=\"black\"/>",
        )
        .as_bytes(),
    );
    assert!(
        err.to_string().contains("outside the plotter's travel"),
        "{err}"
    );
}

#[test]
fn negative_coordinates_are_clipped_at_home() {
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<line x1=\"-10\" y1=\"10\" x2=\"10\" y2=\"10\" stroke=\"black\"/>",
    ));
    let s = only_stroke(&d);
    assert!(close(s.points[0], Point::new(0.0, 10.0)));
}

// ---- bad input ---------------------------------------------------------------------------

#[test]
fn empty_input() {
    assert!(matches!(import_err(b""), ImportError::Empty));
    assert!(matches!(import_err(b"  \n\t"), ImportError::Empty));
    assert!(import_err(b"").to_string().contains("empty"));
}

#[test]
fn not_an_svg() {
    let err = import_err(b"\x89PNG\r\n\x1a\n\0\0\0");
    assert!(err.to_string().contains("a PNG image"), "{err}");
    let err = import_err(b"hello world");
    assert!(err.to_string().contains("not an SVG"), "{err}");
    let err = import_err(b"<html><body/></html>");
    assert!(err.to_string().contains("root is <html>"), "{err}");
    let err = import_err(&[0x3c, 0xff, 0xfe, 0x00]);
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    assert!(matches!(
        import_err(&[0x1f, 0x8b, 8, 0]),
        ImportError::Compressed
    ));
}

#[test]
fn broken_xml_names_line_and_column() {
    let err = import_err(b"<svg xmlns=\"http://www.w3.org/2000/svg\">\n  <line x1=\"0\" </svg>");
    match &err {
        ImportError::Xml { line, column, .. } => {
            assert_eq!(*line, 2);
            assert!(*column > 1);
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("line 2, column"), "{err}");
    let err =
        import_err(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><g inkscape:label=\"x\"/></svg>");
    assert!(
        matches!(err, ImportError::Xml { .. }),
        "undeclared prefix: {err}"
    );
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.svg");
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: 500 MB of holes, no disk used.
    f.set_len(500_000_000).unwrap();
    let err = import_file(&path, &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::TooLarge {
                size: 500_000_000,
                limit: DEFAULT_MAX_FILE_BYTES
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("over the limit"));
    let small = ImportOptions {
        max_file_bytes: 10,
        ..ImportOptions::default()
    };
    let err = import_bytes(svg_mm(10.0, 10.0, LINE).as_bytes(), &small).unwrap_err();
    assert!(matches!(err, ImportError::TooLarge { .. }));
}

#[test]
fn missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = import_file(&dir.path().join("nope.svg"), &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }));
    assert!(err.to_string().contains("nope.svg"));
    let err = import_file(dir.path(), &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::IsDirectory { .. }), "{err}");
}

#[test]
fn absurd_coordinates_are_skipped_with_a_warning() {
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<line x1=\"0\" y1=\"0\" x2=\"1e30\" y2=\"0\" stroke=\"black\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"1e39\" y2=\"0\" stroke=\"black\"/>\
         <path d=\"M 0 0 C 1e20 1e20 -1e20 1e20 50 50\" stroke=\"black\"/>\
         <line x1=\"10\" y1=\"10\" x2=\"20\" y2=\"10\" stroke=\"black\"/>",
    ));
    assert_eq!(d.layers[0].strokes.len(), 1);
    assert!(
        d.warnings
            .iter()
            .any(|w| matches!(w, ImportWarning::AbsurdCoordinates { paths } if *paths >= 2)),
        "{:?}",
        d.warnings
    );
    // Far but sane coordinates are clipped cheaply, not flattened finely.
    let d = import(&svg_mm(
        100.0,
        100.0,
        "<path d=\"M -90000 0 C 90000 90000 -90000 90000 50 50\" stroke=\"black\"/>",
    ));
    assert!(d.segment_count() < 100_000, "{}", d.segment_count());
}

#[test]
fn zero_page_size_is_an_error() {
    let err = import_err(
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"0\" height=\"10\"><line x2=\"5\" stroke=\"black\"/></svg>",
    );
    assert!(matches!(err, ImportError::InvalidSize), "{err}");
}

#[test]
fn segment_limit_is_enforced() {
    let o = ImportOptions {
        max_segments: 10,
        ..ImportOptions::default()
    };
    let svg = svg_mm(
        200.0,
        200.0,
        "<circle cx=\"100\" cy=\"100\" r=\"50\" stroke=\"black\"/>",
    );
    assert!(matches!(
        import_bytes(svg.as_bytes(), &o),
        Err(ImportError::TooManySegments { limit: 10 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = import_bytes(&data, &ImportOptions::default());
    }

    #[test]
    fn arbitrary_svg_like_text_never_panics(
        body in "(<(g|path|rect|circle|text|line|use|svg)( [a-z:]{1,10}=\"[-0-9.e a-zA-Z#%(),]{0,20}\"){0,4}/?>){0,6}"
    ) {
        let _ = import_bytes(svg_mm(100.0, 100.0, &body).as_bytes(), &ImportOptions::default());
    }

    #[test]
    fn random_paths_stay_inside_the_travel(
        pts in prop::collection::vec((-400.0f64..700.0, -400.0f64..700.0), 2..20),
    ) {
        let d: String = pts.iter().enumerate()
            .map(|(i, (x, y))| format!("{}{x} {y} ", if i == 0 { "M" } else { "L" }))
            .collect();
        let svg = svg_mm(300.0, 200.0, &format!("<path d=\"{d}\" stroke=\"black\"/>"));
        if let Ok(drawing) = import_bytes(svg.as_bytes(), &ImportOptions::default()) {
            let (tx, ty) = drawing.travel_mm;
            for p in all_points(&drawing) {
                prop_assert!(p.x_mm >= 0.0 && p.x_mm <= tx && p.y_mm >= 0.0 && p.y_mm <= ty);
            }
        }
    }
}

/// The README's quick-start drawings import cleanly onto an A4 AxiDraw, optimise and render.
/// Set `PLOTTY_PREVIEW_DIR` to keep the rendered previews.
#[test]
fn example_drawings_import_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for path in files {
        let mut d = import_file(&path, &ImportOptions::default()).unwrap();
        assert!(
            d.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            d.warnings
        );
        assert!(
            d.layers.iter().all(|l| !l.pause_before),
            "no pauses in quick-start drawings"
        );
        let segments = d.segment_count();
        assert!(
            (200..=5000).contains(&segments),
            "{}: {segments}",
            path.display()
        );
        let report =
            crate::optimize::optimize(&mut d, &crate::optimize::OptimizeOptions::default());
        assert!(report.after.distance_mm <= report.before.distance_mm);
        let preview = crate::preview::Preview::from_drawing(&d);
        let png = preview
            .to_png(&crate::preview::PreviewOptions::default())
            .unwrap();
        assert!(png.len() > 1000);
        if let Some(out) = std::env::var_os("PLOTTY_PREVIEW_DIR") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let out = std::path::Path::new(&out).join(format!("{name}.png"));
            preview
                .write(&out, &crate::preview::PreviewOptions::default())
                .unwrap();
        }
    }
}
