//! `walletd bench`: drives a running walletd over HTTP and, optionally, its
//! store directly, and prints throughput and latency figures.

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};
use walletd_projections::{with_db, Db};

use super::progress::Progress;
use super::CliResult;
use crate::config::Secret;

mod cpu;
mod idle;
mod noise;
mod replay;
mod seal;
mod sila;
mod transfers;
mod xacts;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Base URL of the running walletd to measure.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// API key for the server-wallet API (every measurement over HTTP).
    #[arg(long, env = "WALLETD_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Requests per operation.
    #[arg(long, default_value_t = 5000)]
    pub requests: usize,

    /// Wallets to create (default: --requests); sign and get spread their
    /// requests over them. Fewer wallets suit MPC servers, whose creates beyond
    /// the key pool each run key generation.
    #[arg(long)]
    pub wallets: Option<usize>,

    /// Run the create phase for this many seconds instead of a number of
    /// creates (sustained MPC key generation: start the server with an empty
    /// key pool). Sign and get then use the wallets it created.
    #[arg(long, value_name = "SECONDS")]
    pub create_for: Option<u64>,

    /// DATABASE_URL of the same store: also measures single-row commits on it,
    /// the ceiling no write command can beat.
    #[arg(long)]
    pub store_url: Option<String>,

    /// Also measure the Sila API (`sila-register`, `sila-register-wallet`):
    /// registers a bench app in the store named by --store-url.
    #[arg(long, requires = "store_url")]
    pub sila: bool,

    /// The server's WALLETD_JWT_SECRET: also measures creates through the JWT
    /// API (`jwt-create`), one user per request so the per-user rate limit
    /// does not apply.
    #[arg(long, env = "WALLETD_BENCH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Instead of the phases above: creates for --noise-secs alone, then for
    /// --noise-secs while this many unauthenticated requests per second hit
    /// the JWT API; prints both create rates and their ratio (with
    /// --store-url also the refusal rows written).
    #[arg(long)]
    pub noise_rate: Option<u32>,

    /// PID of the walletd server being measured, when it runs on this host:
    /// also prints CPU time per request, of walletd and of PostgreSQL
    /// (every local `postgres` process), for each phase.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// With --store-url: after the phases, count the store's transactions for
    /// this many seconds without requests (0: skip).
    #[arg(long, default_value_t = 15)]
    pub idle_secs: u64,

    /// Length of each --noise-rate phase, in seconds.
    #[arg(long, default_value_t = 30)]
    pub noise_secs: u64,

    /// Instead of the phases above: seed a scratch database beside
    /// --store-url (PostgreSQL) with this many events, rebuild the
    /// projections from it as `walletd replay` does, print events per second
    /// beside the rate the log alone can be read at, and drop it.
    #[arg(long, value_name = "EVENTS", requires = "store_url")]
    pub replay: Option<u64>,

    /// With --replay: keep the scratch database and print its URL (to time
    /// another build's `walletd replay` on the same log).
    #[arg(long, requires = "replay")]
    pub replay_keep: bool,

    /// With --replay: instead of rebuilding the projections, seal the seeded
    /// log into the transparency log, export it and verify it, each timed
    /// beside the rate the log alone is read at.
    #[arg(long, requires = "replay")]
    pub seal: bool,

    /// Instead of the phases above: money through the JWT API (needs
    /// --jwt-secret): JWT creates of --wallets wallets (default 1000) as the
    /// write-path reference, an issue to each, then --requests transfers
    /// uniform and hot-account (80 % credit 1 % of the wallets), answered
    /// completed and answered at the debit (`Prefer: respond-async`); with
    /// --store-url also the drain of the second legs and the store limit.
    #[arg(long, requires = "jwt_secret")]
    pub transfers: bool,
}

impl BenchArgs {
    fn bearer(&self) -> Result<String, String> {
        match &self.api_key {
            Some(key) => Ok(format!("Bearer {}", key.expose())),
            None => Err("set --api-key or WALLETD_BENCH_API_KEY to measure over HTTP".into()),
        }
    }
}

/// Generous, so a saturated server shows up as latency rather than as errors.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: BenchArgs) -> CliResult {
    if args.concurrency == 0 || args.requests == 0 {
        return Err("--concurrency and --requests must be at least 1".into());
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    println!(
        "walletd bench: {} | concurrency {} | {} requests per operation | run {run_id}",
        args.url, args.concurrency, args.requests
    );

    if let Some(pid) = args.server_pid {
        cpu::watch(pid);
    }
    if let (Some(events), Some(store_url)) = (args.replay, &args.store_url) {
        return Ok(replay::run(
            store_url,
            events.max(1),
            &run_id,
            args.replay_keep,
            args.seal,
        )
        .await?);
    }
    if args.transfers {
        return transfers::run(&args, &run_id).await;
    }
    if let Some(rate) = args.noise_rate {
        return Ok(noise::run(&args, rate, &run_id).await?);
    }

    let sila = match (&args.store_url, args.sila) {
        (Some(url), true) => Some(sila::SilaBench::register(url, &run_id).await?),
        _ => None,
    };
    let phases = run_http_phases(&args, run_id.clone(), sila).await?;

    if let (Some(store_url), true) = (&args.store_url, args.idle_secs > 0) {
        println!();
        idle::measure(store_url, args.idle_secs).await?;
    }
    if let Some(store_url) = &args.store_url {
        let store = store_limit(store_url, &run_id, args.requests, args.concurrency).await?;
        println!();
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

/// awc is tied to an actix (single-threaded, `!Send`) runtime, so the HTTP
/// side lives on its own thread and reports back over a channel.
async fn run_http_phases(
    args: &BenchArgs,
    run_id: String,
    sila: Option<sila::SilaBench>,
) -> Result<Vec<Phase>, String> {
    let base = args.url.trim_end_matches('/').to_string();
    let auth = args.bearer()?;
    let (total, concurrency) = (args.requests, args.concurrency);
    let wallets = match args.create_for {
        Some(secs) => Creates::For(Duration::from_secs(secs.max(1))),
        None => Creates::Count(args.wallets.unwrap_or(total).max(1)),
    };
    let jwt_secret = args.jwt_secret.as_ref().map(|s| s.expose().to_owned());
    let store_url = args.store_url.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-http".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let http = Rc::new(Http::new(base, auth, concurrency));
                let xacts = match store_url {
                    Some(url) => xacts::Counter::open(&url).await?,
                    None => None,
                };
                let mut phases = http_phases(
                    http.clone(),
                    &run_id,
                    total,
                    wallets,
                    concurrency,
                    jwt_secret,
                    xacts.as_ref(),
                )
                .await?;
                if let Some(sila) = sila {
                    phases.extend(sila::phases(http, sila, &run_id, total, concurrency).await?);
                }
                Ok(phases)
            });
            // The receiver only goes away if the caller is already gone.
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot start the HTTP client thread: {e}"))?;
    rx.await
        .map_err(|_| "the HTTP client thread panicked".to_string())?
}

/// How many wallets the create phase makes.
#[derive(Clone, Copy)]
enum Creates {
    Count(usize),
    /// As many as it can in this long.
    For(Duration),
}

async fn http_phases(
    http: Rc<Http>,
    run_id: &str,
    total: usize,
    wallet_count: Creates,
    concurrency: usize,
    jwt_secret: Option<String>,
    xacts: Option<&xacts::Counter>,
) -> Result<Vec<Phase>, String> {
    preflight(&http, run_id).await?;
    // Unmeasured: opens the client's connections and lets the server fill its
    // own pool, so the first phase is not charged for start-up.
    let probe = format!("/api/wallets/bench-probe-{run_id}");
    let warm = http.clone();
    run_phase("warm-up", concurrency, concurrency, move |_| {
        let (http, probe) = (warm.clone(), probe.clone());
        async move { http.get(&probe).await.map(drop) }
    })
    .await?;
    print_header();
    let mut phases = Vec::new();

    let (create, wallets) = {
        let http = http.clone();
        let prefix = format!("bench-{run_id}");
        let create = move |i: usize| {
            let http = http.clone();
            let body = json!({ "userId": format!("{prefix}-{i}") });
            async move {
                let body = http.post("/api/wallets", &body).await?;
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("walletId")?.as_str().map(str::to_owned))
                    .ok_or_else(|| format!("no walletId in {}", String::from_utf8_lossy(&body)))
            }
        };
        let before = xacts::sample(xacts).await;
        let (mut phase, wallets) = match wallet_count {
            Creates::Count(n) => run_phase("create", n, concurrency, create).await?,
            Creates::For(d) => run_phase_for("create", d, concurrency, create).await?,
        };
        phase.xacts = xacts::per_request(xacts, before, phase.latencies.len()).await;
        (phase, wallets)
    };
    create.print();
    phases.push(create);
    if wallets.is_empty() {
        return Err("no wallet was created, so sign and get cannot be measured".into());
    }
    let wallets: Rc<[String]> = wallets.into();

    // Spread over every wallet, then all on one: a hot wallet's commands
    // queue behind each other instead of spreading over the store.
    for (name, spread) in [("sign", wallets.len()), ("sign-hot", 1)] {
        let (http, wallets) = (http.clone(), wallets.clone());
        let before = xacts::sample(xacts).await;
        let (mut sign, _) = run_phase(name, total, concurrency, move |i| {
            let http = http.clone();
            let path = format!("/api/wallets/{}/sign", wallets[i % spread]);
            let body = json!({ "message": format!("bench {i}") });
            async move { http.post(&path, &body).await.map(drop) }
        })
        .await?;
        sign.xacts = xacts::per_request(xacts, before, sign.latencies.len()).await;
        sign.print();
        phases.push(sign);
    }

    let (get, _) = {
        let (http, wallets) = (http.clone(), wallets.clone());
        run_phase("get", total, concurrency, move |i| {
            let http = http.clone();
            let path = format!("/api/wallets/{}", wallets[i % wallets.len()]);
            async move { http.get(&path).await.map(drop) }
        })
        .await?
    };
    get.print();
    phases.push(get);

    if let Some(secret) = jwt_secret {
        let key = Rc::new(jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()));
        let exp = chrono::Utc::now().timestamp() + 3600;
        let prefix = format!("bench-{run_id}-jwt");
        let (jwt_create, _) = run_phase("jwt-create", total, concurrency, move |i| {
            let (http, key) = (http.clone(), key.clone());
            let claims =
                json!({ "sub": format!("{prefix}-{i}"), "role": "SUBSCRIBER", "exp": exp });
            async move {
                let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
                    .map_err(|e| format!("cannot mint a token: {e}"))?;
                let body = json!({ "label": "bench" });
                http.post_as(&format!("Bearer {token}"), "/api/wallet/create", &body)
                    .await
                    .map(drop)
            }
        })
        .await?;
        jwt_create.print();
        phases.push(jwt_create);
    }
    Ok(phases)
}

/// One unmeasured request, so that a wrong URL or key fails fast and clearly
/// instead of as thousands of errors.
async fn preflight(http: &Http, run_id: &str) -> Result<(), String> {
    let request = http
        .client
        .get(format!("{}/api/wallets/bench-probe-{run_id}", http.base))
        .insert_header(("Authorization", http.auth.as_str()));
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach walletd at {}: {e}", http.base))?;
    match response.status().as_u16() {
        401 | 403 => Err(format!(
            "walletd at {} refused the API key ({})",
            http.base,
            response.status()
        )),
        // 404 is the expected answer for a user that does not exist yet.
        200 | 404 => Ok(()),
        _ => {
            let body = response.body().await.unwrap_or_default();
            Err(format!(
                "unexpected answer from {}: {} {}",
                http.base,
                response.status(),
                String::from_utf8_lossy(&body)
            ))
        }
    }
}

struct Http {
    client: awc::Client,
    base: String,
    auth: String,
}

impl Http {
    fn new(base: String, auth: String, concurrency: usize) -> Self {
        // The default pool holds 100 connections; above that workers would
        // queue inside the client and the figures would measure the queue.
        let connector = awc::Connector::new().limit(concurrency);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(REQUEST_TIMEOUT)
            .finish();
        Self { client, base, auth }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Vec<u8>, String> {
        self.post_as(&self.auth, path, body).await
    }

    async fn post_as(&self, auth: &str, path: &str, body: &Value) -> Result<Vec<u8>, String> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Authorization", auth))
            .insert_header(("Content-Type", "application/json"));
        finish(request.send_body(body.to_string())).await
    }

    /// A JSON POST with extra headers (Idempotency-Key, Prefer).
    async fn post_with(
        &self,
        auth: &str,
        path: &str,
        body: &Value,
        headers: &[(&'static str, String)],
    ) -> Result<Vec<u8>, String> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Authorization", auth))
            .insert_header(("Content-Type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((*name, value.as_str()));
        }
        finish(request.send_body(body.to_string())).await
    }

    /// A Sila request: exact body bytes, signature headers, no bearer token.
    async fn post_signed(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Result<Vec<u8>, String> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((*name, value.as_str()));
        }
        finish(request.send_body(body)).await
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header(("Authorization", self.auth.as_str()));
        finish(request.send()).await
    }
}

/// Reads the whole body even on success: a connection goes back to the pool
/// only once its response is consumed.
async fn finish(sent: awc::SendClientRequest) -> Result<Vec<u8>, String> {
    let mut response = sent.await.map_err(|e| format!("request failed: {e}"))?;
    let body = response
        .body()
        .await
        .map_err(|e| format!("{}: cannot read body: {e}", response.status()))?;
    if response.status().is_success() {
        Ok(body.to_vec())
    } else {
        Err(format!(
            "{} {}",
            response.status(),
            String::from_utf8_lossy(&body)
        ))
    }
}

/// `total` requests by `concurrency` workers on the current actix thread;
/// worker `w` takes requests `w`, `w + concurrency`, …
async fn run_phase<T, F, Fut>(
    name: &'static str,
    total: usize,
    concurrency: usize,
    op: F,
) -> Result<(Phase, Vec<T>), String>
where
    T: 'static,
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = Result<T, String>> + 'static,
{
    let op = Rc::new(op);
    let progress = Rc::new(Progress::new(name, "requests", Some(total as u64)));
    let cpu_before = cpu::sample();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(total))
        .map(|w| {
            let (op, progress) = (op.clone(), progress.clone());
            actix_web::rt::spawn(async move {
                let mut out = WorkerOutput::default();
                for i in (w..total).step_by(concurrency) {
                    let t = Instant::now();
                    let result = op(i).await;
                    out.record(t, result);
                    progress.inc(1);
                }
                out
            })
        })
        .collect();
    let gathered = gather(name, workers).await;
    progress.finish();
    Ok(with_cpu(
        gathered?.finish(name, started.elapsed()),
        cpu_before,
    ))
}

fn with_cpu<T>(
    (mut phase, values): (Phase, Vec<T>),
    before: Option<cpu::Sample>,
) -> (Phase, Vec<T>) {
    phase.cpu = cpu::per_request(before, cpu::sample(), phase.latencies.len());
    (phase, values)
}

/// Like [`run_phase`], for `duration` instead of a number of requests: each
/// worker starts requests until the time is up (requests still running then
/// are waited for and counted).
async fn run_phase_for<T, F, Fut>(
    name: &'static str,
    duration: Duration,
    concurrency: usize,
    op: F,
) -> Result<(Phase, Vec<T>), String>
where
    T: 'static,
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = Result<T, String>> + 'static,
{
    let op = Rc::new(op);
    let next = Rc::new(std::cell::Cell::new(0usize));
    let progress = Rc::new(Progress::new(name, "requests", None));
    let cpu_before = cpu::sample();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next, progress) = (op.clone(), next.clone(), progress.clone());
            actix_web::rt::spawn(async move {
                let mut out = WorkerOutput::default();
                while Instant::now() < deadline {
                    let i = next.get();
                    next.set(i + 1);
                    let t = Instant::now();
                    let result = op(i).await;
                    out.record(t, result);
                    progress.inc(1);
                }
                out
            })
        })
        .collect();
    let gathered = gather(name, workers).await;
    progress.finish();
    Ok(with_cpu(
        gathered?.finish(name, started.elapsed()),
        cpu_before,
    ))
}

/// Waits for every worker of a phase and merges what they measured.
async fn gather<T>(
    name: &str,
    workers: Vec<tokio::task::JoinHandle<WorkerOutput<T>>>,
) -> Result<WorkerOutput<T>, String> {
    let mut all = WorkerOutput::default();
    for worker in workers {
        let out = worker
            .await
            .map_err(|e| format!("a {name} worker failed: {e}"))?;
        all.merge(out);
    }
    Ok(all)
}

struct WorkerOutput<T> {
    latencies: Vec<Duration>,
    errors: usize,
    /// Kept with its time so that, across workers, the earliest one is shown.
    first_error: Option<(Instant, String)>,
    values: Vec<T>,
}

impl<T> Default for WorkerOutput<T> {
    fn default() -> Self {
        Self {
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
            values: Vec::new(),
        }
    }
}

impl<T> WorkerOutput<T> {
    fn record<E: std::fmt::Display>(&mut self, started: Instant, result: Result<T, E>) {
        self.latencies.push(started.elapsed());
        match result {
            Ok(v) => self.values.push(v),
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some((started, e.to_string()));
                }
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.values.extend(other.values);
        self.first_error = match (self.first_error.take(), other.first_error) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }

    fn finish(self, name: &'static str, wall: Duration) -> (Phase, Vec<T>) {
        let mut latencies = self.latencies;
        latencies.sort_unstable();
        let phase = Phase {
            name,
            latencies,
            errors: self.errors,
            first_error: self.first_error.map(|(_, e)| e),
            wall,
            xacts: None,
            cpu: None,
        };
        (phase, self.values)
    }
}

struct Phase {
    name: &'static str,
    /// Sorted ascending; failed requests included, as they took the time too.
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
    /// Database transactions committed per request while the phase ran
    /// (with --store-url on PostgreSQL).
    xacts: Option<f64>,
    /// CPU milliseconds per request (walletd, PostgreSQL), with --server-pid.
    cpu: Option<(f64, f64)>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Nearest-rank percentile.
    fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1].as_secs_f64() * 1000.0
    }

    fn print(&self) {
        println!(
            "{:<13} {:>8} {:>7} {:>9.3} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            self.name,
            self.latencies.len(),
            self.errors,
            self.wall.as_secs_f64(),
            self.throughput(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
        );
        if let Some(x) = self.xacts {
            println!("  database transactions per request: {x:.2}");
        }
        if let Some((server, store)) = self.cpu {
            println!("  CPU per request: walletd {server:.3} ms, PostgreSQL {store:.3} ms");
        }
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
    }
}

fn print_header() {
    println!(
        "{:<13} {:>8} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "operation",
        "requests",
        "errors",
        "wall s",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
}

/// The most single-row commits per second the store accepts at this
/// concurrency: every write command needs at least one such commit.
async fn store_limit(
    url: &str,
    run_id: &str,
    total: usize,
    concurrency: usize,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let pool_size = u32::try_from(concurrency.min(64)).unwrap_or(64);
    let db = crate::store::connect(url, pool_size).await?;
    let (ddl, insert) = match &db {
        Db::Postgres(_) => (
            "CREATE TABLE IF NOT EXISTS bench_store_limit (id BIGSERIAL PRIMARY KEY, \
             aggregate_id TEXT NOT NULL, payload JSONB NOT NULL, metadata JSONB NOT NULL)",
            "INSERT INTO bench_store_limit (aggregate_id, payload, metadata) \
             VALUES ($1, $2::jsonb, $3::jsonb)",
        ),
        Db::Sqlite(_) => (
            "CREATE TABLE IF NOT EXISTS bench_store_limit (id INTEGER PRIMARY KEY, \
             aggregate_id TEXT NOT NULL, payload TEXT NOT NULL, metadata TEXT NOT NULL)",
            "INSERT INTO bench_store_limit (aggregate_id, payload, metadata) VALUES (?, ?, ?)",
        ),
    };
    // Opening connections (a backend fork each on PostgreSQL) is not what is
    // being measured, so the pool is filled before the clock starts.
    with_db!(&db, pool => {
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            held.push(pool.acquire().await?);
        }
    });
    with_db!(&db, pool => sqlx::query(ddl).execute(pool).await.map(drop))?;

    let result = store_inserts(&db, insert, run_id, total, concurrency).await;

    let drop_sql = "DROP TABLE IF EXISTS bench_store_limit";
    let dropped = with_db!(&db, pool => sqlx::query(drop_sql).execute(pool).await.map(drop));
    db.close().await;
    let phase = result?;
    phase.print();
    dropped.map_err(|e| format!("cannot drop the scratch table bench_store_limit: {e}"))?;
    Ok(phase)
}

async fn store_inserts(
    db: &Db,
    sql: &'static str,
    run_id: &str,
    total: usize,
    concurrency: usize,
) -> Result<Phase, String> {
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(total))
        .map(|w| {
            let db = db.clone();
            let run_id = run_id.to_string();
            tokio::spawn(async move {
                let mut out = WorkerOutput::<()>::default();
                for i in (w..total).step_by(concurrency) {
                    let (payload, metadata) = sample_event(i);
                    let aggregate = format!("bench-{run_id}-{i}");
                    let t = Instant::now();
                    let result = insert_one(&db, sql, aggregate, payload, metadata).await;
                    out.record(t, result);
                }
                out
            })
        })
        .collect();
    Ok(gather("store-insert", workers)
        .await?
        .finish("store-insert", started.elapsed())
        .0)
}

async fn insert_one(
    db: &Db,
    sql: &'static str,
    aggregate: String,
    payload: String,
    metadata: String,
) -> Result<(), sqlx::Error> {
    with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(sql)
            .bind(aggregate)
            .bind(payload)
            .bind(metadata)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })
}

/// Sized like a stored `MessageSigned` event: about 300 bytes of payload and
/// 150 of metadata, so the figure reflects realistic row and WAL sizes.
fn sample_event(i: usize) -> (String, String) {
    let payload = json!({
        "MessageSigned": {
            "walletId": uuid::Uuid::new_v4().to_string(),
            "digest": format!("0x{:064x}", i),
            "signature": format!("0x{:0130x}", i),
            "signedAt": "2025-01-01T00:00:00.000000Z",
        }
    });
    let metadata = json!({
        "actor": "api-key:bench",
        "requestId": uuid::Uuid::new_v4().to_string(),
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "ip": "127.0.0.1",
    });
    (payload.to_string(), metadata.to_string())
}
