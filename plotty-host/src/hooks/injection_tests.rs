//! Hostile job names against every hook form, under dash and bash: nothing a name says may run,
//! and the hook must still receive the name byte for byte.
//!
//! Each name tries to `touch` a marker (`MARK`, by absolute path, and `pwned` relative to the hook's
//! working directory, the workspace). After each run the workspace may hold only what the hook
//! wrote (`out`) and the test's own scripts; `out` must equal the name. Shell strings are run by
//! each shell named explicitly (Debian's /bin/sh is dash, and bash reads quoting differently), and
//! so are scripts (through their `#!` line). The old shell-string forms with placeholders, which
//! the injection report broke, must be refused before anything runs.

use std::path::{Path, PathBuf};

use super::*;
use crate::testing::{InCi, skip};

/// Names that each try something; `MARK` is replaced by the marker's absolute path.
fn hostile_names() -> Vec<String> {
    [
        "plain name",
        "'",
        "\"",
        "it's \"quoted\"",
        "$(touch MARK)",
        "\"$(touch MARK)\"",
        "'$(touch MARK)'",
        "`touch MARK`",
        "a; touch MARK",
        "';touch MARK;#",
        "\";touch MARK;#",
        "x && touch MARK",
        "x || touch MARK; false",
        "x | touch MARK",
        "x\ntouch MARK\n",
        "x\r\ntouch MARK",
        "$'\\x27;touch MARK;#'",
        "\\';touch MARK;#",
        "$'\\n';touch MARK;#",
        "EOF\ntouch MARK\nEOF",
        "\nEOF\n$(touch MARK)\nEOF\n",
        "END\n`touch MARK`",
        "${IFS}touch${IFS}MARK",
        "$PATH ${HOME} $0 $1 $@ $$",
        "%s%n%d%x %99999999s",
        "\\",
        "\\'\\\"\\\\\\n",
        "* ? [a-z] ~ ~root",
        "!! !-1 ^x^y",
        "} ; touch MARK ; {",
        "{job_id} {{job_name}}",
        "> MARK",
        "< /etc/passwd",
        "Plötter ✍️ 日本語 \u{202e}txt.exe",
        "-n",
        "-e \\ntouch MARK",
        "--help",
        "-",
        "\ttab\tand\u{b}vt",
        "",
        "   ",
        "a\0b; touch MARK",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// `name` as it reaches a process: NUL cannot, so it arrives as U+FFFD.
fn as_received(name: &str) -> String {
    name.replace('\0', "\u{FFFD}")
}

/// The shells to try, each present one; a missing one is a loud skip.
fn shells(test: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for name in ["dash", "bash"] {
        match ["/bin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
        {
            Some(p) => found.push(p),
            None => skip(
                test,
                &format!("{name} is not installed; its quoting rules go untested"),
                InCi::Provides,
            ),
        }
    }
    found
}

fn ctx(workspace: &Path, name: &str) -> HookContext {
    HookContext {
        job_id: "j1".into(),
        job_name: name.into(),
        from_state: Some(JobState::Plotting),
        state: JobState::Completed,
        reason: "user".into(),
        error: None,
        workspace: workspace.to_path_buf(),
    }
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// One hook under test, what it is called in failures, and what it writes for a name.
struct Form {
    label: String,
    hook: Hook,
    /// `out` holds the name followed by this (heredocs end with a newline).
    suffix: &'static str,
    /// True when the hook prints the name on stdout instead of writing `out`.
    stdout: bool,
}

/// Every way a hook can carry a job name, for each shell.
fn forms(dir: &Path, shells: &[PathBuf]) -> Vec<Form> {
    let mut forms = vec![Form {
        label: "list, printf".into(),
        hook: Hook::command_argv(&list(&["printf", "%s", "{job_name}"]), None).unwrap(),
        suffix: "",
        stdout: true,
    }];
    for (i, sh) in shells.iter().enumerate() {
        let shell = sh.display().to_string();
        let strings = [
            ("printf %s \"$PLOTTY_JOB_NAME\" > out", ""),
            ("printf '%s' \"${PLOTTY_JOB_NAME}\" > out", ""),
            ("cat > out <<EOF\n$PLOTTY_JOB_NAME\nEOF\n", "\n"),
            ("cat > out <<-EOF\n\t${PLOTTY_JOB_NAME}\n\tEOF", "\n"),
        ];
        for (text, suffix) in strings {
            forms.push(Form {
                label: format!("string under {shell}: {text:?}"),
                hook: Hook::command(text, None).unwrap().with_shell(sh),
                suffix,
                stdout: false,
            });
        }
        forms.push(Form {
            label: format!("list through {shell} -c with the name as $1"),
            hook: Hook::command_argv(
                &list(&[&shell, "-c", "printf %s \"$1\" > out", "sh", "{job_name}"]),
                None,
            )
            .unwrap(),
            suffix: "",
            stdout: false,
        });
        let script = dir.join(format!("hook-{i}.sh"));
        std::fs::write(
            &script,
            format!("#!{shell}\nprintf %s \"$PLOTTY_JOB_NAME\" > \"$PLOTTY_WORKSPACE/out\"\n"),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        forms.push(Form {
            label: format!("script with #!{shell}"),
            hook: Hook::script(&script, None).unwrap(),
            suffix: "",
            stdout: false,
        });
    }
    forms
}

#[tokio::test]
async fn no_hostile_name_runs_and_each_arrives_byte_exact() {
    let test = "hooks::injection_tests::no_hostile_name_runs_and_each_arrives_byte_exact";
    let shells = shells(test);
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let marker = ws.join("marker");
    let forms = forms(ws, &shells);
    let own_files: Vec<String> = std::fs::read_dir(ws)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut runs = 0;
    for name in hostile_names() {
        let name = name.replace("MARK", &marker.display().to_string());
        // The same name with a relative target: whatever the hook's cwd, nothing may appear.
        for name in [
            name.clone(),
            name.replace(&marker.display().to_string(), "pwned"),
        ] {
            for form in &forms {
                let _ = std::fs::remove_file(ws.join("out"));
                let r = form.hook.run(&ctx(ws, &name)).await;
                runs += 1;
                let what = format!("{} with the name {name:?}", form.label);
                assert!(r.success, "{what}: {r:?}");
                let mut extra: Vec<String> = std::fs::read_dir(ws)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|f| f != "out" && !own_files.contains(f))
                    .collect();
                extra.sort();
                assert!(extra.is_empty(), "{what} created {extra:?}");
                let got = if form.stdout {
                    r.stdout.clone()
                } else {
                    std::fs::read_to_string(ws.join("out"))
                        .unwrap_or_else(|e| panic!("{what}: no out file: {e}; {r:?}"))
                };
                assert_eq!(
                    got,
                    format!("{}{}", as_received(&name), form.suffix),
                    "{what}"
                );
            }
        }
    }
    assert_eq!(runs, hostile_names().len() * 2 * forms.len());
}

#[test]
fn the_old_shell_forms_are_refused_before_anything_runs() {
    for old in [
        "echo {job_name}",
        "notify-send plotty {job_name}",
        "echo ${job_name}",
        "echo '{job_name}'",
        "echo \"{job_name}\"",
        "echo { job_name }",
        "echo {{job_name}}",
        "cat <<EOF\n{job_name}\nEOF",
        "cat <<'EOF'\n{job_name}\nEOF",
        "printf '%s\\n' {job_id} {job_path} {state} {from_state} {reason} {error} {workspace}",
    ] {
        let e = Hook::command(old, None).unwrap_err();
        let fix = e.fix.unwrap_or_default();
        assert!(fix.contains("$PLOTTY_"), "{old}: {fix}");
    }
}

#[tokio::test]
async fn a_leading_dash_stays_an_argument_after_double_dash() {
    // A list keeps a name one argument, but a program may still read `-x` as an option: the
    // documented answer is `--` before the value, which this checks with a real program.
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::command_argv(&list(&["touch", "--", "{job_name}"]), None).unwrap();
    let r = hook.run(&ctx(dir.path(), "--version")).await;
    assert!(r.success, "{r:?}");
    assert!(dir.path().join("--version").is_file());
}
