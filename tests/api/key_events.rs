//! Key-material events through the normal write path: `WalletKeyFrozen` when
//! MPC custody freezes a wallet's key while signing, `MasterKeyRotated` when
//! `walletd rotate-master-key` completes.

use serde_json::{json, Value};
use walletd::custody::master_key::{MasterKey, MasterKeys};
use walletd::custody::mpc::ShareVault;
use walletd::projections::log::{LogPosition, StoredEvent};
use walletd::projections::Db;

use crate::backend_tests;
use crate::helpers::{
    open_db, random_master_key, run_cli, spawn_app_custom, spawn_app_on, Backend, TestApp, TestDb,
};
use crate::mpc::sign_and_check;

backend_tests!(
    a_frozen_mpc_key_is_recorded_and_refuses_signs,
    master_key_rotations_are_recorded,
);

fn keys(hex: &str) -> Option<MasterKeys> {
    Some(MasterKeys::single(MasterKey::parse(hex).unwrap()))
}

/// Every stored event in position order, read from the table itself: the
/// log reader's PostgreSQL horizon is cluster-wide, so other tests' open
/// transactions could hide a committed row from it for a moment.
pub(crate) async fn events(db: &Db) -> Vec<StoredEvent> {
    let sql = match db {
        Db::Postgres(_) => {
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload::text AS payload, metadata::text AS metadata
               FROM events ORDER BY position"
        }
        Db::Sqlite(_) => {
            "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata
               FROM events ORDER BY position"
        }
    };
    let rows = walletd::projections::with_db!(db, pool => {
        sqlx::query(sql).fetch_all(pool).await.unwrap().iter().map(|r| {
            use sqlx::Row;
            let text = |c: &str| -> String { r.try_get(c).unwrap() };
            StoredEvent {
                at: LogPosition { tx_id: 0, position: r.try_get("position").unwrap() },
                aggregate_type: text("aggregate_type"),
                aggregate_id: text("aggregate_id"),
                sequence: r.try_get("sequence").unwrap(),
                event_type: text("event_type"),
                event_version: text("event_version"),
                payload: serde_json::from_str(&text("payload")).unwrap(),
                metadata: serde_json::from_str(&text("metadata")).unwrap(),
            }
        }).collect::<Vec<_>>()
    });
    rows
}

fn of_type<'a>(events: &'a [StoredEvent], event_type: &str) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

/// The key id `WalletCreated` names for wallet `id`.
fn key_of(events: &[StoredEvent], id: &str) -> String {
    of_type(events, "WalletCreated")
        .into_iter()
        .find(|e| e.aggregate_id == id)
        .and_then(|e| e.body()["key_id"].as_str().map(str::to_owned))
        .expect("the wallet's WalletCreated")
}

async fn sign(app: &TestApp, id: &str, path: &str, body: Value) -> crate::helpers::Resp {
    app.post_json(&format!("/api/wallets/{id}/{path}"), &body)
        .await
}

async fn cosigned(db: &Db, key_id: &str) -> i64 {
    walletd::projections::with_db!(db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cosign_log WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// The seam: the in-process cosigner's share of wallet A's key is frozen
/// through the cosigner's own vault (as the cosigner does when DKLs23 bans
/// party 1; corrupting party 1's own messages inside `walletd serve` has no
/// hook), so the next signing run gets the cosigner's real ban answer, and
/// walletd's real custody, service and API take it from there. Wallet B's
/// party-1 share is frozen by "another process", found at the next sign.
async fn a_frozen_mpc_key_is_recorded_and_refuses_signs(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let cosigner_key = random_master_key();
    let ck = cosigner_key.clone();
    let app = spawn_app_custom(tdb, Some(random_master_key()), move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.cosigner_master_key = Some(ck.into());
    })
    .await;
    let master = app.master_key.clone().unwrap();
    let a = app.create_wallet("freeze-a").await;
    let b_wallet = app.create_wallet("freeze-b").await;
    let (id_a, id_b) = (
        a["walletId"].as_str().unwrap().to_string(),
        b_wallet["walletId"].as_str().unwrap().to_string(),
    );
    sign_and_check(&app, &id_a, "before", a["address"].as_str().unwrap()).await;
    let log = events(&app.app.db).await;
    let (key_a, key_b) = (key_of(&log, &id_a), key_of(&log, &id_b));

    const PEER_TEXT: &str = "party 1 sent corrupted OT data (test)";
    ShareVault::new(app.app.db.clone(), keys(&cosigner_key), 2)
        .freeze(&key_a, PEER_TEXT)
        .await
        .unwrap();
    let signed_before = cosigned(&app.app.db, &key_a).await;

    // The run that meets the ban: a clear 409, nothing signed.
    let r = sign(&app, &id_a, "sign", json!({"message": "after"})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("frozen"),
        "{}",
        r.body
    );
    assert!(r.body.get("signature").is_none());
    let log = events(&app.app.db).await;
    let frozen = of_type(&log, "WalletKeyFrozen");
    assert_eq!(frozen.len(), 1, "{frozen:?}");
    let e = frozen[0];
    assert_eq!(
        (e.aggregate_type.as_str(), e.aggregate_id.as_str()),
        ("wallet", id_a.as_str())
    );
    assert_eq!(e.event_version, "1");
    assert_eq!(e.body()["wallet_id"], id_a);
    assert_eq!(e.body()["key_id"], key_a);
    assert_eq!(e.body()["reason"], "peer_banned");
    assert!(e.body()["at"].is_string());
    let mut fields: Vec<&String> = e.body().as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["at", "key_id", "reason", "wallet_id"]);
    // Who asked, as for any event of the request.
    assert_eq!(e.meta("auth_method").as_deref(), Some("api_key"));
    // Party 1 froze its own share as DKLs23 requires.
    let p1_frozen: Option<String> = walletd::projections::with_db!(&app.app.db, pool => {
        sqlx::query_scalar("SELECT frozen FROM mpc_shares WHERE key_id = $1 AND party = 1")
            .bind(&key_a)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert!(p1_frozen.is_some());
    // The peer's text stays out of the log, the audit trail and the answer.
    let stored = walletd::projections::queries::dump_tables(&app.app.db, &["events", "audit_log"])
        .await
        .unwrap()
        .concat();
    assert!(!stored.contains(PEER_TEXT) && !r.body.to_string().contains(PEER_TEXT));
    assert!(!stored.contains(&master) && !stored.contains(&cosigner_key));

    // Every later sign is refused by the wallet itself: no MPC run, no
    // second event, on every endpoint.
    for (path, body) in [
        ("sign", json!({"message": "again"})),
        (
            "sign-typed-data",
            json!({"typedData": crate::signing::mail()}),
        ),
        (
            "sign-transaction",
            json!({"transaction": crate::signing::eip1559(None)}),
        ),
    ] {
        let r = sign(&app, &id_a, path, body).await;
        assert_eq!(r.status, 409, "{path}: {}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains("frozen"),
            "{}",
            r.body
        );
    }
    assert_eq!(cosigned(&app.app.db, &key_a).await, signed_before);
    assert_eq!(
        of_type(&events(&app.app.db).await, "WalletKeyFrozen").len(),
        1
    );
    // Still readable; the audit log has the event.
    let r = app.get(&format!("/api/wallets/{id_a}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = walletd::projections::queries::dump_tables(&app.app.db, &["audit_log"])
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.contains("WalletKeyFrozen"))
            .count(),
        1
    );
    // The key-material report names the wallet and key, and the reason.
    let admin = crate::helpers::token("auditor", "ADMIN");
    let r = app
        .jwt("GET", "/api/admin/reports/key-material", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 1, "{}", r.body);
    let row = &r.body["rows"][0];
    assert_eq!(row["event"], "WalletKeyFrozen");
    assert_eq!(row["subject"], id_a.as_str());
    assert_eq!(row["detail"], "peer_banned");

    // Wallet B signs until another process freezes walletd's share of its key.
    let address_b = b_wallet["address"].as_str().unwrap();
    sign_and_check(&app, &id_b, "b before", address_b).await;
    ShareVault::new(app.app.db.clone(), keys(&master), 1)
        .freeze(&key_b, "frozen by another walletd process")
        .await
        .unwrap();
    let r = sign(&app, &id_b, "sign", json!({"message": "b after"})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let log = events(&app.app.db).await;
    let frozen = of_type(&log, "WalletKeyFrozen");
    assert_eq!(frozen.len(), 2);
    assert_eq!(frozen[1].aggregate_id, id_b);
    assert_eq!(frozen[1].body()["reason"], "share_frozen");

    // After a restart (nothing cached) the wallets stay frozen: the state
    // comes from the events.
    let tdb = app.shutdown().await;
    let app = spawn_app_custom(tdb, Some(master.clone()), move |s| {
        s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
        s.cosigner_master_key = Some(cosigner_key.into());
    })
    .await;
    for id in [&id_a, &id_b] {
        let r = sign(&app, id, "sign", json!({"message": "restarted"})).await;
        assert_eq!(r.status, 409, "{}", r.body);
        let (wallet, _) = app.app.wallets.load(id).await.unwrap();
        assert!(wallet.signing_key().is_err());
    }
    assert_eq!(
        of_type(&events(&app.app.db).await, "WalletKeyFrozen").len(),
        2
    );
}

/// `rotate-master-key` appends `MasterKeyRotated` to the `master_key`
/// stream of its scope, with key ids only.
async fn master_key_rotations_are_recorded(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let (k1, k2, k3, c1, c2) = (
        random_master_key(),
        random_master_key(),
        random_master_key(),
        random_master_key(),
        random_master_key(),
    );
    let id = |k: &str| MasterKey::parse(k).unwrap().id().to_string();
    let app = spawn_app_on(tdb, Some(k1.clone())).await;
    app.create_wallet("rotated").await;
    let tdb = app.shutdown().await;

    let rotate = |args: Vec<String>, own: String| {
        let url = tdb.url.clone();
        let c1 = c1.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out, err) = run_cli(
                &args,
                &[
                    ("DATABASE_URL", &url),
                    ("WALLETD_MASTER_KEY", &own),
                    ("WALLETD_COSIGNER_MASTER_KEY", &c1),
                ],
            )
            .await;
            assert!(ok, "{out} {err}");
            assert!(err.contains("recorded MasterKeyRotated"), "{err}");
        }
    };
    let cli = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    rotate(cli(&["rotate-master-key", "--new-key", &k2]), k1.clone()).await;
    rotate(cli(&["rotate-master-key", "--new-key", &k3]), k2.clone()).await;
    rotate(
        cli(&["rotate-master-key", "--cosigner", "--new-key", &c2]),
        k3.clone(),
    )
    .await;

    let db = open_db(&tdb.url).await;
    let log = events(&db).await;
    let rotations = of_type(&log, "MasterKeyRotated");
    assert_eq!(rotations.len(), 3, "{rotations:?}");
    let expected = [
        ("walletd", 1, &k1, &k2, 1),
        ("walletd", 2, &k2, &k3, 1),
        ("cosigner", 1, &c1, &c2, 0),
    ];
    for (e, (scope, sequence, from, to, rewrapped)) in rotations.iter().zip(expected) {
        assert_eq!(e.aggregate_type, "master_key");
        assert_eq!(e.aggregate_id, scope);
        assert_eq!(e.sequence, sequence);
        assert_eq!(e.event_version, "1");
        assert_eq!(
            e.body(),
            &json!({
                "scope": scope,
                "from_key_id": id(from),
                "to_key_id": id(to),
                "rewrapped": rewrapped,
                "at": e.body()["at"],
            })
        );
        assert_eq!(e.meta("actor").as_deref(), Some("cli"));
    }
    // Ids only: no key, in either spelling, anywhere in the log or its read
    // models.
    let mut tables = vec!["events", "snapshots"];
    for p in walletd::projections::views::all() {
        tables.extend_from_slice(p.tables());
    }
    let stored = walletd::projections::queries::dump_tables(&db, &tables)
        .await
        .unwrap()
        .concat()
        .to_lowercase();
    for k in [&k1, &k2, &k3, &c1, &c2] {
        assert!(
            !stored.contains(k.as_str()),
            "a master key reached the database"
        );
    }
    let audit = walletd::projections::queries::dump_tables(&db, &["audit_log"])
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.contains("MasterKeyRotated"))
            .count(),
        3
    );
    db.close().await;

    // The key-material report, recomputed from the log, lists the three.
    let (ok, out, err) = run_cli(
        &["report", "key-material", "--as-of", &log.len().to_string()],
        &[("DATABASE_URL", &tdb.url)],
    )
    .await;
    assert!(ok, "{out} {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{report}");
    for (row, (scope, to, from)) in rows.iter().zip([
        ("walletd", &k2, &k1),
        ("walletd", &k3, &k2),
        ("cosigner", &c2, &c1),
    ]) {
        assert_eq!(row["event"], "MasterKeyRotated");
        assert_eq!(row["subject"], scope);
        assert_eq!(row["key_id"], id(to));
        assert!(row["detail"].as_str().unwrap().contains(&id(from)), "{row}");
        assert_eq!(row["actor"], "cli");
    }

    // The server runs on the rotated key with the new stream in its log.
    let app = spawn_app_on(tdb, Some(k3.clone())).await;
    let r = app.get("/api/wallets/rotated").await;
    assert_eq!(r.status, 200, "{}", r.body);
}
