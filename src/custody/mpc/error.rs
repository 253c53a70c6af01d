use dkls23::protocols::{Abort, AbortKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpcError {
    /// The other party could not be reached or answered with an HTTP error.
    #[error("cosigner unavailable: {0}")]
    Unavailable(String),
    /// The run failed in a way that a fresh run (new session id) may not.
    #[error("protocol aborted: {0}")]
    Aborted(String),
    /// The peer sent something only a misbehaving peer sends. DKLs23 requires
    /// never running the protocol with it again on this key: the key is frozen.
    #[error("the other party misbehaved; key frozen: {0}")]
    PeerBanned(String),
    /// The cosigner refused what it was asked to sign.
    #[error("cosigner refused: {0}")]
    Refused(String),
    /// A message that does not decode, or does not belong to a live session.
    #[error("bad protocol message: {0}")]
    BadMessage(String),
    #[error("key share storage: {0}")]
    Storage(String),
}

impl MpcError {
    pub(crate) fn from_abort(stage: &'static str) -> impl Fn(Abort) -> MpcError {
        move |a: Abort| match a.kind {
            AbortKind::BanCounterparty(_) => {
                MpcError::PeerBanned(format!("{stage}: {}", a.description()))
            }
            AbortKind::Recoverable => MpcError::Aborted(format!("{stage}: {}", a.description())),
        }
    }
}
