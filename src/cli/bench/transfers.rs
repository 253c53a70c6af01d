//! `walletd bench --transfers`: money moving through the JWT API at the
//! bench's concurrency, uniform and hot-account (80 % of transfers credit
//! 1 % of the wallets), each answered once completed (the process manager
//! credited the destination) and answered at the debit
//! (`Prefer: respond-async`). For the asynchronous phases the bench also
//! times the drain: how long until the store holds no transfer in transit,
//! so the end-to-end rate counts both legs. The same run measures JWT
//! creates (the write-path reference) and, with --store-url, the store's
//! single-commit limit.

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Row;
use walletd_projections::{with_db, Db};

use super::{print_header, run_phase, store_limit, BenchArgs, Http, Phase};

/// Each transfer moves this much (ETH): the funding below covers every
/// phase many times over.
const AMOUNT: &str = "0.000001";
const FUNDING: &str = "1000000";

pub async fn run(args: &BenchArgs, run_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    let secret = args
        .jwt_secret
        .as_ref()
        .ok_or("--transfers needs --jwt-secret (the server's WALLETD_JWT_SECRET)")?
        .expose()
        .to_owned();
    let base = args.url.trim_end_matches('/').to_string();
    let (total, concurrency) = (args.requests, args.concurrency);
    let wallets = args.wallets.unwrap_or(1000).max(2);
    let store_url = args.store_url.clone();
    let limit_id = run_id.to_string();
    let run_id = run_id.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-transfers".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let store = match &store_url {
                    Some(url) => Some(
                        crate::store::connect(url, 2)
                            .await
                            .map_err(|e| format!("--store-url: {e}"))?,
                    ),
                    None => None,
                };
                phases(
                    &base,
                    &secret,
                    &run_id,
                    total,
                    concurrency,
                    wallets,
                    store.as_ref(),
                )
                .await
            });
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot start the HTTP client thread: {e}"))?;
    let phases = rx
        .await
        .map_err(|_| "the HTTP client thread panicked".to_string())??;
    if let Some(url) = &args.store_url {
        let store = store_limit(url, &limit_id, total, concurrency).await?;
        println!();
        println!(
            "store limit (single-row commits) {:.1}/s at concurrency {concurrency}",
            store.throughput()
        );
        for p in &phases {
            println!(
                "{} = {:.2} of store limit",
                p.name,
                p.throughput() / store.throughput()
            );
        }
    }
    Ok(())
}

fn token(key: &jsonwebtoken::EncodingKey, sub: &str, role: &str) -> Result<String, String> {
    let claims = json!({ "sub": sub, "role": role, "exp": chrono::Utc::now().timestamp() + 7200 });
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, key)
        .map(|t| format!("Bearer {t}"))
        .map_err(|e| format!("cannot mint a token: {e}"))
}

/// splitmix64: the phases' choices are a function of the request number,
/// so two runs move money between the same wallets.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// (from, to) of request `i`: uniform, or with 80 % crediting one of the
/// hot 1 %.
fn pair(i: usize, n: usize, hot: bool) -> (usize, usize) {
    let h = mix(i as u64);
    let from = (h % n as u64) as usize;
    let hot_count = (n / 100).max(1);
    let to = if hot && (h >> 32) % 10 < 8 {
        ((h >> 40) % hot_count as u64) as usize
    } else {
        ((h >> 16) % n as u64) as usize
    };
    if to == from {
        (from, (to + 1) % n)
    } else {
        (from, to)
    }
}

async fn phases(
    base: &str,
    secret: &str,
    run_id: &str,
    total: usize,
    concurrency: usize,
    wallets: usize,
    store: Option<&Db>,
) -> Result<Vec<Phase>, String> {
    let key = Rc::new(jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()));
    let admin = token(&key, &format!("bench-{run_id}-admin"), "ADMIN")?;
    let http = Rc::new(Http::new(base.to_string(), admin, concurrency));
    println!("transfers between {wallets} JWT wallets, {AMOUNT} ETH each");
    print_header();
    let mut out = Vec::new();

    // The reference of the same run: JWT creates (one user each).
    let (create, ids) = {
        let (http, key) = (http.clone(), key.clone());
        let prefix = format!("bench-{run_id}-t");
        run_phase("jwt-create", wallets, concurrency, move |i| {
            let (http, key, user) = (http.clone(), key.clone(), format!("{prefix}{i}"));
            async move {
                let auth = token(&key, &user, "SUBSCRIBER")?;
                let body = http
                    .post_as(&auth, "/api/wallet/create", &json!({ "label": "bench" }))
                    .await?;
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["wallet"]["id"].as_str().map(str::to_owned))
                    .ok_or_else(|| format!("no wallet id in {}", String::from_utf8_lossy(&body)))
            }
        })
        .await?
    };
    create.print();
    if ids.len() < 2 {
        return Err("fewer than two wallets were created".into());
    }
    let ids: Rc<[String]> = ids.into();
    out.push(create);

    let (fund, _) = {
        let (http, ids) = (http.clone(), ids.clone());
        let prefix = format!("bench-{run_id}-fund");
        run_phase("issue", ids.len(), concurrency, move |i| {
            let http = http.clone();
            let path = format!("/api/wallet/{}/issue", ids[i]);
            let body = json!({ "amount": FUNDING, "reference": format!("{prefix}-{i}") });
            async move { http.post(&path, &body).await.map(drop) }
        })
        .await?
    };
    fund.print();
    out.push(fund);

    for (name, hot, respond_async) in [
        ("transfer", false, false),
        ("transfer-hot", true, false),
        ("transfer-async", false, true),
        ("xfer-hot-async", true, true),
    ] {
        let (http, ids) = (http.clone(), ids.clone());
        let prefix = format!("bench-{run_id}-{name}");
        let (phase, _) = run_phase(name, total, concurrency, move |i| {
            let http = http.clone();
            let (from, to) = pair(i, ids.len(), hot);
            let body = json!({
                "fromWalletId": ids[from],
                "toWalletId": ids[to],
                "amount": AMOUNT,
                "currency": "ETH",
            });
            let mut headers = vec![("Idempotency-Key", format!("{prefix}-{i}"))];
            if respond_async {
                headers.push(("Prefer", "respond-async".to_string()));
            }
            async move {
                http.post_with(&http.auth, "/api/wallet/transfer", &body, &headers)
                    .await
                    .map(drop)
            }
        })
        .await?;
        phase.print();
        if respond_async {
            if let Some(db) = store {
                let started = Instant::now();
                drain(db).await?;
                let drained = started.elapsed();
                let end_to_end = phase.latencies.len() as f64
                    / (phase.wall + drained).as_secs_f64().max(f64::EPSILON);
                println!(
                    "  second legs done {:.3} s after the last answer: {end_to_end:.1} completed transfers/s end to end",
                    drained.as_secs_f64()
                );
            }
        }
        out.push(phase);
    }
    Ok(out)
}

/// Waits until no transfer is in transit (every debit credited or
/// returned, and projected).
async fn drain(db: &Db) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let pending: i64 = with_db!(db, pool => {
            sqlx::query(
                "SELECT COUNT(*) AS n FROM ledger_movements
                  WHERE kind = 'transfer_out' AND status = 'pending'",
            )
            .fetch_one(pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(|e| format!("counting transfers in transit: {e}"))?
        });
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{pending} transfers still in transit after 600 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
