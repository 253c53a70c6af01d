//! The write path and store wiring: connecting to the backend named by
//! `DATABASE_URL`, running migrations, and storing what aggregates decide.
//!
//! A command goes: [`AggregateStore::execute`] → its aggregate's
//! [`command_queue`] (one batch at a time per aggregate in this process) →
//! [`staging`] decides it on the cached or loaded state → [`append`] stores
//! the batch's events with one INSERT that returns their positions →
//! [`read_side`] waits until the projections have them. A [`UnitOfWork`]
//! stages commands on several aggregates and commits them with the same
//! append; [`retry`] runs it again after a lost race.

pub mod aggregate_store;
pub(crate) mod append;
pub(crate) mod checkpointed;
pub(crate) mod command_queue;
pub mod connect;
pub mod error;
pub(crate) mod group_commit;
pub(crate) mod heads;
pub mod metadata;
pub mod migrate;
pub mod nonces;
pub mod read_side;
pub mod retry;
pub(crate) mod staging;
pub(crate) mod state_cache;
pub mod unit_of_work;
pub mod upcast;

pub use aggregate_store::{AggregateStore, WalletStore};
pub use connect::{connect, connect_with, SessionLimits, StoreError};
pub use error::{CommandError, CommitError};
pub use metadata::CommandMeta;
pub use nonces::Nonce;
pub use unit_of_work::UnitOfWork;
