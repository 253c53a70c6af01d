//! Keys at rest: nothing leaks, rotation re-wraps, tampering is detected.

use serde_json::json;
use walletd::custody::vault::KeyVault;
use walletd::custody::{MasterKey, MasterKeys};

use crate::backend_tests;
use crate::helpers::{
    now, open_db, random_master_key, run_cli, spawn_app, spawn_app_on, token_with, Backend,
    BinaryServer, TestDb, JWT_SECRET,
};
use crate::server_wallets::event_count;
use crate::sila_client::{Key, SilaClient};

backend_tests!(
    private_keys_never_leave_the_vault,
    private_keys_never_reach_json_logs,
    rotate_master_key_rewraps_every_key,
    tampered_vault_row_is_refused,
    pooled_keys_sign_for_their_wallets,
    restarts_reuse_the_pools_keys,
    the_sweeper_removes_unused_keys_and_never_a_used_one,
);

async fn pooled_keys_sign_for_their_wallets(b: Backend) {
    let Some(app) = crate::helpers::spawn_app_with(b, |s| s.key_pool = 8).await else {
        return;
    };
    // Let the background task fill the pool before the creates.
    for _ in 0..200 {
        let rows = walletd::projections::queries::dump_tables(&app.app.db, &["key_vault"])
            .await
            .unwrap();
        if rows.len() >= 8 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for i in 0..20 {
        let user = format!("pooled-{i}");
        let created = app.create_wallet(&user).await;
        let (status, body) = sign_with(&app, &user).await;
        assert_eq!(status, 200, "{body}");
        assert!(recovers_to(
            body["signature"].as_str().unwrap(),
            "after rotation",
            created["address"].as_str().unwrap()
        ));
    }
    // Keys taken from the pool and keys made inline are all in the vault.
    let rows = walletd::projections::queries::dump_tables(&app.app.db, &["key_vault"])
        .await
        .unwrap();
    assert!(rows.len() >= 20);
}

async fn private_keys_never_leave_the_vault(b: Backend) {
    leak_scan(b, "text").await
}

/// The same scan with the log in JSON lines (the default when stderr is not
/// a terminal): escaping or field layout must not let key material through.
async fn private_keys_never_reach_json_logs(b: Backend) {
    leak_scan(b, "json").await
}

async fn leak_scan(b: Backend, log_format: &str) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let master = random_master_key();
    let api_key = "scan-key";
    let log_path = tdb.dir.path().join("server.log");
    let sila_app = Key::random();
    let (ok, out, err) = run_cli(
        &[
            "app",
            "register",
            "--handle",
            "scan.app",
            "--address",
            &sila_app.address,
        ],
        &[("DATABASE_URL", tdb.url.as_str())],
    )
    .await;
    assert!(ok, "{out} {err}");
    let server = BinaryServer::start_with(
        &tdb.url,
        Some(&master),
        api_key,
        &[
            ("WALLETD_JWT_SECRET", JWT_SECRET),
            ("WALLETD_LOG_FORMAT", log_format),
        ],
        &log_path,
    );
    let client = awc::Client::default();
    let mut responses = String::new();
    let mut wallet_ids = Vec::new();
    for user in ["scan-a", "scan-b"] {
        let res = client
            .post(format!("{}/api/wallets", server.base))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .insert_header(("Idempotency-Key", user))
            .send_json(&json!({"userId": user}))
            .await
            .unwrap();
        let r = crate::helpers::into_resp(res).await;
        assert_eq!(r.status, 200, "{}", r.body);
        responses.push_str(&r.body.to_string());
        wallet_ids.push(r.body["walletId"].as_str().unwrap().to_string());
        let res = client
            .post(format!("{}/api/wallets/{user}/sign", server.base))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .send_json(&json!({"message": "scan me"}))
            .await
            .unwrap();
        let r = crate::helpers::into_resp(res).await;
        assert_eq!(r.status, 200, "{}", r.body);
        responses.push_str(&r.body.to_string());
    }
    // A custodial wallet made through the Sila API's token mode.
    let sila = SilaClient::new(&server.base, "scan.app", sila_app);
    sila.register_user("scan-c.eth").await;
    let token = token_with(json!({
        "sub": "scan-c.eth", "exp": now() + 600, "app_handle": "scan.app",
        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
    }));
    let body = sila.body(Some("scan-c.eth"), json!({"wallet": {"nickname": "kept"}}));
    let r = sila
        .call_token("register_wallet", &body, Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    responses.push_str(&r.body.to_string());
    drop(server);

    let db = open_db(&tdb.url).await;
    let vault = KeyVault::new(db.clone());
    let keys = MasterKeys::single(MasterKey::parse(&master).unwrap());
    let mut secrets = Vec::new();
    let dump = walletd::projections::queries::dump_tables(&db, &["key_vault"])
        .await
        .unwrap();
    assert_eq!(dump.len(), 3);
    for line in dump {
        let key_id = line
            .trim_start_matches("key_vault:")
            .split('|')
            .next()
            .unwrap()
            .to_string();
        let sealed = vault.get(&key_id).await.unwrap().unwrap();
        let secret = sealed.open(&keys).unwrap();
        secrets.push(secret.to_vec());
    }
    let mut tables = vec![
        "events",
        "snapshots",
        "idempotency_keys",
        "api_keys",
        "projection_checkpoints",
        "request_nonces",
        "security_log",
    ];
    for p in walletd::projections::views::all() {
        tables.extend_from_slice(p.tables());
    }
    let stored = walletd::projections::queries::dump_tables(&db, &tables)
        .await
        .unwrap()
        .concat();
    let events = walletd::projections::queries::dump_tables(&db, &["events"])
        .await
        .unwrap();
    // 2 × (created, signed); the app; the user (3); the token-mode wallet (2).
    assert_eq!(events.len(), 10, "the scan covered the wallets' events");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("request"), "the log was captured");
    let json_lines = log
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    let expected = if log_format == "json" {
        log.lines().count()
    } else {
        0
    };
    assert_eq!(json_lines, expected, "{log_format} log:\n{log}");
    use base64::Engine;
    for secret in secrets {
        let forms = [
            hex::encode(&secret),
            hex::encode_upper(&secret),
            base64::engine::general_purpose::STANDARD.encode(&secret),
            format!("{secret:?}"),
        ];
        for form in &forms {
            assert!(
                !stored.contains(form.as_str()),
                "private key in the database outside the vault"
            );
            assert!(
                !log.contains(form.as_str()),
                "private key in the server log"
            );
            assert!(
                !responses.contains(form.as_str()),
                "private key in a response"
            );
        }
    }
    assert!(
        !log.contains(&master) && !stored.contains(&master),
        "master key leaked"
    );
    let _ = wallet_ids;
}

async fn sign_with(app: &crate::helpers::TestApp, user: &str) -> (u16, serde_json::Value) {
    let r = app
        .post_json(
            &format!("/api/wallets/{user}/sign"),
            &json!({"message": "after rotation"}),
        )
        .await;
    (r.status, r.body)
}

fn recovers_to(sig_hex: &str, message: &str, address: &str) -> bool {
    let bytes = hex::decode(&sig_hex[2..]).unwrap();
    let sig = alloy_primitives::Signature::from_raw(&bytes).unwrap();
    sig.recover_address_from_msg(message.as_bytes())
        .unwrap()
        .to_checksum(None)
        == address
}

async fn rotate_master_key_rewraps_every_key(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let k1 = random_master_key();
    let k2 = random_master_key();
    let app = spawn_app_on(tdb, Some(k1.clone())).await;
    let created = app.create_wallet("rot").await;
    let address = created["address"].as_str().unwrap().to_string();
    for i in 0..3 {
        app.create_wallet(&format!("rot-{i}")).await;
    }
    let tdb = app.shutdown().await;

    let (ok, out, err) = run_cli(
        &["rotate-master-key", "--new-key", &k2],
        &[("DATABASE_URL", &tdb.url), ("WALLETD_MASTER_KEY", &k1)],
    )
    .await;
    assert!(ok, "{out} {err}");
    assert!(out.contains("re-wrapped 4 keys"), "{out}");
    assert!(
        !out.contains(&k2) && !err.contains(&k2),
        "a given key is not echoed"
    );
    let db = open_db(&tdb.url).await;
    let in_use = KeyVault::new(db.clone()).key_ids_in_use().await.unwrap();
    assert_eq!(
        in_use,
        vec![(MasterKey::parse(&k2).unwrap().id().to_string(), 4)]
    );
    db.close().await;

    // The old key no longer opens anything; signing fails and records nothing.
    let app = spawn_app_on(tdb, Some(k1.clone())).await;
    let before = event_count(&app).await;
    let (status, body) = sign_with(&app, "rot").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(event_count(&app).await, before);
    let tdb = app.shutdown().await;

    // The new key signs for the same address.
    let app = spawn_app_on(tdb, Some(k2.clone())).await;
    let (status, body) = sign_with(&app, "rot").await;
    assert_eq!(status, 200, "{body}");
    assert!(recovers_to(
        body["signature"].as_str().unwrap(),
        "after rotation",
        &address
    ));
    let tdb = app.shutdown().await;

    // With a generated key the new key is printed once, for the operator to install.
    let (ok, out, err) = run_cli(
        &["rotate-master-key"],
        &[("DATABASE_URL", &tdb.url), ("WALLETD_MASTER_KEY", &k2)],
    )
    .await;
    assert!(ok, "{out} {err}");
    let k3 = out.lines().last().unwrap().trim().to_string();
    let app = spawn_app_on(tdb, Some(k3)).await;
    let (status, body) = sign_with(&app, "rot").await;
    assert_eq!(status, 200, "{body}");
    assert!(recovers_to(
        body["signature"].as_str().unwrap(),
        "after rotation",
        &address
    ));
}

#[actix_web::test]
async fn rotate_in_key_file_mode_replaces_the_key_file() {
    let Some(tdb) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let key_file = format!("{}.key", tdb.url.trim_start_matches("sqlite://"));
    let app = spawn_app_on(tdb, None).await;
    let created = app.create_wallet("kf").await;
    let address = created["address"].as_str().unwrap().to_string();
    let tdb = app.shutdown().await;
    let before = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file must be private");
    }

    let (ok, out, err) = run_cli(&["rotate-master-key"], &[("DATABASE_URL", &tdb.url)]).await;
    assert!(ok, "{out} {err}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert!(
        !out.contains(after.trim()),
        "key-file mode does not print the key"
    );
    assert!(!std::path::Path::new(&format!("{key_file}.next")).exists());
    assert!(!std::path::Path::new(&format!("{key_file}.previous")).exists());

    let app = spawn_app_on(tdb, None).await;
    let (status, body) = sign_with(&app, "kf").await;
    assert_eq!(status, 200, "{body}");
    assert!(recovers_to(
        body["signature"].as_str().unwrap(),
        "after rotation",
        &address
    ));
}

async fn tampered_vault_row_is_refused(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.create_wallet("tamper").await;
    walletd::projections::with_db!(&app.app.db, pool => {
        let row: (Vec<u8>,) = sqlx::query_as("SELECT sealed_key FROM key_vault").fetch_one(pool).await.unwrap();
        let mut bytes = row.0;
        bytes[0] ^= 1;
        sqlx::query("UPDATE key_vault SET sealed_key = $1").bind(bytes).execute(pool).await.unwrap();
    });
    let before = event_count(&app).await;
    let (status, body) = sign_with(&app, "tamper").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["error"], "internal error",
        "no detail about keys in the response"
    );
    assert_eq!(
        event_count(&app).await,
        before,
        "nothing recorded as signed"
    );
}

#[test]
fn master_key_debug_never_shows_the_key() {
    let k = random_master_key();
    let parsed = MasterKey::parse(&k).unwrap();
    assert!(!format!("{parsed:?}").contains(&k));
    let _ = spawn_app; // keep the import used in every cfg
}

// --- Keys are never lost, never orphaned in bulk (pool claims, the sweeper) ---

/// One number from the database.
pub(crate) async fn scalar(db: &walletd::projections::Db, sql: &str) -> i64 {
    walletd::projections::with_db!(db, pool => {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
    })
}

/// Single keys that no `WalletCreated` event names.
const UNASSIGNED_KEYS: &str = "SELECT COUNT(*) FROM key_vault k WHERE NOT EXISTS \
     (SELECT 1 FROM events e WHERE e.event_type = 'WalletCreated' AND CAST(e.payload AS TEXT) LIKE '%' || k.key_id || '%')";

/// Party `p`'s key shares that no `WalletCreated` event names.
pub(crate) fn unassigned_shares(party: u8) -> String {
    format!(
        "SELECT COUNT(*) FROM mpc_shares k WHERE k.party = {party} AND NOT EXISTS \
         (SELECT 1 FROM events e WHERE e.event_type = 'WalletCreated' AND CAST(e.payload AS TEXT) LIKE '%' || k.key_id || '%')"
    )
}

/// Waits until `sql` counts at least `n`.
pub(crate) async fn wait_for_count(db: &walletd::projections::Db, sql: &str, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = scalar(db, sql).await;
        if got >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited for {n} from {sql}, have {got}"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Rows some live pool holds.
const POOLED_KEYS: &str =
    "SELECT COUNT(*) FROM key_vault WHERE claimed_by IS NOT NULL AND claimed_by NOT IN ('assigned', 'retired')";
const POOLED_SHARES: &str =
    "SELECT COUNT(*) FROM mpc_shares WHERE party = 1 AND claimed_by IS NOT NULL \
     AND claimed_by NOT IN ('assigned', 'retired')";

fn pooled(
    local: usize,
    mpc: usize,
    cosigner_key: String,
) -> impl FnOnce(&mut walletd::config::Settings) {
    move |s| {
        s.key_pool = local;
        s.mpc_key_pool = mpc;
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.cosigner_master_key = Some(cosigner_key.into());
    }
}

/// Each start used to leave its whole pool behind (1,298 vault rows after
/// six starts for ~20 wallets). Now a start claims the keys the previous
/// run released, or whose claim lapsed because that run died, before making
/// new ones: the unassigned keys stay at most one pool's worth, on both
/// parties' share tables too. The third run is the real binary, killed
/// with SIGKILL (its claims are then aged as ten minutes would).
async fn restarts_reuse_the_pools_keys(b: Backend) {
    let Some(mut tdb) = TestDb::new(b).await else {
        return;
    };
    let (master, cosigner) = (random_master_key(), random_master_key());
    let (local, mpc) = (8usize, 2usize);
    let bounded = |db: walletd::projections::Db, start: usize| async move {
        let keys = scalar(&db, UNASSIGNED_KEYS).await;
        let shares = (
            scalar(&db, &unassigned_shares(1)).await,
            scalar(&db, &unassigned_shares(2)).await,
        );
        assert!(
            keys <= local as i64,
            "start {start}: {keys} unassigned keys"
        );
        assert!(
            shares.0 <= mpc as i64 && shares.1 <= mpc as i64,
            "start {start}: {shares:?} unassigned shares"
        );
    };
    for start in 0..4 {
        if start == 2 {
            let db = open_db(&tdb.url).await;
            let log = tdb.dir.path().join("crashed.log");
            let (l, m) = (local.to_string(), mpc.to_string());
            let mut server = BinaryServer::start_with(
                &tdb.url,
                Some(&master),
                "crash-key",
                &[
                    ("WALLETD_KEY_POOL", l.as_str()),
                    ("WALLETD_MPC_KEY_POOL", m.as_str()),
                    ("WALLETD_SERVER_WALLET_CUSTODY", "mpc"),
                    ("WALLETD_COSIGNER_MASTER_KEY", cosigner.as_str()),
                ],
                &log,
            );
            wait_for_count(&db, POOLED_KEYS, local as i64).await;
            wait_for_count(&db, POOLED_SHARES, mpc as i64).await;
            // A loaded machine (the whole suite at once) can take more than
            // awc's default 5 s here.
            let res = awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .finish()
                .post(format!("{}/api/wallets", server.base))
                .insert_header(("Authorization", "Bearer crash-key"))
                .send_json(&json!({"userId": "restart-crashed"}))
                .await
                .unwrap();
            assert_eq!(crate::helpers::into_resp(res).await.status, 200);
            server.kill();
            bounded(db.clone(), start).await;
            walletd::projections::with_db!(&db, pool => {
                for table in ["key_vault", "mpc_shares"] {
                    sqlx::query(&format!(
                        "UPDATE {table} SET claimed_at = claimed_at - 3600
                          WHERE claimed_by IS NOT NULL AND claimed_by NOT IN ('assigned', 'retired')"
                    ))
                    .execute(pool)
                    .await
                    .unwrap();
                }
            });
            db.close().await;
            continue;
        }
        let app = crate::helpers::spawn_app_custom(
            tdb,
            Some(master.clone()),
            pooled(local, mpc, cosigner.clone()),
        )
        .await;
        let db = app.app.db.clone();
        wait_for_count(&db, POOLED_KEYS, local as i64).await;
        wait_for_count(&db, POOLED_SHARES, mpc as i64).await;
        // One wallet of each custody per start, from the pools.
        let created = app.create_wallet(&format!("restart-{start}")).await;
        crate::mpc::sign_and_check(
            &app,
            created["walletId"].as_str().unwrap(),
            "after a restart",
            created["address"].as_str().unwrap(),
        )
        .await;
        let r = app
            .jwt(
                "POST",
                "/api/wallet/create",
                Some(&crate::helpers::token(
                    &format!("restart-{start}"),
                    "SUBSCRIBER",
                )),
                Some(&json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        bounded(db, start).await;
        tdb = app.shutdown().await;
    }
    let db = open_db(&tdb.url).await;
    // 4 server wallets and 3 JWT wallets, plus at most one pool's worth.
    let keys = scalar(&db, "SELECT COUNT(*) FROM key_vault").await;
    let shares = scalar(&db, "SELECT COUNT(*) FROM mpc_shares WHERE party = 1").await;
    assert!(keys <= 3 + local as i64, "{keys} vault rows after 4 starts");
    assert!(
        shares <= 4 + mpc as i64,
        "{shares} party-1 shares after 4 starts"
    );
    eprintln!(
        "after 4 starts, one killed (pool {local} local, {mpc} MPC): {keys} vault rows, {shares} party-1 shares"
    );
    db.close().await;
}

/// The sweeper removes keys and share pairs that no event names, once
/// older than the grace period and held by no live pool; a key a wallet
/// uses survives even when its row looks free (as rows from before the claim
/// columns do), and the wallet still signs.
async fn the_sweeper_removes_unused_keys_and_never_a_used_one(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let (master, cosigner) = (random_master_key(), random_master_key());
    let app =
        crate::helpers::spawn_app_custom(tdb, Some(master.clone()), pooled(4, 2, cosigner.clone()))
            .await;
    wait_for_count(&app.app.db, POOLED_KEYS, 4).await;
    wait_for_count(&app.app.db, POOLED_SHARES, 2).await;
    let server = app.create_wallet("kept-server").await;
    let r = app
        .jwt(
            "POST",
            "/api/wallet/create",
            Some(&crate::helpers::token("kept-jwt", "SUBSCRIBER")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let jwt_address = r.body["wallet"]["address"].as_str().unwrap().to_string();
    let tdb = app.shutdown().await;

    // Every row looks free and unmarked.
    let db = open_db(&tdb.url).await;
    walletd::projections::with_db!(&db, pool => {
        sqlx::query("UPDATE key_vault SET claimed_by = NULL, claimed_at = NULL").execute(pool).await.unwrap();
        sqlx::query("UPDATE mpc_shares SET claimed_by = NULL, claimed_at = NULL").execute(pool).await.unwrap();
    });
    let free_keys = scalar(&db, UNASSIGNED_KEYS).await;
    let free_shares = scalar(&db, &unassigned_shares(1)).await;
    assert!(
        free_keys >= 3 && free_shares >= 1,
        "{free_keys} {free_shares}"
    );
    assert_eq!(scalar(&db, &unassigned_shares(2)).await, free_shares);
    db.close().await;

    // A run with a pool of its own (which claims two of the free keys) and
    // no grace: everything else that no event names goes, on both parties.
    let app = crate::helpers::spawn_app_custom(tdb, Some(master.clone()), move |s| {
        pooled(2, 0, cosigner)(s);
        s.key_sweep_grace = 0;
    })
    .await;
    let db = app.app.db.clone();
    wait_for_count(&db, POOLED_KEYS, 2).await;
    let report = app.app.sweep_keys().await.unwrap();
    assert_eq!(
        report.removed as i64,
        free_keys - 2 + free_shares,
        "{report:?}"
    );
    assert_eq!(report.found_in_use, 2, "{report:?}");
    assert_eq!(
        scalar(&db, UNASSIGNED_KEYS).await,
        2,
        "the live pool's keys stay"
    );
    assert_eq!(scalar(&db, POOLED_KEYS).await, 2);
    assert_eq!(scalar(&db, &unassigned_shares(1)).await, 0);
    assert_eq!(scalar(&db, &unassigned_shares(2)).await, 0);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM mpc_shares").await, 2);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM key_vault WHERE claimed_by = 'assigned'"
        )
        .await,
        1
    );
    // Again: nothing more to do.
    let report = app.app.sweep_keys().await.unwrap();
    assert_eq!(report.removed, 0, "{report:?}");

    // Both wallets still sign.
    crate::mpc::sign_and_check(
        &app,
        server["walletId"].as_str().unwrap(),
        "still here",
        server["address"].as_str().unwrap(),
    )
    .await;
    let key_id: String = walletd::projections::with_db!(&db, pool => {
        sqlx::query_scalar("SELECT key_id FROM key_vault WHERE claimed_by = 'assigned'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(vault_address(&db, &key_id, &master).await, jwt_address);
}

/// The address of vault key `key_id`, by opening it.
pub(crate) async fn vault_address(
    db: &walletd::projections::Db,
    key_id: &str,
    master: &str,
) -> String {
    let keys = MasterKeys::single(MasterKey::parse(master).unwrap());
    let sealed = KeyVault::new(db.clone())
        .get(key_id)
        .await
        .unwrap()
        .expect("the key is in the vault");
    let secret = sealed.open(&keys).unwrap();
    let sk = secp256k1::SecretKey::from_byte_array(*secret).unwrap();
    let public = secp256k1::PublicKey::from_secret_key(&secp256k1::Secp256k1::new(), &sk);
    alloy_primitives::Address::from_raw_public_key(&public.serialize_uncompressed()[1..])
        .to_checksum(None)
}

// --- A key is kept when a create's commit is ambiguous ---

/// A TCP proxy in front of PostgreSQL that can cut a connection in the middle
/// of a commit: it forwards the `COMMIT` of a transaction that inserted into
/// `events` (or, for an INSERT that is its own transaction, the `Sync` that
/// ends it), waits for PostgreSQL's answer (so the commit has happened),
/// drops that answer and closes both sides. walletd then sees an I/O error
/// for a commit that landed: the ambiguous case.
struct CommitCutter {
    addr: std::net::SocketAddr,
    /// How many such commits to cut from now on.
    armed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// How many were cut.
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CommitCutter {
    fn start(upstream: std::net::SocketAddr) -> CommitCutter {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let armed = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicUsize::new(0));
        let (a, c) = (armed.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                let (a, c) = (a.clone(), c.clone());
                std::thread::spawn(move || proxy_connection(client, server, a, c));
            }
        });
        CommitCutter { addr, armed, cut }
    }

    fn arm(&self) {
        self.armed.store(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn cuts(&self) -> usize {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let at = url.find('@').map(|i| i + 1).unwrap_or("postgres://".len());
        let slash = at + url[at..].find('/').unwrap();
        format!(
            "{}{}{}?sslmode=disable",
            &url[..at],
            self.addr,
            &url[slash..]
        )
    }
}

fn read_exact_or_eof(s: &mut std::net::TcpStream, buf: &mut [u8]) -> bool {
    use std::io::Read;
    s.read_exact(buf).is_ok()
}

fn proxy_connection(
    mut client: std::net::TcpStream,
    mut server: std::net::TcpStream,
    armed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let cutting = Arc::new(AtomicBool::new(false));
    // Server → client: forwarded as is, until a cut: then PostgreSQL's answer
    // to the COMMIT is swallowed and both sockets are closed.
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let flag = cutting.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from_server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if flag.load(Ordering::SeqCst) {
                let _ = to_client.shutdown(std::net::Shutdown::Both);
                let _ = from_server.shutdown(std::net::Shutdown::Both);
                return;
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    // Client → server: the untyped start-up messages, then typed messages,
    // parsed just enough to spot `INSERT INTO events` and `COMMIT`.
    loop {
        let mut len = [0u8; 4];
        if !read_exact_or_eof(&mut client, &mut len) {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        if !read_exact_or_eof(&mut client, &mut body)
            || server.write_all(&len).is_err()
            || server.write_all(&body).is_err()
        {
            return;
        }
        // SSLRequest / GSSENCRequest are followed by the real start-up message.
        let code = body
            .get(..4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
        if !matches!(code, Some(80_877_103 | 80_877_104)) {
            break;
        }
    }
    let mut event_statements = std::collections::HashSet::<Vec<u8>>::new();
    let mut inserted_events = false;
    let mut in_transaction = false;
    let arm_cut = |inserted: &mut bool| {
        let cut = *inserted
            && armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| a.checked_sub(1))
                .is_ok();
        *inserted = false;
        cut
    };
    let cstr = |b: &[u8]| -> (Vec<u8>, usize) {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        (b[..end].to_vec(), (end + 1).min(b.len()))
    };
    loop {
        let mut head = [0u8; 5];
        if !read_exact_or_eof(&mut client, &mut head) {
            break;
        }
        let n = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        if !read_exact_or_eof(&mut client, &mut body) {
            break;
        }
        let mut cut_now = false;
        match head[0] {
            b'P' => {
                let (name, rest) = cstr(&body);
                let (query, _) = cstr(&body[rest..]);
                if String::from_utf8_lossy(&query).contains("INSERT INTO events") {
                    event_statements.insert(name);
                } else {
                    event_statements.remove(&name);
                }
            }
            b'B' => {
                let (_portal, rest) = cstr(&body);
                let (statement, _) = cstr(&body[rest..]);
                if event_statements.contains(&statement) {
                    inserted_events = true;
                }
            }
            b'Q' => {
                let (query, _) = cstr(&body);
                let query = String::from_utf8_lossy(&query).trim().to_ascii_uppercase();
                if query == "COMMIT" {
                    cut_now = arm_cut(&mut inserted_events);
                    in_transaction = false;
                } else if query == "ROLLBACK" || query == "BEGIN" {
                    inserted_events = false;
                    in_transaction = query == "BEGIN";
                }
            }
            // Outside a transaction, PostgreSQL commits an INSERT at the Sync
            // that ends its extended-protocol exchange.
            b'S' if !in_transaction => cut_now = arm_cut(&mut inserted_events),
            _ => {}
        }
        if cut_now {
            cutting.store(true, Ordering::SeqCst);
            cut.fetch_add(1, Ordering::SeqCst);
        }
        if server.write_all(&head).is_err() || server.write_all(&body).is_err() {
            break;
        }
        if cut_now {
            // The other thread closes both sockets once PostgreSQL answers.
            return;
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Both);
}

/// The `WalletCreated` event of `wallet_id`, if it landed: (key_id, address).
async fn created_event(db: &walletd::projections::Db, wallet_id: &str) -> Option<(String, String)> {
    let payload: Option<String> = walletd::projections::with_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT CAST(payload AS TEXT) FROM events
              WHERE aggregate_id = $1 AND event_type = 'WalletCreated'",
        )
        .bind(wallet_id)
        .fetch_optional(pool)
        .await
        .unwrap()
    });
    let v: serde_json::Value = serde_json::from_str(&payload?).unwrap();
    let e = &v["WalletCreated"];
    Some((
        e["key_id"].as_str().unwrap().to_string(),
        e["address"].as_str().unwrap().to_string(),
    ))
}

/// The wallet of the newest `WalletCreated` event for `user_id` (PostgreSQL).
async fn created_wallet_of(db: &walletd::projections::Db, user_id: &str) -> Option<String> {
    walletd::projections::with_db!(db, pool => {
        sqlx::query_scalar::<_, String>(
            "SELECT aggregate_id FROM events WHERE event_type = 'WalletCreated'
              AND payload->'WalletCreated'->>'user_id' = $1 ORDER BY position DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .unwrap()
    })
}

/// A create whose commit reached PostgreSQL but whose answer was lost: the
/// client gets an error, the `WalletCreated` event exists, and its key must
/// still exist (before, the key was deleted on any error, leaving an event
/// that names a key that is gone: a wallet whose funds are lost). Checked
/// for server wallets (single key and 2-of-2), JWT wallets and Sila
/// token-mode accounts; a later create never gets the kept key.
#[actix_web::test]
async fn a_key_survives_a_commit_whose_answer_was_lost() {
    let Some(tdb) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let upstream: std::net::SocketAddr = {
        let url = &tdb.url;
        let at = url.find('@').map(|i| i + 1).unwrap();
        let host = &url[at..at + url[at..].find('/').unwrap()];
        std::net::ToSocketAddrs::to_socket_addrs(host)
            .unwrap()
            .next()
            .unwrap()
    };
    let cutter = CommitCutter::start(upstream);
    let direct = open_db(&tdb.url).await;
    walletd::store::migrate::run(&direct).await.unwrap();
    let (master, cosigner) = (random_master_key(), random_master_key());
    let proxied = cutter.url(&tdb.url);
    let app = crate::helpers::spawn_app_custom(tdb, Some(master.clone()), move |s| {
        s.database_url = proxied.into();
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.cosigner_master_key = Some(cosigner.into());
    })
    .await;
    let sila = crate::sila_client::SilaClient::register_app(&app, "cut.app").await;
    sila.register_user("cutter.eth").await;

    // 1. A 2-of-2 server wallet (in-process cosigner, no pool).
    cutter.arm();
    let r = app
        .post_json("/api/wallets", &json!({"userId": "cut-local"}))
        .await;
    assert_eq!(cutter.cuts(), 1, "the commit was cut");
    assert!(r.status >= 500, "{} {}", r.status, r.body);
    let wallet_id = walletd::domain::WalletId::for_server_wallet(
        &walletd::domain::UserId::parse("cut-local").unwrap(),
    )
    .to_string();
    let (key_id, _address) = created_event(&direct, &wallet_id)
        .await
        .expect("the commit landed");
    assert_eq!(
        scalar(
            &direct,
            &format!("SELECT COUNT(*) FROM mpc_shares WHERE key_id = '{key_id}'")
        )
        .await,
        2,
        "both shares are kept"
    );
    // The wallet works: a retry of the create finds it, and it signs.
    let r = app
        .post_json("/api/wallets", &json!({"userId": "cut-local"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let signed = loop {
        let r = app
            .post_json("/api/wallets/cut-local/sign", &json!({"message": "mine"}))
            .await;
        if r.status == 200 || std::time::Instant::now() > deadline {
            break r;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(signed.status, 200, "{}", signed.body);
    let address = signed.body["address"].as_str().unwrap().to_string();
    assert!(recovers_to(
        signed.body["signature"].as_str().unwrap(),
        "mine",
        &address
    ));
    assert_eq!(
        created_event(&direct, &wallet_id)
            .await
            .unwrap()
            .1
            .to_lowercase(),
        address.to_lowercase()
    );
    // The kept key is nobody else's.
    let other = app.create_wallet("after-the-cut").await;
    assert_ne!(other["address"], address.as_str());

    // 2. A JWT wallet.
    cutter.arm();
    let r = app
        .jwt(
            "POST",
            "/api/wallet/create",
            Some(&crate::helpers::token("cut-jwt", "SUBSCRIBER")),
            Some(&json!({})),
        )
        .await;
    assert_eq!(cutter.cuts(), 2);
    assert!(r.status >= 500, "{} {}", r.status, r.body);
    let wallet_id = created_wallet_of(&direct, "cut-jwt").await.expect("landed");
    let (key_id, address) = created_event(&direct, &wallet_id).await.unwrap();
    assert_eq!(vault_address(&direct, &key_id, &master).await, address);

    // 3. A Sila token-mode account.
    cutter.arm();
    let token = token_with(json!({
        "sub": "cutter.eth", "exp": now() + 600, "app_handle": "cut.app",
        "aud": walletd::auth::jwt::DEFAULT_SILA_AUDIENCE,
    }));
    let body = sila.body(Some("cutter.eth"), json!({"wallet": {"nickname": "cut"}}));
    let r = sila
        .call_token("register_wallet", &body, Some(&token))
        .await;
    assert_eq!(cutter.cuts(), 3);
    assert!(r.status >= 500, "{} {}", r.status, r.body);
    let wallet_id = created_wallet_of(&direct, "sila:cutter.eth")
        .await
        .expect("landed");
    let (key_id, address) = created_event(&direct, &wallet_id).await.unwrap();
    assert_eq!(vault_address(&direct, &key_id, &master).await, address);
    // A later account gets a key of its own.
    let body = sila.body(Some("cutter.eth"), json!({"wallet": {"nickname": "later"}}));
    let r = sila
        .call_token("register_wallet", &body, Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let later = created_wallet_of(&direct, "sila:cutter.eth").await.unwrap();
    assert_ne!(created_event(&direct, &later).await.unwrap().0, key_id);
    direct.close().await;
}
