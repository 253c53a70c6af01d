//! Prometheus metrics, served at `GET /metrics`.
//!
//! Library code records with the `metrics` crate's macros, which do nothing
//! until a recorder is installed. `walletd serve` installs the Prometheus
//! recorder once per process ([`install`]); a process-global `OnceLock`
//! makes a second install (the integration tests start many servers in one
//! process) a no-op that shares the first. Counters and histograms are this
//! process's own: with several `walletd serve` on one database each exports
//! its part, and Prometheus sums them. Facts that belong to the database
//! (projection lag, the whitelist queue) are read from it when `/metrics` is
//! scraped ([`sample`]), so every instance reports the same value for them;
//! process-local levels (key pools, the connection pool) are read then too.
//!
//! Labels are fixed vocabularies (route patterns, command names, custody
//! kinds, outcomes): never an id, address, handle or anything secret, so the
//! number of series stays bounded whatever the traffic.

pub mod http;
pub mod sample;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::CommandError;

/// What `/metrics` answers with: Prometheus's text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Latency buckets (seconds), from a cached read (sub-millisecond) to an MPC
/// key generation waited for (tens of seconds).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a scrape folds them too); without it they pile up in memory.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The kind of a series, as Prometheus's `# TYPE` line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

// Every series walletd exports. The names are the contract with dashboards
// and alerts (`deploy/grafana-walletd.json` is checked against [`CATALOG`]).

pub const BUILD_INFO: &str = "walletd_build_info";
pub const HTTP_REQUESTS: &str = "walletd_http_requests_total";
pub const HTTP_DURATION: &str = "walletd_http_request_duration_seconds";
pub const COMMANDS: &str = "walletd_commands_total";
pub const CONCURRENCY_RETRIES: &str = "walletd_concurrency_retries_total";
pub const PROJECTION_LAG_EVENTS: &str = "walletd_projection_lag_events";
pub const PROJECTION_LAG_SECONDS: &str = "walletd_projection_lag_seconds";
pub const PROJECTOR_STALLED: &str = "walletd_projector_stalled";
pub const PROJECTOR_EVENTS: &str = "walletd_projector_events_total";
pub const PROJECTOR_PASS_FAILURES: &str = "walletd_projector_pass_failures_total";
pub const PROJECTOR_PASS_DURATION: &str = "walletd_projector_pass_duration_seconds";
pub const WHITELIST_QUEUED: &str = "walletd_whitelist_queued";
pub const WHITELIST_DUE: &str = "walletd_whitelist_due";
pub const WHITELIST_OLDEST_DUE: &str = "walletd_whitelist_oldest_due_seconds";
pub const WHITELIST_COMPLETED: &str = "walletd_whitelist_completed_total";
pub const KEY_POOL_READY: &str = "walletd_key_pool_ready";
pub const KEY_POOL_TARGET: &str = "walletd_key_pool_target";
pub const KEY_POOL_WAITERS: &str = "walletd_key_pool_waiters";
pub const KEY_POOL_GENERATING: &str = "walletd_key_pool_generating";
pub const KEY_POOL_ADDED: &str = "walletd_key_pool_keys_added_total";
pub const KEY_POOL_FAILURES: &str = "walletd_key_pool_generation_failures_total";
pub const CREATE_KEY_DURATION: &str = "walletd_create_key_duration_seconds";
pub const CREATE_KEY_FAILURES: &str = "walletd_create_key_failures_total";
pub const SIGNING_DURATION: &str = "walletd_signing_duration_seconds";
pub const SIGNATURES: &str = "walletd_signatures_total";
pub const COSIGNER_ROUND_TRIPS: &str = "walletd_cosigner_round_trips_total";
pub const COSIGNER_ROUND_TRIP_DURATION: &str = "walletd_cosigner_round_trip_duration_seconds";
pub const DB_POOL_OPEN: &str = "walletd_db_pool_connections";
pub const DB_POOL_IDLE: &str = "walletd_db_pool_idle_connections";
pub const DB_POOL_MAX: &str = "walletd_db_pool_max_connections";
pub const STORE_UP: &str = "walletd_store_up";

/// Every series: name, kind, unit, help text (the `# HELP` line).
pub const CATALOG: &[(&str, Kind, Option<Unit>, &str)] = &[
    (BUILD_INFO, Kind::Gauge, None, "Always 1; the version label is walletd's."),
    (HTTP_REQUESTS, Kind::Counter, None,
     "HTTP requests answered, by method, route pattern (`unmatched` for the 404 fallback) and status."),
    (HTTP_DURATION, Kind::Histogram, Some(Unit::Seconds),
     "Time from receiving a request to its answer, by method and route pattern."),
    (COMMANDS, Kind::Counter, None,
     "Commands answered, by aggregate, command and outcome (ok, refused, conflict, replayed, address_claimed, unavailable, error)."),
    (CONCURRENCY_RETRIES, Kind::Counter, None,
     "Optimistic-concurrency races lost and decided again, by aggregate (`unit_of_work` for multi-aggregate units)."),
    (PROJECTION_LAG_EVENTS, Kind::Gauge, None,
     "Committed events a projection has not applied yet (read from the database at scrape time; counting stops at 1,000,000)."),
    (PROJECTION_LAG_SECONDS, Kind::Gauge, Some(Unit::Seconds),
     "Age of the oldest event a projection has not applied yet (0 when none waits)."),
    (PROJECTOR_STALLED, Kind::Gauge, None,
     "1 while this process's projector is known to be stuck (read-your-writes waits are cut short)."),
    (PROJECTOR_EVENTS, Kind::Counter, None, "Events this process's projector passes applied."),
    (PROJECTOR_PASS_FAILURES, Kind::Counter, None, "Projector passes that failed and were retried."),
    (PROJECTOR_PASS_DURATION, Kind::Histogram, Some(Unit::Seconds),
     "Duration of this process's projector passes that applied events."),
    (WHITELIST_QUEUED, Kind::Gauge, None, "Wallets queued for the delayed whitelist (database-wide)."),
    (WHITELIST_DUE, Kind::Gauge, None, "Queued wallets whose delay has passed and that wait for the scheduler."),
    (WHITELIST_OLDEST_DUE, Kind::Gauge, Some(Unit::Seconds),
     "How long the oldest due whitelist entry has been due (0 when none is)."),
    (WHITELIST_COMPLETED, Kind::Counter, None, "Whitelistings this process's scheduler completed."),
    (KEY_POOL_READY, Kind::Gauge, None, "Keys ready in this process's pool, by custody (local, mpc)."),
    (KEY_POOL_TARGET, Kind::Gauge, None, "Keys the pool keeps ready (WALLETD_KEY_POOL, WALLETD_MPC_KEY_POOL)."),
    (KEY_POOL_WAITERS, Kind::Gauge, None, "Creates waiting for the pool's next key."),
    (KEY_POOL_GENERATING, Kind::Gauge, None, "Keys the pool's refill is generating right now."),
    (KEY_POOL_ADDED, Kind::Counter, None,
     "Keys added to the pool, by custody and source (generated, reclaimed); its rate is the refill rate."),
    (KEY_POOL_FAILURES, Kind::Counter, None, "Failed key generations of the pool's refill, by custody."),
    (CREATE_KEY_DURATION, Kind::Histogram, Some(Unit::Seconds),
     "Time a wallet create took to get its key (pool or generation), by custody."),
    (CREATE_KEY_FAILURES, Kind::Counter, None,
     "Creates that got no key, by custody and reason (not_ready: the MPC wait ran out; error)."),
    (SIGNING_DURATION, Kind::Histogram, Some(Unit::Seconds),
     "Time custody took to sign (MPC: both parties and their round trips), by custody."),
    (SIGNATURES, Kind::Counter, None, "Signings asked of custody, by custody and outcome (ok, error)."),
    (COSIGNER_ROUND_TRIPS, Kind::Counter, None,
     "Exchanges with the MPC cosigner, by step (dkg_start, dkg_finish, sign_start, sign_finish, release, probe) and outcome (ok, unavailable, error)."),
    (COSIGNER_ROUND_TRIP_DURATION, Kind::Histogram, Some(Unit::Seconds),
     "Duration of one exchange with the MPC cosigner, by step."),
    (DB_POOL_OPEN, Kind::Gauge, None, "Database connections this process holds open (in use and idle)."),
    (DB_POOL_IDLE, Kind::Gauge, None, "Open database connections that are idle."),
    (DB_POOL_MAX, Kind::Gauge, None, "Most database connections this process opens (WALLETD_DB_POOL)."),
    (STORE_UP, Kind::Gauge, None,
     "1 when the database answered this scrape's queries within 2 s, else 0 (database-wide gauges then keep their last value)."),
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for the process, once; later calls
/// return the same handle. `None` when another recorder was installed first
/// (an embedding program's own): walletd then records into that one.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics answers 404");
                return None;
            }
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            let upkeep = handle.clone();
            // A thread, not a task: the recorder outlives any one runtime
            // (the tests start and stop many).
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded at scrapes only");
            }
            Some(handle)
        })
        .as_ref()
}

/// The installed recorder's handle, if [`install`] installed one.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

fn describe() {
    for &(name, kind, unit, help) in CATALOG {
        match (kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(name, u, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(name, u, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(name, u, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// The `outcome` label of a command's answer.
pub fn command_outcome<T, E: std::error::Error>(
    result: &Result<T, CommandError<E>>,
) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CommandError::Domain(_)) => "refused",
        Err(CommandError::Conflict) => "conflict",
        Err(CommandError::Replayed) => "replayed",
        Err(CommandError::AddressClaimed) => "address_claimed",
        Err(CommandError::Unavailable(_)) => "unavailable",
        Err(CommandError::Store(_)) => "error",
    }
}

/// Counts one answered command.
pub fn record_command(aggregate: &'static str, command: &'static str, outcome: &'static str) {
    metrics::counter!(COMMANDS, "aggregate" => aggregate, "command" => command, "outcome" => outcome)
        .increment(1);
}

/// Counts one optimistic-concurrency race lost and retried.
pub fn record_retry(aggregate: &'static str) {
    metrics::counter!(CONCURRENCY_RETRIES, "aggregate" => aggregate).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names_with_conventional_suffixes() {
        let mut seen = std::collections::HashSet::new();
        for &(name, kind, unit, help) in CATALOG {
            assert!(seen.insert(name), "{name} twice");
            assert!(name.starts_with("walletd_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert!(!help.is_empty(), "{name}");
            assert_eq!(kind == Kind::Counter, name.ends_with("_total"), "{name}");
            if unit == Some(Unit::Seconds) {
                assert!(name.ends_with("_seconds"), "{name}");
            }
        }
    }
}
