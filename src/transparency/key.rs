//! Where the log's signing key comes from: `WALLETD_LOG_KEY`, or with
//! SQLite (development) a key file `<db>.key.log` beside the database,
//! created at the first start like the master key's. PostgreSQL without the
//! variable runs without a sealer (said once in the log).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::signing::{LogKeyError, LogSigner};
use crate::config::{Secret, Settings};

/// The name of a generated development key: the checkpoints' origin.
pub const DEV_NAME: &str = "walletd.localhost/log";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("WALLETD_LOG_KEY: {0}")]
    Variable(LogKeyError),
    #[error("log key file {path}: {error}")]
    File { path: PathBuf, error: String },
}

pub fn key_file_path(settings: &Settings) -> Option<PathBuf> {
    crate::app::key_file_path(settings).map(|p| {
        let mut s = p.into_os_string();
        s.push(".log");
        PathBuf::from(s)
    })
}

/// The configured signer, if any.
pub fn load(settings: &Settings) -> Result<Option<LogSigner>, LoadError> {
    if let Some(k) = &settings.log_key {
        return LogSigner::parse(k).map(Some).map_err(LoadError::Variable);
    }
    let Some(path) = key_file_path(settings) else {
        return Ok(None);
    };
    let failed = |error: String| LoadError::File {
        path: path.clone(),
        error,
    };
    let skey = match std::fs::read_to_string(&path) {
        Ok(text) => Secret::from(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (skey, _) = LogSigner::generate(DEV_NAME).map_err(|e| failed(e.to_string()))?;
            write_private(&path, skey.expose()).map_err(|e| failed(e.to_string()))?;
            skey
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    LogSigner::parse(&skey)
        .map(Some)
        .map_err(|e| failed(e.to_string()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
