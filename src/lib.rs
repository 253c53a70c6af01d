//! walletd: an event-sourced wallet ledger.
//!
//! Layout: `domain` (aggregate, commands, events, value types), `custody` (keys,
//! signing, encryption at rest), `store` (event store on PostgreSQL or SQLite),
//! `service` (use cases shared by the API dialects), `auth`, `api` (one module per
//! API dialect), `cli`. The read models live in the `walletd-projections` crate.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod custody;
pub mod domain;
pub mod ledger;
pub mod metrics;
pub mod reports;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod transparency;

pub use walletd_projections as projections;
