//! `kill -9` of `walletd serve` again and again under mixed load: server
//! wallets of both custody kinds (the process's custody setting alternates
//! between restarts: local, then MPC with the in-process cosigner), signs on
//! wallets of both kinds, Sila registrations. Creates and signs carry an
//! `Idempotency-Key`. After each restart every request whose answer was lost
//! is sent again, byte for byte, until it is answered, and a sample of the
//! acknowledged ones is sent again too: a retry answers the same wallet, the
//! same signature, and nothing is ever recorded twice. At the end every
//! acknowledged write is there, exactly once, and the live projections equal
//! a rebuild.
//!
//! Sila requests carry no Idempotency-Key (the Sila API reads none): a
//! register is sent again as the same signed bytes. One whose first attempt
//! committed is refused with 400 and writes nothing; the answer's message is
//! "user handle is already taken", not the "replayed" that README's Headers
//! section describes, so only the status is asserted (the messages are
//! printed).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    open_db, random_master_key, run_cli, spawn_app, Backend, BinaryServer, TestDb,
};
use crate::instances::{
    assert_live_equals_rebuild, assert_no_panic, bearer, check_store, client, events, execute,
    send, signer_of, text, wait_quiet, Answer,
};
use crate::sila_client::{Key, SilaClient};

backend_tests!(
    kill_nine_cycles_lose_no_acknowledged_write_and_retries_answer_the_same,
    a_retried_create_is_answered_from_the_log_while_the_read_side_trails,
);

const KEY: &str = "crash-mixed-key";
const APP: &str = "crashmixed.app";
/// Kills; the process is started once more than this.
const CYCLES: usize = 4;
const LOAD_PER_CYCLE: Duration = Duration::from_millis(1500);
/// How long one lost request may take to be answered after a restart (an MPC
/// create may have to wait for a key to be generated).
const RETRY_FOR: Duration = Duration::from_secs(45);

#[derive(Clone, Debug)]
enum What {
    Create {
        user: String,
    },
    Sign {
        wallet_id: String,
        address: String,
        message: String,
    },
    Sila {
        handle: String,
        key: UserKey,
    },
}

/// The key of a Sila user's first wallet; shown as its address.
#[derive(Clone)]
struct UserKey(Key);

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.0.address)
    }
}

/// One request, exactly as sent, so that a retry is the same bytes.
#[derive(Clone, Debug)]
struct Request {
    what: What,
    path: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    /// The Idempotency-Key (creates and signs).
    key: Option<String>,
    /// Names the request in `X-Request-Id`s.
    id: String,
}

impl Request {
    fn label(&self) -> &'static str {
        match self.what {
            What::Create { .. } => "create",
            What::Sign { .. } => "sign",
            What::Sila { .. } => "sila-register",
        }
    }
}

struct Acked {
    req: Request,
    body: Value,
    /// The custody setting of the process that answered the first attempt;
    /// `None` when the first answer was lost (the retry cannot tell which
    /// attempt made the wallet).
    custody: Option<&'static str>,
}

#[derive(Default)]
struct Load {
    acked: Vec<Acked>,
    /// Lost answers (connection cut, refused) and 503s: sent again after the restart.
    unanswered: Vec<Request>,
    lost: usize,
    /// Wallets to sign with: (wallet id, address).
    wallets: Vec<(String, String)>,
    /// The wallets created before each start's load, one per start.
    seeds: Vec<(String, String)>,
    problems: Vec<String>,
    answers: BTreeMap<(&'static str, u16), usize>,
    /// What a Sila register retried after its write committed answers.
    sila_retries: BTreeMap<String, usize>,
    stop: bool,
}

type Shared = Rc<RefCell<Load>>;

fn api_headers(key: &str) -> Vec<(String, String)> {
    vec![bearer(KEY), ("Idempotency-Key".into(), key.to_string())]
}

fn create_request(user: &str, key: &str) -> Request {
    Request {
        what: What::Create {
            user: user.to_string(),
        },
        path: "/api/wallets".into(),
        body: json!({ "userId": user }).to_string().into_bytes(),
        headers: api_headers(key),
        key: Some(key.to_string()),
        id: key.to_string(),
    }
}

fn sign_request(wallet: &(String, String), message: &str, key: &str) -> Request {
    Request {
        what: What::Sign {
            wallet_id: wallet.0.clone(),
            address: wallet.1.clone(),
            message: message.to_string(),
        },
        path: format!("/api/wallets/{}/sign", wallet.0),
        body: json!({ "message": message }).to_string().into_bytes(),
        headers: api_headers(key),
        key: Some(key.to_string()),
        id: key.to_string(),
    }
}

fn sila_request(sila: &SilaClient, handle: &str) -> Request {
    let key = Key::random();
    let body = sila.register_body(handle, &key, None);
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = SilaClient::signatures(&bytes, Some(&sila.key), None)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Request {
        what: What::Sila {
            handle: handle.to_string(),
            key: UserKey(key),
        },
        path: "/0.2/register".into(),
        body: bytes,
        headers,
        key: None,
        id: handle.to_string(),
    }
}

/// Sends `req`; `attempt` goes into `X-Request-Id` (which the request hash
/// does not cover), so the log shows which attempt wrote an event.
async fn issue(client: &awc::Client, base: &str, req: &Request, attempt: &str) -> Answer {
    let mut headers = req.headers.clone();
    headers.push(("X-Request-Id".into(), format!("{}-{attempt}", req.id)));
    send(
        client,
        "POST",
        &format!("{base}{}", req.path),
        &headers,
        Some(req.body.clone()),
    )
    .await
}

/// Whether a 200 answers `req` correctly; the problem otherwise.
fn check_answer(req: &Request, body: &Value) -> Result<(), String> {
    let ok = match &req.what {
        What::Create { user } => {
            body["userId"] == user.as_str()
                && body["walletId"].is_string()
                && text(&body["address"]).starts_with("0x")
        }
        What::Sign {
            wallet_id,
            address,
            message,
        } => {
            body["walletId"] == wallet_id.as_str()
                && signer_of(message, &text(&body["signature"])) == address.to_lowercase()
        }
        What::Sila { handle, .. } => {
            body["success"] == true
                && body["message"] == format!("{handle} was successfully registered.")
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{req:?} answered {body}"))
    }
}

/// Files the answer to a request of the load. `false` when the server is gone.
/// Records a 200: its answer checked, its wallet noted, the request kept.
fn acknowledge(
    l: &mut Load,
    req: Request,
    body: Value,
    custody: Option<&'static str>,
    context: &str,
) {
    if let Err(p) = check_answer(&req, &body) {
        l.problems.push(format!("{context}{p}"));
    }
    if let What::Create { .. } = req.what {
        l.wallets
            .push((text(&body["walletId"]), text(&body["address"])));
    }
    l.acked.push(Acked { req, body, custody });
}

fn settle(load: &Shared, req: Request, answer: Answer, custody: &'static str) -> bool {
    let mut l = load.borrow_mut();
    let status = answer.as_ref().map(|(s, _)| *s).unwrap_or(0);
    *l.answers.entry((req.label(), status)).or_default() += 1;
    match answer {
        Ok((200, body)) => {
            acknowledge(&mut l, req, body, Some(custody), "");
            true
        }
        // An MPC create that found no key in time, or the store busy:
        // nothing was acknowledged; asked again after the restart.
        Ok((503, _)) => {
            l.unanswered.push(req);
            true
        }
        Ok(other) => {
            l.problems.push(format!("{req:?} answered {other:?}"));
            true
        }
        Err(_) => {
            l.lost += 1;
            l.unanswered.push(req);
            false
        }
    }
}

async fn create_worker(base: String, start: usize, n: usize, custody: &'static str, load: Shared) {
    let client = client();
    for i in 0.. {
        if load.borrow().stop {
            return;
        }
        let user = format!("cm-{start}-{n}-{i}");
        let req = create_request(&user, &format!("create-{start}-{n}-{i}"));
        let answer = issue(&client, &base, &req, "first").await;
        if !settle(&load, req, answer, custody) {
            return;
        }
    }
}

async fn sign_worker(base: String, start: usize, n: usize, custody: &'static str, load: Shared) {
    let client = client();
    for i in 0.. {
        if load.borrow().stop {
            return;
        }
        // Every other sign goes to a seed wallet, so wallets of both custody
        // kinds are signed with under every kill.
        let wallet = {
            let l = load.borrow();
            let from = if i % 2 == 0 { &l.seeds } else { &l.wallets };
            (!from.is_empty()).then(|| from[(n * 7 + i / 2) % from.len()].clone())
        };
        let Some(wallet) = wallet else {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let message = format!("crash-mixed {start} {n} {i}");
        let req = sign_request(&wallet, &message, &format!("sign-{start}-{n}-{i}"));
        let answer = issue(&client, &base, &req, "first").await;
        if !settle(&load, req, answer, custody) {
            return;
        }
    }
}

async fn sila_worker(sila: Rc<SilaClient>, start: usize, custody: &'static str, load: Shared) {
    let client = client();
    for i in 0.. {
        if load.borrow().stop {
            return;
        }
        let req = sila_request(&sila, &format!("cm{start}x{i}.eth"));
        let answer = issue(&client, &sila.base, &req, "first").await;
        if !settle(&load, req, answer, custody) {
            return;
        }
    }
}

/// The Idempotency-Key claims of the killed processes: claimed before the
/// running process started. Such a claim would hold a retry off (409) until
/// it goes stale, 60 s after it was made (`STALE_AFTER_SECS` in
/// src/api/idempotency.rs); aging it lets the retry take it over at once,
/// exactly as it would a minute later. Claims of the running process are
/// never touched.
struct DeadClaims<'a> {
    db: &'a walletd::projections::Db,
    /// When the running process was started, as the claims stamp time.
    started: String,
}

impl DeadClaims<'_> {
    async fn age(&self, key: Option<&str>) {
        let only = key.map(|k| format!("AND key = '{k}'")).unwrap_or_default();
        execute(
            self.db,
            &format!(
                "UPDATE idempotency_keys SET created_at = '2000-01-01T00:00:00.000000Z'
                  WHERE status_code IS NULL AND created_at < '{}' {only}",
                self.started
            ),
        )
        .await;
    }
}

/// Sends a request whose answer was lost again until it is answered; files
/// the answer as acknowledged. A Sila register whose first attempt committed
/// is refused as used up (its body is a nonce): then the user must exist.
async fn retry_lost(
    client: &awc::Client,
    base: &str,
    req: Request,
    load: &Shared,
    dead_claims: &DeadClaims<'_>,
) {
    let deadline = Instant::now() + RETRY_FOR;
    let sila = matches!(req.what, What::Sila { .. });
    let mut seen = Vec::new();
    for attempt in 0.. {
        let answer = issue(client, base, &req, &format!("retry{attempt}")).await;
        seen.push(match &answer {
            Ok((status, body)) => format!("{status} {body}"),
            Err(e) => e.clone(),
        });
        let status = answer.as_ref().map(|(s, _)| *s).unwrap_or(0);
        *load
            .borrow_mut()
            .answers
            .entry(("retry", status))
            .or_default() += 1;
        match answer {
            Ok((200, body)) => {
                acknowledge(&mut load.borrow_mut(), req, body, None, "retry: ");
                return;
            }
            Ok((400, body)) if sila => {
                let mut l = load.borrow_mut();
                *l.sila_retries.entry(text(&body["message"])).or_default() += 1;
                // Committed by the first attempt: checked against the log at the end.
                l.acked.push(Acked {
                    req,
                    body,
                    custody: None,
                });
                return;
            }
            // A claim of the dead process, written after the ones aged at the
            // kill (its PostgreSQL session still finishing a statement).
            Ok((409, _)) => dead_claims.age(req.key.as_deref()).await,
            // No MPC key ready in time.
            Ok((503, _)) | Err(_) => {}
            Ok(other) => {
                load.borrow_mut()
                    .problems
                    .push(format!("retry of {req:?} answered {other:?}"));
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{req:?} not answered within {RETRY_FOR:?} of the restart; answers {seen:#?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }
    unreachable!()
}

/// An acknowledged request sent again answers the same; a Sila register is
/// refused as used up and writes nothing.
async fn retry_acked(client: &awc::Client, base: &str, acked: &Acked, load: &Shared) {
    let answer = issue(client, base, &acked.req, "again").await;
    let mut l = load.borrow_mut();
    let fields: &[&str] = match acked.req.what {
        What::Create { .. } => &["userId", "walletId", "address", "publicKey"],
        What::Sign { .. } => &["walletId", "address", "signature", "messageHash"],
        What::Sila { .. } => {
            match answer {
                Ok((400, body)) if body["success"] == false => {
                    *l.sila_retries.entry(text(&body["message"])).or_default() += 1;
                }
                other => l.problems.push(format!(
                    "acknowledged {:?} sent again answered {other:?}",
                    acked.req
                )),
            }
            return;
        }
    };
    match answer {
        Ok((200, body)) if fields.iter().all(|f| body[f] == acked.body[f]) => {}
        other => l.problems.push(format!(
            "acknowledged {:?} ({}) sent again answered {other:?}",
            acked.req, acked.body
        )),
    }
}

/// The acknowledged requests to send again: the first and the latest few of
/// each kind (the latest were answered just before a kill).
fn sample(load: &Shared) -> Vec<usize> {
    let l = load.borrow();
    let mut picked = Vec::new();
    for kind in ["create", "sign", "sila-register"] {
        let of_kind: Vec<usize> = (0..l.acked.len())
            .filter(|&i| l.acked[i].req.label() == kind && l.acked[i].custody.is_some())
            .collect();
        picked.extend(of_kind.first());
        picked.extend(of_kind.iter().rev().take(3));
    }
    picked.sort_unstable();
    picked.dedup();
    picked
}

async fn kill_nine_cycles_lose_no_acknowledged_write_and_retries_answer_the_same(b: Backend) {
    let started = Instant::now();
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let (master, cosigner) = (random_master_key(), random_master_key());
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
        &[("DATABASE_URL", &tdb.url), ("WALLETD_MASTER_KEY", &master)],
    )
    .await;
    assert!(ok, "{out} {err}");
    let log = tdb.dir.path().join("crash-mixed.log");
    let load: Shared = Rc::default();
    let client = client();
    let db = open_db(&tdb.url).await;

    for start in 0..=CYCLES {
        // Local custody on even starts, MPC on odd ones; every start can
        // sign with wallets of both kinds.
        let custody = if start % 2 == 1 { "mpc" } else { "local" };
        let dead_claims = DeadClaims {
            db: &db,
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        };
        let server = BinaryServer::start_with(
            &tdb.url,
            Some(&master),
            KEY,
            &[
                ("WALLETD_SERVER_WALLET_CUSTODY", custody),
                ("WALLETD_COSIGNER_MASTER_KEY", &cosigner),
                ("WALLETD_MPC_KEY_POOL", "2"),
                ("WALLETD_KEY_POOL", "8"),
                ("RUST_LOG", "info"),
            ],
            &log,
        );
        let base = server.base.clone();

        // Every request whose answer the last kill took is answered now.
        dead_claims.age(None).await;
        let lost = std::mem::take(&mut load.borrow_mut().unanswered);
        futures_util::future::join_all(
            lost.into_iter()
                .map(|req| retry_lost(&client, &base, req, &load, &dead_claims)),
        )
        .await;
        // And acknowledged requests sent again answer the same.
        let picked = sample(&load);
        for i in picked {
            let acked = {
                let l = load.borrow();
                Acked {
                    req: l.acked[i].req.clone(),
                    body: l.acked[i].body.clone(),
                    custody: l.acked[i].custody,
                }
            };
            retry_acked(&client, &base, &acked, &load).await;
        }
        if start == CYCLES {
            db.close().await;
            final_checks(&tdb, &sila_key, server, &log, load.take(), started).await;
            return;
        }
        // One wallet of this start's custody before the load, so that signs
        // on both kinds run under the kills.
        let seed = create_request(&format!("seed-{start}"), &format!("seed-{start}"));
        let deadline = Instant::now() + RETRY_FOR;
        let answer = loop {
            // 503: no MPC key ready yet (the pool fills after the start).
            match issue(&client, &base, &seed, "first").await {
                Ok((503, body)) if Instant::now() < deadline => {
                    eprintln!("seed create: 503 {body}");
                    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
                }
                answer => break answer,
            }
        };
        let Ok((200, created)) = &answer else {
            panic!("seed create: {answer:?}");
        };
        load.borrow_mut()
            .seeds
            .push((text(&created["walletId"]), text(&created["address"])));
        settle(&load, seed, answer, custody);

        load.borrow_mut().stop = false;
        let mut tasks = Vec::new();
        for n in 0..2 {
            tasks.push(actix_web::rt::spawn(create_worker(
                base.clone(),
                start,
                n,
                custody,
                load.clone(),
            )));
        }
        for n in 0..3 {
            tasks.push(actix_web::rt::spawn(sign_worker(
                base.clone(),
                start,
                n,
                custody,
                load.clone(),
            )));
        }
        let sila = Rc::new(SilaClient::new(&base, APP, sila_key.clone()));
        tasks.push(actix_web::rt::spawn(sila_worker(
            sila,
            start,
            custody,
            load.clone(),
        )));
        actix_web::rt::time::sleep(LOAD_PER_CYCLE).await;
        // SIGKILL with requests in flight.
        let mut server = server;
        server.kill();
        load.borrow_mut().stop = true;
        for t in tasks {
            t.await.expect("a load worker panicked");
        }
    }
}

async fn final_checks(
    tdb: &TestDb,
    sila_key: &Key,
    server: BinaryServer,
    log: &std::path::Path,
    load: Load,
    started: Instant,
) {
    let client = client();
    let count = |kind: &str| load.acked.iter().filter(|a| a.req.label() == kind).count();
    eprintln!(
        "crash_mixed ({}): {} creates, {} signs, {} Sila registers acknowledged; {} answers lost \
         to kills; answers {:?}; Sila registers sent again after they committed answered {:?}",
        if tdb.url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        },
        count("create"),
        count("sign"),
        count("sila-register"),
        load.lost,
        load.answers,
        load.sila_retries
    );
    assert!(
        load.problems.is_empty(),
        "{} problems: {:#?}",
        load.problems.len(),
        load.problems
    );
    assert!(load.lost > 0, "the kills cut no request");

    // Every acknowledged wallet, and every Sila user, read back after the
    // last restart (sixteen reads at a time).
    let sila = SilaClient::new(&server.base, APP, sila_key.clone());
    let reads = load.acked.iter().map(|a| {
        let (client, sila, base) = (&client, &sila, &server.base);
        async move {
            match &a.req.what {
                What::Create { user } => {
                    let url = format!("{base}/api/wallets/{user}");
                    let (status, got) = send(client, "GET", &url, &[bearer(KEY)], None)
                        .await
                        .unwrap();
                    assert_eq!(status, 200, "acknowledged wallet of {user} lost: {got}");
                    assert_eq!(got["walletId"], a.body["walletId"], "{user}");
                    assert_eq!(got["address"], a.body["address"], "{user}");
                }
                What::Sign { .. } => {}
                What::Sila { handle, key } => {
                    // The user signs with the wallet it registered with.
                    let r = sila.get_wallet(handle, &key.0).await;
                    assert_eq!(r.status, 200, "acknowledged Sila user {handle}: {}", r.body);
                    assert_eq!(
                        r.body["wallet"]["blockchain_address"],
                        key.0.address.as_str()
                    );
                    assert_eq!(r.body["wallet"]["default"], true);
                }
            }
        }
    });
    futures_util::stream::iter(reads)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let mut acked_signs: HashMap<&str, Vec<&str>> = HashMap::new();
    for a in &load.acked {
        if let What::Sign { wallet_id, .. } = &a.req.what {
            acked_signs
                .entry(wallet_id.as_str())
                .or_default()
                .push(a.body["signature"].as_str().unwrap());
        }
    }
    let db = open_db(&tdb.url).await;
    wait_quiet(&db, &[server.base.as_str()]).await;
    drop(server);
    assert_no_panic(log);

    let events = events(&db).await;
    check_store(&db, &events).await;
    let under_key = |event_type: &str, key: &str| -> Vec<&crate::instances::Event> {
        events
            .iter()
            .filter(|e| e.event_type == event_type && e.metadata["idempotency_key"] == key)
            .collect()
    };
    // Which attempt wrote each acknowledged request's event: a request
    // answered at once was written by its first attempt, and any request is
    // written once; a lost one by its first attempt (the answer was lost
    // after the commit) or by a retry.
    let mut lost_after_commit: BTreeMap<&str, usize> = BTreeMap::new();
    let mut written_by = |a: &Acked, e: &crate::instances::Event| {
        let id = text(&e.metadata["request_id"]);
        let first = format!("{}-first", a.req.id);
        if a.custody.is_some() {
            assert_eq!(id, first, "{:?} written by another attempt", a.req);
        } else if a.body["success"] == false {
            // A Sila retry refused as used up: the first attempt wrote it.
            assert_eq!(id, first, "{:?} written by another attempt", a.req);
            *lost_after_commit.entry(a.req.label()).or_default() += 1;
        } else if id == first {
            *lost_after_commit.entry(a.req.label()).or_default() += 1;
        } else {
            let retry = format!("{}-retry", a.req.id);
            assert!(id.starts_with(&retry), "{:?} written by {id}", a.req);
        }
    };
    let mut custodies = BTreeMap::new();
    for a in &load.acked {
        match &a.req.what {
            What::Create { user } => {
                let recorded = under_key("WalletCreated", a.req.key.as_deref().unwrap());
                assert_eq!(
                    recorded.len(),
                    1,
                    "one wallet under the key of {user}'s create"
                );
                let e = recorded[0];
                written_by(a, e);
                assert_eq!(e.aggregate_id, text(&a.body["walletId"]));
                assert_eq!(e.body["address"], a.body["address"]);
                assert_eq!(e.body["user_id"], user.as_str());
                let custody = text(&e.body["custody"]);
                if let Some(expected) = a.custody {
                    assert_eq!(custody, expected, "custody of {user}'s wallet");
                }
                *custodies.entry(custody).or_insert(0) += 1;
            }
            What::Sign { wallet_id, .. } => {
                let recorded = under_key("MessageSigned", a.req.key.as_deref().unwrap());
                assert_eq!(
                    recorded.len(),
                    1,
                    "one signature under the key of {:?}",
                    a.req
                );
                written_by(a, recorded[0]);
                assert_eq!(recorded[0].aggregate_id, *wallet_id);
                assert_eq!(recorded[0].body["signature"], a.body["signature"]);
            }
            What::Sila { handle, key } => {
                let registered: Vec<_> = events
                    .iter()
                    .filter(|e| {
                        e.event_type == "UserRegistered"
                            && e.aggregate_id.eq_ignore_ascii_case(handle)
                    })
                    .collect();
                assert_eq!(registered.len(), 1, "Sila user {handle} registered once");
                written_by(a, registered[0]);
                let wallet = events.iter().find(|e| {
                    e.event_type == "WalletRegistered"
                        && text(&e.body["address"]).eq_ignore_ascii_case(&key.0.address)
                });
                assert!(wallet.is_some(), "the first wallet of {handle}");
            }
        }
    }
    // Every sign request was answered in the end, so the log holds exactly
    // the acknowledged signatures, per wallet.
    let mut recorded: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in events.iter().filter(|e| e.event_type == "MessageSigned") {
        recorded
            .entry(e.aggregate_id.as_str())
            .or_default()
            .push(e.body["signature"].as_str().unwrap());
    }
    for v in acked_signs.values_mut().chain(recorded.values_mut()) {
        v.sort_unstable();
    }
    assert_eq!(acked_signs, recorded, "signatures per wallet");
    let custody_of: HashMap<&str, String> = events
        .iter()
        .filter(|e| e.event_type == "WalletCreated")
        .map(|e| (e.aggregate_id.as_str(), text(&e.body["custody"])))
        .collect();
    let mut signed_with: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type == "MessageSigned") {
        *signed_with
            .entry(custody_of[e.aggregate_id.as_str()].as_str())
            .or_default() += 1;
    }
    eprintln!(
        "crash_mixed: wallets by custody {custodies:?}, signatures by custody {signed_with:?}; \
         lost answers whose write had committed: {lost_after_commit:?}"
    );
    for kind in ["local", "mpc"] {
        assert!(
            custodies.contains_key(kind) && signed_with.contains_key(kind),
            "wallets and signatures of both custody kinds: {custodies:?} {signed_with:?}"
        );
    }

    assert_live_equals_rebuild(&db, &tdb.url).await;
    db.close().await;
    eprintln!("crash_mixed: done in {:?}", started.elapsed());
}

/// Found by the kill cycles under a loaded cluster: a create whose first
/// attempt committed and whose answer was lost, retried under its
/// Idempotency-Key on a process whose read side has not applied that commit
/// yet (another process's commit; or the projector held back by a long
/// transaction anywhere in the PostgreSQL cluster), answered 404 "wallet not
/// found", and that 404 was stored as the key's answer for good. The lag is
/// made here by taking the wallet's rows out of the read side.
async fn a_retried_create_is_answered_from_the_log_while_the_read_side_trails(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let mut req = create_request("trailing", "trailing-create");
    req.headers[0] = bearer(&app.api_key);
    let client = client();
    let (status, first) = issue(&client, &app.base, &req, "first").await.unwrap();
    assert_eq!(status, 200, "{first}");
    let wallet_id = text(&first["walletId"]);
    // The answer is lost (no stored response) and the read side does not
    // show the wallet yet.
    for sql in [
        "DELETE FROM idempotency_keys WHERE key = 'trailing-create'".to_string(),
        format!("DELETE FROM wallet_directory WHERE wallet_id = '{wallet_id}'"),
        format!("DELETE FROM user_wallets WHERE wallet_id = '{wallet_id}'"),
    ] {
        execute(&app.app.db, &sql).await;
    }
    for attempt in ["retry0", "retry1"] {
        let (status, again) = issue(&client, &app.base, &req, attempt).await.unwrap();
        assert_eq!(status, 200, "{attempt}: {again}");
        for field in ["userId", "walletId", "address", "publicKey"] {
            assert_eq!(again[field], first[field], "{attempt}: {field}");
        }
    }
    let created = crate::instances::scalar(
        &app.app.db,
        "SELECT COUNT(*) FROM events WHERE event_type = 'WalletCreated'",
    )
    .await;
    assert_eq!(created, 1);
}
