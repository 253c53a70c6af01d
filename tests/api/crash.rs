//! SIGKILL mid-load: every acknowledged write survives, and the projections
//! equal a full rebuild after restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{
    dump_projections, open_db, random_master_key, run_cli, Backend, BinaryServer, TestDb,
};

backend_tests!(sigkill_mid_load_loses_no_acknowledged_write);

#[derive(Default)]
struct Acked {
    wallets: Vec<(String, String, String)>, // user, walletId, address
    signatures: Vec<String>,
    stop: bool,
}

async fn worker(base: String, key: String, n: usize, acked: Rc<RefCell<Acked>>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    for i in 0.. {
        if acked.borrow().stop {
            return;
        }
        let user = format!("crash-{n}-{i}");
        let res = client
            .post(format!("{base}/api/wallets"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send_json(&json!({"userId": user}))
            .await;
        let Ok(res) = res else { return };
        let r = crate::helpers::into_resp_lenient(res).await;
        let Some((200, body)) = r else { return };
        let wallet_id = body["walletId"].as_str().unwrap_or_default().to_string();
        let address = body["address"].as_str().unwrap_or_default().to_string();
        acked
            .borrow_mut()
            .wallets
            .push((user.clone(), wallet_id, address));
        let res = client
            .post(format!("{base}/api/wallets/{user}/sign"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send_json(&json!({"message": format!("crash {n} {i}")}))
            .await;
        let Ok(res) = res else { return };
        let Some((200, body)) = crate::helpers::into_resp_lenient(res).await else {
            return;
        };
        if let Some(sig) = body["signature"].as_str() {
            acked.borrow_mut().signatures.push(sig.to_string());
        }
    }
}

async fn sigkill_mid_load_loses_no_acknowledged_write(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let master = random_master_key();
    let key = "crash-key";
    let log = tdb.dir.path().join("crash.log");
    let mut server = BinaryServer::start(&tdb.url, Some(&master), key, &log);
    let acked = Rc::new(RefCell::new(Acked::default()));
    let mut tasks = Vec::new();
    for n in 0..8 {
        tasks.push(actix_web::rt::spawn(worker(
            server.base.clone(),
            key.into(),
            n,
            acked.clone(),
        )));
    }
    // Kill in the middle of the load, with requests in flight.
    for _ in 0..600 {
        if acked.borrow().signatures.len() >= 60 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    acked.borrow_mut().stop = true;
    let acked = acked.take();
    assert!(
        acked.signatures.len() >= 60,
        "load ran: {} signatures",
        acked.signatures.len()
    );

    // Restart on the same store.
    let server = BinaryServer::start(&tdb.url, Some(&master), key, &log);
    let client = awc::Client::default();
    for (user, wallet_id, address) in &acked.wallets {
        let res = client
            .get(format!("{}/api/wallets/{user}", server.base))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .unwrap();
        let r = crate::helpers::into_resp(res).await;
        assert_eq!(r.status, 200, "acknowledged wallet {user} lost");
        assert_eq!(r.body["walletId"], wallet_id.as_str());
        assert_eq!(r.body["address"], address.as_str());
    }
    let db = open_db(&tdb.url).await;
    let events = walletd::projections::queries::dump_tables(&db, &["events"])
        .await
        .unwrap()
        .concat();
    for sig in &acked.signatures {
        assert!(
            events.contains(sig.as_str()),
            "acknowledged signature {sig} has no MessageSigned event"
        );
    }
    // Whatever the live projector built before and after the crash equals a
    // rebuild, once it has caught up: other tests' transactions on the same
    // cluster may hold the snapshot horizon back for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        let r = crate::helpers::into_resp(ready).await;
        if r.body["projections"]["lagEvents"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projections did not catch up: {}",
            r.body
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(server);
    let live = dump_projections(&db).await;
    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &tdb.url)]).await;
    assert!(ok, "{out} {err}");
    let rebuilt = dump_projections(&db).await;
    let only_live: Vec<_> = live.iter().filter(|r| !rebuilt.contains(r)).collect();
    let only_rebuilt: Vec<_> = rebuilt.iter().filter(|r| !live.contains(r)).collect();
    assert!(
        only_live.is_empty() && only_rebuilt.is_empty(),
        "live projections differ from a rebuild: only live {only_live:#?}, only rebuilt {only_rebuilt:#?}"
    );
    db.close().await;
}
