//! Store wiring: connecting to the backend named by `DATABASE_URL`, running
//! migrations, and executing any aggregate's commands through cqrs-es on either
//! backend (`AggregateStore`; `WalletStore` is the wallet's).

pub mod aggregate_store;
pub mod connect;
pub mod metadata;
pub mod migrate;
pub mod nonces;
pub mod read_side;
pub mod turns;
pub mod unit_of_work;

pub use aggregate_store::{AggregateStore, CommandError, WalletStore};
pub use connect::{connect, connect_with, SessionLimits, StoreError};
pub use metadata::CommandMeta;
pub use nonces::Nonce;
pub use unit_of_work::{CommitError, UnitOfWork};
