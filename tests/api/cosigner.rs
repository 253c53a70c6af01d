//! Party 2 as a separate process: the real `walletd cosigner` binary with its
//! own database and master key, reached by the server over the Noise channel
//! with pinned keys. Signatures are recovered with libsecp256k1 and alloy.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use walletd::custody::master_key::{MasterKey, MasterKeys};
use walletd::custody::mpc::channel::{ChannelKey, Party1Channel, PublicKey};
use walletd::custody::mpc::{MpcError, ShareVault};

use crate::backend_tests;
use crate::helpers::{
    into_resp, open_db, random_master_key, spawn_app_with, Backend, BinaryServer, TestApp, TestDb,
};
use crate::mpc::created_key_id;
use crate::signing::{digest_of, recover};

backend_tests!(
    signs_through_a_separate_cosigner_and_survives_its_restart,
    the_channel_refuses_unpinned_keys_tampering_and_replays,
    no_share_or_secret_in_either_process,
    signing_survives_the_cosigner_being_killed_under_load,
    the_sweeper_releases_unused_shares_at_the_cosigner,
    the_cosigner_serves_key_generations_at_once_and_stays_healthy,
    moving_to_a_separate_cosigner_keeps_old_wallets_signing,
);

/// A running `walletd cosigner`.
pub(crate) struct CosignerProcess {
    child: Child,
    pub(crate) base: String,
}

impl CosignerProcess {
    /// Starts the binary on `bind` and waits until it prints its address.
    pub(crate) fn start(db: &TestDb, master_key: &str, keys: &Keys, bind: &str) -> CosignerProcess {
        Self::start_with(db, master_key, keys, bind, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables.
    fn start_with(
        db: &TestDb,
        master_key: &str,
        keys: &Keys,
        bind: &str,
        env: &[(&str, &str)],
    ) -> CosignerProcess {
        let log_path = db.dir.path().join("cosigner.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_walletd"));
        command.envs(env.iter().copied());
        let mut child = command
            .arg("cosigner")
            .env("DATABASE_URL", &db.url)
            .env("WALLETD_MASTER_KEY", master_key)
            .env("WALLETD_COSIGNER_BIND", bind)
            .env(
                "WALLETD_COSIGNER_CHANNEL_KEY",
                keys.cosigner.private_hex().as_str(),
            )
            .env("WALLETD_COSIGNER_PEER_KEY", keys.server.public_hex())
            .env("WALLETD_DB_POOL", "4")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn walletd cosigner");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("walletd cosigner listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!(
                    "walletd cosigner exited before listening; see {}",
                    log_path.display()
                ),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        CosignerProcess { child, base }
    }

    fn bind(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CosignerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The two static channel keys.
pub(crate) struct Keys {
    pub(crate) server: ChannelKey,
    pub(crate) cosigner: ChannelKey,
}

impl Keys {
    pub(crate) fn new() -> Keys {
        Keys {
            server: ChannelKey::generate().unwrap(),
            cosigner: ChannelKey::generate().unwrap(),
        }
    }
}

/// A server whose MPC server wallets use the cosigner at `base`, talking
/// with `server_key`.
async fn server(b: Backend, base: &str, server_key: &ChannelKey, keys: &Keys) -> Option<TestApp> {
    let (url, own, pinned) = (
        base.to_string(),
        server_key.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    spawn_app_with(b, move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.mpc_key_pool = 0;
        s.cosigner_url = Some(url);
        s.mpc_channel_key = Some(own.into());
        s.cosigner_public_key = Some(pinned);
    })
    .await
}

fn sealed(key: &str) -> Option<MasterKeys> {
    Some(MasterKeys::single(MasterKey::parse(key).unwrap()))
}

async fn count(db: &walletd::projections::Db, table: &str, needle: &str) -> usize {
    walletd::projections::queries::dump_tables(db, &[table])
        .await
        .unwrap()
        .iter()
        .filter(|row| row.contains(needle))
        .count()
}

async fn sign(app: &TestApp, id: &str, message: &str) -> crate::helpers::Resp {
    app.post_json(
        &format!("/api/wallets/{id}/sign"),
        &serde_json::json!({ "message": message }),
    )
    .await
}

async fn signs_through_a_separate_cosigner_and_survives_its_restart(b: Backend) {
    let Some(cosigner_db) = TestDb::new(b).await else {
        return;
    };
    let keys = Keys::new();
    let cosigner_key = random_master_key();
    let mut cosigner = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, "127.0.0.1:0");
    let Some(app) = server(b, &cosigner.base, &keys.server, &keys).await else {
        return;
    };

    let created = app.create_wallet("remote-mpc-user").await;
    let address = created["address"].as_str().unwrap().to_string();
    let id = created["walletId"].as_str().unwrap().to_string();
    let r = sign(&app, &id, "hello").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = digest_of(r.body["messageHash"].as_str().unwrap());
    assert_eq!(
        recover(digest, r.body["signature"].as_str().unwrap()),
        address
    );

    // Party 2's share and the cosign log live in the cosigner's database
    // only, sealed under the cosigner's master key; the server holds party
    // 1's share and nothing of party 2.
    let key_id = created_key_id(&app.app.db).await;
    let remote = open_db(&cosigner_db.url).await;
    let theirs = ShareVault::new(remote.clone(), sealed(&cosigner_key), 2)
        .open(&key_id)
        .await
        .unwrap()
        .expect("the cosigner holds party 2's share");
    assert_eq!(theirs.address().to_checksum(), address);
    assert_eq!(theirs.index(), 2);
    assert_eq!(count(&remote, "mpc_shares", &key_id).await, 1);
    assert_eq!(count(&remote, "cosign_log", &id).await, 1);
    let master = app.master_key.clone().unwrap();
    let ours = ShareVault::new(app.app.db.clone(), sealed(&master), 1)
        .open(&key_id)
        .await
        .unwrap()
        .expect("the server holds party 1's share");
    assert_eq!(ours.index(), 1);
    assert!(
        ShareVault::new(app.app.db.clone(), sealed(&cosigner_key), 2)
            .open(&key_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count(&app.app.db, "mpc_shares", &key_id).await, 1);
    assert_eq!(count(&app.app.db, "cosign_log", "").await, 0);
    let server_dump = walletd::projections::queries::dump_tables(&app.app.db, &["mpc_shares"])
        .await
        .unwrap()
        .concat();
    let their_bytes = theirs.to_bytes().unwrap();
    assert!(!server_dump.contains(&hex::encode(&their_bytes[..48])));
    assert!(!server_dump.contains(&cosigner_key));

    // Cosigner down: 503, a JSON error, nothing recorded as signed.
    let signed_before = count(&app.app.db, "events", "MessageSigned").await;
    assert_eq!(signed_before, 1);
    cosigner.kill();
    let r = sign(&app, &id, "while the cosigner is down").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        r.body
    );
    assert!(!r.body.to_string().contains(&master));
    assert_eq!(count(&app.app.db, "events", "MessageSigned").await, 1);

    // While it is down, its operator rotates its master key: party 2's share
    // is re-wrapped under the new key.
    let rotated = random_master_key();
    let (ok, out, err) = crate::helpers::run_cli(
        &["rotate-master-key", "--new-key", &rotated],
        &[
            ("DATABASE_URL", cosigner_db.url.as_str()),
            ("WALLETD_MASTER_KEY", cosigner_key.as_str()),
        ],
    )
    .await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("re-wrapped 1 keys"), "{out}");

    // Back on the same address, with the new key: signing works again.
    let _cosigner = CosignerProcess::start(&cosigner_db, &rotated, &keys, &cosigner.bind());
    let r = sign(&app, &id, "after the restart").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = digest_of(r.body["messageHash"].as_str().unwrap());
    assert_eq!(
        recover(digest, r.body["signature"].as_str().unwrap()),
        address
    );
    assert_eq!(count(&app.app.db, "events", "MessageSigned").await, 2);
    assert_eq!(count(&remote, "cosign_log", &id).await, 2);
    remote.close().await;
}

async fn post(client: &awc::Client, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut res = client
        .post(url)
        .insert_header(("Content-Type", "application/octet-stream"))
        .send_body(body)
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    let bytes = res.body().limit(1 << 20).await.expect("body");
    (status, bytes.to_vec())
}

fn json_error(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("a JSON error");
    v["error"].as_str().expect("an error field").to_string()
}

async fn the_channel_refuses_unpinned_keys_tampering_and_replays(b: Backend) {
    let Some(cosigner_db) = TestDb::new(b).await else {
        return;
    };
    let keys = Keys::new();
    let cosigner_key = random_master_key();
    let cosigner = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, "127.0.0.1:0");
    let url = format!("{}/mpc/v1", cosigner.base);
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let pinned = PublicKey::parse(&keys.cosigner.public_hex()).unwrap();

    // A party-1 key the cosigner does not pin.
    let stranger = Party1Channel::new(ChannelKey::generate().unwrap(), pinned);
    let (body, _) = stranger.seal_request(b"anything").unwrap();
    let (status, bytes) = post(&client, &url, body).await;
    assert_eq!(status, 401);
    assert_eq!(json_error(&bytes), "channel authentication failed");

    // The pinned key, but a byte flipped anywhere: refused, never answered.
    let own = Party1Channel::new(
        ChannelKey::parse(&keys.server.private_hex()).unwrap(),
        pinned,
    );
    let (body, pending) = own.seal_request(b"not a protocol message").unwrap();
    for i in [0, 1, 2, 20, 40, body.len() / 2, body.len() - 1] {
        let mut bad = body.clone();
        bad[i] ^= 0x80;
        let (status, bytes) = post(&client, &url, bad).await;
        assert!(status == 400 || status == 401, "byte {i}: {status}");
        assert!(!json_error(&bytes).is_empty());
    }
    let (status, _) = post(&client, &url, body[..body.len() - 3].to_vec()).await;
    assert_eq!(status, 400);
    let (status, bytes) = post(&client, &url, vec![0u8; 300 * 1024]).await;
    assert_eq!(status, 413);
    assert_eq!(json_error(&bytes), "channel message too large");

    // The untouched message passes the channel; the cosigner's refusal of
    // its contents comes back sealed, for party 1 only.
    let (status, bytes) = post(&client, &url, body.clone()).await;
    assert_eq!(status, 422);
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    assert!(matches!(
        own.open_response(pending, &bytes).unwrap(),
        Err(MpcError::BadMessage(_))
    ));
    // Accepted once only.
    let (status, bytes) = post(&client, &url, body).await;
    assert_eq!(status, 409);
    assert_eq!(json_error(&bytes), "channel message replayed");

    // Still healthy, and a server with an unpinned key cannot use it.
    let res = client
        .get(format!("{}/healthz", cosigner.base))
        .send()
        .await
        .expect("healthz");
    let r = into_resp(res).await;
    assert_eq!(r.status, 200);
    let wrong = ChannelKey::generate().unwrap();
    let Some(app) = server(b, &cosigner.base, &wrong, &keys).await else {
        return;
    };
    let r = app
        .post_json(
            "/api/wallets",
            &serde_json::json!({ "userId": "unpinned-server" }),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    app.shutdown().await;

    // The pinned server works with the same cosigner process.
    let Some(app) = server(b, &cosigner.base, &keys.server, &keys).await else {
        return;
    };
    let created = app.create_wallet("pinned-server").await;
    let id = created["walletId"].as_str().unwrap();
    let r = sign(&app, id, "still works").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        recover(
            digest_of(r.body["messageHash"].as_str().unwrap()),
            r.body["signature"].as_str().unwrap()
        ),
        created["address"].as_str().unwrap()
    );
}

/// Both parties as real processes at debug log level: after creating and
/// signing, neither share (nor a master key or channel private key) appears in
/// either database outside its sealed row, in either log, or in a response.
async fn no_share_or_secret_in_either_process(b: Backend) {
    let (Some(server_db), Some(cosigner_db)) = (TestDb::new(b).await, TestDb::new(b).await) else {
        return;
    };
    let keys = Keys::new();
    let (server_key, cosigner_key) = (random_master_key(), random_master_key());
    let cosigner = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, "127.0.0.1:0");
    let server_log = server_db.dir.path().join("server.log");
    let (own, pinned) = (
        keys.server.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    let server = BinaryServer::start_with(
        &server_db.url,
        Some(&server_key),
        "scan-key",
        &[
            ("WALLETD_SERVER_WALLET_CUSTODY", "mpc"),
            ("WALLETD_MPC_KEY_POOL", "0"),
            ("WALLETD_COSIGNER_URL", cosigner.base.as_str()),
            ("WALLETD_COSIGNER_PUBLIC_KEY", pinned.as_str()),
            ("WALLETD_MPC_CHANNEL_KEY", own.as_str()),
        ],
        &server_log,
    );
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    let mut responses = String::new();
    let res = client
        .post(format!("{}/api/wallets", server.base))
        .insert_header(("Authorization", "Bearer scan-key"))
        .send_json(&serde_json::json!({"userId": "scan-mpc"}))
        .await
        .unwrap();
    let r = into_resp(res).await;
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push_str(&r.body.to_string());
    let address = r.body["address"].as_str().unwrap().to_string();
    let res = client
        .post(format!("{}/api/wallets/scan-mpc/sign", server.base))
        .insert_header(("Authorization", "Bearer scan-key"))
        .send_json(&serde_json::json!({"message": "scan me"}))
        .await
        .unwrap();
    let r = into_resp(res).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = digest_of(r.body["messageHash"].as_str().unwrap());
    assert_eq!(
        recover(digest, r.body["signature"].as_str().unwrap()),
        address
    );
    responses.push_str(&r.body.to_string());
    drop(server);
    drop(cosigner);

    let (ours_db, theirs_db) = (
        open_db(&server_db.url).await,
        open_db(&cosigner_db.url).await,
    );
    let key_id = created_key_id(&ours_db).await;
    let ours = ShareVault::new(ours_db.clone(), sealed(&server_key), 1)
        .open(&key_id)
        .await
        .unwrap()
        .unwrap();
    let theirs = ShareVault::new(theirs_db.clone(), sealed(&cosigner_key), 2)
        .open(&key_id)
        .await
        .unwrap()
        .unwrap();
    let mut tables = vec![
        "events",
        "snapshots",
        "idempotency_keys",
        "mpc_shares",
        "cosign_log",
    ];
    for p in walletd::projections::views::all() {
        tables.extend_from_slice(p.tables());
    }
    let mut haystack = responses;
    // The cosigner runs the same migrations, so both databases have every table.
    for db in [&ours_db, &theirs_db] {
        haystack.push_str(
            &walletd::projections::queries::dump_tables(db, &tables)
                .await
                .unwrap()
                .concat(),
        );
    }
    let logs = std::fs::read_to_string(&server_log).unwrap()
        + &std::fs::read_to_string(cosigner_db.dir.path().join("cosigner.log")).unwrap();
    assert!(
        logs.contains("mpc signing exchanges"),
        "debug logs were captured"
    );
    haystack.push_str(&logs);
    use base64::Engine;
    for share in [&ours, &theirs] {
        let bytes = share.to_bytes().unwrap();
        for window in [
            &bytes[..32],
            &bytes[bytes.len() / 2..bytes.len() / 2 + 32],
            &bytes[bytes.len() - 32..],
        ] {
            for form in [
                hex::encode(window),
                hex::encode_upper(window),
                base64::engine::general_purpose::STANDARD.encode(window),
            ] {
                assert!(
                    !haystack.contains(&form),
                    "share bytes of party {} leaked",
                    share.index()
                );
            }
        }
    }
    for secret in [
        server_key.as_str(),
        cosigner_key.as_str(),
        keys.server.private_hex().as_str(),
        keys.cosigner.private_hex().as_str(),
    ] {
        assert!(!haystack.contains(secret), "a secret key leaked");
    }
}

/// What one signing request saw.
struct Outcome {
    /// The cosigner's state when the request was sent and when it was answered.
    sent_in: u8,
    answered_in: u8,
    status: u16,
    body: serde_json::Value,
    wallet: usize,
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;
const STOP: u8 = 3;

/// Fault test: the real cosigner process is killed (SIGKILL) while four
/// clients sign as fast as they can, each with a wallet of its own, and
/// restarted on the same address. While it is down the clients get 503;
/// every 200 carries a signature that recovers to the wallet and has its
/// `MessageSigned` event, every `MessageSigned` event has a signature that
/// some client received (nothing signed without a record, no record without
/// a signature), each signature is in the cosigner's own log, and signing
/// resumes when the cosigner is back.
async fn signing_survives_the_cosigner_being_killed_under_load(b: Backend) {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicU8, Ordering};
    let started = std::time::Instant::now();
    let Some(cosigner_db) = TestDb::new(b).await else {
        return;
    };
    let keys = Keys::new();
    let cosigner_key = random_master_key();
    let mut cosigner = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, "127.0.0.1:0");
    let Some(app) = server(b, &cosigner.base, &keys.server, &keys).await else {
        return;
    };
    let mut wallets = Vec::new();
    for i in 0..4 {
        let created = app.create_wallet(&format!("under-load-{i}")).await;
        wallets.push((
            created["walletId"].as_str().unwrap().to_string(),
            created["address"].as_str().unwrap().to_string(),
        ));
    }

    let phase = Rc::new(AtomicU8::new(UP));
    let outcomes = Rc::new(RefCell::new(Vec::<Outcome>::new()));
    let mut signers = Vec::new();
    for (i, (id, _)) in wallets.iter().enumerate() {
        let (phase, outcomes, id) = (phase.clone(), outcomes.clone(), id.clone());
        let (client, base, key) = (app.client.clone(), app.base.clone(), app.api_key.clone());
        signers.push(actix_web::rt::spawn(async move {
            let mut n = 0;
            while phase.load(Ordering::SeqCst) != STOP {
                n += 1;
                let sent_in = phase.load(Ordering::SeqCst);
                let res = client
                    .post(format!("{base}/api/wallets/{id}/sign"))
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .send_json(&serde_json::json!({ "message": format!("m-{i}-{n}") }))
                    .await
                    .expect("the server answers");
                let r = into_resp(res).await;
                let status = r.status;
                outcomes.borrow_mut().push(Outcome {
                    sent_in,
                    answered_in: phase.load(Ordering::SeqCst),
                    status,
                    body: r.body,
                    wallet: i,
                });
                if status != 200 {
                    actix_web::rt::time::sleep(std::time::Duration::from_millis(25)).await;
                }
            }
        }));
    }
    let sleep = |ms| actix_web::rt::time::sleep(std::time::Duration::from_millis(ms));
    sleep(1500).await;
    cosigner.kill();
    phase.store(DOWN, Ordering::SeqCst);
    sleep(1500).await;
    let _back = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, &cosigner.bind());
    phase.store(BACK, Ordering::SeqCst);
    // Until every client has signed again (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let resumed = (0..wallets.len()).all(|w| {
            outcomes
                .borrow()
                .iter()
                .any(|o| o.wallet == w && o.sent_in == BACK && o.status == 200)
        });
        if resumed || std::time::Instant::now() > deadline {
            break;
        }
        sleep(100).await;
    }
    phase.store(STOP, Ordering::SeqCst);
    for s in signers {
        s.await.unwrap();
    }

    let outcomes = std::mem::take(&mut *outcomes.borrow_mut());
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    eprintln!(
        "{} signing requests: {} answered 200 before the kill, {} answered 503 while the cosigner was down, {} answered 200 after its restart",
        outcomes.len(),
        count(&|o| o.answered_in == UP && o.status == 200),
        count(&|o| o.sent_in == DOWN && o.answered_in == DOWN && o.status == 503),
        count(&|o| o.sent_in == BACK && o.status == 200),
    );
    for o in outcomes.iter() {
        assert!(
            o.status == 200 || o.status == 503,
            "{} {}",
            o.status,
            o.body
        );
        if o.status == 503 {
            assert_eq!(
                o.body["error"],
                "the signing cosigner is unavailable; nothing was signed, retry later"
            );
        }
        if o.sent_in == DOWN && o.answered_in == DOWN {
            assert_eq!(o.status, 503, "signed with the cosigner down: {}", o.body);
        }
    }
    assert!(count(&|o| o.answered_in == UP && o.status == 200) > 0);
    assert!(count(&|o| o.sent_in == DOWN && o.status == 503) > 0);
    for w in 0..wallets.len() {
        assert!(
            count(&|o| o.wallet == w && o.sent_in == BACK && o.status == 200) > 0,
            "wallet {w} signs again after the restart"
        );
    }

    // Every signature handed out is recorded, and nothing else is.
    let handed_out: std::collections::BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.status == 200)
        .map(|o| {
            let (_, address) = &wallets[o.wallet];
            let digest = digest_of(o.body["messageHash"].as_str().unwrap());
            let signature = o.body["signature"].as_str().unwrap();
            assert_eq!(&recover(digest, signature), address);
            signature.to_lowercase()
        })
        .collect();
    let recorded: Vec<String> =
        walletd::projections::queries::dump_tables(&app.app.db, &["events"])
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.contains("MessageSigned"))
            .collect();
    let mut recorded_signatures = std::collections::BTreeSet::new();
    for event in &recorded {
        let signature = event
            .split("\"signature\":")
            .nth(1)
            .and_then(|rest| rest.trim_start().strip_prefix('"'))
            .and_then(|rest| rest.split('"').next())
            .filter(|s| s.len() == 132)
            .unwrap_or_else(|| panic!("a MessageSigned event without a signature: {event}"));
        recorded_signatures.insert(signature.to_lowercase());
    }
    assert_eq!(recorded.len(), recorded_signatures.len());
    assert_eq!(recorded_signatures, handed_out);
    let remote = open_db(&cosigner_db.url).await;
    let logged = walletd::projections::queries::dump_tables(&remote, &["cosign_log"])
        .await
        .unwrap()
        .concat()
        .to_lowercase();
    for signature in &handed_out {
        assert!(
            logged.contains(&signature[2..]),
            "the cosigner logged {signature}"
        );
    }
    remote.close().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
}

/// The sweeper with a separate cosigner: party 1 releases a key no wallet
/// uses over the channel and the cosigner deletes its share; a share the
/// cosigner signed with is never released, even when party 1 asks.
async fn the_sweeper_releases_unused_shares_at_the_cosigner(b: Backend) {
    let Some(cosigner_db) = TestDb::new(b).await else {
        return;
    };
    let keys = Keys::new();
    let cosigner_key = random_master_key();
    let cosigner = CosignerProcess::start(&cosigner_db, &cosigner_key, &keys, "127.0.0.1:0");
    let (url, own, pinned) = (
        cosigner.base.clone(),
        keys.server.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    let Some(app) = spawn_app_with(b, move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.mpc_key_pool = 2;
        s.key_sweep_grace = 0;
        s.cosigner_url = Some(url);
        s.mpc_channel_key = Some(own.into());
        s.cosigner_public_key = Some(pinned);
    })
    .await
    else {
        return;
    };
    let remote = open_db(&cosigner_db.url).await;
    crate::custody::wait_for_count(
        &app.app.db,
        "SELECT COUNT(*) FROM mpc_shares WHERE party = 1 AND claimed_by IS NOT NULL",
        2,
    )
    .await;
    let created = app.create_wallet("swept-around").await;
    let id = created["walletId"].as_str().unwrap().to_string();
    let r = sign(&app, &id, "in use").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let key_id = created_key_id(&app.app.db).await;

    // The pool's keys are held by a live pool: not swept.
    let before = crate::custody::scalar(&remote, "SELECT COUNT(*) FROM mpc_shares").await;
    let report = app.app.sweep_keys().await.unwrap();
    assert_eq!(report.removed, 0, "{report:?}");
    assert!(crate::custody::scalar(&remote, "SELECT COUNT(*) FROM mpc_shares").await >= before);
    let tdb = app.shutdown().await;
    // (Counted after shutdown, which lets a refill in progress finish.)
    let spare = crate::custody::scalar(&remote, "SELECT COUNT(*) FROM mpc_shares").await;
    assert!(spare >= 2, "{spare}");

    // The next run has no pool: the released keys are free and swept, on
    // both parties; the wallet's key is not.
    let (url, own, pinned) = (
        cosigner.base.clone(),
        keys.server.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    let app = crate::helpers::spawn_app_custom(tdb, Some(random_master_key()), move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.mpc_key_pool = 0;
        s.key_sweep_grace = 0;
        s.cosigner_url = Some(url);
        s.mpc_channel_key = Some(own.into());
        s.cosigner_public_key = Some(pinned);
    })
    .await;
    // (A new master key here: the sweeper never opens a share.)
    let report = app.app.sweep_keys().await.unwrap();
    assert_eq!(report.removed as i64, spare - 1, "{report:?}");
    assert_eq!(
        crate::custody::scalar(&remote, "SELECT COUNT(*) FROM mpc_shares").await,
        1
    );
    assert_eq!(count(&remote, "mpc_shares", &key_id).await, 1);
    assert_eq!(
        crate::custody::scalar(&app.app.db, "SELECT COUNT(*) FROM mpc_shares").await,
        1
    );

    // Asked directly, the cosigner refuses to release a share it signed with.
    let link = walletd::custody::mpc::HttpLink::new(
        &cosigner.base,
        Party1Channel::new(
            ChannelKey::parse(&keys.server.private_hex()).unwrap(),
            PublicKey::parse(&keys.cosigner.public_hex()).unwrap(),
        ),
    )
    .unwrap();
    let err = walletd::custody::mpc::release(&link, &key_id)
        .await
        .unwrap_err();
    assert!(matches!(err, MpcError::Refused(_)), "{err}");
    assert_eq!(count(&remote, "mpc_shares", &key_id).await, 1);
    // Releasing what is not there is fine.
    walletd::custody::mpc::release(&link, "mpc-never-made")
        .await
        .unwrap();
    remote.close().await;
}

/// Issue 9 item 12 on the cosigner's side: its protocol work runs on its
/// protocol threads, not on its one HTTP worker here, so it takes several
/// key generations at once and its `/healthz` answers promptly meanwhile.
/// Before, each exchange ran its protocol steps on the worker, one at a
/// time, and a health check waited behind all of them.
async fn the_cosigner_serves_key_generations_at_once_and_stays_healthy(b: Backend) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let Some(cosigner_db) = TestDb::new(b).await else {
        return;
    };
    let keys = Keys::new();
    let cosigner = CosignerProcess::start_with(
        &cosigner_db,
        &random_master_key(),
        &keys,
        "127.0.0.1:0",
        &[("WALLETD_WORKERS", "1")],
    );
    let (url, own, pinned) = (
        cosigner.base.clone(),
        keys.server.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    let Some(app) = spawn_app_with(b, move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.mpc_key_pool = 0;
        s.mpc_key_wait = 120;
        s.cosigner_url = Some(url);
        s.mpc_channel_key = Some(own.into());
        s.cosigner_public_key = Some(pinned);
    })
    .await
    else {
        return;
    };
    const CREATES: usize = 8;
    let done = Arc::new(AtomicUsize::new(0));
    let creates: Vec<_> = (0..CREATES)
        .map(|i| {
            let (client, url, key, done) = (
                app.client.clone(),
                app.url("/api/wallets"),
                app.api_key.clone(),
                done.clone(),
            );
            actix_web::rt::spawn(async move {
                let res = client
                    .post(url)
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .send_json(&serde_json::json!({ "userId": format!("busy-{i}") }))
                    .await
                    .expect("request sent");
                let r = into_resp(res).await;
                done.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let client = awc::Client::default();
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let res = client
            .get(format!("{}/healthz", cosigner.base))
            .send()
            .await
            .expect("healthz");
        let r = into_resp(res).await;
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = done.load(Ordering::SeqCst);
    for c in creates {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(
        finished < CREATES,
        "the probes ran while keys were being generated ({finished} of {CREATES} creates had finished)"
    );
    eprintln!("slowest cosigner health check during key generation: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "the cosigner's health check waited {slowest:?} behind key generation"
    );
}

/// A deployment that began with the in-process cosigner moves party 2's
/// shares to a separate cosigner (`walletd move-cosigner-shares`): wallets
/// made before the move sign through the new cosigner, the shares leave
/// walletd's database, and a second run moves nothing.
async fn moving_to_a_separate_cosigner_keeps_old_wallets_signing(b: Backend) {
    let (Some(tdb), Some(target)) = (TestDb::new(b).await, TestDb::new(b).await) else {
        return;
    };
    let (own, in_process, theirs) = (
        random_master_key(),
        random_master_key(),
        random_master_key(),
    );
    let c1 = in_process.clone();
    let app = crate::helpers::spawn_app_custom(tdb, Some(own.clone()), move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.cosigner_master_key = Some(c1.into());
    })
    .await;
    let created = app.create_wallet("mv").await;
    let address = created["address"].as_str().unwrap().to_string();
    crate::mpc::sign_and_check(&app, "mv", "before the move", &address).await;
    let tdb = app.shutdown().await;

    let env = [
        ("DATABASE_URL", tdb.url.as_str()),
        ("WALLETD_MASTER_KEY", own.as_str()),
        ("WALLETD_COSIGNER_MASTER_KEY", in_process.as_str()),
        ("WALLETD_MOVE_TO_DATABASE_URL", target.url.as_str()),
        ("WALLETD_MOVE_TO_MASTER_KEY", theirs.as_str()),
    ];
    let (ok, out, err) = crate::helpers::run_cli(&["move-cosigner-shares"], &env).await;
    assert!(ok, "{out} {err}");
    assert!(
        out.contains("moved 1 key shares and copied 1 signing-log entries"),
        "{out}"
    );
    for secret in [&own, &in_process, &theirs] {
        assert!(!out.contains(secret.as_str()) && !err.contains(secret.as_str()));
    }
    let source = open_db(&tdb.url).await;
    let key_id = created_key_id(&source).await;
    let shares = walletd::projections::queries::dump_tables(&source, &["mpc_shares"])
        .await
        .unwrap();
    assert_eq!(shares.len(), 1, "only party 1's share stays: {shares:?}");
    source.close().await;
    let moved = ShareVault::new(open_db(&target.url).await, sealed(&theirs), 2);
    assert!(moved.open(&key_id).await.unwrap().is_some());

    let (ok, out, err) = crate::helpers::run_cli(&["move-cosigner-shares"], &env).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("moved 0 key shares"), "{out}");

    let keys = Keys::new();
    let cosigner = CosignerProcess::start(&target, &theirs, &keys, "127.0.0.1:0");
    let (url, server_key, pinned) = (
        cosigner.base.clone(),
        keys.server.private_hex().to_string(),
        keys.cosigner.public_hex(),
    );
    let app = crate::helpers::spawn_app_custom(tdb, Some(own.clone()), move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.mpc_key_pool = 0;
        s.cosigner_url = Some(url);
        s.mpc_channel_key = Some(server_key.into());
        s.cosigner_public_key = Some(pinned);
    })
    .await;
    crate::mpc::sign_and_check(&app, "mv", "after the move", &address).await;
    app.stop().await;
    drop(cosigner);
}
