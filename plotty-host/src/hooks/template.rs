//! Hook command templates: `{variable}` placeholders filled with shell-quoted values.
//!
//! A template is parsed once, when the config is loaded, so that an unknown variable or a
//! placeholder that could not be quoted safely is a config error and never a surprise at run time.
//! Values are always inserted as one single-quoted shell word, so a job named `x; rm -rf ~` stays a
//! string. That is only safe outside quotes: inside `'…'` our quotes would end the user's, and
//! inside `"…"` a value such as `$(…)` would be expanded. Placeholders inside quotes are therefore
//! refused with a message saying to drop the quotes. `{{` and `}}` are literal braces.

use std::fmt;

/// A variable a hook can use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Var {
    /// `{job_id}`.
    JobId,
    /// `{job_name}`.
    JobName,
    /// `{job_path}`: `<workspace>/jobs/<id>`.
    JobPath,
    /// `{state}`: the state just entered.
    State,
    /// `{from_state}`: the state just left (empty for a new job).
    FromState,
    /// `{reason}`: why (`user`, `interrupted`, `pen_change`, …).
    Reason,
    /// `{error}`: the error, for `FAILED` and error pauses (empty otherwise).
    Error,
    /// `{workspace}`.
    Workspace,
}

/// A parsed command template.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Part {
    Text(String),
    Var(Var),
}

/// Why a template was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` is not a known variable.
    #[error("unknown variable `{{{name}}}`; known: {}", Var::list())]
    UnknownVariable {
        /// The name used.
        name: String,
    },
    /// A `{` without its `}`.
    #[error("`{{` at character {at} is not closed; write `{{{{` for a literal brace")]
    Unclosed {
        /// Character offset, from 1.
        at: usize,
    },
    /// A `}` without a `{`.
    #[error("`}}` at character {at} has no opening `{{`; write `}}}}` for a literal brace")]
    Stray {
        /// Character offset, from 1.
        at: usize,
    },
    /// A placeholder right after a backslash, which would escape the value's opening quote.
    #[error("`\\{{{name}}}`: a placeholder cannot follow a backslash; remove the backslash")]
    Escaped {
        /// The variable.
        name: String,
    },
    /// A placeholder inside quotes, where quoting its value would not be safe.
    #[error(
        "`{{{name}}}` is inside {quote} quotes: remove the quotes around it (plotty quotes every \
         value itself, so `echo {{{name}}}` prints it safely)"
    )]
    Quoted {
        /// The variable.
        name: String,
        /// `single` or `double`.
        quote: &'static str,
    },
}

/// Values for every variable.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Values {
    /// `{job_id}`.
    pub job_id: String,
    /// `{job_name}`.
    pub job_name: String,
    /// `{job_path}`.
    pub job_path: String,
    /// `{state}`.
    pub state: String,
    /// `{from_state}`.
    pub from_state: String,
    /// `{reason}`.
    pub reason: String,
    /// `{error}`.
    pub error: String,
    /// `{workspace}`.
    pub workspace: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

impl Var {
    /// Every variable.
    pub const ALL: [Self; 8] = [
        Self::JobId,
        Self::JobName,
        Self::JobPath,
        Self::State,
        Self::FromState,
        Self::Reason,
        Self::Error,
        Self::Workspace,
    ];

    /// The name inside the braces.
    pub const fn name(self) -> &'static str {
        match self {
            Self::JobId => "job_id",
            Self::JobName => "job_name",
            Self::JobPath => "job_path",
            Self::State => "state",
            Self::FromState => "from_state",
            Self::Reason => "reason",
            Self::Error => "error",
            Self::Workspace => "workspace",
        }
    }

    /// The environment variable that carries it to commands and scripts (`PLOTTY_JOB_ID`).
    pub const fn env_name(self) -> &'static str {
        match self {
            Self::JobId => "PLOTTY_JOB_ID",
            Self::JobName => "PLOTTY_JOB_NAME",
            Self::JobPath => "PLOTTY_JOB_PATH",
            Self::State => "PLOTTY_STATE",
            Self::FromState => "PLOTTY_FROM_STATE",
            Self::Reason => "PLOTTY_REASON",
            Self::Error => "PLOTTY_ERROR",
            Self::Workspace => "PLOTTY_WORKSPACE",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    fn list() -> String {
        Self::ALL
            .iter()
            .map(|v| format!("{{{}}}", v.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Template {
    /// Parses and checks `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let chars: Vec<char> = source.chars().collect();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut quote = Quote::None;
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            let next = chars.get(i + 1).copied();
            match c {
                '{' if next == Some('{') => {
                    text.push('{');
                    i += 2;
                    continue;
                }
                '}' if next == Some('}') => {
                    text.push('}');
                    i += 2;
                    continue;
                }
                '{' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == '}')
                        .ok_or(TemplateError::Unclosed { at: i + 1 })?;
                    let name: String = chars[i + 1..i + 1 + close].iter().collect();
                    let var = Var::from_name(name.trim())
                        .ok_or_else(|| TemplateError::UnknownVariable { name: name.clone() })?;
                    match quote {
                        Quote::None => {}
                        Quote::Single | Quote::Double => {
                            return Err(TemplateError::Quoted {
                                name,
                                quote: if quote == Quote::Single {
                                    "single"
                                } else {
                                    "double"
                                },
                            });
                        }
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(var));
                    i += close + 2;
                    continue;
                }
                '}' => return Err(TemplateError::Stray { at: i + 1 }),
                _ => {}
            }
            // Track shell quoting so that placeholders inside quotes are caught.
            match (quote, c) {
                (Quote::None | Quote::Double, '\\') => {
                    if next == Some('{') && chars.get(i + 2) != Some(&'{') {
                        let name: String =
                            chars[i + 2..].iter().take_while(|&&c| c != '}').collect();
                        return Err(TemplateError::Escaped { name });
                    }
                    text.push(c);
                    if let Some(n) = next.filter(|n| *n != '{' && *n != '}') {
                        text.push(n);
                        i += 1;
                    }
                }
                (Quote::None, '\'') => {
                    quote = Quote::Single;
                    text.push(c);
                }
                (Quote::None, '"') => {
                    quote = Quote::Double;
                    text.push(c);
                }
                (Quote::Single, '\'') | (Quote::Double, '"') => {
                    quote = Quote::None;
                    text.push(c);
                }
                _ => text.push(c),
            }
            i += 1;
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The command line with every placeholder replaced by its shell-quoted value.
    pub fn render(&self, values: &Values) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&shell_quote(values.get(*v))),
            }
        }
        out
    }

    /// The variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = Var> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Text(_) => None,
        })
    }
}

impl Values {
    /// The value of `var`.
    pub fn get(&self, var: Var) -> &str {
        match var {
            Var::JobId => &self.job_id,
            Var::JobName => &self.job_name,
            Var::JobPath => &self.job_path,
            Var::State => &self.state,
            Var::FromState => &self.from_state,
            Var::Reason => &self.reason,
            Var::Error => &self.error,
            Var::Workspace => &self.workspace,
        }
    }

    /// Every variable with its environment name and value (for `PLOTTY_*`).
    pub fn env(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        Var::ALL
            .into_iter()
            .map(|v| (v.env_name(), without_nul(self.get(v))))
    }
}

/// `s` as one shell word: single-quoted, with each `'` written as `'\''`. NUL bytes, which no
/// command line can carry, become U+FFFD.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn values(name: &str) -> Values {
        Values {
            job_id: "abc123".into(),
            job_name: name.into(),
            state: "COMPLETED".into(),
            ..Values::default()
        }
    }

    #[test]
    fn renders_quoted_values() {
        let t = Template::parse("notify-send plotty {job_name} {state}").unwrap();
        assert_eq!(
            t.render(&values("a; touch /tmp/x")),
            "notify-send plotty 'a; touch /tmp/x' 'COMPLETED'"
        );
        assert_eq!(
            t.render(&values("it's")),
            "notify-send plotty 'it'\\''s' 'COMPLETED'"
        );
        let t = Template::parse("echo {{literal}} {job_id}-done").unwrap();
        assert_eq!(t.render(&values("")), "echo {literal} 'abc123'-done");
        assert_eq!(t.variables().collect::<Vec<_>>(), [Var::JobId]);
    }

    #[test]
    fn refuses_unknown_unbalanced_and_quoted_placeholders() {
        assert!(matches!(
            Template::parse("echo {job_data}"),
            Err(TemplateError::UnknownVariable { .. })
        ));
        assert!(matches!(
            Template::parse("echo {job_id"),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse("echo }"),
            Err(TemplateError::Stray { .. })
        ));
        for quoted in [
            "echo \"{job_name}\"",
            "echo '{job_name}'",
            "echo \"x $(echo {error})\"",
        ] {
            assert!(
                matches!(Template::parse(quoted), Err(TemplateError::Quoted { .. })),
                "{quoted}"
            );
        }
        // Quotes that are closed before the placeholder, and escaped quotes, are fine.
        assert!(Template::parse("echo \"done:\" {job_name} \\' {state}").is_ok());
        let e = Template::parse("echo {nope}").unwrap_err().to_string();
        assert!(e.contains("{job_id}") && e.contains("{workspace}"), "{e}");
    }

    /// Reads one POSIX shell word made of '…' runs and \-escapes; `None` if anything else
    /// (an unquoted space, `;`, `$`, …) would reach the shell.
    fn unquote_word(word: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = word.chars();
        let mut inside = false;
        while let Some(c) = chars.next() {
            match (inside, c) {
                (false, '\'') => inside = true,
                (true, '\'') => inside = false,
                (true, c) => out.push(c),
                (false, '\\') => out.push(chars.next()?),
                (false, _) => return None,
            }
        }
        (!inside).then_some(out)
    }

    #[test]
    fn a_backslash_cannot_escape_the_opening_quote() {
        assert!(matches!(
            Template::parse("echo \\{job_name}"),
            Err(TemplateError::Escaped { .. })
        ));
        assert_eq!(
            Template::parse("echo \\{{x}}")
                .unwrap()
                .render(&Values::default()),
            "echo \\{x}"
        );
    }

    proptest! {
        #[test]
        fn any_value_is_exactly_one_shell_word(s in "\\PC*") {
            let quoted = shell_quote(&s);
            prop_assert_eq!(unquote_word(&quoted), Some(s.replace('\0', "\u{FFFD}")));
        }
    }
}
