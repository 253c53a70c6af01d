//! Old event versions stay readable: `MessageSigned` v1 rows, exactly as
//! walletd wrote them before v2 added `kind`, in a live database. The wallet
//! loads through the upcaster, signs again (now writing v2), a retry of the
//! old request finds its v1 signature, and every projection counts both.

use serde_json::{json, Value};
use walletd::domain::eth::{SignPayload, TransactionPayload};
use walletd::domain::key::{CustodyKind, KeyRef};
use walletd::domain::WalletId;

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend, TestApp};

backend_tests!(stored_v1_message_signed_events_stay_readable);

const INSERT_PG: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                         VALUES ('wallet', $1, $2, 'MessageSigned', '1', $3::jsonb, $4::jsonb)";
const INSERT_SQLITE: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                             VALUES ('wallet', $1, $2, 'MessageSigned', '1', $3, $4)";

/// Appends a stored event row as an older walletd's append did.
async fn insert_v1(app: &TestApp, wallet: &str, sequence: i64, payload: &str, metadata: &Value) {
    let metadata = metadata.to_string();
    walletd::projections::with_db!(&app.app.db, pool => {
        let sql = if matches!(app.app.db, walletd::projections::Db::Postgres(_)) {
            INSERT_PG
        } else {
            INSERT_SQLITE
        };
        sqlx::query(sql)
            .bind(wallet)
            .bind(sequence)
            .bind(payload)
            .bind(&metadata)
            .execute(pool)
            .await
            .unwrap();
    });
}

/// The wallet's `MessageSigned` events in the log: (version, payload body).
async fn signed(app: &TestApp) -> Vec<(String, Value)> {
    crate::key_events::events(&app.app.db)
        .await
        .into_iter()
        .filter(|e| e.event_type == "MessageSigned")
        .map(|e| (e.event_version.clone(), e.body().clone()))
        .collect()
}

async fn stored_v1_message_signed_events_stay_readable(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let created = app.create_wallet("legacy").await;
    let id = created["walletId"].as_str().unwrap().to_string();
    let address = created["address"].as_str().unwrap().to_string();
    let wallet_id = WalletId::parse(&id).unwrap();
    let key = KeyRef {
        key_id: crate::mpc::created_key_id(&app.app.db).await,
        custody: CustodyKind::Local,
    };
    let first = app
        .app
        .wallets
        .first_event_metadata(&id)
        .await
        .unwrap()
        .unwrap();
    let actor = first["actor"].as_str().unwrap().to_string();
    let custody = app.app.custody_of(CustodyKind::Local).unwrap().clone();

    // What an older walletd recorded for two signs: custody's real
    // signatures, the payloads in v1's form and field order.
    let hello = SignPayload::PersonalMessage(b"hello".to_vec());
    let sig1 = custody.sign(&key, wallet_id, &hello, &actor).await.unwrap();
    let v1_message = format!(
        r#"{{"MessageSigned":{{"wallet_id":"{id}","scheme":"eip191","digest":"0x{}","message_len":5,"signature":"{}","requested_by":"{actor}","at":"2026-11-02T09:14:07.312455Z"}}}}"#,
        hex::encode(hello.digest()),
        sig1.to_hex(),
    );
    let legacy_tx = SignPayload::Transaction(
        TransactionPayload::from_json(json!({
            "type": "legacy", "chainId": 1, "nonce": 9,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000", "gas": 21000, "gasPrice": "20000000000"
        }))
        .unwrap(),
    );
    let sig2 = custody
        .sign(&key, wallet_id, &legacy_tx, &actor)
        .await
        .unwrap();
    let tx_hash = legacy_tx.signed_transaction(&sig2).unwrap().hash;
    let v1_transaction = format!(
        r#"{{"MessageSigned":{{"wallet_id":"{id}","scheme":"eip155","digest":"0x{}","message_len":{},"signature":"{}","requested_by":"{actor}","at":"2026-11-02T09:15:00.000000Z","chain_id":1,"tx_nonce":9,"tx_to":"0x3535353535353535353535353535353535353535","tx_value":"1000000000000000000","tx_hash":"0x{}"}}}}"#,
        hex::encode(legacy_tx.digest()),
        legacy_tx.message_len(),
        sig2.to_hex(),
        hex::encode(tx_hash),
    );
    let meta = |request: &str, idempotency_key: Option<&str>| {
        let mut m = json!({
            "actor": actor, "auth_method": "api_key", "request_id": request,
            "client_addr": "127.0.0.1", "at": "2026-11-02T09:14:07.312455Z"
        });
        if let Some(k) = idempotency_key {
            m["idempotency_key"] = json!(k);
        }
        m
    };
    insert_v1(
        &app,
        &id,
        2,
        &v1_message,
        &meta("r-legacy-1", Some("legacy-1")),
    )
    .await;
    insert_v1(&app, &id, 3, &v1_transaction, &meta("r-legacy-2", None)).await;

    // A retry of the old request (same caller, same key) is answered from
    // its v1 event: the same signature, nothing signed or written again.
    let r = app
        .post_raw(
            &format!("/api/wallets/{id}/sign"),
            "application/json",
            json!({"message": "hello"}).to_string().into_bytes(),
            &[("Idempotency-Key", "legacy-1")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["signature"], sig1.to_hex());
    assert_eq!(signed(&app).await.len(), 2);

    // A new sign loads the wallet through the upcaster (the cached state is
    // behind the inserted rows: its append conflicts and the wallet is
    // loaded afresh) and is recorded as v2.
    let r = crate::mpc::sign_and_check(&app, &id, "after the upgrade", &address).await;
    assert_eq!(r.status, 200);
    let events = signed(&app).await;
    let versions: Vec<&str> = events.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(versions, ["1", "1", "2"]);
    assert_eq!(events[2].1["kind"], "message");
    assert_eq!(events[2].1["scheme"], "eip191");
    // The stored v1 rows are untouched.
    assert!(events[0].1.get("kind").is_none() && events[1].1.get("kind").is_none());

    // The aggregate, loaded from the store, counts all three.
    let (wallet, sequence) = app.app.wallets.load(&id).await.unwrap();
    assert_eq!((wallet.signature_count(), sequence), (3, 4));
    assert!(wallet.signing_key().is_ok());

    // The read side: the audit log has both versions, the directory the
    // wallet, and the signature count is three.
    assert_eq!(
        walletd::projections::queries::signature_count(&app.app.db, &id)
            .await
            .unwrap(),
        3
    );
    let audit = walletd::projections::queries::dump_tables(&app.app.db, &["audit_log"])
        .await
        .unwrap();
    let signed_rows: Vec<&String> = audit
        .iter()
        .filter(|r| r.contains("MessageSigned"))
        .collect();
    assert_eq!(signed_rows.len(), 3, "{audit:?}");
    let r = app.get(&format!("/api/wallets/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["address"], address);

    // A rebuild from position 0 reads the v1 rows again, identically.
    let live = crate::helpers::dump_projections(&app.app.db).await;
    let projector = walletd::projections::Projector::new(
        app.app.db.clone(),
        walletd::projections::views::all(),
    );
    projector.reset().await.unwrap();
    // The PostgreSQL read horizon is cluster-wide: another test's open
    // transaction can hold the last rows back for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        projector.catch_up().await.unwrap();
        let rebuilt = crate::helpers::dump_projections(&app.app.db).await;
        if rebuilt == live || std::time::Instant::now() > deadline {
            assert_eq!(rebuilt, live);
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
