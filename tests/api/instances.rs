//! Three `walletd serve` processes on one PostgreSQL database under mixed
//! load: server-wallet creates, signs on shared hot wallets from all three at
//! once, Sila users (register, KYC, register_wallet), JWT creates and
//! primaries. Every acknowledged write is in the log and read back at once by
//! the process that acknowledged it; the store's invariants hold; every event
//! is projected exactly once; the live projections equal a rebuild.
//!
//! PostgreSQL only: a SQLite database is served by one walletd process.
//!
//! The store checks here (`check_store`, `wait_quiet`, `assert_live_equals_rebuild`)
//! are shared with `crash_mixed`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::join;
use serde_json::{json, Value};
use sqlx::Row;
use walletd::projections::{with_db, Db};

use crate::helpers::{
    dump_projections, open_db, random_master_key, run_cli, token, Backend, BinaryServer, TestDb,
    JWT_SECRET,
};
use crate::sila_client::{Key, SilaClient};

const KEY: &str = "instances-key";
const APP: &str = "instances.app";
/// How long the mixed load runs.
const LOAD_FOR: Duration = Duration::from_secs(6);
const PROCESSES: usize = 3;
const HOT_WALLETS: usize = 3;

// ---------------------------------------------------------------------------
// HTTP, tolerant of a server that went away.

/// Generous: a loaded 2-core machine can take seconds for one answer.
pub(crate) fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

/// Status and JSON body, or why there was no complete answer.
pub(crate) type Answer = Result<(u16, Value), String>;

pub(crate) async fn send(
    client: &awc::Client,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Answer {
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    for (k, v) in headers {
        req = req.insert_header((k.as_str(), v.as_str()));
    }
    let res = match body {
        Some(b) => {
            req.insert_header(("Content-Type", "application/json"))
                .send_body(b)
                .await
        }
        None => req.send().await,
    };
    let mut res = res.map_err(|e| format!("send: {e}"))?;
    let status = res.status().as_u16();
    let bytes = res
        .body()
        .limit(10 * 1024 * 1024)
        .await
        .map_err(|e| format!("body: {e}"))?;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Ok((status, value))
}

pub(crate) fn bearer(token: &str) -> (String, String) {
    ("Authorization".into(), format!("Bearer {token}"))
}

pub(crate) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The signer of an EIP-191 `personal_sign` signature, by alloy, lower case.
pub(crate) fn signer_of(message: &str, signature: &str) -> String {
    signature
        .parse::<alloy_primitives::Signature>()
        .ok()
        .and_then(|s| s.recover_address_from_msg(message).ok())
        .map(|a| a.to_string().to_lowercase())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The store, read directly.

pub(crate) struct Event {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The event's fields (the payload is externally tagged by event type).
    pub body: Value,
    pub metadata: Value,
}

pub(crate) async fn events(db: &Db) -> Vec<Event> {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT aggregate_type, aggregate_id, sequence, event_type, payload::text AS payload,
                    metadata::text AS metadata FROM events ORDER BY position"
        }
        Db::Sqlite(_) => {
            "SELECT aggregate_type, aggregate_id, sequence, event_type, payload, metadata
               FROM events ORDER BY position"
        }
    };
    with_db!(db, pool => {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let event_type: String = r.get("event_type");
                let payload: Value = serde_json::from_str(&r.get::<String, _>("payload")).unwrap();
                Event {
                    aggregate_type: r.get("aggregate_type"),
                    aggregate_id: r.get("aggregate_id"),
                    sequence: r.get("sequence"),
                    body: payload.get(&event_type).cloned().unwrap_or(payload.clone()),
                    event_type,
                    metadata: serde_json::from_str(&r.get::<String, _>("metadata")).unwrap(),
                }
            })
            .collect()
    })
}

/// Rows of text columns (every selected column must be text or castable by
/// the caller's SQL).
pub(crate) async fn text_rows(db: &Db, sql: &str) -> Vec<Vec<String>> {
    with_db!(db, pool => {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
            .collect()
    })
}

pub(crate) async fn scalar(db: &Db, sql: &str) -> i64 {
    with_db!(db, pool => {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
    })
}

pub(crate) async fn execute(db: &Db, sql: &str) -> u64 {
    with_db!(db, pool => {
        sqlx::query(sql).execute(pool).await.unwrap().rows_affected()
    })
}

fn count_of(events: &[Event], event_type: &str) -> usize {
    events.iter().filter(|e| e.event_type == event_type).count()
}

/// What must hold of any store, whatever ran against it:
/// - each aggregate's sequence numbers are 1..n, no gap, no duplicate;
/// - one address is one wallet (events, address claims, directory);
/// - every event is projected exactly once: the audit log holds each event
///   once under a dense `seq` 1..N, every checkpoint has applied N events, and
///   the row counts of the other views follow from the events;
/// - a user has at most one default wallet, a Sila user exactly one.
pub(crate) async fn check_store(db: &Db, events: &[Event]) {
    let n = events.len();
    assert!(n > 0, "no events at all");

    let mut sequences: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for e in events {
        sequences
            .entry((e.aggregate_type.as_str(), e.aggregate_id.as_str()))
            .or_default()
            .push(e.sequence);
    }
    for ((t, id), seqs) in &mut sequences {
        seqs.sort_unstable();
        let want: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(*seqs, want, "sequence numbers of {t} {id}");
    }

    // One address, one wallet.
    let mut holder: HashMap<String, String> = HashMap::new();
    for e in events {
        if e.event_type == "WalletCreated" || e.event_type == "WalletRegistered" {
            let address = text(&e.body["address"]).to_lowercase();
            assert!(address.starts_with("0x"), "{}: {}", e.event_type, e.body);
            let previous = holder.insert(address.clone(), e.aggregate_id.clone());
            assert!(
                previous.is_none() || previous.as_deref() == Some(e.aggregate_id.as_str()),
                "address {address} held by {previous:?} and {}",
                e.aggregate_id
            );
        }
    }
    let claims: HashMap<String, String> =
        text_rows(db, "SELECT address, wallet_id FROM address_claims")
            .await
            .into_iter()
            .map(|r| (r[0].to_lowercase(), r[1].clone()))
            .collect();
    assert_eq!(claims, holder, "address claims against the events");

    // The audit log: each event exactly once, numbered 1..N in log order.
    let audit = text_rows(
        db,
        "SELECT aggregate_type, aggregate_id, CAST(sequence AS TEXT), event_type, CAST(seq AS TEXT)
           FROM audit_log",
    )
    .await;
    assert_eq!(audit.len(), n, "audit log rows against events");
    let mut seqs: Vec<usize> = audit.iter().map(|r| r[4].parse().unwrap()).collect();
    seqs.sort_unstable();
    assert!(
        seqs.iter().copied().eq(1..=n),
        "audit log seq is not dense 1..{n}"
    );
    let projected: Vec<Vec<String>> = audit.iter().map(|r| r[..4].to_vec()).collect();
    let logged: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.aggregate_type.clone(),
                e.aggregate_id.clone(),
                e.sequence.to_string(),
                e.event_type.clone(),
            ]
        })
        .collect();
    let (mut p, mut l) = (projected.clone(), logged.clone());
    p.sort();
    l.sort();
    assert_eq!(p, l, "the audit log holds exactly the events");
    let checkpoints = text_rows(
        db,
        "SELECT name, CAST(applied AS TEXT) FROM projection_checkpoints",
    )
    .await;
    assert!(!checkpoints.is_empty());
    for cp in &checkpoints {
        assert_eq!(cp[1], n.to_string(), "events applied by {}", cp[0]);
    }

    // The other views' rows follow from the events.
    let live_wallets = count_of(events, "WalletCreated") + count_of(events, "WalletRegistered")
        - count_of(events, "WalletDeleted");
    for table in ["wallet_directory", "user_wallets"] {
        let rows = scalar(db, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(rows as usize, live_wallets, "{table} rows");
    }
    let distinct = scalar(
        db,
        "SELECT COUNT(DISTINCT lower(address)) FROM wallet_directory",
    )
    .await;
    assert_eq!(
        distinct as usize, live_wallets,
        "one directory row per address"
    );
    let users = scalar(db, "SELECT COUNT(*) FROM sila_users").await;
    assert_eq!(
        users as usize,
        count_of(events, "UserRegistered"),
        "sila_users rows"
    );
    let attached = scalar(db, "SELECT COUNT(*) FROM sila_wallets").await;
    assert_eq!(
        attached as usize,
        count_of(events, "WalletAttached") - count_of(events, "WalletDetached"),
        "sila_wallets rows"
    );

    // Defaults.
    let defaults = |table: &str, owner: &str| {
        format!(
            "SELECT {owner}, CAST(SUM(CASE WHEN is_default THEN 1 ELSE 0 END) AS TEXT)
               FROM {table} GROUP BY {owner}"
        )
    };
    for r in text_rows(db, &defaults("user_wallets", "user_id")).await {
        assert!(
            r[1] == "0" || r[1] == "1",
            "user {} has {} defaults",
            r[0],
            r[1]
        );
    }
    for r in text_rows(db, &defaults("sila_wallets", "handle")).await {
        assert_eq!(r[1], "1", "Sila user {} has {} defaults", r[0], r[1]);
    }
}

/// Waits until no whitelisting is pending and every server reports its
/// projections caught up with the log, so nothing writes any more.
pub(crate) async fn wait_quiet(db: &Db, bases: &[&str]) {
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queued = scalar(
            db,
            "SELECT COUNT(*) FROM whitelist_queue WHERE status = 'queued'",
        )
        .await;
        let mut lagging = Vec::new();
        for base in bases {
            match send(&client, "GET", &format!("{base}/readyz"), &[], None).await {
                Ok((_, body)) if body["projections"]["lagEvents"] == 0 => {}
                other => lagging.push(format!("{base}: {other:?}")),
            }
        }
        if queued == 0 && lagging.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not quiet: {queued} wallets queued for the whitelist; {lagging:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live projections (no server running any more) against `walletd replay`.
pub(crate) async fn assert_live_equals_rebuild(db: &Db, url: &str) {
    let live = dump_projections(db).await;
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", url)]).await;
    assert!(ok, "replay: {out} {err}");
    let rebuilt = dump_projections(db).await;
    let only_live: Vec<_> = live.iter().filter(|r| !rebuilt.contains(r)).collect();
    let only_rebuilt: Vec<_> = rebuilt.iter().filter(|r| !live.contains(r)).collect();
    assert!(
        only_live.is_empty() && only_rebuilt.is_empty() && live.len() == rebuilt.len(),
        "live projections differ from a rebuild: only live {only_live:#?}, only rebuilt {only_rebuilt:#?}"
    );
}

/// A server log must not show a panic.
pub(crate) fn assert_no_panic(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(!text.contains("panicked"), "a panic in {}", log.display());
}

// ---------------------------------------------------------------------------
// The load.

struct ServerWallet {
    user: String,
    wallet_id: String,
    address: String,
    /// The process that acknowledged the create.
    process: usize,
}

struct SilaUser {
    handle: String,
    /// (wallet id, address) of the first and the second wallet.
    wallets: [(String, String); 2],
}

struct JwtUser {
    sub: String,
    /// (wallet id, address) of both wallets.
    wallets: [(String, String); 2],
    /// The wallet made primary last, after the race.
    primary: String,
}

#[derive(Default)]
struct Load {
    wallets: Vec<ServerWallet>,
    /// (wallet id, signature, process that signed).
    signatures: Vec<(String, String, usize)>,
    sila: Vec<SilaUser>,
    jwt: Vec<JwtUser>,
    /// Wrong answers and reads that missed their own write.
    problems: Vec<String>,
    /// Answers by (request, process, status).
    answers: BTreeMap<(&'static str, usize, u16), usize>,
    stop: bool,
}

type Shared = Rc<RefCell<Load>>;

struct Ctx {
    bases: Vec<String>,
    admin: String,
    sila_key: Key,
}

impl Ctx {
    fn api(&self) -> Vec<(String, String)> {
        vec![bearer(KEY)]
    }
}

/// Counts the answer; `Some(body)` for a 200, else records the problem.
fn expect_ok(
    load: &Shared,
    what: &'static str,
    process: usize,
    answer: Answer,
    context: &str,
) -> Option<Value> {
    let status = answer.as_ref().map(|(s, _)| *s).unwrap_or(0);
    *load
        .borrow_mut()
        .answers
        .entry((what, process, status))
        .or_default() += 1;
    match answer {
        Ok((200, body)) => Some(body),
        other => {
            load.borrow_mut()
                .problems
                .push(format!("{what} on {process} ({context}): {other:?}"));
            None
        }
    }
}

fn problem(load: &Shared, p: String) {
    load.borrow_mut().problems.push(p);
}

fn stopped(load: &Shared) -> bool {
    load.borrow().stop
}

/// Signs `message` with the wallet through process `p` (the path names the
/// wallet by `path_id`), checks the signature, and reads the `MessageSigned`
/// back from the same process's admin audit.
async fn sign(
    ctx: &Ctx,
    client: &awc::Client,
    p: usize,
    path_id: &str,
    wallet: (&str, &str),
    message: &str,
    load: &Shared,
) {
    let (wallet_id, address) = wallet;
    let from = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let url = format!("{}/api/wallets/{path_id}/sign", ctx.bases[p]);
    let body = json!({ "message": message }).to_string().into_bytes();
    let answer = send(client, "POST", &url, &ctx.api(), Some(body)).await;
    let Some(body) = expect_ok(load, "sign", p, answer, message) else {
        return;
    };
    let signature = text(&body["signature"]);
    if signer_of(message, &signature) != address.to_lowercase() || body["walletId"] != wallet_id {
        problem(
            load,
            format!("sign {message} on {wallet_id}: wrong answer {body}"),
        );
    }
    load.borrow_mut()
        .signatures
        .push((wallet_id.to_string(), signature.clone(), p));
    // Read your write: the audit of the same process shows the signature.
    for page in 1..=50 {
        let url = format!(
            "{}/api/admin/audit?walletId={wallet_id}&action=MessageSigned&from={from}&perPage=100&page={page}",
            ctx.bases[p]
        );
        let answer = send(client, "GET", &url, &[bearer(&ctx.admin)], None).await;
        let Some(body) = expect_ok(load, "audit", p, answer, wallet_id) else {
            return;
        };
        let entries = body["entries"].as_array().cloned().unwrap_or_default();
        if entries
            .iter()
            .any(|e| e["data"].to_string().contains(&signature))
        {
            return;
        }
        if entries.len() < 100 {
            break;
        }
    }
    problem(
        load,
        format!("process {p} does not show its signature {signature} on {wallet_id}"),
    );
}

/// Creates server wallets, each through the next process, reads each back
/// from the process that created it, and signs with it through another.
async fn server_wallet_worker(ctx: Rc<Ctx>, n: usize, load: Shared) {
    let client = client();
    for i in 0.. {
        if stopped(&load) {
            return;
        }
        let p = (n + i) % PROCESSES;
        let user = format!("inst-{n}-{i}");
        let url = format!("{}/api/wallets", ctx.bases[p]);
        let body = json!({ "userId": user }).to_string().into_bytes();
        let answer = send(&client, "POST", &url, &ctx.api(), Some(body)).await;
        let Some(created) = expect_ok(&load, "create", p, answer, &user) else {
            continue;
        };
        let (wallet_id, address) = (text(&created["walletId"]), text(&created["address"]));
        load.borrow_mut().wallets.push(ServerWallet {
            user: user.clone(),
            wallet_id: wallet_id.clone(),
            address: address.clone(),
            process: p,
        });
        let url = format!("{}/api/wallets/{wallet_id}", ctx.bases[p]);
        let answer = send(&client, "GET", &url, &ctx.api(), None).await;
        if let Some(got) = expect_ok(&load, "get", p, answer, &wallet_id) {
            if got["address"] != address.as_str() || got["userId"] != user.as_str() {
                problem(
                    &load,
                    format!("process {p} reads {got} for its create {created}"),
                );
            }
        }
        let q = (p + 1) % PROCESSES;
        let message = format!("own {n} {i}");
        sign(
            &ctx,
            &client,
            q,
            &user,
            (&wallet_id, &address),
            &message,
            &load,
        )
        .await;
    }
}

/// Signs on the shared hot wallets through process `p`, naming them by user
/// id, wallet id and address in turn.
async fn hot_signer(ctx: Rc<Ctx>, hot: Rc<Vec<ServerWallet>>, p: usize, n: usize, load: Shared) {
    let client = client();
    for i in 0.. {
        if stopped(&load) {
            return;
        }
        let w = &hot[(n + i) % hot.len()];
        let path_id = match i % 3 {
            0 => w.user.as_str(),
            1 => w.wallet_id.as_str(),
            _ => w.address.as_str(),
        };
        let message = format!("hot {p} {n} {i}");
        sign(
            &ctx,
            &client,
            p,
            path_id,
            (&w.wallet_id, &w.address),
            &message,
            &load,
        )
        .await;
    }
}

/// `get_wallet` signed by `key` through `sila`: the answer's wallet.
async fn sila_wallet(sila: &SilaClient, handle: &str, key: &Key) -> Result<Value, String> {
    let r = sila.get_wallet(handle, key).await;
    if r.status == 200 && r.body["success"] == true {
        Ok(r.body["wallet"].clone())
    } else {
        Err(format!("get_wallet {}: {}", r.status, r.body))
    }
}

/// A Sila user's life across the three processes: register through one,
/// KYC through the next, a second (default) wallet through the third; each
/// write read back from the process that acknowledged it.
async fn sila_worker(ctx: Rc<Ctx>, n: usize, load: Shared) {
    for i in 0.. {
        if stopped(&load) {
            return;
        }
        let p = (n + i) % PROCESSES;
        let on =
            |k: usize| SilaClient::new(&ctx.bases[(p + k) % PROCESSES], APP, ctx.sila_key.clone());
        let handle = format!("inst{n}x{i}.eth");

        let sila = on(0);
        let first = Key::random();
        let body = sila.register_body(&handle, &first, Some("main"));
        let r = sila.call("register", &body, Some(&sila.key), None).await;
        if expect_ok(
            &load,
            "sila-register",
            p,
            Ok((r.status, r.body.clone())),
            &handle,
        )
        .is_none()
        {
            continue;
        }
        if r.body["success"] != true {
            problem(&load, format!("register {handle}: {}", r.body));
            continue;
        }
        let first_id = match sila_wallet(&sila, &handle, &first).await {
            Ok(w) if w["blockchain_address"] == first.address && w["default"] == true => {
                text(&w["wallet_id"])
            }
            other => {
                problem(
                    &load,
                    format!("process {p} does not read its register of {handle}: {other:?}"),
                );
                continue;
            }
        };

        let sila = on(1);
        let r = sila.request_kyc(&handle, &first).await;
        let _ = expect_ok(
            &load,
            "sila-kyc",
            (p + 1) % PROCESSES,
            Ok((r.status, r.body.clone())),
            &handle,
        );
        let r = sila.check_kyc(&handle, &first).await;
        if r.body["verification_status"] != "passed" {
            problem(
                &load,
                format!("KYC of {handle} not read back as passed: {}", r.body),
            );
        }

        let sila = on(2);
        let second = Key::random();
        let r = sila
            .register_wallet(
                &handle,
                &first,
                &second,
                json!({"nickname": "second", "default": true}),
            )
            .await;
        let q = (p + 2) % PROCESSES;
        let Some(registered) = expect_ok(
            &load,
            "sila-register-wallet",
            q,
            Ok((r.status, r.body)),
            &handle,
        ) else {
            continue;
        };
        if registered["success"] != true || registered["queued_for_whitelist"] != true {
            problem(&load, format!("register_wallet {handle}: {registered}"));
        }
        let second_id = text(&registered["wallet_id"]);
        match sila_wallet(&sila, &handle, &second).await {
            Ok(w) if w["wallet_id"] == second_id.as_str() && w["default"] == true => {}
            other => problem(
                &load,
                format!("process {q} does not read its register_wallet for {handle}: {other:?}"),
            ),
        }
        load.borrow_mut().sila.push(SilaUser {
            handle,
            wallets: [
                (first_id, first.address.clone()),
                (second_id, second.address.clone()),
            ],
        });
    }
}

/// The caller's JWT wallets listed by process `p`: (id, address, primary).
async fn jwt_list(
    ctx: &Ctx,
    client: &awc::Client,
    p: usize,
    tok: &str,
    load: &Shared,
) -> Option<Vec<(String, String, bool)>> {
    let url = format!("{}/api/wallet/list", ctx.bases[p]);
    let answer = send(client, "GET", &url, &[bearer(tok)], None).await;
    let body = expect_ok(load, "jwt-list", p, answer, "list")?;
    Some(
        body["wallets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|w| (text(&w["id"]), text(&w["address"]), w["isPrimary"] == true))
            .collect(),
    )
}

async fn jwt_primary(
    ctx: &Ctx,
    client: &awc::Client,
    p: usize,
    tok: &str,
    wallet_id: &str,
    alone: bool,
    load: &Shared,
) -> bool {
    let url = format!("{}/api/wallet/primary", ctx.bases[p]);
    let body = json!({ "walletId": wallet_id }).to_string().into_bytes();
    let answer = send(client, "POST", &url, &[bearer(tok)], Some(body)).await;
    match expect_ok(load, "jwt-primary", p, answer, wallet_id) {
        // The answer reads the wallet after the write: a racing primary of
        // the other wallet may already show.
        Some(b)
            if b["wallet"]["id"] == wallet_id && (b["wallet"]["isPrimary"] == true || !alone) =>
        {
            true
        }
        Some(b) => {
            problem(load, format!("primary {wallet_id}: {b}"));
            false
        }
        None => false,
    }
}

/// A JWT user creates two wallets through two processes, races two primaries
/// through two more, then sets one primary last.
async fn jwt_worker(ctx: Rc<Ctx>, n: usize, load: Shared) {
    let client = client();
    'users: for i in 0.. {
        if stopped(&load) {
            return;
        }
        let p = (n + i) % PROCESSES;
        let sub = format!("inst-jwt-{n}-{i}");
        let tok = token(&sub, "SUBSCRIBER");
        let mut wallets = Vec::new();
        for (k, label) in [(0, Some("first")), (1, None)] {
            let q = (p + k) % PROCESSES;
            let url = format!("{}/api/wallet/create", ctx.bases[q]);
            let body = match label {
                Some(l) => json!({ "label": l }),
                None => json!({}),
            };
            let answer = send(
                &client,
                "POST",
                &url,
                &[bearer(&tok)],
                Some(body.to_string().into_bytes()),
            )
            .await;
            let Some(created) = expect_ok(&load, "jwt-create", q, answer, &sub) else {
                continue 'users;
            };
            let w = (
                text(&created["wallet"]["id"]),
                text(&created["wallet"]["address"]),
            );
            let listed = jwt_list(&ctx, &client, q, &tok, &load).await;
            if !listed
                .as_ref()
                .is_some_and(|l| l.iter().any(|(id, a, _)| *id == w.0 && *a == w.1))
            {
                problem(
                    &load,
                    format!("process {q} does not list its create {created}: {listed:?}"),
                );
            }
            wallets.push(w);
        }
        // Two primaries at once through two processes: one primary after.
        let (a, b) = join(
            jwt_primary(
                &ctx,
                &client,
                (p + 1) % PROCESSES,
                &tok,
                &wallets[0].0,
                false,
                &load,
            ),
            jwt_primary(
                &ctx,
                &client,
                (p + 2) % PROCESSES,
                &tok,
                &wallets[1].0,
                false,
                &load,
            ),
        )
        .await;
        if !(a && b) {
            continue;
        }
        if let Some(l) = jwt_list(&ctx, &client, (p + 1) % PROCESSES, &tok, &load).await {
            let primaries = l.iter().filter(|w| w.2).count();
            if primaries != 1 {
                problem(&load, format!("{sub} has {primaries} primaries: {l:?}"));
            }
        }
        // Then one more, alone: the same process reads it as the primary.
        if !jwt_primary(&ctx, &client, p, &tok, &wallets[0].0, true, &load).await {
            continue;
        }
        let listed = jwt_list(&ctx, &client, p, &tok, &load).await;
        let primaries: Vec<String> = listed
            .iter()
            .flatten()
            .filter(|w| w.2)
            .map(|w| w.0.clone())
            .collect();
        if primaries != [wallets[0].0.clone()] {
            problem(
                &load,
                format!("process {p} lists primaries {primaries:?} of {sub} after its own primary"),
            );
        }
        let [w1, w2]: [(String, String); 2] = wallets.try_into().unwrap();
        load.borrow_mut().jwt.push(JwtUser {
            sub,
            primary: w1.0.clone(),
            wallets: [w1, w2],
        });
    }
}

#[actix_web::test]
async fn three_processes_on_one_database_under_mixed_load() {
    let started = Instant::now();
    let Some(tdb) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let master = random_master_key();
    let sila_key = Key::random();
    let (ok, out, err) = run_cli(
        &[
            "app",
            "register",
            "--handle",
            APP,
            "--address",
            &sila_key.address,
        ],
        &[("DATABASE_URL", &tdb.url)],
    )
    .await;
    assert!(ok, "{out} {err}");
    // Every process runs a sealer; one at a time may seal.
    let (log_key, verifier) =
        walletd::transparency::LogSigner::generate("walletd.test/log").unwrap();
    let env = [
        ("WALLETD_JWT_SECRET", JWT_SECRET),
        // Whitelisting (every process's scheduler) happens during the test.
        ("WALLETD_WHITELIST_DELAY", "1"),
        ("RUST_LOG", "info"),
        ("WALLETD_LOG_KEY", log_key.expose()),
    ];
    let logs: Vec<_> = (0..PROCESSES)
        .map(|i| tdb.dir.path().join(format!("walletd-{i}.log")))
        .collect();
    // All three start at once, as a deployment would: migrations and the
    // projector's catch-up run concurrently.
    let servers: Vec<BinaryServer> = std::thread::scope(|s| {
        let handles: Vec<_> = logs
            .iter()
            .map(|log| {
                let (url, master, env) = (&tdb.url, &master, &env);
                s.spawn(move || BinaryServer::start_with(url, Some(master), KEY, env, log))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ctx = Rc::new(Ctx {
        bases: servers.iter().map(|s| s.base.clone()).collect(),
        admin: token("inst-auditor", "ADMIN"),
        sila_key,
    });

    // The hot wallets, one created through each process.
    let client = client();
    let mut hot = Vec::new();
    for i in 0..HOT_WALLETS {
        let p = i % PROCESSES;
        let user = format!("hot-{i}");
        let body = json!({ "userId": user }).to_string().into_bytes();
        let url = format!("{}/api/wallets", ctx.bases[p]);
        let (status, created) = send(&client, "POST", &url, &ctx.api(), Some(body))
            .await
            .unwrap();
        assert_eq!(status, 200, "{created}");
        hot.push(ServerWallet {
            user,
            wallet_id: text(&created["walletId"]),
            address: text(&created["address"]),
            process: p,
        });
    }
    let hot = Rc::new(hot);

    let load: Shared = Rc::default();
    let mut tasks = Vec::new();
    for n in 0..2 {
        tasks.push(actix_web::rt::spawn(server_wallet_worker(
            ctx.clone(),
            n,
            load.clone(),
        )));
        tasks.push(actix_web::rt::spawn(sila_worker(
            ctx.clone(),
            n,
            load.clone(),
        )));
        tasks.push(actix_web::rt::spawn(jwt_worker(
            ctx.clone(),
            n,
            load.clone(),
        )));
    }
    for p in 0..PROCESSES {
        for n in 0..2 {
            tasks.push(actix_web::rt::spawn(hot_signer(
                ctx.clone(),
                hot.clone(),
                p,
                n,
                load.clone(),
            )));
        }
    }
    actix_web::rt::time::sleep(LOAD_FOR).await;
    load.borrow_mut().stop = true;
    for t in tasks {
        t.await.expect("a load worker panicked");
    }
    let load = load.take();
    let hot_signed = load
        .signatures
        .iter()
        .filter(|(w, ..)| hot.iter().any(|h| h.wallet_id == *w))
        .count();
    eprintln!(
        "instances: {} server wallets, {} signatures ({hot_signed} on hot wallets), {} Sila users, \
         {} JWT users in {:?}; answers {:?}",
        load.wallets.len(),
        load.signatures.len(),
        load.sila.len(),
        load.jwt.len(),
        LOAD_FOR,
        load.answers
    );
    assert!(
        load.problems.is_empty(),
        "{} problems under load: {:#?}",
        load.problems.len(),
        load.problems
    );
    // Enough of each kind, through every process, for the checks to mean something.
    for what in [
        "create",
        "sign",
        "sila-register",
        "sila-register-wallet",
        "jwt-create",
        "jwt-primary",
    ] {
        for p in 0..PROCESSES {
            assert!(
                load.answers.get(&(what, p, 200)).is_some_and(|&n| n > 0),
                "no {what} through process {p}: {:?}",
                load.answers
            );
        }
    }
    for h in hot.iter() {
        let through: HashSet<usize> = load
            .signatures
            .iter()
            .filter(|(w, ..)| *w == h.wallet_id)
            .map(|(.., p)| *p)
            .collect();
        assert_eq!(
            through.len(),
            PROCESSES,
            "{} signed through every process",
            h.user
        );
    }

    let db = open_db(&tdb.url).await;
    let bases: Vec<&str> = ctx.bases.iter().map(String::as_str).collect();
    wait_quiet(&db, &bases).await;

    // Every acknowledged write, read back through a process other than the
    // one that acknowledged it.
    for w in load.wallets.iter().chain(hot.iter()) {
        let other = (w.process + 1) % PROCESSES;
        let url = format!("{}/api/wallets/{}", ctx.bases[other], w.user);
        let (status, got) = send(&client, "GET", &url, &ctx.api(), None).await.unwrap();
        assert_eq!(status, 200, "{}: {got}", w.user);
        assert_eq!(got["walletId"], w.wallet_id.as_str());
        assert_eq!(got["address"], w.address.as_str());
    }

    let events = events(&db).await;
    check_store(&db, &events).await;
    let created: HashMap<&str, &Event> = events
        .iter()
        .filter(|e| e.event_type == "WalletCreated" || e.event_type == "WalletRegistered")
        .map(|e| (e.aggregate_id.as_str(), e))
        .collect();
    for w in load.wallets.iter().chain(hot.iter()) {
        let e = created
            .get(w.wallet_id.as_str())
            .unwrap_or_else(|| panic!("acknowledged wallet of {} lost", w.user));
        assert_eq!(e.body["address"], w.address.as_str());
    }
    // Signing events per wallet equal the acknowledged signatures, exactly.
    let mut acked: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (w, s, _) in &load.signatures {
        acked.entry(w.as_str()).or_default().push(s.as_str());
    }
    let mut recorded: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == "MessageSigned") {
        recorded
            .entry(e.aggregate_id.as_str())
            .or_default()
            .push(e.body["signature"].as_str().unwrap());
    }
    for v in acked.values_mut().chain(recorded.values_mut()) {
        v.sort_unstable();
    }
    assert_eq!(
        acked, recorded,
        "signatures per wallet: acknowledged against recorded"
    );
    for s in &load.sila {
        let user = events.iter().find(|e| {
            e.event_type == "UserRegistered" && e.aggregate_id.eq_ignore_ascii_case(&s.handle)
        });
        assert!(user.is_some(), "acknowledged Sila user {} lost", s.handle);
        for (id, address) in &s.wallets {
            let e = created
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged wallet {id} of {} lost", s.handle));
            assert_eq!(e.body["address"], address.as_str());
            // Queued at KYC or at registration, whitelisted exactly once.
            let whitelisted = events
                .iter()
                .filter(|e| e.event_type == "WalletWhitelisted" && e.aggregate_id == *id)
                .count();
            assert_eq!(
                whitelisted, 1,
                "wallet {id} of {} whitelisted once",
                s.handle
            );
        }
        let rows = text_rows(
            &db,
            &format!(
                "SELECT wallet_id FROM sila_wallets WHERE handle = '{}' AND is_default",
                s.handle
            ),
        )
        .await;
        assert_eq!(
            rows,
            [[s.wallets[1].0.clone()]],
            "the default of {}",
            s.handle
        );
    }
    for u in &load.jwt {
        for (id, address) in &u.wallets {
            let e = created
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged JWT wallet {id} of {} lost", u.sub));
            assert_eq!(e.body["address"], address.as_str());
        }
        let rows = text_rows(
            &db,
            &format!(
                "SELECT wallet_id FROM user_wallets WHERE wallet_id IN ('{}', '{}') AND is_default",
                u.wallets[0].0, u.wallets[1].0
            ),
        )
        .await;
        assert_eq!(rows, [[u.primary.clone()]], "the primary of {}", u.sub);
    }

    // The three sealers together sealed every event once, in order: the
    // tree verifies against every checkpoint any of them signed.
    let events = walletd::projections::log::count(&db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sealed = text_rows(
            &db,
            "SELECT CAST(COALESCE(MAX(size), 0) AS TEXT) FROM log_checkpoints",
        )
        .await;
        if sealed == [[events.to_string()]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sealed {sealed:?} of {events} events"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    drop(servers);
    for log in &logs {
        assert_no_panic(log);
    }
    let (ok, out, err) = run_cli(
        &["verify", "--key", &verifier],
        &[("DATABASE_URL", &tdb.url)],
    )
    .await;
    assert!(ok, "{out} {err}");
    assert!(out.contains(&format!("{events} events verified")), "{out}");
    // Reports from the log equal those from the projections.
    for name in [
        "wallets-created",
        "signing-activity",
        "kyc-changes",
        "default-wallet-changes",
    ] {
        let env = [("DATABASE_URL", tdb.url.as_str())];
        let (ok, live, err) = run_cli(&["report", name], &env).await;
        assert!(ok, "{err}");
        let (ok, replayed, err) =
            run_cli(&["report", name, "--as-of", &events.to_string()], &env).await;
        assert!(ok, "{err}");
        let (live, replayed): (Value, Value) = (
            serde_json::from_str(&live).unwrap(),
            serde_json::from_str(&replayed).unwrap(),
        );
        assert_eq!(live["rows"], replayed["rows"], "{name}");
        assert!(
            !live["rows"].as_array().unwrap().is_empty(),
            "{name}: {live}"
        );
    }
    assert_live_equals_rebuild(&db, &tdb.url).await;
    db.close().await;
    eprintln!("instances: done in {:?}", started.elapsed());
}
