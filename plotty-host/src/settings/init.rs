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
    format!(
        "wrote the example configuration to {}\nevery key is set to its default: change what \
         you need (or delete what you do not), then check it with\n  {check}\nand see the \
         settings the daemon would run with, and where each comes from, with\n  {show}\n",
        path.display()
    )
}
