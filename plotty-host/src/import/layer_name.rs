//! AxiDraw layer control: settings written into a layer's name.
//!
//! After leading whitespace: `%` marks a documentation layer (never plotted); then `!` forces a
//! pause before the layer; then a leading integer is the layer number. Anywhere after that,
//! case-insensitive `+S<n>` sets the pen-down speed (1–100 %), `+H<n>` the pen-down height
//! (0–100 %), `+D<n>` a delay after the layer (milliseconds, at least 1). A later token
//! overrides an earlier one; a malformed or out-of-range token is ignored with a warning. A `+`
//! followed by another letter is ordinary text.

/// The layer-control settings found in a layer name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LayerControl {
    /// Leading integer.
    pub number: Option<u32>,
    /// `%`: documentation layer.
    pub documentation: bool,
    /// `!`: pause before the layer.
    pub pause_before: bool,
    /// `+S`: pen-down speed, percent.
    pub speed_pct: Option<u8>,
    /// `+H`: pen-down height, percent.
    pub height_pct: Option<u8>,
    /// `+D`: delay after the layer, ms.
    pub delay_after_ms: Option<u32>,
}

impl LayerControl {
    /// Parses `name`; the second value lists the problems found (each one ignored).
    pub fn parse(name: &str) -> (Self, Vec<String>) {
        let mut control = Self::default();
        let mut problems = Vec::new();
        let mut rest = name.trim_start();
        if let Some(r) = rest.strip_prefix('%') {
            control.documentation = true;
            rest = r.trim_start();
        }
        if let Some(r) = rest.strip_prefix('!') {
            control.pause_before = true;
            rest = r.trim_start();
        }
        let digits = leading_digits(rest);
        if !digits.is_empty() {
            match digits.parse::<u32>() {
                Ok(n) => control.number = Some(n),
                Err(_) => problems.push(format!("layer number {digits} is too large")),
            }
            rest = &rest[digits.len()..];
        }
        let mut i = 0;
        while let Some(off) = rest[i..].find('+') {
            let at = i + off;
            let after = &rest[at + 1..];
            let mut chars = after.chars();
            let letter = chars.next().map(|c| c.to_ascii_uppercase());
            i = at + 1;
            let Some(letter @ ('S' | 'H' | 'D')) = letter else {
                continue;
            };
            let value_text = leading_digits(&after[1..]);
            let token = format!("+{}{}", &after[..1], value_text);
            i = at + 2 + value_text.len();
            if value_text.is_empty() {
                problems.push(format!("{token} has no number"));
                continue;
            }
            let value = value_text.parse::<u64>().ok();
            match letter {
                'S' => match value {
                    Some(v @ 1..=100) => control.speed_pct = u8::try_from(v).ok(),
                    _ => problems.push(format!("{token}: pen-down speed must be 1 to 100 %")),
                },
                'H' => match value {
                    Some(v @ 0..=100) => control.height_pct = u8::try_from(v).ok(),
                    _ => problems.push(format!("{token}: pen-down height must be 0 to 100 %")),
                },
                _ => match value.and_then(|v| u32::try_from(v).ok()) {
                    Some(v) if v >= 1 => control.delay_after_ms = Some(v),
                    _ => problems.push(format!("{token}: delay must be 1 to {} ms", u32::MAX)),
                },
            }
        }
        (control, problems)
    }
}

fn leading_digits(s: &str) -> &str {
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(name: &str) -> LayerControl {
        let (c, problems) = LayerControl::parse(name);
        assert!(problems.is_empty(), "{name}: {problems:?}");
        c
    }

    #[test]
    fn plain_name_has_no_control() {
        assert_eq!(parse("outline"), LayerControl::default());
        assert_eq!(parse("C++ code"), LayerControl::default());
    }

    #[test]
    fn leading_number() {
        assert_eq!(parse("3 blue").number, Some(3));
        assert_eq!(parse("  12-red").number, Some(12));
        assert_eq!(parse("blue 3").number, None);
    }

    #[test]
    fn documentation_and_pause() {
        let c = parse("% notes");
        assert!(c.documentation && !c.pause_before);
        let c = parse("!2 swap pen");
        assert!(c.pause_before && !c.documentation);
        assert_eq!(c.number, Some(2));
        let c = parse("%!3 +S20 name");
        assert!(c.documentation && c.pause_before);
        assert_eq!(c.number, Some(3));
        assert_eq!(c.speed_pct, Some(20));
        // `!%` is a pause layer whose name starts with `%`, not documentation.
        let c = parse("!%x");
        assert!(c.pause_before && !c.documentation);
    }

    #[test]
    fn plus_tokens() {
        let c = parse("1 ink +s50 +H30 +D2500");
        assert_eq!(c.speed_pct, Some(50));
        assert_eq!(c.height_pct, Some(30));
        assert_eq!(c.delay_after_ms, Some(2500));
        assert_eq!(parse("+H0").height_pct, Some(0));
        assert_eq!(parse("+S100").speed_pct, Some(100));
        assert_eq!(parse("+S1").speed_pct, Some(1));
    }

    #[test]
    fn last_token_wins() {
        assert_eq!(parse("+S10 +S20").speed_pct, Some(20));
    }

    #[test]
    fn bad_values_are_reported_and_ignored() {
        let (c, p) = LayerControl::parse("+S0 +S101 +H101 +D0 +S +D99999999999");
        assert_eq!(c, LayerControl::default());
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].contains("+S0"));
        assert!(p[4].contains("has no number"));
        let (c, p) = LayerControl::parse("+S30 +S200");
        assert_eq!(
            c.speed_pct,
            Some(30),
            "an invalid later token keeps the earlier one"
        );
        assert_eq!(p.len(), 1);
        let (c, p) = LayerControl::parse("99999999999 big");
        assert_eq!(c.number, None);
        assert_eq!(p.len(), 1);
    }

    proptest! {
        #[test]
        fn never_panics(name in "\\PC{0,40}") {
            let _ = LayerControl::parse(&name);
        }

        #[test]
        fn valid_settings_round_trip(n in 0u32..1000, s in 1u8..=100, h in 0u8..=100,
                                     d in 1u32..100_000, doc: bool, pause: bool) {
            let name = format!("{}{}{n} +S{s} +h{h} +d{d} name",
                if doc { "%" } else { "" }, if pause { "!" } else { "" });
            let (c, p) = LayerControl::parse(&name);
            prop_assert!(p.is_empty());
            prop_assert_eq!(c, LayerControl {
                number: Some(n), documentation: doc, pause_before: pause,
                speed_pct: Some(s), height_pct: Some(h), delay_after_ms: Some(d),
            });
        }
    }
}
