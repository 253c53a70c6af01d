//! `walletd bench --replay N --seal`: the transparency log's throughput on a
//! seeded log of N events — sealing (leaves, stored hashes, a signed
//! checkpoint per pass), exporting (JSON lines, to nowhere) and verifying
//! (every leaf recomputed, the tree head checked at every checkpoint) and two
//! reports recomputed from the log — each beside the rate the log alone is read at in the same run.

use std::io::Write as _;
use std::time::Instant;

use walletd_projections::Db;

use crate::cli::progress::Progress;
use crate::reports::{self, AsOf, Cut, ReportName};
use crate::transparency::export::page;
use crate::transparency::sealer::{self, BATCH};
use crate::transparency::signing;
use crate::transparency::verify::Checker;
use crate::transparency::LogSigner;

pub async fn measure(db: &Db, read_rate: f64) -> Result<(), String> {
    let (skey, vkey) = LogSigner::generate("walletd.bench/log").map_err(|e| e.to_string())?;
    let signer = LogSigner::parse(&skey).map_err(|e| e.to_string())?;
    let e = |e: crate::transparency::hashes::TreeError| e.to_string();

    let started = Instant::now();
    let progress = Progress::new("seal", "events", None);
    let mut size = 0;
    loop {
        match sealer::pass(db, &signer, BATCH).await.map_err(e)? {
            Some(s) if s.leaves > 0 => {
                size = s.size;
                progress.set_position(size);
            }
            _ => break,
        }
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    let rate = size as f64 / secs;
    println!(
        "seal: {size} events in {secs:.1} s = {rate:.0} events/s | log read alone {read_rate:.0}/s, seal = {:.2} of it",
        rate / read_rate
    );

    let started = Instant::now();
    let mut sink = std::io::sink();
    let (mut next, mut bytes) = (0u64, 0u64);
    while next < size {
        let entries = page(db, next, size, 1000).await.map_err(e)?;
        let Some(last) = entries.last() else { break };
        next = last.index + 1;
        for entry in &entries {
            let line = serde_json::to_vec(&entry.to_json()).map_err(|e| e.to_string())?;
            bytes += line.len() as u64 + 1;
            sink.write_all(&line).map_err(|e| e.to_string())?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = size as f64 / secs;
    println!(
        "export: {size} events ({} MiB of JSON lines) in {secs:.1} s = {rate:.0} events/s | export = {:.2} of the log read",
        bytes / (1024 * 1024),
        rate / read_rate
    );

    let started = Instant::now();
    let notes: Vec<String> = walletd_projections::with_db!(db, pool => {
        use sqlx::Row as _;
        let mut out = Vec::new();
        for r in sqlx::query("SELECT note FROM log_checkpoints ORDER BY size")
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?
        {
            out.push(r.try_get("note").map_err(|e| e.to_string())?);
        }
        out
    });
    let mut checkpoints = Vec::with_capacity(notes.len());
    for note in &notes {
        checkpoints.push(signing::open(note, &vkey).map_err(|e| e.to_string())?);
    }
    let mut checker = Checker::new(checkpoints);
    let mut next = 0u64;
    while next < size {
        let entries = page(db, next, size, 1000).await.map_err(e)?;
        let Some(last) = entries.last() else { break };
        next = last.index + 1;
        for entry in &entries {
            checker.feed(entry).map_err(|f| f.to_string())?;
        }
    }
    let verified = checker.finish().map_err(|f| f.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let rate = verified as f64 / secs;
    println!(
        "verify: {verified} events against {} checkpoints in {secs:.1} s = {rate:.0} events/s | verify = {:.2} of the log read",
        notes.len(),
        rate / read_rate
    );

    // A report recomputed from the log as of its end: the same read, plus a
    // fold that keeps one entry per wallet.
    for name in [ReportName::WalletsCreated, ReportName::SigningActivity] {
        let started = Instant::now();
        let report = reports::compute(db, name, &AsOf::Log(Cut::Events(size)))
            .await
            .map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        let rate = report.reached.events as f64 / secs;
        println!(
            "report {}: {} events into {} rows in {secs:.1} s = {rate:.0} events/s | report = {:.2} of the log read",
            name.as_str(),
            report.reached.events,
            report.table.rows.len(),
            rate / read_rate
        );
    }
    Ok(())
}
