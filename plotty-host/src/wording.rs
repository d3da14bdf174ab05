//! English wording of counts in messages: "1 stroke", "2 strokes", never "1 strokes".

use std::fmt;

/// `n` and `noun`, the noun in the plural unless `n` is 1 (nouns that add an "s").
pub fn counted(n: impl Into<u64>, noun: &str) -> Counted<'_> {
    Counted { n: n.into(), noun }
}

/// A count and its noun; see [`counted`].
#[derive(Clone, Copy, Debug)]
pub struct Counted<'a> {
    n: u64,
    noun: &'a str,
}

impl fmt::Display for Counted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.n == 1 { "" } else { "s" };
        write!(f, "{} {}{s}", self.n, self.noun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(counted(1u32, "stroke").to_string(), "1 stroke");
        assert_eq!(counted(0u32, "lift").to_string(), "0 lifts");
        assert_eq!(counted(2u64, "raise").to_string(), "2 raises");
    }
}
