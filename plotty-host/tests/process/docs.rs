//! `plotty completions SHELL` and `plotty man [DIR]` as a user installs them.

use crate::common::{Env, stderr, stdout};

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = env.run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        for word in ["plotty", "daemon", "add", "walk", "align", "speed-pendown"] {
            assert!(script.contains(word), "{shell}: `{word}` missing");
        }
    }
    let o = env.run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bash"),
        "the shells are listed: {}",
        stderr(&o)
    );
}

#[test]
fn man_writes_plotty_1_or_every_page_into_a_directory() {
    let env = Env::new();
    let o = env.run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(
        page.contains(".TH plotty 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    assert!(page.contains("completions"), "the subcommands are listed");
    let dir = env.path("man/man1");
    let o = env.run(&["man", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("man pages written to"),
        "{}",
        stdout(&o)
    );
    for page in [
        "plotty.1",
        "plotty-add.1",
        "plotty-device-walk.1",
        "plotty-check-config.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}: {text}");
    }
}
