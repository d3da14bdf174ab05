//! `plotty completions SHELL` and `plotty man [DIR]`: shell completion scripts (clap_complete)
//! and man pages (clap_mangen), both generated from the command-line definition itself
//! ([`crate::cli::Cli`]), so they always list the options this binary has.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
///
/// Generated into memory first: clap_complete panics when its writer fails, and a closed pipe
/// (`plotty completions bash | head`) must not be a panic.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "plotty", &mut script);
    script
}

/// Writes `plotty.1` (the top-level page, which lists the subcommands) to `out`.
///
/// # Errors
/// Writing failed.
pub fn man_page(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes the man pages of `plotty` and every subcommand (`plotty.1`, `plotty-add.1`,
/// `plotty-device-home.1`, …) into `dir`, created if missing; returns the files written.
///
/// # Errors
/// The directory cannot be created or a page cannot be written.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "1")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("plotty"))
        })
        .collect();
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_subcommands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let text = String::from_utf8(completions(shell)).unwrap();
            for word in [
                "plotty",
                "daemon",
                "add",
                "device",
                "toggle",
                "speed-pendown",
            ] {
                assert!(text.contains(word), "{shell}: `{word}` missing");
            }
        }
    }

    #[test]
    fn man_pages_for_plotty_and_each_subcommand() {
        let mut out = Vec::new();
        man_page(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie"), "roff: {}", &page[..40]);
        assert!(
            page.contains("plotty\\-add") || page.contains("plotty-add"),
            "{page}"
        );
        let dir = tempfile::tempdir().unwrap();
        let files = man_pages(&dir.path().join("man1")).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "plotty.1",
            "plotty-add.1",
            "plotty-plot.1",
            "plotty-device-toggle.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        let plot = std::fs::read_to_string(dir.path().join("man1/plotty-plot.1")).unwrap();
        assert!(plot.contains("speed\\-pendown"), "{plot}");
    }
}
