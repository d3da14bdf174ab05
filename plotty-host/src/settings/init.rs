//! `plotty config init`: writes the commented example configuration (every key with its default
//! and a one-line comment) where the daemon looks for it, so a new user edits a file instead of
//! starting from nothing. The text is `contrib/config/config.example.yaml` itself, embedded, so
//! there is one source (a test checks that it gives exactly the defaults).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Sources, absolute};

/// The example configuration, as shipped in `contrib/config/config.example.yaml`.
pub const EXAMPLE: &str = include_str!("../../../contrib/config/config.example.yaml");

/// The example configuration cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The file exists and `--force` was not given.
    #[error(
        "{} already exists; nothing was written: edit it, give another PATH, or add --force to \
         overwrite it with the example",
        path.display()
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// No PATH and no default location (no home directory).
    #[error(
        "there is no default config location ($XDG_CONFIG_HOME/plotty/config.yaml: no home \
         directory): give a PATH"
    )]
    NoLocation,
    /// The directory or the file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes [`EXAMPLE`] to `path` (relative to the working directory), or to the default config
/// file (`$XDG_CONFIG_HOME/plotty/config.yaml`), creating its directories; an existing file is
/// replaced only with `force`. Returns the file written.
///
/// # Errors
/// The file exists (without `force`), there is no default location, or writing fails.
pub fn init(path: Option<&Path>, force: bool, sources: &Sources) -> Result<PathBuf, InitError> {
    let home = sources.defaults.home.as_deref();
    let path = match path {
        Some(p) => absolute(&sources.env.cwd, p, home),
        None => sources
            .defaults
            .config_file
            .clone()
            .ok_or(InitError::NoLocation)?,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| InitError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // `create_new` checks and creates in one step: a file that appears meanwhile is not lost.
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists { path: path.clone() }
        } else {
            InitError::Write {
                path: path.clone(),
                source,
            }
        }
    })?;
    file.write_all(EXAMPLE.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// What `plotty config init` prints after writing `path`: where, and how to check it.
pub fn written_message(path: &Path, sources: &Sources) -> String {
    let is_default = sources.defaults.config_file.as_deref() == Some(path);
    let check = if is_default {
        "plotty check config".to_owned()
    } else {
        format!("plotty check config -c {}", path.display())
    };
    let show = if is_default {
        "plotty config show".to_owned()
    } else {
        format!("plotty config show -c {}", path.display())
    };
    let mut out = format!(
        "wrote the example configuration to {}\nevery key is set to its default: change what \
         you need (or delete what you do not), then check it with\n  {check}\nand see the \
         settings the daemon would run with, and where each comes from, with\n  {show}\n",
        path.display()
    );
    // PLOTTY_CONFIG beats the default location: say so, or the new file seems to be ignored.
    if let Some(named) = sources.env.config.as_ref().filter(|c| !c.is_empty()) {
        let named = absolute(
            &sources.env.cwd,
            Path::new(named),
            sources.defaults.home.as_deref(),
        );
        if named != path {
            out.push_str(&format!(
                "note: PLOTTY_CONFIG is set, so plotty reads {} instead: unset it, or add -c {}\n",
                named.display(),
                path.display()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Defaults, Environment, Overrides};

    fn sources(dir: &Path) -> Sources {
        Sources {
            overrides: Overrides::default(),
            env: Environment {
                cwd: dir.join("cwd"),
                ..Environment::default()
            },
            defaults: Defaults {
                config_file: Some(dir.join("xdg-config/plotty/config.yaml")),
                workspace: None,
                home: Some(dir.join("home")),
            },
        }
    }

    #[test]
    fn writes_the_example_once_and_replaces_it_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sources(dir.path());
        let path = init(None, false, &s).unwrap();
        assert_eq!(path, dir.path().join("xdg-config/plotty/config.yaml"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), EXAMPLE);
        std::fs::write(&path, "mine\n").unwrap();
        let e = init(None, false, &s).unwrap_err();
        assert!(
            matches!(&e, InitError::Exists { path: p } if *p == path),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");
        init(None, true, &s).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), EXAMPLE);
        let other = init(Some(Path::new("~/p.yaml")), false, &s).unwrap();
        assert_eq!(other, dir.path().join("home/p.yaml"));
        assert!(written_message(&other, &s).contains("plotty check config -c "));
        assert!(!written_message(&path, &s).contains("-c "));
        s.env.config = Some("elsewhere.yaml".into());
        assert!(
            written_message(&path, &s).contains("note: PLOTTY_CONFIG is set"),
            "{}",
            written_message(&path, &s)
        );
        s.defaults.config_file = None;
        assert!(matches!(init(None, false, &s), Err(InitError::NoLocation)));
    }
}
