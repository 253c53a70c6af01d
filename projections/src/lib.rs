//! walletd's read side.
//!
//! Projections here depend only on the *stored* form of events (event type, version,
//! JSON payload, metadata and global log position), the way any downstream consumer
//! of the log would. That keeps the stored event schema an explicit, versioned
//! contract and lets this crate stay free of the write side's types.

pub mod bulk;
pub mod db;
pub mod lag;
pub mod ledger_queries;
pub mod log;
pub mod projector;
pub mod queries;
pub mod replay;
pub mod sila_queries;
pub mod stmt;
pub mod table;
pub mod views;
pub mod wakeup;
pub mod write_set;

pub use db::{Backend, Db};
pub use log::{LogPosition, StoredEvent};
pub use projector::{Projector, ProjectorHandle};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored event {position} ({event_type} v{version}) cannot be read: {reason}")]
    Undecodable {
        position: i64,
        event_type: String,
        version: String,
        reason: String,
    },
    #[error("a projection statement cannot be sent: {0}")]
    BadStatement(String),
    /// The log asks for a row the read model cannot hold (a balance below
    /// zero, a total past 2^128 − 1): the write side guarantees neither, so
    /// the pass stops rather than record a wrong number.
    #[error("{table}: {reason}")]
    Inconsistent { table: &'static str, reason: String },
    #[error("timed out waiting for projections to reach the log position")]
    Timeout,
}
