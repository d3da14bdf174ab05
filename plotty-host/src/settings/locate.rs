//! Finds the line and column of a key path (`websocket.api_key`, `hooks.QUEUED[1].command`) in YAML
//! text, so that problems found after parsing (a missing API key, an unknown hook variable) point at
//! the line to edit, like the parser's own errors do.
//!
//! It reads block-style YAML line by line, tracking indentation, sequence items and block scalars;
//! that is what configuration files are written in. Inside flow collections (`{a: 1}`) it stops and
//! reports the deepest key it found, which is still the right line.

/// A 1-based line and column.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One step of a key path.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// An index into a sequence.
    Index(usize),
}

/// Parses `a.b[2].c` into segments. Keys may not contain `.` or `[`.
pub fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

/// The position of the deepest prefix of `path` found in `text` (`None` if not even the first
/// key is there). Keys compare case-sensitively, as YAML does.
pub fn locate(text: &str, path: &[Segment]) -> Option<Position> {
    // Frames of the current nesting: (indent column, segment, where it was found).
    let mut stack: Vec<(usize, Segment, Position)> = Vec::new();
    let mut best: Option<(usize, Position)> = None;
    let mut block_scalar_indent: Option<usize> = None;

    for (line_idx, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let content = raw[indent..].trim_end();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(owner) = block_scalar_indent {
            if indent > owner {
                continue;
            }
            block_scalar_indent = None;
        }
        if content == "---" || content == "..." {
            continue;
        }
        let mut col = indent;
        let mut rest = content;
        // Sequence items, possibly several on one line (`- - a`).
        while rest == "-" || rest.starts_with("- ") {
            while stack.last().is_some_and(|(c, _, _)| *c > col) {
                stack.pop();
            }
            let index = match stack.last() {
                Some((c, Segment::Index(i), _)) if *c == col => {
                    let next = i + 1;
                    stack.pop();
                    next
                }
                _ => 0,
            };
            let pos = Position {
                line: line_idx + 1,
                column: col + 1,
            };
            stack.push((col, Segment::Index(index), pos));
            consider(&stack, path, &mut best);
            let after = rest[1..].trim_start_matches(' ');
            col += rest.len() - after.len();
            rest = after;
        }
        if rest.is_empty() {
            continue;
        }
        let Some((key, value)) = split_key(rest) else {
            continue;
        };
        // A key closes everything at its column or deeper, including a sequence written at its
        // parent's indentation (`key:\n- item`).
        while stack.last().is_some_and(|(c, _, _)| *c >= col) {
            stack.pop();
        }
        let pos = Position {
            line: line_idx + 1,
            column: col + 1,
        };
        stack.push((col, Segment::Key(key), pos));
        consider(&stack, path, &mut best);
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            block_scalar_indent = Some(col);
        }
    }
    best.map(|(_, p)| p)
}

/// Records the stack's position if it matches a longer prefix of `path` than seen so far.
fn consider(
    stack: &[(usize, Segment, Position)],
    path: &[Segment],
    best: &mut Option<(usize, Position)>,
) {
    let depth = stack.len();
    if depth > path.len() {
        return;
    }
    let matches = stack.iter().zip(path).all(|((_, s, _), want)| s == want);
    if matches
        && best.is_none_or(|(d, _)| depth > d)
        && let Some((_, _, pos)) = stack.last()
    {
        *best = Some((depth, *pos));
    }
}

/// Splits `key: value` (or `key:`), unquoting the key. `None` for anything else.
fn split_key(s: &str) -> Option<(String, &str)> {
    let (key, after) = if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = s[1..].find(q)? + 1;
        (s[1..end].to_owned(), &s[end + 1..])
    } else {
        let mut split = None;
        let bytes = s.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'#' && i > 0 && bytes[i - 1] == b' ' {
                return None;
            }
            if *b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
                split = Some(i);
                break;
            }
        }
        let i = split?;
        (s[..i].trim_end().to_owned(), &s[i..])
    };
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# plotty
websocket:
  host: 0.0.0.0
  authenticate: true   # needs a key
  api_key: null
hooks:
  QUEUED:
    - command: echo one
    - command: |
        echo two
        api_key: not a key
      timeout: 5
  FAILED:
  - webhook: http://x/
  - script: /bin/true
device: {port: /dev/ttyACM0}
\"paper\":
  default_size: A4
";

    fn at(path: &str) -> Option<(usize, usize)> {
        locate(YAML, &parse_path(path)).map(|p| (p.line, p.column))
    }

    #[test]
    fn finds_nested_keys() {
        assert_eq!(at("websocket"), Some((2, 1)));
        assert_eq!(at("websocket.authenticate"), Some((4, 3)));
        assert_eq!(at("websocket.api_key"), Some((5, 3)));
        assert_eq!(at("paper.default_size"), Some((18, 3)));
    }

    #[test]
    fn finds_sequence_items_in_both_indent_styles() {
        assert_eq!(at("hooks.QUEUED"), Some((7, 3)));
        assert_eq!(at("hooks.QUEUED[0].command"), Some((8, 7)));
        assert_eq!(at("hooks.QUEUED[1]"), Some((9, 5)));
        assert_eq!(at("hooks.QUEUED[1].timeout"), Some((12, 7)));
        assert_eq!(at("hooks.FAILED[0].webhook"), Some((14, 5)));
        assert_eq!(at("hooks.FAILED[1].script"), Some((15, 5)));
    }

    #[test]
    fn block_scalars_and_flow_maps_do_not_confuse_it() {
        // `api_key:` inside the block scalar is text, not a key.
        assert_eq!(at("hooks.QUEUED[1].api_key"), Some((9, 5)));
        // Inside a flow map it reports the enclosing key.
        assert_eq!(at("device.port"), Some((16, 1)));
        assert_eq!(at("nothing.here"), None);
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("hooks.QUEUED[1].command"),
            vec![
                Segment::Key("hooks".into()),
                Segment::Key("QUEUED".into()),
                Segment::Index(1),
                Segment::Key("command".into()),
            ]
        );
    }
}
