//! Sila KYC (`request_kyc`, `check_kyc`, `walletd kyc`, the admin endpoint) and
//! the whitelist it feeds, over real HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use walletd::config::KycMode;

use crate::backend_tests;
use crate::helpers::{
    open_db, random_master_key, run_cli, spawn_app, spawn_app_custom, spawn_app_with, token,
    Backend, BinaryServer, Resp, TestApp, TestDb,
};
use crate::sila_client::{
    assert_reference, assert_success, is_uuid, reference_of, Key, SilaClient,
};

backend_tests!(
    sandbox_kyc_passes_at_once,
    manual_kyc_passed_by_the_cli,
    manual_kyc_passed_by_the_admin_endpoint,
    failed_kyc_is_reported_and_never_whitelisted,
    whitelisted_after_the_delay_not_before,
    whitelisting_survives_a_restart,
);

const ALICE: &str = "alice.eth";
const BOB: &str = "bob.eth";

/// A KYC state that is not "passed": `success: false`, FAILURE, the state named.
fn assert_kyc_state(r: &Resp, state: &str) {
    assert!(
        r.status == 200 || r.status == 400,
        "check_kyc ({state}): {} {}",
        r.status,
        r.body
    );
    assert_eq!(r.body["verification_status"], state, "{}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert_eq!(r.body["status"], "FAILURE", "{}", r.body);
    let message = r.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(message.contains(state), "state in message: {}", r.body);
}

fn assert_kyc_passed(r: &Resp, user: &str) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.body);
    assert_eq!(r.body["verification_status"], "passed", "{}", r.body);
    assert_eq!(
        r.body["message"],
        format!("{user} has passed ID verification!")
    );
}

async fn request_kyc_ok(sila: &SilaClient, user: &str, key: &Key) {
    let body = sila.body(Some(user), json!({"kyc_level": "DEFAULT"}));
    let r = sila
        .call("request_kyc", &body, Some(&sila.key), Some(key))
        .await;
    assert_success(&r, &body);
    assert_eq!(
        r.body["message"],
        format!("{user} submitted for KYC review.")
    );
    assert!(is_uuid(&r.body["verification_uuid"]), "{}", r.body);
}

/// Registers a new wallet for `user` and returns it with `queued_for_whitelist`.
async fn new_wallet(sila: &SilaClient, user: &str, key: &Key) -> (Key, bool) {
    let new = Key::random();
    let r = sila.register_wallet(user, key, &new, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let queued = r.body["queued_for_whitelist"]
        .as_bool()
        .unwrap_or_else(|| panic!("queued_for_whitelist: {}", r.body));
    (new, queued)
}

async fn is_whitelisted(sila: &SilaClient, user: &str, key: &Key) -> bool {
    let r = sila.get_wallet(user, key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["is_whitelisted"]
        .as_bool()
        .unwrap_or_else(|| panic!("is_whitelisted: {}", r.body))
}

/// Environment for a `walletd` CLI run against `app`'s database, with the
/// same KYC mode and whitelist delay as the server.
fn cli_env(app: &TestApp, delay: u64) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", app.db.url.clone()),
        ("WALLETD_KYC_MODE", "manual".into()),
        ("WALLETD_WHITELIST_DELAY", delay.to_string()),
    ]
}

async fn kyc_cli(app: &TestApp, decision: &str, user: &str, delay: u64) {
    let env = cli_env(app, delay);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, out, err) = run_cli(&["kyc", decision, user], &env).await;
    assert!(ok, "walletd kyc {decision} {user}: {out} {err}");
}

async fn admin_kyc(app: &TestApp, user: &str, role: &str, decision: &str) -> Resp {
    let t = token(&format!("kyc-{role}"), role);
    app.jwt(
        "POST",
        &format!("/api/admin/kyc/{user}"),
        Some(&t),
        Some(&json!({ "decision": decision })),
    )
    .await
}

fn manual(delay: u64) -> impl FnOnce(&mut walletd::config::Settings) {
    move |s| {
        s.kyc_mode = KycMode::Manual;
        s.whitelist_delay = Some(delay);
    }
}

/// `WalletWhitelisted` events per aggregate, straight from the event log.
async fn whitelist_events(db: &walletd::projections::Db) -> BTreeMap<String, i64> {
    let sql = "SELECT aggregate_id, COUNT(*) FROM events \
               WHERE event_type = 'WalletWhitelisted' GROUP BY aggregate_id";
    let rows: Vec<(String, i64)> = match db {
        walletd::projections::Db::Postgres(pool) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
        walletd::projections::Db::Sqlite(pool) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
    };
    rows.into_iter()
        .map(|(id, n)| (id.to_lowercase(), n))
        .collect()
}

/// Each of `wallet_ids` whitelisted exactly once, and no other wallet.
async fn assert_whitelisted_once(db: &walletd::projections::Db, wallet_ids: &[String]) {
    let counts = whitelist_events(db).await;
    for id in wallet_ids {
        assert_eq!(
            counts.get(&id.to_lowercase()),
            Some(&1),
            "{id} whitelisted exactly once: {counts:?}"
        );
    }
    assert_eq!(counts.len(), wallet_ids.len(), "{counts:?}");
}

async fn wallet_id(sila: &SilaClient, user: &str, key: &Key) -> String {
    let r = sila.get_wallet(user, key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["wallet"]["wallet_id"].as_str().unwrap().to_string()
}

async fn sandbox_kyc_passes_at_once(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let (k2, queued) = new_wallet(&sila, ALICE, &k1).await;
    assert!(!queued, "before KYC");

    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("check_kyc", &body, Some(&sila.key), Some(&k1))
        .await;
    assert_kyc_state(&r, "unverified");
    assert_reference(&r, reference_of(&body));

    request_kyc_ok(&sila, ALICE, &k1).await;
    let body = sila.body(Some(ALICE), json!({}));
    let r = sila
        .call("check_kyc", &body, Some(&sila.key), Some(&k2))
        .await;
    assert_kyc_passed(&r, ALICE);
    assert_reference(&r, reference_of(&body));

    // After KYC a new wallet is queued at registration; the delay (300 s) has not passed.
    let (k3, queued) = new_wallet(&sila, ALICE, &k1).await;
    assert!(queued, "after KYC");
    for k in [&k1, &k2, &k3] {
        assert!(!is_whitelisted(&sila, ALICE, k).await);
    }
    // Another user is untouched.
    let kb = sila.register_user(BOB).await;
    assert_kyc_state(&sila.check_kyc(BOB, &kb).await, "unverified");
    let (_, queued) = new_wallet(&sila, BOB, &kb).await;
    assert!(!queued);
}

async fn manual_kyc_passed_by_the_cli(b: Backend) {
    let delay = 2;
    let Some(app) = spawn_app_with(b, manual(delay)).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let (k2, queued) = new_wallet(&sila, ALICE, &k1).await;
    assert!(!queued);
    assert_kyc_state(&sila.check_kyc(ALICE, &k1).await, "unverified");
    request_kyc_ok(&sila, ALICE, &k1).await;
    assert_kyc_state(&sila.check_kyc(ALICE, &k1).await, "pending");
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_kyc_state(&sila.check_kyc(ALICE, &k2).await, "pending");

    kyc_cli(&app, "pass", ALICE, delay).await;
    let r = sila
        .wait_kyc(ALICE, &k1, "passed", Duration::from_secs(10))
        .await;
    assert_kyc_passed(&r, ALICE);
    let (k3, queued) = new_wallet(&sila, ALICE, &k1).await;
    assert!(queued, "registered after KYC passed");
    for k in [&k1, &k2, &k3] {
        sila.wait_whitelisted(ALICE, k, Duration::from_secs(15))
            .await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let mut ids = Vec::new();
    for k in [&k1, &k2, &k3] {
        ids.push(wallet_id(&sila, ALICE, k).await);
    }
    assert_whitelisted_once(&app.app.db, &ids).await;
}

async fn manual_kyc_passed_by_the_admin_endpoint(b: Backend) {
    let Some(app) = spawn_app_with(b, manual(2)).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let (k2, _) = new_wallet(&sila, ALICE, &k1).await;
    request_kyc_ok(&sila, ALICE, &k1).await;

    // Not for a MEMBER, nor without a token.
    let r = admin_kyc(&app, ALICE, "MEMBER", "pass").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_ne!(r.body["success"], true);
    let r = app
        .jwt(
            "POST",
            &format!("/api/admin/kyc/{ALICE}"),
            None,
            Some(&json!({"decision": "pass"})),
        )
        .await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    // Not a decision; nobody by that handle.
    let r = admin_kyc(&app, ALICE, "ADMIN", "maybe").await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    let r = admin_kyc(&app, "nobody.eth", "ADMIN", "pass").await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    assert_kyc_state(&sila.check_kyc(ALICE, &k1).await, "pending");
    assert!(!is_whitelisted(&sila, ALICE, &k1).await);

    let r = admin_kyc(&app, ALICE, "ADMIN", "pass").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    let r = sila
        .wait_kyc(ALICE, &k2, "passed", Duration::from_secs(5))
        .await;
    assert_kyc_passed(&r, ALICE);
    let (k3, queued) = new_wallet(&sila, ALICE, &k1).await;
    assert!(queued);
    for k in [&k1, &k2, &k3] {
        sila.wait_whitelisted(ALICE, k, Duration::from_secs(15))
            .await;
    }
}

async fn failed_kyc_is_reported_and_never_whitelisted(b: Backend) {
    let delay = 1;
    let Some(app) = spawn_app_with(b, manual(delay)).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let ka = sila.register_user(ALICE).await;
    let kb = sila.register_user(BOB).await;
    request_kyc_ok(&sila, ALICE, &ka).await;
    request_kyc_ok(&sila, BOB, &kb).await;

    kyc_cli(&app, "fail", ALICE, delay).await;
    let r = sila
        .wait_kyc(ALICE, &ka, "failed", Duration::from_secs(10))
        .await;
    assert_kyc_state(&r, "failed");

    let r = admin_kyc(&app, BOB, "ADMIN", "fail").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    let r = sila
        .wait_kyc(BOB, &kb, "failed", Duration::from_secs(5))
        .await;
    assert_kyc_state(&r, "failed");

    // Well past the delay: nothing queued, nothing whitelisted.
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    for (user, key) in [(ALICE, &ka), (BOB, &kb)] {
        assert!(!is_whitelisted(&sila, user, key).await, "{user}");
        let (new, queued) = new_wallet(&sila, user, key).await;
        assert!(!queued, "{user}: KYC failed");
        assert!(!is_whitelisted(&sila, user, &new).await);
    }
    assert!(whitelist_events(&app.app.db).await.is_empty());
}

async fn whitelisted_after_the_delay_not_before(b: Backend) {
    let Some(app) = spawn_app_with(b, |s| s.whitelist_delay = Some(3)).await else {
        return;
    };
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let (k2, _) = new_wallet(&sila, ALICE, &k1).await;

    let queued_at = Instant::now();
    request_kyc_ok(&sila, ALICE, &k1).await;
    // Not whitelisted right after queueing, nor 2 s into the 3 s delay (a
    // `true` read is only acceptable if it was answered after the delay).
    let not_yet = |whitelisted: bool, when: &str| {
        let elapsed = queued_at.elapsed();
        assert!(
            !whitelisted || elapsed >= Duration::from_secs(3),
            "whitelisted {when}, {elapsed:?} after queueing"
        );
    };
    for k in [&k1, &k2] {
        not_yet(is_whitelisted(&sila, ALICE, k).await, "right after");
    }
    actix_web::rt::time::sleep_until((queued_at + Duration::from_millis(2000)).into()).await;
    for k in [&k1, &k2] {
        not_yet(is_whitelisted(&sila, ALICE, k).await, "2 s in");
    }
    assert!(
        queued_at.elapsed() < Duration::from_secs(3),
        "too slow for this timing test: {:?}",
        queued_at.elapsed()
    );
    for k in [&k1, &k2] {
        let done = sila
            .wait_whitelisted(ALICE, k, Duration::from_secs(15))
            .await;
        assert!(
            done.duration_since(queued_at) >= Duration::from_secs(3),
            "whitelisted after {:?}",
            done.duration_since(queued_at)
        );
    }
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let ids = [
        wallet_id(&sila, ALICE, &k1).await,
        wallet_id(&sila, ALICE, &k2).await,
    ];
    assert_whitelisted_once(&app.app.db, &ids).await;
}

async fn whitelisting_survives_a_restart(b: Backend) {
    let Some(db) = TestDb::new(b).await else {
        return;
    };
    let master_key = random_master_key();
    let delay = |s: &mut walletd::config::Settings| s.whitelist_delay = Some(2);
    let app = spawn_app_custom(db, Some(master_key.clone()), delay).await;
    let sila = SilaClient::register_app(&app, "myapp.eth").await;
    let k1 = sila.register_user(ALICE).await;
    let (k2, _) = new_wallet(&sila, ALICE, &k1).await;
    let ids = [
        wallet_id(&sila, ALICE, &k1).await,
        wallet_id(&sila, ALICE, &k2).await,
    ];
    request_kyc_ok(&sila, ALICE, &k1).await;
    assert!(!is_whitelisted(&sila, ALICE, &k1).await);

    // Down while the wallets become due.
    let db = app.shutdown().await;
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    let app = spawn_app_custom(db, Some(master_key), delay).await;
    let sila = sila.on(&app.base);
    assert_kyc_passed(&sila.check_kyc(ALICE, &k1).await, ALICE);
    for k in [&k1, &k2] {
        sila.wait_whitelisted(ALICE, k, Duration::from_secs(15))
            .await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_whitelisted_once(&app.app.db, &ids).await;
}

/// `walletd serve` as its own process, with extra environment.
fn start_walletd(
    db_url: &str,
    master_key: &str,
    env: &[(&str, &str)],
    log_path: &std::path::Path,
) -> BinaryServer {
    BinaryServer::start_with(db_url, Some(master_key), "sila-kyc-test-key", env, log_path)
}

/// Two `walletd serve` processes on one PostgreSQL: each user's KYC queues
/// their wallets, both schedulers run, every wallet is whitelisted once.
#[actix_web::test]
async fn two_processes_on_one_postgres_whitelist_each_sila_wallet_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let master_key = random_master_key();
    let cli = [("DATABASE_URL", db.url.as_str())];
    let (ok, out, err) = run_cli(&["migrate"], &cli).await;
    assert!(ok, "{out} {err}");
    let app_key = Key::random();
    let (ok, out, err) = run_cli(
        &[
            "app",
            "register",
            "--handle",
            "myapp.eth",
            "--address",
            &app_key.address,
        ],
        &cli,
    )
    .await;
    assert!(ok, "{out} {err}");

    let env = [
        ("WALLETD_WHITELIST_DELAY", "2"),
        ("WALLETD_KYC_MODE", "sandbox"),
    ];
    let servers: Vec<BinaryServer> = (0..2)
        .map(|i| {
            start_walletd(
                &db.url,
                &master_key,
                &env,
                &db.dir.path().join(format!("walletd-{i}.log")),
            )
        })
        .collect();
    let clients: Vec<SilaClient> = servers
        .iter()
        .map(|s| SilaClient::new(&s.base, "myapp.eth", app_key.clone()))
        .collect();
    // Both see the app before the scenario starts.
    for c in &clients {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = c.check_handle("probe.eth").await;
            if r.status == 200 && r.body["success"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "app not visible: {}", r.body);
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Five users, each on one process (alternating), two wallets each.
    let mut users = Vec::new();
    for i in 0..5 {
        let c = &clients[i % 2];
        let handle = format!("user-{i}.eth");
        let k1 = c.register_user(&handle).await;
        let (k2, _) = c.add_wallet(&handle, &k1, json!({})).await;
        users.push((i % 2, handle, k1, k2));
    }
    for (s, handle, k1, _) in &users {
        request_kyc_ok(&clients[*s], handle, k1).await;
    }
    let mut ids = Vec::new();
    for (s, handle, k1, k2) in &users {
        for k in [k1, k2] {
            // Watched through the other process.
            let other = &clients[1 - *s];
            other
                .wait_whitelisted(handle, k, Duration::from_secs(20))
                .await;
            ids.push(wallet_id(&clients[*s], handle, k).await);
        }
    }
    actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
    let pool = open_db(&db.url).await;
    assert_whitelisted_once(&pool, &ids).await;
    assert_eq!(ids.len(), 10);
    drop(clients);
    drop(servers);
}
