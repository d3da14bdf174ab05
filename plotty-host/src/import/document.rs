//! The raw-XML side of import: what usvg resolves away but we need. One scan of the document
//! finds the page attributes, the top-level Inkscape layers (name, id, visibility) and the text
//! elements; layers that lack a unique `id` get one written into a copy of the source so they
//! can be found in usvg's tree (usvg keeps group ids but nothing else about layers).

use std::collections::{HashMap, HashSet};

use usvg::roxmltree::{self, Document, Node};

use super::error::{ImportError, ImportWarning};
use super::{MM_PER_PX, Page, ViewBox};

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const INKSCAPE_NS: &str = "http://www.inkscape.org/namespaces/inkscape";

/// A top-level layer group as written in the file.
#[derive(Clone, Debug)]
pub(crate) struct RawLayer {
    /// Position among top-level layers.
    pub(crate) index: usize,
    /// Name (label, else id, else `Layer <n>`).
    pub(crate) name: String,
    /// The id in the file (empty if none).
    pub(crate) id: String,
    /// `display:none` or `visibility:hidden`.
    pub(crate) hidden: bool,
    /// Byte offset of the element in the source.
    start: usize,
    /// Source range of its `id` value, when that id has to be replaced.
    id_value: Option<std::ops::Range<usize>>,
}

/// A text element that should produce outlines.
#[derive(Clone, Debug)]
pub(crate) struct RawText {
    /// Its id (may be empty).
    pub(crate) id: String,
    /// Its text, whitespace collapsed.
    pub(crate) text: String,
}

/// Result of the raw scan.
pub(crate) struct Scan<'a> {
    source: &'a str,
    pub(crate) layers: Vec<RawLayer>,
    pub(crate) texts: Vec<RawText>,
    width: Option<String>,
    height: Option<String>,
    view_box: Option<ViewBox>,
    /// Source offset of each top-level element that is not a layer (for ordering content
    /// outside layers).
    pub(crate) first_outside: Option<usize>,
}

/// The source handed to usvg, and the id under which each raw layer appears in its tree.
pub(crate) struct Prepared {
    /// Source text (the original, or a copy with layer ids added).
    pub(crate) text: String,
    /// For each raw layer (same order), the id to look for in usvg's tree.
    pub(crate) layer_ids: Vec<String>,
}

/// Checks the bytes look like SVG text and returns them as `&str`.
pub(crate) fn decode(data: &[u8]) -> Result<&str, ImportError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::Empty);
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        return Err(ImportError::Compressed);
    }
    let magic: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"%PDF", "a PDF document"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"PK\x03\x04", "a ZIP archive"),
    ];
    for (m, what) in magic {
        if data.starts_with(m) {
            return Err(ImportError::NotSvg {
                what: (*what).into(),
            });
        }
    }
    let text = std::str::from_utf8(data).map_err(|e| ImportError::NotSvg {
        what: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ),
    })?;
    let first = text.trim_start().chars().next();
    if first != Some('<') {
        return Err(ImportError::NotSvg {
            what: "text that is not XML".into(),
        });
    }
    Ok(text)
}

impl<'a> Scan<'a> {
    /// Parses `source` and scans it.
    pub(crate) fn parse(source: &'a str) -> Result<Self, ImportError> {
        let doc = Document::parse_with_options(
            source,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .map_err(ImportError::from_xml)?;
        let root = doc.root_element();
        if !(root.tag_name().name() == "svg"
            && matches!(root.tag_name().namespace(), Some(SVG_NS) | None))
        {
            return Err(ImportError::NotSvg {
                what: format!("an XML document whose root is <{}>", root.tag_name().name()),
            });
        }
        let width = root.attribute("width").map(str::to_string);
        let height = root.attribute("height").map(str::to_string);
        let view_box = root.attribute("viewBox").and_then(parse_view_box);

        let mut layers = Vec::new();
        let mut first_outside = None;
        for child in root.children().filter(Node::is_element) {
            if is_layer(child) {
                let index = layers.len();
                let id = child.attribute("id").unwrap_or("").to_string();
                let name = child
                    .attribute((INKSCAPE_NS, "label"))
                    .map(str::to_string)
                    .or_else(|| (!id.is_empty()).then(|| id.clone()))
                    .unwrap_or_else(|| format!("Layer {}", index + 1));
                layers.push(RawLayer {
                    index,
                    name,
                    id,
                    hidden: is_hidden(child),
                    start: child.range().start,
                    id_value: child.attribute_node("id").map(|a| a.range_value()),
                });
            } else if first_outside.is_none() && is_drawable(child) {
                first_outside = Some(layers.len());
            }
        }

        let hidden_layers: HashSet<usize> = layers
            .iter()
            .filter(|l| l.hidden || super::LayerControl::parse(&l.name).0.documentation)
            .map(|l| l.start)
            .collect();
        let texts = doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "text")
            .filter(|n| !n.ancestors().any(|a| not_rendered(a, &hidden_layers)))
            .filter_map(|n| {
                let text = collapse_whitespace(
                    &n.descendants()
                        .filter(Node::is_text)
                        .filter_map(|t| t.text())
                        .collect::<String>(),
                );
                (!text.is_empty()).then(|| RawText {
                    id: n.attribute("id").unwrap_or("").to_string(),
                    text,
                })
            })
            .collect();

        // Find which layers need an id of their own: none, or one used by another element.
        let mut id_count: HashMap<&str, usize> = HashMap::new();
        for n in doc.descendants().filter(Node::is_element) {
            if let Some(id) = n.attribute("id") {
                *id_count.entry(id).or_default() += 1;
            }
        }
        for layer in &mut layers {
            let unique = !layer.id.is_empty() && id_count.get(layer.id.as_str()) == Some(&1);
            if unique {
                layer.id_value = None;
            }
        }
        Ok(Self {
            source,
            layers,
            texts,
            width,
            height,
            view_box,
            first_outside,
        })
    }

    /// True if the document has text to lay out (fonts are loaded only then).
    pub(crate) fn has_text(&self) -> bool {
        !self.texts.is_empty()
    }

    /// Warnings about how the page size was decided.
    pub(crate) fn page_warnings(&self) -> Vec<ImportWarning> {
        let mut w = Vec::new();
        match (&self.width, &self.height, &self.view_box) {
            (Some(wd), Some(ht), _) => {
                if wd.trim().ends_with('%') || ht.trim().ends_with('%') {
                    w.push(ImportWarning::PageSizeRelative);
                }
            }
            (None, None, Some(_)) => w.push(ImportWarning::PageSizeAssumed {
                how: "the viewBox was taken as pixels at 96 per inch; give width and height in \
                      mm"
                .into(),
            }),
            (None, None, None) => w.push(ImportWarning::PageSizeAssumed {
                how: "no viewBox either, the page was taken as 100 × 100 px at 96 per inch; give \
                      width, height and viewBox"
                    .into(),
            }),
            _ => w.push(ImportWarning::PageSizeAssumed {
                how: "the missing one follows the viewBox's aspect ratio".into(),
            }),
        }
        w
    }

    /// The page as usvg resolved it.
    pub(crate) fn page(&self, tree: &usvg::Tree) -> Page {
        let width_mm = f64::from(tree.size().width()) * MM_PER_PX;
        let height_mm = f64::from(tree.size().height()) * MM_PER_PX;
        let user_unit_mm = match self.view_box {
            Some(vb) => (width_mm / vb.width, height_mm / vb.height),
            None => (MM_PER_PX, MM_PER_PX),
        };
        Page {
            width_mm,
            height_mm,
            view_box: self.view_box,
            user_unit_mm,
        }
    }

    /// The source with a unique id on every layer that lacked one.
    pub(crate) fn prepared_source(&self) -> Prepared {
        let existing: HashSet<&str> = self.layers.iter().map(|l| l.id.as_str()).collect();
        let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        let mut layer_ids = Vec::with_capacity(self.layers.len());
        let mut counter = 0usize;
        for layer in &self.layers {
            let needs_new = layer.id.is_empty() || layer.id_value.is_some();
            if !needs_new {
                layer_ids.push(layer.id.clone());
                continue;
            }
            let new_id = loop {
                let candidate = format!("plotty-layer-{counter}");
                counter += 1;
                if !existing.contains(candidate.as_str()) && !self.source.contains(&candidate) {
                    break candidate;
                }
            };
            match &layer.id_value {
                Some(range) => edits.push((range.clone(), new_id.clone())),
                None => {
                    // Insert right after the tag name: `<g` or `<svg:g`.
                    let tag_end = self.source[layer.start..]
                        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                        .map_or(layer.start, |o| layer.start + o);
                    edits.push((tag_end..tag_end, format!(" id=\"{new_id}\"")));
                }
            }
            layer_ids.push(new_id);
        }
        let mut text = String::with_capacity(self.source.len() + 40 * edits.len());
        let mut at = 0;
        edits.sort_by_key(|(r, _)| r.start);
        for (range, insert) in edits {
            text.push_str(&self.source[at..range.start]);
            text.push_str(&insert);
            at = range.end;
        }
        text.push_str(&self.source[at..]);
        Prepared { text, layer_ids }
    }
}

fn is_layer(n: Node<'_, '_>) -> bool {
    n.tag_name().name() == "g"
        && matches!(n.tag_name().namespace(), Some(SVG_NS) | None)
        && n.attribute((INKSCAPE_NS, "groupmode")) == Some("layer")
}

/// Elements that can hold something drawn (not metadata, defs or styles).
fn is_drawable(n: Node<'_, '_>) -> bool {
    !matches!(
        n.tag_name().name(),
        "defs" | "metadata" | "title" | "desc" | "style" | "script" | "namedview"
    )
}

/// `display:none` or `visibility:hidden`, as an attribute or in `style`.
pub(crate) fn is_hidden(n: Node<'_, '_>) -> bool {
    if n.attribute("display").map(str::trim) == Some("none")
        || matches!(
            n.attribute("visibility").map(str::trim),
            Some("hidden" | "collapse")
        )
    {
        return true;
    }
    let Some(style) = n.attribute("style") else {
        return false;
    };
    style.split(';').any(|decl| {
        let mut kv = decl.splitn(2, ':');
        let key = kv.next().unwrap_or("").trim().to_ascii_lowercase();
        let value = kv
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches("!important")
            .trim()
            .to_ascii_lowercase();
        (key == "display" && value == "none")
            || (key == "visibility" && (value == "hidden" || value == "collapse"))
    })
}

/// An ancestor under which text is never drawn directly.
fn not_rendered(a: Node<'_, '_>, skipped_layers: &HashSet<usize>) -> bool {
    a.is_element()
        && (matches!(
            a.tag_name().name(),
            "defs" | "symbol" | "clipPath" | "mask" | "pattern" | "marker" | "metadata"
        ) || is_hidden(a)
            || skipped_layers.contains(&a.range().start))
}

fn parse_view_box(s: &str) -> Option<ViewBox> {
    let v: Vec<f64> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match v.as_slice() {
        [x, y, w, h] if *w > 0.0 && *h > 0.0 && v.iter().all(|f| f.is_finite()) => Some(ViewBox {
            x: *x,
            y: *y,
            width: *w,
            height: *h,
        }),
        _ => None,
    }
}

pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
