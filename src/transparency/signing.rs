//! The log's own Ed25519 key, in the C2SP signed-note key encoding
//! (`PRIVATE+KEY+<name>+<id>+<key>`; the public verifier key an auditor
//! pins is `<name>+<id>+<key>`). The key's name is the checkpoints' origin
//! line. Checkpoints are c2sp.org/tlog-checkpoint bodies signed as notes.

use base64::Engine as _;
use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::Hash;

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    #[error("not a signed-note Ed25519 private key (PRIVATE+KEY+<name>+<id>+<key>; `walletd log-key generate` makes one)")]
    Format,
    #[error("not a signed-note verifier key (<name>+<id>+<key>, as `walletd log-key` prints it)")]
    VerifierFormat,
    #[error("{0}")]
    Note(String),
}

/// The sealer's signing key.
#[derive(Clone)]
pub struct LogSigner {
    signer: StandardSigner,
    verifier_key: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    pub fn parse(skey: &Secret) -> Result<Self, LogKeyError> {
        let skey = skey.expose().trim();
        let signer = StandardSigner::new(skey).map_err(|_| LogKeyError::Format)?;
        // The crate keeps the public half to itself: derive it again for the
        // verifier key (StandardSigner::new has checked the id against it).
        // PRIVATE+KEY+<name>+<id>+<base64>, where the base64 may hold '+'.
        let encoded = skey.splitn(5, '+').nth(4).ok_or(LogKeyError::Format)?;
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| LogKeyError::Format)?,
        );
        let seed: &[u8] = bytes.get(1..).ok_or(LogKeyError::Format)?;
        let signing = ed25519_dalek::SigningKey::try_from(seed).map_err(|_| LogKeyError::Format)?;
        let verifier_key =
            signed_note::new_ed25519_verifier_key(signer.name(), &signing.verifying_key());
        Ok(Self {
            signer,
            verifier_key,
        })
    }

    /// A new key pair named `name` (the origin of its checkpoints, e.g.
    /// `wallets.example.com/log`): (private, verifier).
    pub fn generate(name: &str) -> Result<(Secret, String), LogKeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(LogKeyError::Note(format!(
                "{name:?} is not a key name (non-empty, no spaces or '+')"
            )));
        }
        let (skey, vkey) = signed_note::generate_key(&mut rand_core::OsRng, name);
        Ok((Secret::from(skey), vkey))
    }

    /// The checkpoints' origin line.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// What an auditor pins.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The signed checkpoint of a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, LogKeyError> {
        let checkpoint = Checkpoint::new(self.origin(), size, root, "")
            .map_err(|e| LogKeyError::Note(e.to_string()))?;
        let mut note =
            Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| LogKeyError::Note(e.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| LogKeyError::Note(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| LogKeyError::Note(e.to_string()))
    }
}

/// Opens a signed checkpoint with the verifier key an auditor pinned:
/// (size, root) when the signature is that key's and the body is a
/// checkpoint of its origin.
pub fn open(note: &str, verifier_key: &str) -> Result<(u64, Hash), LogKeyError> {
    let verifier =
        StandardVerifier::new(verifier_key.trim()).map_err(|_| LogKeyError::VerifierFormat)?;
    let origin = signed_note::Verifier::name(&verifier).to_string();
    let note = Note::from_bytes(note.as_bytes()).map_err(|e| LogKeyError::Note(e.to_string()))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| LogKeyError::Note(format!("checkpoint signature: {e}")))?;
    let checkpoint =
        Checkpoint::from_bytes(note.text()).map_err(|e| LogKeyError::Note(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(LogKeyError::Note(format!(
            "checkpoint of origin {:?}, not {origin:?}",
            checkpoint.origin()
        )));
    }
    Ok((checkpoint.size(), *checkpoint.hash()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_opens_with_its_key_only() {
        let (skey, vkey) = LogSigner::generate("walletd.test/log").unwrap();
        let signer = LogSigner::parse(&skey).unwrap();
        assert_eq!(signer.verifier_key(), vkey);
        assert_eq!(signer.origin(), "walletd.test/log");
        let root = Hash([7u8; 32]);
        let note = signer.sign(12, root).unwrap();
        assert!(note.starts_with("walletd.test/log\n12\n"), "{note}");
        assert_eq!(open(&note, &vkey).unwrap(), (12, root));

        let (_, other) = LogSigner::generate("walletd.test/log").unwrap();
        assert!(open(&note, &other).is_err());
        let forged = note.replacen("\n12\n", "\n13\n", 1);
        assert!(open(&forged, &vkey).is_err());
        assert!(
            LogSigner::parse(&Secret::from("PRIVATE+KEY+x+00000000+AAAA".to_string())).is_err()
        );
    }
}
