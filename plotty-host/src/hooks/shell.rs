//! Shell-string hook commands: run by `/bin/sh -c` exactly as written, values only from the
//! environment (`"$PLOTTY_JOB_NAME"`).
//!
//! plotty used to paste single-quoted values into the string. No quoting survives every shell
//! context: inside a heredoc the quotes are plain text and `$(…)` in a job name runs, and bash reads
//! `${job_name}` filled with `'…'` as `$'…'`, where `\'` no longer ends the quote. So a shell
//! string gets no substitution at all, and one that still holds a `{variable}` placeholder (also
//! as `${variable}`) is refused when the config is loaded, with the same command rewritten both ways
//! ([`PlaceholderError::fix`]): reading `$PLOTTY_…` in the shell string, and as a list run without
//! a shell ([`super::template::Argv`]) when the command is one plain program call. Other braces
//! (`{ a; b; }`, `awk '{print}'`, `${HOME}`) are shell syntax and stay as written.

use std::fmt;

use super::template::{Var, json_list};

/// A checked shell string.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ShellCommand {
    source: String,
}

/// A shell string with `{variable}` placeholders, and how to write it instead.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlaceholderError {
    /// The placeholders found, in order, each once.
    pub vars: Vec<Var>,
    /// The string with each placeholder replaced by its `$PLOTTY_…` variable.
    pub shell: String,
    /// The command as a list run without a shell, when it is one plain program call.
    pub argv: Option<Vec<String>>,
    /// A placeholder sat in a heredoc whose delimiter is quoted (`<<'EOF'`), where nothing expands.
    pub quoted_heredoc: bool,
}

impl ShellCommand {
    /// Checks `source`: refused when it holds a placeholder of a known variable.
    pub fn parse(source: &str) -> Result<Self, PlaceholderError> {
        let (shell, vars, quoted_heredoc) = rewrite_for_env(source);
        if vars.is_empty() {
            return Ok(Self {
                source: source.to_owned(),
            });
        }
        Err(PlaceholderError {
            vars,
            shell,
            argv: as_argv(source),
            quoted_heredoc,
        })
    }

    /// The string as written (and as run).
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for ShellCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PlaceholderError {
    /// What is wrong, naming the placeholders.
    pub fn message(&self) -> String {
        let names: Vec<String> = self
            .vars
            .iter()
            .map(|v| format!("`{{{}}}`", v.name()))
            .collect();
        format!(
            "{} in a shell string: plotty no longer pastes values into shell text, where no quoting \
             keeps every job name inert (a heredoc runs its `$(…)`, bash reads `${{…}}` as `$'…'`)",
            names.join(", ")
        )
    }

    /// How to rewrite it: the user's command in both forms.
    pub fn fix(&self) -> String {
        let mut fix = format!(
            "read the values from the environment in the shell string:\n{}",
            yaml_command(&self.shell)
        );
        if self.quoted_heredoc {
            fix.push_str(
                "\n(nothing expands in a heredoc whose delimiter is quoted: write `<<EOF`, not \
                 `<<'EOF'`, and put a backslash before any other `$`, `` ` `` or `\\` in it)",
            );
        }
        match &self.argv {
            Some(argv) => fix.push_str(&format!(
                "\nor run the program without a shell, each item substituted alone:\n    command: {}",
                json_list(argv)
            )),
            None => {
                let mut example = vec!["program".to_owned(), "--".to_owned()];
                example.extend(self.vars.iter().map(|v| format!("{{{}}}", v.name())));
                fix.push_str(&format!(
                    "\n(a list such as `command: {}` runs one program without a shell, each item \
                     substituted alone; this command uses shell syntax, so the string form above \
                     is the one that fits)",
                    json_list(&example)
                ));
            }
        }
        fix
    }
}

/// `command: <s>` as YAML: single-quoted on one line, a literal block over several.
fn yaml_command(s: &str) -> String {
    if s.contains('\n') || s.contains('\r') {
        let body: Vec<String> = s.lines().map(|l| format!("      {l}")).collect();
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        format!("    command: |{chomp}\n{}", body.join("\n"))
    } else {
        format!("    command: '{}'", s.replace('\'', "''"))
    }
}

/// The variable whose placeholder (`{name}`, spaces allowed inside) starts at `chars[i]`, and the
/// placeholder's length.
fn placeholder_at(chars: &[char], i: usize) -> Option<(Var, usize)> {
    if chars.get(i) != Some(&'{') {
        return None;
    }
    let rest = chars.get(i + 1..)?;
    let close = rest.iter().take(64).position(|&c| c == '}' || c == '{')?;
    if rest[close] != '}' {
        return None;
    }
    let name: String = rest[..close].iter().collect();
    Var::from_name(name.trim()).map(|v| (v, close + 2))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    Single,
    Double,
    Heredoc,
}

/// `source` with each placeholder replaced by its environment variable, quoted for where it
/// stands, the variables found (each once, in order), and whether one was in a quoted heredoc.
fn rewrite_for_env(source: &str) -> (String, Vec<Var>, bool) {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 16);
    let mut found: Vec<Var> = Vec::new();
    let mut ctx = Ctx::Plain;
    // Where the current '…' opened in `out`, to drop an empty '' around a replaced placeholder.
    let mut single_open = None;
    // Heredocs announced on the current line, then the one whose body is being read.
    // Each: delimiter, `<<-` (strip tabs), delimiter quoted.
    let mut pending: Vec<(String, bool, bool)> = Vec::new();
    let mut quoted_heredoc = false;
    let mut line_start = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if ctx == Ctx::Heredoc && line_start {
            line_start = false;
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |n| i + n);
            let line: String = chars[i..end].iter().collect();
            if let Some((delimiter, strip_tabs, _)) = pending.first() {
                let line = if *strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line == delimiter {
                    out.push_str(&chars[i..end].iter().collect::<String>());
                    pending.remove(0);
                    i = end;
                    if pending.is_empty() {
                        ctx = Ctx::Plain;
                    } else if i < chars.len() {
                        out.push('\n');
                        i += 1;
                        line_start = true;
                    }
                    continue;
                }
            }
        }
        if let Some((var, len)) = placeholder_at(&chars, i) {
            if !found.contains(&var) {
                found.push(var);
            }
            if ctx == Ctx::Heredoc && pending.first().is_some_and(|p| p.2) {
                quoted_heredoc = true;
            }
            // `${name}`: the `$` was meant for the placeholder; the replacement brings its own.
            if ctx != Ctx::Single && i > 0 && chars[i - 1] == '$' && out.ends_with('$') {
                out.pop();
            }
            let next = chars.get(i + len).copied();
            let env = var.env_name();
            let bare = if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                format!("${{{env}}}")
            } else {
                format!("${env}")
            };
            i += len;
            match ctx {
                Ctx::Plain => out.push_str(&format!("\"${env}\"")),
                Ctx::Double | Ctx::Heredoc => out.push_str(&bare),
                Ctx::Single => {
                    // Close the '…', add "$VAR", reopen it (or leave out an empty pair).
                    if single_open == Some(out.len()) {
                        out.pop();
                    } else {
                        out.push('\'');
                    }
                    out.push_str(&format!("\"${env}\""));
                    if next == Some('\'') {
                        i += 1;
                        ctx = Ctx::Plain;
                    } else {
                        out.push('\'');
                        single_open = Some(out.len());
                    }
                }
            }
            continue;
        }
        let next = chars.get(i + 1).copied();
        out.push(c);
        i += 1;
        match (ctx, c) {
            (Ctx::Plain | Ctx::Double | Ctx::Heredoc, '\\') => {
                if let Some(n) = next {
                    out.push(n);
                    i += 1;
                }
            }
            (Ctx::Plain, '\'') => {
                ctx = Ctx::Single;
                single_open = Some(out.len());
            }
            (Ctx::Plain, '"') => ctx = Ctx::Double,
            (Ctx::Single, '\'') | (Ctx::Double, '"') => ctx = Ctx::Plain,
            (Ctx::Plain, '<') if next == Some('<') && chars.get(i + 1) != Some(&'<') => {
                out.push('<');
                i += 1;
                let strip_tabs = chars.get(i) == Some(&'-');
                if strip_tabs {
                    out.push('-');
                    i += 1;
                }
                while let Some(&c @ (' ' | '\t')) = chars.get(i) {
                    out.push(c);
                    i += 1;
                }
                let mut delimiter = String::new();
                let mut quoted = false;
                while let Some(&c) = chars.get(i) {
                    if c.is_whitespace() || ";|&<>()".contains(c) {
                        break;
                    }
                    out.push(c);
                    if c == '\'' || c == '"' || c == '\\' {
                        quoted = true;
                    } else {
                        delimiter.push(c);
                    }
                    i += 1;
                }
                pending.push((delimiter, strip_tabs, quoted));
            }
            (Ctx::Plain, '\n') if !pending.is_empty() => {
                ctx = Ctx::Heredoc;
                line_start = true;
            }
            (Ctx::Heredoc, '\n') => line_start = true,
            _ => {}
        }
    }
    (out, found, quoted_heredoc)
}

/// `source` as a list run without a shell, when it is one plain program call: words, quotes and
/// backslashes only, no operator, redirection, expansion or glob, and no placeholder in the
/// program. Placeholders stay `{name}` items; literal braces become `{{`/`}}`.
fn as_argv(source: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = source.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut ctx = Ctx::Plain;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let at = if c == '$' && ctx != Ctx::Single {
            i + 1
        } else {
            i
        };
        if let Some((var, len)) = placeholder_at(&chars, at) {
            word.push_str(&format!("{{{}}}", var.name()));
            in_word = true;
            i = at + len;
            continue;
        }
        let next = chars.get(i + 1).copied();
        i += 1;
        match (ctx, c) {
            (Ctx::Plain, ' ' | '\t') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (Ctx::Plain, '\'') => (ctx, in_word) = (Ctx::Single, true),
            (Ctx::Plain, '"') => (ctx, in_word) = (Ctx::Double, true),
            (Ctx::Single, '\'') | (Ctx::Double, '"') => ctx = Ctx::Plain,
            (Ctx::Plain, '\\') => {
                push_literal(&mut word, next.filter(|n| *n != '\n')?);
                in_word = true;
                i += 1;
            }
            (Ctx::Double, '\\') if next.is_some_and(|n| "$`\"\\".contains(n)) => {
                push_literal(&mut word, next?);
                i += 1;
            }
            (Ctx::Plain, '{') if next == Some('{') => {
                word.push_str("{{");
                in_word = true;
                i += 1;
            }
            (Ctx::Plain, '}') if next == Some('}') => {
                word.push_str("}}");
                in_word = true;
                i += 1;
            }
            (Ctx::Plain, '#' | '~') if !in_word => return None,
            (Ctx::Plain, '=') if words.is_empty() => return None,
            (Ctx::Plain, c) if "\n;&|<>()$`*?[{}".contains(c) => return None,
            (Ctx::Double, '$' | '`') => return None,
            (_, c) => {
                push_literal(&mut word, c);
                in_word = true;
            }
        }
    }
    if ctx != Ctx::Plain {
        return None;
    }
    if in_word {
        words.push(word);
    }
    if placeholder_in(words.first()?) {
        return None;
    }
    Some(words)
}

fn push_literal(word: &mut String, c: char) {
    match c {
        '{' => word.push_str("{{"),
        '}' => word.push_str("}}"),
        c => word.push(c),
    }
}

/// True when an argv item holds a placeholder (a `{` not doubled).
fn placeholder_in(item: &str) -> bool {
    item.replace("{{", "").contains('{')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str) -> PlaceholderError {
        ShellCommand::parse(source).unwrap_err()
    }

    #[test]
    fn shell_strings_without_placeholders_run_as_written() {
        for ok in [
            "notify-send plotty \"$PLOTTY_JOB_NAME\"",
            "{ echo a; echo b; } > /tmp/log",
            "awk '{print}' /tmp/x; echo ${HOME} {a,b} {fd}",
            "echo {{literal}} {job_data}",
        ] {
            assert_eq!(ShellCommand::parse(ok).unwrap().source(), ok);
        }
    }

    #[test]
    fn a_plain_call_is_rewritten_both_ways() {
        let e = refused("notify-send \"Plot done\" {job_name} {state}");
        assert_eq!(e.vars, [Var::JobName, Var::State]);
        assert_eq!(
            e.shell,
            "notify-send \"Plot done\" \"$PLOTTY_JOB_NAME\" \"$PLOTTY_STATE\""
        );
        assert_eq!(
            e.argv.unwrap(),
            ["notify-send", "Plot done", "{job_name}", "{state}"]
        );
    }

    #[test]
    fn each_quoting_context_gets_its_own_spelling() {
        let cases = [
            (
                "echo ${job_name}",
                "echo \"$PLOTTY_JOB_NAME\"",
                Some(vec!["echo", "{job_name}"]),
            ),
            (
                "echo '{job_name}'",
                "echo \"$PLOTTY_JOB_NAME\"",
                Some(vec!["echo", "{job_name}"]),
            ),
            (
                "echo 'a {job_name} b'",
                "echo 'a '\"$PLOTTY_JOB_NAME\"' b'",
                Some(vec!["echo", "a {job_name} b"]),
            ),
            (
                "echo \"done: {job_name}!\" {job_id}x",
                "echo \"done: $PLOTTY_JOB_NAME!\" \"$PLOTTY_JOB_ID\"x",
                Some(vec!["echo", "done: {job_name}!", "{job_id}x"]),
            ),
            (
                "echo \"{ job_id }_{state}\"",
                "echo \"${PLOTTY_JOB_ID}_$PLOTTY_STATE\"",
                Some(vec!["echo", "{job_id}_{state}"]),
            ),
            (
                "echo {job_name} > /tmp/log",
                "echo \"$PLOTTY_JOB_NAME\" > /tmp/log",
                None,
            ),
            ("{job_path}/run", "\"$PLOTTY_JOB_PATH\"/run", None),
            (
                "cat <<EOF >> log\n{job_name} it's {state}\nEOF\necho {error}",
                "cat <<EOF >> log\n$PLOTTY_JOB_NAME it's $PLOTTY_STATE\nEOF\necho \"$PLOTTY_ERROR\"",
                None,
            ),
            (
                "cat <<-'END'\n\t\"{job_name}\"\n\tEND",
                "cat <<-'END'\n\t\"$PLOTTY_JOB_NAME\"\n\tEND",
                None,
            ),
        ];
        for (source, shell, argv) in cases {
            let e = refused(source);
            assert_eq!(e.quoted_heredoc, source.contains("'END'"), "{source}");
            assert_eq!(e.shell, shell, "{source}");
            let argv: Option<Vec<String>> =
                argv.map(|v| v.into_iter().map(str::to_owned).collect());
            assert_eq!(e.argv, argv, "{source}");
        }
    }

    #[test]
    fn the_fix_shows_the_users_command_in_yaml() {
        let e = refused("notify-send \"it's\" {job_name}");
        let fix = e.fix();
        assert!(
            fix.contains("    command: 'notify-send \"it''s\" \"$PLOTTY_JOB_NAME\"'"),
            "{fix}"
        );
        assert!(
            fix.contains("    command: [\"notify-send\", \"it's\", \"{job_name}\"]"),
            "{fix}"
        );
        assert!(e.message().contains("`{job_name}`"), "{}", e.message());
        let fix = refused("cat <<EOF\n{job_name}\nEOF\n").fix();
        assert!(
            fix.contains("    command: |\n      cat <<EOF\n      $PLOTTY_JOB_NAME\n      EOF\n"),
            "{fix}"
        );
        assert!(
            fix.contains("[\"program\", \"--\", \"{job_name}\"]"),
            "{fix}"
        );
    }
}
