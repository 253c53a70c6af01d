//! `walletd replay` rebuilds projections identical to the live ones.

use serde_json::json;
use walletd::domain::wallet::WalletCommand;
use walletd::domain::{Timestamp, WalletId};
use walletd::store::CommandMeta;

use crate::backend_tests;
use crate::helpers::{dump_projections, run_cli, spawn_app, Backend};
use crate::sila_client::SilaClient;

backend_tests!(replay_rebuilds_identical_projections);

async fn replay_rebuilds_identical_projections(b: Backend) {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..30 {
        let w = app.create_wallet(&format!("u{i}")).await;
        ids.push(WalletId::parse(w["walletId"].as_str().unwrap()).unwrap());
    }
    for i in 0..30 {
        let r = app
            .post_json(
                &format!("/api/wallets/u{}/sign", i % 7),
                &json!({"message": format!("m{i}")}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    // Commands without an HTTP surface yet, so that every projection has rows.
    let meta = CommandMeta::system("test");
    for (n, id) in ids.iter().take(5).enumerate() {
        app.app
            .wallets
            .execute(
                *id,
                WalletCommand::SetDefault {
                    at: Timestamp::now(),
                },
                &meta,
            )
            .await
            .unwrap();
        app.app
            .wallets
            .execute(
                *id,
                WalletCommand::QueueWhitelist {
                    at: Timestamp::now(),
                    // The first becomes due at once, and the scheduler whitelists it.
                    delay_secs: if n == 0 { 0 } else { 3600 },
                },
                &meta,
            )
            .await
            .unwrap();
    }
    for _ in 0..200 {
        let row = walletd::projections::queries::find_wallet(
            &app.app.db,
            walletd::projections::queries::WalletLookup::WalletId(&ids[0].to_string()),
        )
        .await
        .unwrap()
        .unwrap();
        if row.whitelist_status == "whitelisted" {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Sila users and apps: every user event, a deleted wallet, KYC.
    let sila = SilaClient::register_app(&app, "replay.app").await;
    let alice = sila.register_user("alice.eth").await;
    let bob = sila.register_user("bob.eth").await;
    let (second, _) = sila
        .add_wallet(
            "alice.eth",
            &alice,
            json!({"nickname": "Second", "default": true}),
        )
        .await;
    let (third, _) = sila.add_wallet("alice.eth", &alice, json!({})).await;
    let r = sila
        .user_call(
            "update_wallet",
            "alice.eth",
            &second,
            json!({"nickname": "renamed", "statements_enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sila
        .user_call("delete_wallet", "alice.eth", &third, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sila.request_kyc("bob.eth", &bob).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let live = dump_projections(&app.app.db).await;
    assert!(live.iter().any(|l| l.starts_with("whitelist_queue:")));
    for table in ["sila_users:", "sila_wallets:", "app_addresses:"] {
        assert!(live.iter().any(|l| l.starts_with(table)), "{table}");
    }
    let events = live.iter().filter(|l| l.starts_with("audit_log:")).count();
    // 71 wallet events, then the app, 2 users (registered, wallet attached,
    // wallet registered), 2 wallets (2 each), an update, a deletion (2), KYC
    // requested + passed + a queued wallet.
    assert_eq!(events, 71 + 1 + 6 + 4 + 1 + 2 + 3);

    let (ok, out, err) = run_cli(&["replay"], &[("DATABASE_URL", &app.db.url)]).await;
    assert!(ok, "replay failed: {out} {err}");
    assert!(out.contains(&format!("from {events} events")), "{out}");
    let rebuilt = dump_projections(&app.app.db).await;
    assert_eq!(live, rebuilt);

    // Batch boundaries fall everywhere: a pass folds in memory what its own
    // events change and loads what earlier passes wrote, and every split of
    // the log must end in the same rows.
    let projector = walletd::projections::Projector::new(
        app.app.db.clone(),
        walletd::projections::views::all(),
    );
    for batch in [1, 2, 3, 7] {
        projector.reset().await.unwrap();
        while projector.pass_up_to(batch).await.unwrap().applied > 0 {}
        assert_eq!(
            live,
            dump_projections(&app.app.db).await,
            "rebuilt in passes of {batch}"
        );
    }

    // The live service keeps working on the rebuilt projections.
    app.create_wallet("after-replay").await;
    let r = app.get("/api/wallets/after-replay").await;
    assert_eq!(r.status, 200);
}
