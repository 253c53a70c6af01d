//! The write path's one error type.

use std::convert::Infallible;

use crate::domain::wallet::WalletError;

/// Why a command (or a unit of work) stored nothing, or may not have.
/// `E` is the aggregate's own refusal; a unit of work spanning several
/// aggregates reports store failures only ([`CommitError`]).
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error = WalletError> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(#[from] E),
    /// Another writer changed an aggregate first, every retry included.
    #[error("a concurrent change to the same aggregate won; retry")]
    Conflict,
    /// The request's once-only key is already recorded: it is a replay.
    #[error("request already processed")]
    Replayed,
    /// A wallet names an address another wallet holds (the store's address
    /// claim, see migration 0010).
    #[error("the address belongs to another wallet")]
    AddressClaimed,
    /// The store could not be reached; the write may or may not be stored.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store error: {0}")]
    Store(String),
}

/// A failure of the append itself, before any aggregate's rules apply.
pub type CommitError = CommandError<Infallible>;

impl CommitError {
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if is_address_claimed(db.as_ref()) => Self::AddressClaimed,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            // Two multi-row appends taking the same sequence numbers in
            // opposite orders (a batch of debits, the ledger's process
            // manager's credits) wait on each other; PostgreSQL breaks the
            // cycle by failing one. It is the same lost race as a unique
            // violation, found later: decided again like one.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01") | Some("40001")) =>
            {
                Self::Conflict
            }
            _ if super::connect::is_unavailable(&e) => Self::Unavailable(e.to_string()),
            _ => Self::Store(e.to_string()),
        }
    }

    /// The same failure, as seen by a command on an aggregate with error `E`.
    pub fn widen<E: std::error::Error>(self) -> CommandError<E> {
        match self {
            Self::Domain(never) => match never {},
            Self::Conflict => CommandError::Conflict,
            Self::Replayed => CommandError::Replayed,
            Self::AddressClaimed => CommandError::AddressClaimed,
            Self::Unavailable(m) => CommandError::Unavailable(m),
            Self::Store(m) => CommandError::Store(m),
        }
    }
}

impl<E: std::error::Error> CommandError<E> {
    /// Loading failed in cqrs-es's repository.
    pub(crate) fn from_load(e: cqrs_es::AggregateError<E>) -> Self {
        use cqrs_es::AggregateError as A;
        match e {
            A::UserError(e) => Self::Domain(e),
            A::AggregateConflict => Self::Conflict,
            A::DatabaseConnectionError(e) => Self::Unavailable(e.to_string()),
            A::DeserializationError(e) => Self::Store(e.to_string()),
            A::UnexpectedError(e) => match e.downcast_ref::<sqlx::Error>() {
                Some(s) if super::connect::is_unavailable(s) => Self::Unavailable(e.to_string()),
                _ => Self::Store(e.to_string()),
            },
        }
    }
}

/// The address-claim trigger's refusal: SQLSTATE WDA01 on PostgreSQL, the
/// RAISE message on SQLite.
pub(crate) fn is_address_claimed(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.code().as_deref() == Some("WDA01") || db.message().starts_with("address_claimed")
}
