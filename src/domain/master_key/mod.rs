//! Master-key rotations as events: aggregate type `master_key`, one stream
//! per scope (`walletd`: the server's key-encryption key; `cosigner`: the
//! MPC cosigner's). `walletd rotate-master-key` re-wraps the keys first and
//! then records what it did here, so auditors read rotations from the log.
//! Only key ids travel: a key id is a one-way fingerprint of the key, and
//! [`MasterKeyId`] refuses anything shaped like key material.

use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;

#[cfg(test)]
mod tests;

/// Whose master key was rotated; also the aggregate id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterKeyScope {
    /// walletd's own key: the key vault and party 1's MPC shares (and, on
    /// a separate cosigner's database, party 2's).
    Walletd,
    /// The in-process cosigner's key (`--cosigner`): party 2's shares.
    Cosigner,
}

impl MasterKeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            MasterKeyScope::Walletd => "walletd",
            MasterKeyScope::Cosigner => "cosigner",
        }
    }
}

impl fmt::Display for MasterKeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A master key's id: 16 lowercase hex digits (the first 8 bytes of a
/// keccak256 of the key under a fixed prefix). Valid by construction, so a
/// 32-byte key (64 hex digits or base64) cannot be recorded in its place.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MasterKeyId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a master key id is 16 lowercase hex digits")]
pub struct MasterKeyIdError;

impl MasterKeyId {
    pub fn parse(s: &str) -> Result<Self, MasterKeyIdError> {
        if s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_string()))
        } else {
            Err(MasterKeyIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MasterKeyId {
    type Error = MasterKeyIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MasterKeyId> for String {
    fn from(id: MasterKeyId) -> String {
        id.0
    }
}

impl fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug)]
pub enum MasterKeyCommand {
    /// A rotation that has completed: every data key sealed under
    /// `from_key_id` (and any older key given) is now sealed under
    /// `to_key_id`; `rewrapped` rows were re-wrapped.
    RecordRotation {
        scope: MasterKeyScope,
        from_key_id: MasterKeyId,
        to_key_id: MasterKeyId,
        rewrapped: u64,
        at: Timestamp,
    },
}

impl crate::domain::CommandName for MasterKeyCommand {
    fn name(&self) -> &'static str {
        match self {
            MasterKeyCommand::RecordRotation { .. } => "record_rotation",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MasterKeyEvent {
    MasterKeyRotated {
        scope: MasterKeyScope,
        from_key_id: MasterKeyId,
        to_key_id: MasterKeyId,
        rewrapped: u64,
        at: Timestamp,
    },
}

impl DomainEvent for MasterKeyEvent {
    fn event_type(&self) -> String {
        match self {
            MasterKeyEvent::MasterKeyRotated { .. } => "MasterKeyRotated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("this stream records the {stream} master key, not the {given} one")]
    ScopeMismatch {
        stream: MasterKeyScope,
        given: MasterKeyScope,
    },
    #[error("a rotation needs a new key: {0} is the current one")]
    SameKey(MasterKeyId),
}

/// A scope's master-key history: which key is current, and how often it
/// was rotated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterKeyHistory {
    scope: Option<MasterKeyScope>,
    current: Option<MasterKeyId>,
    rotations: u64,
}

impl MasterKeyHistory {
    /// The key the last recorded rotation moved to.
    pub fn current(&self) -> Option<&MasterKeyId> {
        self.current.as_ref()
    }

    pub fn rotations(&self) -> u64 {
        self.rotations
    }
}

impl Aggregate for MasterKeyHistory {
    const TYPE: &'static str = "master_key";
    type Command = MasterKeyCommand;
    type Event = MasterKeyEvent;
    type Error = MasterKeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: MasterKeyCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), MasterKeyError> {
        let MasterKeyCommand::RecordRotation {
            scope,
            from_key_id,
            to_key_id,
            rewrapped,
            at,
        } = command;
        if let Some(stream) = self.scope.filter(|s| *s != scope) {
            return Err(MasterKeyError::ScopeMismatch {
                stream,
                given: scope,
            });
        }
        if from_key_id == to_key_id {
            return Err(MasterKeyError::SameKey(to_key_id));
        }
        // Not checked against `current`: a key may have been changed by
        // hand (or rotated before rotations were recorded), and the log
        // should say what this rotation did, not refuse to.
        let event = MasterKeyEvent::MasterKeyRotated {
            scope,
            from_key_id,
            to_key_id,
            rewrapped,
            at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: MasterKeyEvent) {
        match event {
            MasterKeyEvent::MasterKeyRotated {
                scope, to_key_id, ..
            } => {
                self.scope = Some(scope);
                self.current = Some(to_key_id);
                self.rotations += 1;
            }
        }
    }
}
