//! Database transactions per second while nobody sends a request: what the
//! running servers' background work (projector, monitor, schedulers, pools)
//! costs the store when there is nothing to do.

use std::time::{Duration, Instant};

use super::xacts::Counter;

/// Lets the load's tail (projector catch-up, key-pool refills after the
/// creates, batched refusal writes) finish before counting.
const SETTLE: Duration = Duration::from_secs(15);

/// Counts commits on the store for `secs` seconds of silence and prints the
/// rate. Every process on the database is counted, which is the point: a
/// second idle instance shows up here too.
pub async fn measure(store_url: &str, secs: u64) -> Result<(), String> {
    let Some(counter) = Counter::open(store_url).await? else {
        println!("idle: SQLite keeps no transaction counter; not measured");
        return Ok(());
    };
    tokio::time::sleep(SETTLE).await;
    let Some(before) = counter.sample().await else {
        return Err("cannot read pg_stat_database".into());
    };
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs.max(1))).await;
    let Some(after) = counter.sample().await else {
        return Err("cannot read pg_stat_database".into());
    };
    // The counter's own read of `after` is one commit.
    let committed = (after - before - 1).max(0);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "idle: {committed} database transactions in {elapsed:.1} s = {:.2}/s (every process on the database)",
        committed as f64 / elapsed
    );
    Ok(())
}
