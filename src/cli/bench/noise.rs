//! `walletd bench --noise-rate R`: do creates keep their rate while anyone
//! floods the service with unauthenticated requests?
//!
//! Three phases of `--noise-secs` each, closed-loop creates at `--concurrency`:
//! alone, then while a generator on a thread of its own sends R
//! unauthenticated requests per second (open loop, paced against the clock, at
//! most [`MAX_IN_FLIGHT`] outstanding) to the JWT API, which refuses and
//! counts each one, then alone again. The reference is the mean of the two
//! quiet phases, so a store that slows as it grows does not flatter or blame
//! the noise. Prints the create rates, the ratio, what the noise achieved and,
//! with `--store-url`, how many refusal rows it cost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use walletd_projections::{with_db, Db};

use super::{gather, print_header, BenchArgs, Http, Phase, WorkerOutput, REQUEST_TIMEOUT};

/// Noise requests outstanding at once; beyond that the generator is saturated
/// and says so instead of queueing.
const MAX_IN_FLIGHT: usize = 512;
/// The generator's pacing tick.
const TICK: Duration = Duration::from_millis(2);

pub async fn run(args: &BenchArgs, rate: u32, run_id: &str) -> Result<(), String> {
    let secs = Duration::from_secs(args.noise_secs.max(1));
    println!(
        "noise: {rate} unauthenticated requests/s for {} s against POST /api/wallet/create, \
         creates at concurrency {}",
        secs.as_secs(),
        args.concurrency
    );
    let store = match &args.store_url {
        Some(url) => Some(
            crate::store::connect(url, 2)
                .await
                .map_err(|e| format!("--store-url: {e}"))?,
        ),
        None => None,
    };
    let rows_before = refusal_rows(store.as_ref()).await?;

    let base = args.url.trim_end_matches('/').to_string();
    let auth = args.bearer()?;
    let (concurrency, run_id) = (args.concurrency, run_id.to_string());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-http".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let http = Rc::new(Http::new(base.clone(), auth, concurrency));
                print_header();
                let reference =
                    creates_for(http.clone(), "create-alone", secs, concurrency, &run_id).await?;
                reference.print();
                let noise = std::thread::Builder::new()
                    .name("bench-noise".into())
                    .spawn(move || {
                        actix_web::rt::System::new().block_on(generate(base, rate, secs))
                    })
                    .map_err(|e| format!("cannot start the noise thread: {e}"))?;
                let noisy =
                    creates_for(http.clone(), "create-noise", secs, concurrency, &run_id).await?;
                noisy.print();
                let report = noise
                    .join()
                    .map_err(|_| "the noise thread panicked".to_string())?;
                let after = creates_for(http, "create-after", secs, concurrency, &run_id).await?;
                after.print();
                Ok::<_, String>((reference, noisy, after, report))
            });
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot start the HTTP client thread: {e}"))?;
    let (before, noisy, after, report) = rx
        .await
        .map_err(|_| "the HTTP client thread panicked".to_string())??;

    println!();
    report.print(secs);
    let reference = (before.throughput() + after.throughput()) / 2.0;
    println!(
        "creates under noise: {:.1}/s against {:.1}/s alone (mean of {:.1} before and {:.1} after) = {:.2} of the reference",
        noisy.throughput(),
        reference,
        before.throughput(),
        after.throughput(),
        noisy.throughput() / reference.max(f64::EPSILON)
    );
    if let Some(db) = &store {
        // The server writes its counts every few seconds; give the last batch time.
        tokio::time::sleep(crate::audit::refusals::FLUSH_EVERY + Duration::from_secs(1)).await;
        let rows = refusal_rows(Some(db)).await?.saturating_sub(rows_before);
        println!(
            "refusal rows written: {rows} for {} refused requests",
            report.refused
        );
        db.close().await;
    }
    Ok(())
}

async fn refusal_rows(db: Option<&Db>) -> Result<i64, String> {
    let Some(db) = db else { return Ok(0) };
    let n: Result<i64, sqlx::Error> = with_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM refusal_counts) + (SELECT COUNT(*) FROM security_log)",
        )
        .fetch_one(pool)
        .await
    });
    n.map_err(|e| format!("cannot count refusal rows: {e}"))
}

/// Server-wallet creates, closed loop, for `duration`.
async fn creates_for(
    http: Rc<Http>,
    name: &'static str,
    duration: Duration,
    concurrency: usize,
    run_id: &str,
) -> Result<Phase, String> {
    let prefix = format!("bench-{run_id}-{name}");
    run_for(name, duration, concurrency, move |i| {
        let http = http.clone();
        let body = json!({ "userId": format!("{prefix}-{i}") });
        async move { http.post("/api/wallets", &body).await.map(drop) }
    })
    .await
}

/// Like `run_phase`, but for a duration instead of a number of requests.
async fn run_for<F, Fut>(
    name: &'static str,
    duration: Duration,
    concurrency: usize,
    op: F,
) -> Result<Phase, String>
where
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    let op = Rc::new(op);
    let next = Rc::new(Cell::new(0usize));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            actix_web::rt::spawn(async move {
                let mut out = WorkerOutput::<()>::default();
                while Instant::now() < deadline {
                    let i = next.get();
                    next.set(i + 1);
                    let t = Instant::now();
                    let result = op(i).await;
                    out.record(t, result);
                }
                out
            })
        })
        .collect();
    Ok(gather(name, workers)
        .await?
        .finish(name, started.elapsed())
        .0)
}

#[derive(Default)]
struct NoiseReport {
    sent: u64,
    refused: u64,
    other_status: u64,
    failed: u64,
    /// Requests the schedule called for while MAX_IN_FLIGHT were outstanding.
    not_sent: u64,
    first_failure: Option<String>,
}

impl NoiseReport {
    fn print(&self, duration: Duration) {
        let secs = duration.as_secs_f64();
        println!(
            "noise: sent {} ({:.0}/s), refused 401/403 {} ({:.0}/s), other status {}, failed {}, \
             not sent (generator saturated) {}",
            self.sent,
            self.sent as f64 / secs,
            self.refused,
            self.refused as f64 / secs,
            self.other_status,
            self.failed,
            self.not_sent
        );
        if let Some(e) = &self.first_failure {
            println!("  first noise failure: {e}");
        }
    }
}

/// Sends `rate` unauthenticated requests per second for `duration`, paced
/// against the clock, then waits for the answers still outstanding.
async fn generate(base: String, rate: u32, duration: Duration) -> NoiseReport {
    let connector = awc::Connector::new().limit(MAX_IN_FLIGHT);
    let client = Rc::new(
        awc::Client::builder()
            .connector(connector)
            .timeout(REQUEST_TIMEOUT)
            .finish(),
    );
    let url = Rc::new(format!("{base}/api/wallet/create"));
    let report = Rc::new(RefCell::new(NoiseReport::default()));
    let in_flight = Rc::new(Cell::new(0usize));
    let started = Instant::now();
    let mut scheduled: u64 = 0;
    let mut ticker = tokio::time::interval(TICK);
    while started.elapsed() < duration {
        ticker.tick().await;
        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        while scheduled < due {
            scheduled += 1;
            if in_flight.get() >= MAX_IN_FLIGHT {
                report.borrow_mut().not_sent += 1;
                continue;
            }
            in_flight.set(in_flight.get() + 1);
            report.borrow_mut().sent += 1;
            let (client, url, report, in_flight) = (
                client.clone(),
                url.clone(),
                report.clone(),
                in_flight.clone(),
            );
            // Half without a token, half with a malformed one.
            let token = scheduled.is_multiple_of(2).then_some("Bearer not-a-jwt");
            actix_web::rt::spawn(async move {
                let mut request = client
                    .post(url.as_str())
                    .insert_header(("Content-Type", "application/json"));
                if let Some(t) = token {
                    request = request.insert_header(("Authorization", t));
                }
                let outcome = match request.send_body("{}").await {
                    Ok(mut response) => {
                        let _ = response.body().await;
                        Ok(response.status().as_u16())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let mut r = report.borrow_mut();
                match outcome {
                    Ok(401 | 403) => r.refused += 1,
                    Ok(_) => r.other_status += 1,
                    Err(e) => {
                        r.failed += 1;
                        r.first_failure.get_or_insert(e);
                    }
                }
                in_flight.set(in_flight.get() - 1);
            });
        }
    }
    let drain_until = Instant::now() + Duration::from_secs(10);
    while in_flight.get() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = std::mem::take(&mut *report.borrow_mut());
    out
}
