//! Master keys (key-encryption keys). Never printed, logged or serialised:
//! `Debug` shows only the key id.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key must be 32 bytes, given as 64 hex digits or base64")]
    Format,
    #[error("master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut h = Keccak256::new();
        h.update(b"walletd master key id v1");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..8]);
        Self {
            id,
            key: Zeroizing::new(bytes),
        }
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // getrandom failing means the OS has no entropy source: nothing safe can run.
        getrandom::getrandom(&mut bytes).expect("operating system random number generator");
        let key = Self::from_bytes(bytes);
        bytes.iter_mut().for_each(|b| *b = 0);
        key
    }

    /// Parses 64 hex digits (optional 0x) or standard / URL-safe base64 of 32 bytes.
    /// The error never contains the input.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let t = text.trim();
        let h = t.strip_prefix("0x").unwrap_or(t);
        let mut out = Zeroizing::new([0u8; 32]);
        if h.len() == 64 && hex::decode_to_slice(h, &mut out[..]).is_ok() {
            return Ok(Self::from_bytes(*out));
        }
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
        ] {
            if let Ok(v) = engine.decode(t) {
                let v = Zeroizing::new(v);
                if v.len() == 32 {
                    out.copy_from_slice(&v);
                    return Ok(Self::from_bytes(*out));
                }
            }
        }
        Err(MasterKeyError::Format)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.key))
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key.
    /// Returns the key and whether it was created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), MasterKeyError> {
        let err = |source| MasterKeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                key.write_file(path).map_err(err)?;
                Ok((key, true))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Writes the key to `path` with mode 0600, atomically (temp file + rename).
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        let tmp = {
            let mut s = path.as_os_str().to_owned();
            s.push(".tmp");
            std::path::PathBuf::from(s)
        };
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(self.to_hex().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.id)
    }
}

/// The current master key plus older ones still accepted for unsealing while a
/// rotation is under way.
#[derive(Clone, Debug)]
pub struct MasterKeys {
    pub current: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl MasterKeys {
    pub fn single(current: MasterKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    pub fn by_id(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == id)
    }

    /// The ids of every key here (what rows sealed under them name).
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|k| k.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_base64_to_same_id() {
        let bytes = [42u8; 32];
        let hex_key = MasterKey::parse(&hex::encode(bytes)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let b64_key = MasterKey::parse(&b64).unwrap();
        assert_eq!(hex_key.id(), b64_key.id());
        assert!(MasterKey::parse("short").is_err());
        assert!(!format!("{hex_key:?}").contains(&hex::encode(bytes)));
    }
}
