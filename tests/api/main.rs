//! The one integration-test binary (one link step). Every scenario that touches
//! storage runs against SQLite and against a real PostgreSQL.

mod helpers;

mod apps;
mod cli_output;
mod compose;
mod concurrency;
mod config_checks;
mod cosigner;
mod crash;
mod crash_mixed;
mod custody;
mod event_docs;
mod event_log;
mod event_versions;
mod fault;
mod fuzz;
mod idempotency;
mod instances;
mod jwt_money;
mod jwt_wallets;
mod key_events;
mod ledger_crash;
mod ledger_flow;
mod ledger_read;
mod logs;
mod metrics;
mod mpc;
mod openapi;
mod ownership;
mod refusals;
mod replay;
mod reports;
mod request_signatures;
mod server_wallets;
mod signing;
mod sila;
mod sila_client;
mod sila_kyc;
mod sila_money;
mod sila_sdk_compat;
mod transparency;
mod whitelist;
