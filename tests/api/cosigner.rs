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
    no_share_or_secret_in_either_process
);

/// A running `walletd cosigner`.
struct CosignerProcess {
    child: Child,
    base: String,
}

impl CosignerProcess {
    /// Starts the binary on `bind` and waits until it prints its address.
    fn start(db: &TestDb, master_key: &str, keys: &Keys, bind: &str) -> CosignerProcess {
        let log_path = db.dir.path().join("cosigner.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_walletd"))
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
struct Keys {
    server: ChannelKey,
    cosigner: ChannelKey,
}

impl Keys {
    fn new() -> Keys {
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
