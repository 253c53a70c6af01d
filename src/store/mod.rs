//! Store wiring: connecting to the backend named by `DATABASE_URL`, running
//! migrations, and executing wallet commands through cqrs-es on either backend.

pub mod connect;
pub mod metadata;
pub mod migrate;
pub mod wallets;

pub use connect::{connect, StoreError};
pub use metadata::CommandMeta;
pub use wallets::{CommandError, WalletStore};
