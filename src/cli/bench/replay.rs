//! `walletd bench --replay N`: rebuild throughput on a log of N events.
//!
//! A scratch database beside the store (same server, its own name) is seeded
//! with N wallet events of the stored schema, written through the one append
//! path; then the projections are rebuilt exactly as `walletd replay` does,
//! and, as the reference from the same run, the same log is read in global
//! order without projecting (what the store alone can deliver). The scratch
//! database is dropped at the end.

use std::time::Instant;

use serde_json::Value;
use walletd_projections::{log, replay, views, Db, LogPosition, Projector};

use crate::cli::progress::Progress;
use crate::domain::key::CustodyKind;
use crate::domain::wallet::{SignatureKind, WalletEvent, WalletKind};
use crate::domain::{Address, RecoverableSignature, Timestamp, UserId, WalletId};
use crate::store::append::{Append, StagedEvent};
use crate::store::{CommandMeta, SessionLimits};

/// Events per seeding statement.
const SEED_BATCH: usize = 5000;

pub async fn run(
    store_url: &str,
    events: u64,
    run_id: &str,
    keep: bool,
    seal: bool,
) -> Result<(), String> {
    let (admin, scratch_url, name) = scratch(store_url, run_id)?;
    let admin_db = crate::store::connect_with(&admin, 2, SessionLimits::MAINTENANCE)
        .await
        .map_err(|e| format!("cannot open {admin}: {e}"))?;
    let Db::Postgres(admin_pool) = &admin_db else {
        return Err("--replay needs a PostgreSQL --store-url".into());
    };
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin_pool)
        .await
        .map_err(|e| format!("cannot create the scratch database: {e}"))?;
    let result = measure(&scratch_url, events, seal).await;
    if keep {
        println!("replay: kept the scratch database: {scratch_url}");
        admin_db.close().await;
        return result;
    }
    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin_pool)
        .await
    {
        eprintln!("could not drop the scratch database {name}: {e}");
    }
    admin_db.close().await;
    result
}

async fn measure(url: &str, events: u64, seal: bool) -> Result<(), String> {
    let db = crate::store::connect_with(url, 4, SessionLimits::MAINTENANCE)
        .await
        .map_err(|e| e.to_string())?;
    crate::store::migrate::run(&db)
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let seeded = seed(&db, events).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    println!(
        "replay: seeded {seeded} events in {seed_secs:.1} s ({:.0} events/s through the append path)",
        seeded as f64 / seed_secs
    );

    let started = Instant::now();
    let mut after = LogPosition::START;
    let mut read = 0u64;
    loop {
        let batch = log::read_after(&db, after, 5000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = batch.last() else { break };
        after = last.at;
        read += batch.len() as u64;
    }
    let read_secs = started.elapsed().as_secs_f64();

    if seal {
        let result = super::seal::measure(&db, read as f64 / read_secs).await;
        db.close().await;
        return result;
    }
    let projector = Projector::new(db.clone(), views::all());
    let rss_before = rss_kib();
    let mut rss_peak = rss_before;
    let started = Instant::now();
    let progress = Progress::new("replay: rebuild", "events", Some(seeded));
    let applied = replay::rebuild(&projector, |n| {
        rss_peak = rss_peak.max(rss_kib());
        progress.set_position(n);
    })
    .await
    .map_err(|e| e.to_string())?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "replay: rebuilt {} projections from {applied} events in {secs:.1} s = {:.0} events/s \
         | RSS {} MiB before, {} MiB at most during the rebuild",
        projector.projections().len(),
        applied as f64 / secs,
        rss_before / 1024,
        rss_peak / 1024,
    );
    println!(
        "replay: reference, the log alone read in global order: {read} events in {read_secs:.1} s = {:.0} events/s \
         | rebuild = {:.2} of it",
        read as f64 / read_secs,
        (applied as f64 / secs) / (read as f64 / read_secs)
    );
    let copy_secs = server_side_copy(&db, &projector).await?;
    println!(
        "replay: reference, PostgreSQL copying the rebuilt rows into empty tables with the same indexes \
         (INSERT ... SELECT, no client): {copy_secs:.1} s = {:.0} events/s | rebuild = {:.2} of it",
        applied as f64 / copy_secs,
        (applied as f64 / secs) / (applied as f64 / copy_secs)
    );
    db.close().await;
    Ok(())
}

/// Seconds PostgreSQL takes to write every projection's rows again by itself,
/// each table copied into an empty one with the same columns and indexes in
/// one transaction: what writing the views costs the server with no client,
/// no protocol and no projection logic.
async fn server_side_copy(db: &Db, projector: &Projector) -> Result<f64, String> {
    let Db::Postgres(pool) = db else {
        return Err("--replay needs PostgreSQL".into());
    };
    let tables: Vec<&str> = projector
        .projections()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    for t in &tables {
        sqlx::query(&format!(
            "CREATE TABLE bench_copy_{t} (LIKE {t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ))
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    for t in &tables {
        sqlx::query(&format!("INSERT INTO bench_copy_{t} SELECT * FROM {t}"))
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    for t in &tables {
        sqlx::query(&format!("DROP TABLE bench_copy_{t}"))
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(secs)
}

/// Wallets of every kind, interleaved, until `events` are written: server
/// wallets with three signatures each (half the wallets), JWT custodial
/// wallets made default, and registered addresses queued and whitelisted.
async fn seed(db: &Db, events: u64) -> Result<u64, String> {
    let meta = serde_json::to_value(CommandMeta::system("bench-replay").to_map())
        .map_err(|e| e.to_string())?;
    // Projections copy signatures, they do not verify them.
    let signature = RecoverableSignature::new([7; 32], [9; 32], 0);
    let at = Timestamp::now();
    let mut written = 0u64;
    let mut wallet = 0u64;
    let mut append = Append::default();
    let progress = Progress::new("replay: seed", "events", Some(events));
    while written < events {
        wallet += 1;
        let id = WalletId::random();
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&wallet.to_be_bytes());
        bytes[8..16].copy_from_slice(&id.as_uuid().as_bytes()[..8]);
        let address = Address::from_bytes(bytes);
        let user = UserId::parse(&format!("replay-user-{wallet}")).map_err(|e| e.to_string())?;
        let created = |kind| WalletEvent::WalletCreated {
            wallet_id: id,
            user_id: user.clone(),
            kind,
            custody: CustodyKind::Local,
            key_id: format!("bench-{wallet}"),
            address,
            public_key: format!("0x04{}", "ab".repeat(64)),
            label: None,
            created_at: at,
        };
        let stream = match wallet % 4 {
            // Server wallets, signing.
            0 | 1 => {
                let mut s = vec![created(WalletKind::Server)];
                for n in 0..3u64 {
                    s.push(WalletEvent::MessageSigned {
                        wallet_id: id,
                        kind: SignatureKind::Message,
                        scheme: "eip191".into(),
                        digest: format!("0x{:064x}", wallet * 4 + n),
                        message_len: 12,
                        signature,
                        requested_by: "apikey:bench".into(),
                        at,
                        chain_id: None,
                        primary_type: None,
                        domain_name: None,
                        verifying_contract: None,
                        tx_nonce: None,
                        tx_to: None,
                        tx_value: None,
                        tx_hash: None,
                    });
                }
                s
            }
            // A JWT user's custodial wallet, made their default.
            2 => vec![
                created(WalletKind::Custodial),
                WalletEvent::DefaultWalletSet {
                    wallet_id: id,
                    user_id: user.clone(),
                    at,
                },
            ],
            // A registered (Sila) address, queued and then whitelisted.
            _ => vec![
                WalletEvent::WalletRegistered {
                    wallet_id: id,
                    user_id: user.clone(),
                    address,
                    nickname: Some(format!("n{wallet}")),
                    ownership_proof: None,
                    registered_at: at,
                },
                WalletEvent::WhitelistQueued {
                    wallet_id: id,
                    queued_at: at,
                    eligible_at: at,
                },
                WalletEvent::WalletWhitelisted { wallet_id: id, at },
            ],
        };
        for (seq, event) in stream.into_iter().enumerate() {
            if written >= events {
                break;
            }
            append
                .events
                .push(staged(id, seq as i64 + 1, &event, &meta)?);
            written += 1;
        }
        if append.events.len() >= SEED_BATCH {
            append.commit(db).await.map_err(|e| e.to_string())?;
            append.events.clear();
            progress.set_position(written);
        }
    }
    append.commit(db).await.map_err(|e| e.to_string())?;
    progress.set_position(written);
    progress.finish();
    Ok(written)
}

fn staged(
    id: WalletId,
    sequence: i64,
    event: &WalletEvent,
    meta: &Value,
) -> Result<StagedEvent, String> {
    use cqrs_es::DomainEvent;
    Ok(StagedEvent {
        aggregate_type: "wallet",
        aggregate_id: id.to_string(),
        sequence,
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(event).map_err(|e| e.to_string())?,
        metadata: meta.clone(),
    })
}

/// (URL of the store's own database, URL of the scratch database, its name).
fn scratch(store_url: &str, run_id: &str) -> Result<(String, String, String), String> {
    let (base, query) = match store_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (store_url, String::new()),
    };
    let Some(slash) = base.rfind('/').filter(|&i| i > "postgres://".len()) else {
        return Err("--store-url must name a database: postgres://host/db".into());
    };
    let name = format!("walletd_replay_{run_id}");
    Ok((
        store_url.to_string(),
        format!("{}/{name}{query}", &base[..slash]),
        name,
    ))
}

/// This process's resident set in KiB (Linux), 0 where unknown.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
