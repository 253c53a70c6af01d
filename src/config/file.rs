//! `--config FILE` (or `WALLETD_CONFIG`): settings from a file, in the
//! environment's own terms — one `NAME=value` per line, the names of the
//! environment variables (`.env` syntax: `#` comments, optional quotes,
//! `export` prefixes, parsed by `dotenvy`). Precedence: a flag, then the
//! environment, then the file, then the default; so a file can hold a
//! deployment's settings and the environment still overrides any of them.
//!
//! The file is read before anything else runs (before logging and before
//! the async runtime starts its threads), and its values are put into this
//! process's environment for the names the environment does not set, so
//! that every setting is still parsed and validated in one place, by clap
//! and [`super::validate`]. A name walletd does not read is refused, naming
//! the file and the name: a typo in a file would otherwise be silently
//! ignored.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable that names the file when `--config` is not given.
pub const VARIABLE: &str = "WALLETD_CONFIG";

static FROM_FILE: OnceLock<BTreeSet<String>> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{var}: cannot read {path}: {error}")]
    Read {
        var: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("{var}: {path}: {name} is not a setting walletd reads")]
    Unknown {
        var: &'static str,
        path: PathBuf,
        name: String,
    },
}

/// Whether `name`'s value came from the configuration file.
pub fn from_file(name: &str) -> bool {
    FROM_FILE.get().is_some_and(|names| names.contains(name))
}

/// The file named by `--config` in `args` or by `WALLETD_CONFIG`.
fn requested(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os(VARIABLE)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Reads the file `args` or the environment name, if any, into the
/// environment (names already set there win). Must run while the process
/// has one thread: it changes the environment.
pub fn load(args: &[OsString], known: &BTreeSet<String>) -> Result<Option<PathBuf>, FileError> {
    let Some(path) = requested(args) else {
        return Ok(None);
    };
    let var = if args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--config"))
    {
        "--config"
    } else {
        VARIABLE
    };
    let pairs = read(&path, var)?;
    let mut names = BTreeSet::new();
    for (name, value) in pairs {
        if !known.contains(&name) || name == VARIABLE {
            return Err(FileError::Unknown { var, path, name });
        }
        if std::env::var_os(&name).is_none() {
            // Single-threaded here (see above), so no other thread reads the
            // environment while it changes.
            std::env::set_var(&name, value);
            names.insert(name);
        }
    }
    warn_if_readable_by_others(&path);
    let _ = FROM_FILE.set(names);
    Ok(Some(path))
}

fn read(path: &Path, var: &'static str) -> Result<Vec<(String, String)>, FileError> {
    let failed = |error: String| FileError::Read {
        var,
        path: path.to_path_buf(),
        error,
    };
    let iter = dotenvy::from_path_iter(path).map_err(|e| failed(e.to_string()))?;
    let mut out = Vec::new();
    for item in iter {
        // dotenvy's parse errors name the line, never its value.
        out.push(item.map_err(|e| failed(e.to_string()))?);
    }
    Ok(out)
}

/// A file that may hold master keys should be private, like the key file.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "walletd: warning: {} is readable by other users; a configuration file \
                     with secrets in it should be mode 0600",
                    path.display()
                );
            }
        }
    }
}
