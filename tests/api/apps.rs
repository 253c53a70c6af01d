//! `walletd app register|remove-address|list`: event-sourced client apps.

use crate::backend_tests;
use crate::helpers::{open_db, run_cli, Backend, TestDb};

backend_tests!(apps_are_registered_rotated_and_listed);

const A1: &str = "0x1111111111111111111111111111111111111111";
const A2: &str = "0x2222222222222222222222222222222222222222";

async fn apps_are_registered_rotated_and_listed(b: Backend) {
    let Some(tdb) = TestDb::new(b).await else {
        return;
    };
    let env = [("DATABASE_URL", tdb.url.as_str())];
    let app = |args: &'static [&'static str]| run_cli(args, &env);
    // The app under test, by verb and address.
    let on = |verb: &'static str, address: &'static str| {
        run_cli_owned(
            [
                "app",
                verb,
                "--handle",
                "handle.silamoney.eth",
                "--address",
                address,
            ],
            tdb.url.clone(),
        )
    };

    let (ok, out, err) = app(&[
        "app",
        "register",
        "--handle",
        "Handle.SilaMoney.eth",
        "--address",
        A1,
    ])
    .await;
    assert!(ok, "{out} {err}");
    let (ok, out, err) = on("register", A2).await;
    assert!(ok, "{out} {err}");
    let (ok, _, err) = on("register", A2).await;
    assert!(!ok && err.contains("already registered"), "{err}");
    for bad in [
        &["app", "register", "--handle", "x", "--address", A1][..],
        &[
            "app",
            "register",
            "--handle",
            "ok.eth",
            "--address",
            "0x123",
        ][..],
        &[
            "app",
            "remove-address",
            "--handle",
            "handle.silamoney.eth",
            "--address",
            "0x3333333333333333333333333333333333333333",
        ][..],
    ] {
        let (ok, _, err) = run_cli(bad, &env).await;
        assert!(!ok, "{bad:?} should fail");
        assert!(!err.is_empty());
    }

    let (ok, out, _) = app(&["app", "list"]).await;
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.starts_with("handle.silamoney.eth"))
        .expect("listed");
    assert!(
        line.to_lowercase().contains(A1) && line.to_lowercase().contains(A2),
        "{line}"
    );

    // Key rotation: the old address goes, the app keeps the new one.
    let (ok, out, err) = on("remove-address", A1).await;
    assert!(ok, "{out} {err}");
    let (ok, _, err) = on("remove-address", A2).await;
    assert!(!ok && err.contains("at least one"), "{err}");
    let (_, out, _) = app(&["app", "list"]).await;
    assert!(
        !out.to_lowercase().contains(A1) && out.to_lowercase().contains(A2),
        "{out}"
    );

    // Every change is an event in the audit log.
    let db = open_db(&tdb.url).await;
    let audit = walletd::projections::queries::dump_tables(&db, &["audit_log"])
        .await
        .unwrap();
    let types: Vec<&str> = ["AppRegistered", "AppAddressAdded", "AppAddressRemoved"]
        .into_iter()
        .filter(|t| audit.iter().any(|l| l.contains(&format!("|{t}|"))))
        .collect();
    assert_eq!(types.len(), 3, "{audit:?}");
    db.close().await;
}

async fn run_cli_owned(args: [&'static str; 6], url: String) -> (bool, String, String) {
    run_cli(&args, &[("DATABASE_URL", &url)]).await
}
