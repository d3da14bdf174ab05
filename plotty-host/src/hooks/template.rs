//! Hook values and argument templates.
//!
//! Every hook gets the values of one transition ([`Values`]) as `PLOTTY_*` environment variables
//! ([`Var::env_name`]). A `command` given as a list ([`Argv`]) may also name them with `{variable}`
//! placeholders: each list item is substituted on its own and becomes exactly one argument of a
//! program run without a shell, so no character of a job name is ever read as syntax. The program
//! (the first item) may not contain a placeholder, so a job name never chooses what runs. `{{` and
//! `}}` are literal braces. A list is parsed once, when the config is loaded, so an unknown variable
//! is a config error and never a surprise at run time.
//!
//! Shell strings get no substitution at all; see [`super::shell`].

use std::fmt;

/// A variable a hook can use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Var {
    /// `{job_id}`, `$PLOTTY_JOB_ID`.
    JobId,
    /// `{job_name}`, `$PLOTTY_JOB_NAME`.
    JobName,
    /// `{job_path}`, `$PLOTTY_JOB_PATH`: `<workspace>/jobs/<id>`.
    JobPath,
    /// `{state}`, `$PLOTTY_STATE`: the state just entered.
    State,
    /// `{from_state}`, `$PLOTTY_FROM_STATE`: the state just left (empty for a new job).
    FromState,
    /// `{reason}`, `$PLOTTY_REASON`: why (`user`, `interrupted`, `pen_change`, …).
    Reason,
    /// `{error}`, `$PLOTTY_ERROR`: the error, for `FAILED` and error pauses (empty otherwise).
    Error,
    /// `{workspace}`, `$PLOTTY_WORKSPACE`.
    Workspace,
}

/// A parsed argument list: the program, then argument templates.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Argv {
    source: Vec<String>,
    items: Vec<Vec<Part>>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Part {
    Text(String),
    Var(Var),
}

/// Why an argument list was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TemplateError {
    /// `command: []`.
    #[error("the list is empty: give the program first, then its arguments")]
    Empty,
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
    /// A placeholder in the program name, which would let a job name choose what runs.
    #[error(
        "the program `{program}` contains a placeholder: the first item names what runs and must \
         be fixed text; put values in the items after it"
    )]
    Program {
        /// The first item as written.
        program: String,
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

    /// The variable called `name` (as written inside the braces).
    pub fn from_name(name: &str) -> Option<Self> {
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

impl Argv {
    /// Parses and checks a list: the program first, fixed; placeholders only in the arguments.
    pub fn parse(source: &[String]) -> Result<Self, TemplateError> {
        let (program, _) = source.split_first().ok_or(TemplateError::Empty)?;
        let items = source
            .iter()
            .map(|s| parse_item(s))
            .collect::<Result<Vec<_>, _>>()?;
        if items
            .first()
            .is_some_and(|p| p.iter().any(|p| matches!(p, Part::Var(_))))
        {
            return Err(TemplateError::Program {
                program: program.clone(),
            });
        }
        Ok(Self {
            source: source.to_vec(),
            items,
        })
    }

    /// The list as written.
    pub fn source(&self) -> &[String] {
        &self.source
    }

    /// The program and its arguments, each item with its placeholders replaced by the raw values.
    /// NUL bytes, which no argument can carry, become U+FFFD.
    pub fn render(&self, values: &Values) -> Vec<String> {
        self.items
            .iter()
            .map(|parts| {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Var(v) => out.push_str(values.get(*v)),
                    }
                }
                without_nul(&out)
            })
            .collect()
    }

    /// The variables the list uses.
    pub fn variables(&self) -> impl Iterator<Item = Var> + '_ {
        self.items.iter().flatten().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Text(_) => None,
        })
    }
}

/// One list item: text with `{variable}` placeholders and `{{`/`}}` escapes.
fn parse_item(source: &str) -> Result<Vec<Part>, TemplateError> {
    let chars: Vec<char> = source.chars().collect();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        match c {
            '{' if next == Some('{') => {
                text.push('{');
                i += 2;
            }
            '}' if next == Some('}') => {
                text.push('}');
                i += 2;
            }
            '{' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or(TemplateError::Unclosed { at: i + 1 })?;
                let name: String = chars[i + 1..i + 1 + close].iter().collect();
                let var = Var::from_name(name.trim())
                    .ok_or_else(|| TemplateError::UnknownVariable { name: name.clone() })?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Var(var));
                i += close + 2;
            }
            '}' => return Err(TemplateError::Stray { at: i + 1 }),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
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

/// `s` with NUL bytes, which neither an argument nor an environment value can carry, as U+FFFD.
fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Writes `items` as a JSON array, which is also a YAML flow sequence (for config and records).
pub(crate) fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(", "))
}

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&json_list(&self.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str) -> Values {
        Values {
            job_id: "abc123".into(),
            job_name: name.into(),
            state: "COMPLETED".into(),
            ..Values::default()
        }
    }

    fn argv(items: &[&str]) -> Result<Argv, TemplateError> {
        Argv::parse(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn each_item_gets_the_raw_value() {
        let t = argv(&["notify-send", "plotty: {job_name}", "{state}"]).unwrap();
        assert_eq!(
            t.render(&values("a'; touch /tmp/x; echo \"$(id)\"")),
            [
                "notify-send",
                "plotty: a'; touch /tmp/x; echo \"$(id)\"",
                "COMPLETED"
            ]
        );
        let t = argv(&["echo", "{{literal}}", "{job_id}-done", "{ job_id }"]).unwrap();
        assert_eq!(
            t.render(&values("")),
            ["echo", "{literal}", "abc123-done", "abc123"]
        );
        assert_eq!(t.variables().collect::<Vec<_>>(), [Var::JobId, Var::JobId]);
        assert_eq!(
            argv(&["x", "{job_name}"]).unwrap().render(&values("a\0b"))[1],
            "a\u{FFFD}b"
        );
        assert_eq!(
            t.to_string(),
            r#"["echo", "{{literal}}", "{job_id}-done", "{ job_id }"]"#
        );
    }

    #[test]
    fn refuses_unknown_unbalanced_empty_and_a_templated_program() {
        assert!(matches!(
            argv(&["echo", "{job_data}"]),
            Err(TemplateError::UnknownVariable { .. })
        ));
        assert!(matches!(
            argv(&["echo", "{job_id"]),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            argv(&["echo", "}"]),
            Err(TemplateError::Stray { .. })
        ));
        assert!(matches!(argv(&[]), Err(TemplateError::Empty)));
        assert!(matches!(
            argv(&["{job_name}", "x"]),
            Err(TemplateError::Program { .. })
        ));
        assert!(matches!(
            argv(&["/opt/{workspace}/bin"]),
            Err(TemplateError::Program { .. })
        ));
        let e = argv(&["echo", "{nope}"]).unwrap_err().to_string();
        assert!(e.contains("{job_id}") && e.contains("{workspace}"), "{e}");
    }
}
