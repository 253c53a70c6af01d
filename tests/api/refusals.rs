//! Refused requests are counted and written in batches (issue 9, item 6): a
//! flood of them writes a bounded number of rows, each refusal still shows in
//! the admin audit (with its count) within a flush interval, and refusals of
//! nobody in particular expire while the security log stays append-only.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use walletd::app::App;
use walletd::audit::refusals::FLUSH_EVERY;

use crate::backend_tests;
use crate::helpers::{into_resp, settings, spawn_app, token, Backend, Resp, TestApp};
use crate::server_wallets::event_count;

backend_tests!(
    a_flood_of_refusals_writes_a_bounded_number_of_rows,
    a_refusal_shows_in_another_instances_admin_audit_within_the_flush_interval,
    noise_expires_and_evidence_stays,
    refused_requests_keep_their_connection,
);

/// A second walletd on the same database, as another process would be.
pub(crate) struct Peer {
    pub app: Arc<App>,
    pub base: String,
    pub client: awc::Client,
    server: actix_web::dev::ServerHandle,
}

impl Peer {
    pub async fn stop(self) {
        self.server.stop(true).await;
        self.app.db.close().await;
    }

    /// Like [`TestApp::jwt`].
    pub async fn jwt(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        send(&self.client, &self.base, method, path, token, body).await
    }
}

pub(crate) async fn spawn_peer(first: &TestApp) -> Peer {
    let s = settings(&first.db, first.master_key.clone(), &first.api_key);
    let app = App::build(s).await.expect("peer builds");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = walletd::api::server(app.clone(), listener, 2).expect("server");
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Peer {
        app,
        base: format!("http://{addr}"),
        client: awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish(),
        server: handle,
    }
}

pub(crate) async fn send(
    client: &awc::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = match method {
        "POST" => client.post(format!("{base}{path}")),
        _ => client.get(format!("{base}{path}")),
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

async fn table_rows(app: &App, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    walletd::projections::with_db!(&app.db, pool => {
        sqlx::query_scalar::<_, i64>(&sql).fetch_one(pool).await.unwrap()
    })
}

/// Refusal entries of the admin audit for `action`, as `(reason, count)`.
async fn refusals_in_audit(base: &str, client: &awc::Client, action: &str) -> Vec<Value> {
    let admin = token("auditor", "ADMIN");
    let r = send(
        client,
        base,
        "GET",
        &format!("/api/admin/audit?action={action}&perPage=100"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "refusal")
        .cloned()
        .collect()
}

fn total(entries: &[Value]) -> u64 {
    entries.iter().map(|e| e["count"].as_u64().unwrap()).sum()
}

async fn a_flood_of_refusals_writes_a_bounded_number_of_rows(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    const EACH: usize = 600;
    let started = Instant::now();
    // Two kinds of refusal, many times over, 50 at a time.
    let empty = json!({});
    for chunk in 0..(EACH / 50) {
        let creates = (0..50).map(|_| app.jwt("POST", "/api/wallet/create", None, Some(&empty)));
        let lists = (0..50).map(|_| app.jwt("GET", "/api/wallet/list", Some("garbage"), None));
        let (c, l) = futures_util::join!(join_all(creates), join_all(lists));
        assert!(
            c.iter().chain(l.iter()).all(|r| r.status == 401),
            "chunk {chunk}"
        );
    }
    // The server-wallet API's refused keys are counted the same way.
    for _ in 0..20 {
        let r = send(
            &app.client,
            &app.base,
            "GET",
            "/api/wallets/someone",
            Some("wd_wrong"),
            None,
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let elapsed = started.elapsed();
    // The admin audit writes what this process has counted before it reads.
    let creates = refusals_in_audit(&app.base, &app.client, "wallet.create").await;
    let lists = refusals_in_audit(&app.base, &app.client, "wallet.list").await;
    assert_eq!(total(&creates), EACH as u64, "{creates:?}");
    assert_eq!(total(&lists), EACH as u64, "{lists:?}");
    for e in creates.iter().chain(lists.iter()) {
        assert_eq!(e["status"], 401);
        assert_eq!(e["clientAddr"], "127.0.0.1");
        assert!(e["firstAt"].as_str().unwrap() <= e["at"].as_str().unwrap());
    }
    assert_eq!(creates[0]["reason"], "missing_token");
    let keys = refusals_in_audit(&app.base, &app.client, "server_wallets").await;
    assert_eq!(total(&keys), 20, "{keys:?}");
    assert_eq!(keys[0]["reason"], "unknown_api_key");
    assert_eq!(keys[0]["authMethod"], "api_key");
    // One row per kind per flush interval that passed, not one per request.
    let windows = (elapsed.as_secs_f64() / FLUSH_EVERY.as_secs_f64()).ceil() as i64 + 1;
    let rows = table_rows(&app.app, "refusal_counts").await;
    assert!(
        rows <= 3 * windows,
        "{rows} rows for {} refusals in {elapsed:?}",
        2 * EACH + 20
    );
    assert_eq!(
        table_rows(&app.app, "security_log").await,
        0,
        "no known principal was refused"
    );
    assert_eq!(event_count(&app).await, 0);
}

async fn a_refusal_shows_in_another_instances_admin_audit_within_the_flush_interval(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let peer = spawn_peer(&app).await;
    // Refused at the peer: an unauthenticated create and a known principal
    // whose role is too low.
    let r = peer
        .jwt(
            "POST",
            "/api/wallet/create",
            Some("not-a-jwt"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = peer
        .jwt(
            "POST",
            "/api/wallet/create",
            Some(&token("vera", "VISITOR")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 403);
    let refused_at = Instant::now();
    // Seen at the first instance once the peer's writer has run.
    let bound = FLUSH_EVERY + Duration::from_secs(5);
    let entries = loop {
        let entries = refusals_in_audit(&app.base, &app.client, "wallet.create").await;
        if entries.len() == 2 {
            break entries;
        }
        assert!(
            refused_at.elapsed() < bound,
            "refusals not in the audit after {bound:?}: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let unauthenticated = entries.iter().find(|e| e["status"] == 401).unwrap();
    assert_eq!(unauthenticated["reason"], "malformed_token");
    assert_eq!(unauthenticated["count"], 1);
    assert_eq!(unauthenticated["userId"], Value::Null);
    let visitor = entries.iter().find(|e| e["status"] == 403).unwrap();
    assert_eq!(visitor["userId"], "vera");
    assert_eq!(visitor["role"], "VISITOR");
    assert_eq!(visitor["reason"], "insufficient_role");
    assert_eq!(visitor["path"], "/api/wallet/create");
    // Filtering by user finds the known principal's refusal.
    let r = send(
        &app.client,
        &app.base,
        "GET",
        "/api/admin/audit?userId=vera",
        Some(&token("auditor", "ADMIN")),
        None,
    )
    .await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    peer.stop().await;
}

async fn noise_expires_and_evidence_stays(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let _ = app
        .jwt("POST", "/api/wallet/create", None, Some(&json!({})))
        .await;
    let _ = app
        .jwt(
            "POST",
            "/api/wallet/create",
            Some(&token("vera", "VISITOR")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        total(&refusals_in_audit(&app.base, &app.client, "wallet.create").await),
        2
    );
    // Rows from 40 days ago in both tables; retention is 30 days.
    let old = (chrono::Utc::now() - chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query(
            "INSERT INTO refusal_counts (first_at, at, count, auth_method, action, status, reason, path, request_id, client_addr)
             VALUES ($1, $1, 7, 'jwt', 'wallet.create', 401, 'expired', '/api/wallet/create', 'old', '10.0.0.9')",
        )
        .bind(&old)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO security_log (first_at, at, count, subject, role, auth_method, action, status, reason, path, request_id, client_addr)
             VALUES ($1, $1, 3, 'old-user', 'VISITOR', 'jwt', 'wallet.create', 403, 'insufficient_role', '/api/wallet/create', 'old', '10.0.0.9')",
        )
        .bind(&old)
        .execute(pool)
        .await
        .unwrap();
    });
    assert_eq!(table_rows(&app.app, "refusal_counts").await, 2);
    assert_eq!(table_rows(&app.app, "security_log").await, 2);
    walletd::api::housekeeping::prune(&app.app).await;
    assert_eq!(
        table_rows(&app.app, "refusal_counts").await,
        1,
        "the old noise row is gone, the recent one stays"
    );
    assert_eq!(
        table_rows(&app.app, "security_log").await,
        2,
        "evidence is never pruned"
    );
    // Counted rows are never changed; evidence is never deleted.
    walletd::projections::with_db!(&app.app.db, pool => {
        assert!(sqlx::query("UPDATE refusal_counts SET count = 1").execute(pool).await.is_err());
        assert!(sqlx::query("UPDATE security_log SET count = 1").execute(pool).await.is_err());
        assert!(sqlx::query("DELETE FROM security_log").execute(pool).await.is_err());
    });
}

/// A request refused before its body is read still has the body read, so
/// the connection stays open: a flood of refusals costs no TCP connection
/// per request.
async fn refused_requests_keep_their_connection(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let requests = [
        ("/api/wallet/create", ""),
        ("/api/wallet/create", "Authorization: Bearer not-a-jwt\r\n"),
        ("/api/wallet/primary", ""),
        ("/api/wallets", "Authorization: Bearer wd_wrong\r\n"),
    ];
    for (path, auth) in requests {
        let body = r#"{"label":"x"}"#;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let head = read_response(&mut conn).await;
        assert!(head.starts_with("HTTP/1.1 401"), "{path}: {head}");
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{path}: {head}"
        );
    }

    async fn read_response(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = Duration::from_secs(10);
        loop {
            let n = tokio::time::timeout(deadline, conn.read(&mut chunk))
                .await
                .expect("an answer")
                .expect("read");
            assert!(
                n > 0,
                "connection closed: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return text[..end].to_string();
                }
            }
        }
    }
}
