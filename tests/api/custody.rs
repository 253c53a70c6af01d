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
    rotate_master_key_rewraps_every_key,
    tampered_vault_row_is_refused,
    pooled_keys_sign_for_their_wallets,
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
        &[("WALLETD_JWT_SECRET", JWT_SECRET)],
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
