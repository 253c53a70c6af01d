//! Test harness: throwaway databases, the real server on a free loopback port,
//! and an HTTP client.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Once};

use serde_json::Value;
use walletd::app::App;
use walletd::config::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn postgres_required() -> bool {
    std::env::var("WALLETD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

static SKIP_NOTICE: Once = Once::new();

/// A database that exists for one test: a temp SQLite file, or a randomly
/// named PostgreSQL database that is dropped afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// `None` when PostgreSQL is unreachable and not required: the test is skipped.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("walletd.db").display());
                Some(TestDb {
                    backend,
                    url,
                    dir,
                    pg_name: None,
                })
            }
            Backend::Postgres => {
                let admin = admin_url();
                let conn = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sqlx::PgPool::connect(&admin),
                )
                .await;
                let pool = match conn {
                    Ok(Ok(p)) => p,
                    other => {
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".into(),
                        };
                        if postgres_required() {
                            panic!("PostgreSQL is required (WALLETD_REQUIRE_POSTGRES) but unreachable at {admin}: {why}");
                        }
                        SKIP_NOTICE.call_once(|| {
                            // Written past the test harness's output capture on purpose.
                            let _ = writeln!(
                                std::io::stderr(),
                                "\n*** PostgreSQL unreachable at {admin} ({why}): the PostgreSQL suite was SKIPPED ***\n"
                            );
                        });
                        return None;
                    }
                };
                let name = format!("walletd_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                let url = replace_db_name(&admin, &name);
                Some(TestDb {
                    backend,
                    url,
                    dir,
                    pg_name: Some(name),
                })
            }
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base.rfind('/').unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..cut], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = admin_url();
            // Drop runs outside async context; use a private runtime on a thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&pool)
                            .await;
                            pool.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";

pub fn random_master_key() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).unwrap();
    hex::encode(b)
}

pub fn settings(db: &TestDb, master_key: Option<String>, api_key: &str) -> Settings {
    Settings {
        database_url: db.url.clone().into(),
        bind: "127.0.0.1:0".into(),
        master_key: master_key.map(Into::into),
        previous_master_keys: None,
        api_keys: Some(api_key.into()),
        jwt_secret: Some(JWT_SECRET.into()),
        jwt_public_key: None,
        jwt_issuer: None,
        jwt_audience: None,
        sila_token_audience: walletd::auth::jwt::DEFAULT_SILA_AUDIENCE.to_string(),
        create_rate_per_minute: 10,
        refusal_retention_days: 30,
        key_pool: 0,
        key_sweep_grace: 86_400,
        whitelist_delay: Some(300),
        assets: Default::default(),
        ledger_process_manager: true,
        kyc_mode: walletd::config::KycMode::Sandbox,
        server_wallet_custody: walletd::config::ServerCustody::Local,
        cosigner_master_key: None,
        cosigner_url: None,
        cosigner_public_key: None,
        mpc_channel_key: None,
        cosigner_bind: "127.0.0.1:0".into(),
        cosigner_channel_key: None,
        cosigner_peer_key: None,
        mpc_key_pool: 0,
        // Generous: with the whole suite running, a key generation queued
        // behind others can take well over the production default.
        mpc_key_wait: 40,
        signature_window: 300,
        db_pool: 8,
        max_body: 65_536,
        workers: Some(2),
        ready_max_lag_events: 100_000,
        ready_max_lag_seconds: 60,
        log_key: None,
        metrics: walletd::config::MetricsMode::On,
    }
}

pub struct TestApp {
    pub base: String,
    pub app: Arc<App>,
    pub api_key: String,
    pub master_key: Option<String>,
    pub client: awc::Client,
    server: actix_web::dev::ServerHandle,
    // Last, so the database outlives the server.
    pub db: TestDb,
}

impl TestApp {
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }

    /// Stops the server and hands back its database, for a restart.
    pub async fn shutdown(self) -> TestDb {
        self.server.stop(true).await;
        let TestApp { app, db, .. } = self;
        app.shutdown().await;
        drop(app);
        db
    }
}

/// Starts the real server on a free loopback port. `None` if the backend is
/// unavailable (PostgreSQL skipped).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    Some(spawn_app_on(db, Some(random_master_key())).await)
}

pub async fn spawn_app_on(db: TestDb, master_key: Option<String>) -> TestApp {
    spawn_app_custom(db, master_key, |_| {}).await
}

/// Like [`spawn_app`], with settings adjusted by `customize`.
pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    Some(spawn_app_custom(db, Some(random_master_key()), customize).await)
}

pub async fn spawn_app_custom(
    db: TestDb,
    master_key: Option<String>,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = walletd::telemetry::init();
    }
    let api_key = format!("test-key-{}", uuid::Uuid::new_v4().simple());
    let mut settings = settings(&db, master_key.clone(), &api_key);
    customize(&mut settings);
    let app = App::build(settings).await.expect("app builds");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = walletd::api::server(app.clone(), listener, 2).expect("server");
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    TestApp {
        base: format!("http://{addr}"),
        app,
        api_key,
        master_key,
        client,
        server: handle,
        db,
    }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: actix_web::http::header::HeaderMap,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, "application/json", body.to_string().into_bytes(), &[])
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("Authorization", format!("Bearer {}", self.api_key)))
            .insert_header(("Content-Type", content_type));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let res = req.send_body(body).await.expect("request sent");
        into_resp(res).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        let res = self
            .client
            .get(self.url(path))
            .insert_header(("Authorization", format!("Bearer {}", self.api_key)))
            .send()
            .await
            .expect("request sent");
        into_resp(res).await
    }

    /// A request with `Authorization: Bearer <token>`; `body` None sends no body.
    pub async fn jwt(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = match method {
            "POST" => self.client.post(self.url(path)),
            _ => self.client.get(self.url(path)),
        };
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let res = match body {
            Some(b) => {
                req.insert_header(("Content-Type", "application/json"))
                    .send_body(b.to_string())
                    .await
            }
            None => req.send().await,
        }
        .expect("request sent");
        into_resp(res).await
    }

    pub async fn create_wallet(&self, user: &str) -> Value {
        let r = self
            .post_json("/api/wallets", &serde_json::json!({ "userId": user }))
            .await;
        assert_eq!(r.status, 200, "create {user}: {}", r.body);
        r.body
    }
}

pub async fn into_resp<S>(mut res: awc::ClientResponse<S>) -> Resp
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.body().limit(10 * 1024 * 1024).await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        body,
        headers,
    }
}

/// Generates `sqlite` and `postgres` test modules calling each listed
/// `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The `walletd` binary, started as a separate process.
pub struct BinaryServer {
    pub child: std::process::Child,
    pub base: String,
    pub log_path: std::path::PathBuf,
}

impl BinaryServer {
    /// Starts `walletd serve` and waits until it prints its address.
    pub fn start(
        db_url: &str,
        master_key: Option<&str>,
        api_key: &str,
        log_path: &std::path::Path,
    ) -> BinaryServer {
        Self::start_with(db_url, master_key, api_key, &[], log_path)
    }

    /// Like [`BinaryServer::start`], with extra environment variables.
    pub fn start_with(
        db_url: &str,
        master_key: Option<&str>,
        api_key: &str,
        env: &[(&str, &str)],
        log_path: &std::path::Path,
    ) -> BinaryServer {
        use std::io::BufRead;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log file");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_walletd"));
        cmd.arg("serve")
            .env("DATABASE_URL", db_url)
            .env("WALLETD_BIND", "127.0.0.1:0")
            .env("WALLETD_API_KEYS", api_key)
            .env("WALLETD_DB_POOL", "8")
            .env("WALLETD_KEY_POOL", "0")
            // Single-key server wallets unless a test asks for MPC (key
            // generation costs a second of CPU per wallet).
            .env("WALLETD_SERVER_WALLET_CUSTODY", "local")
            .env("WALLETD_MPC_KEY_WAIT", "40")
            .env("RUST_LOG", "debug")
            .env_remove("WALLETD_MASTER_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(log);
        if let Some(k) = master_key {
            cmd.env("WALLETD_MASTER_KEY", k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn walletd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("walletd listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!(
                    "walletd exited before listening; see {}",
                    log_path.display()
                ),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        BinaryServer {
            child,
            base,
            log_path: log_path.to_path_buf(),
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a `walletd` CLI command to completion; returns (success, stdout, stderr).
/// The wait happens off the test's runtime thread, so in-process tasks (a
/// server's projector finishing a transaction) keep running meanwhile.
pub async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_walletd"));
    cmd.args(args).env_remove("WALLETD_MASTER_KEY").env(
        "RUST_LOG",
        std::env::var("CLI_LOG").unwrap_or("warn".into()),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = actix_web::rt::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run walletd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every projection table, rendered row by row in key order.
pub async fn dump_projections(db: &walletd::projections::Db) -> Vec<String> {
    let mut tables = Vec::new();
    for p in walletd::projections::views::all() {
        tables.extend_from_slice(p.tables());
    }
    tables.push("projection_checkpoints");
    walletd::projections::queries::dump_tables(db, &tables)
        .await
        .unwrap()
}

/// Opens a pool on the test database (for inspection from tests).
pub async fn open_db(url: &str) -> walletd::projections::Db {
    walletd::store::connect(url, 4).await.expect("connect")
}

/// Like [`into_resp`] but tolerates a connection cut mid-body (server killed).
pub async fn into_resp_lenient<S>(mut res: awc::ClientResponse<S>) -> Option<(u16, Value)>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let status = res.status().as_u16();
    let bytes = res.body().await.ok()?;
    Some((status, serde_json::from_slice(&bytes).ok()?))
}

/// Mints an HS256 token with the test secret.
pub fn token(sub: &str, role: &str) -> String {
    token_with(serde_json::json!({ "sub": sub, "role": role, "exp": now() + 600 }))
}

pub fn token_with(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("encode token")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
