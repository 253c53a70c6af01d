//! Issue 13: the transparency log. The sealer's tree is checked against an
//! RFC 6962 / RFC 9162 implementation written here from the RFC (leaf and
//! node hashes, the tree head, audit-path and consistency-proof
//! verification), over leaves this test encodes itself from the stored
//! events; checkpoints verify with the log's public key only, and a tampered
//! checkpoint does not.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use walletd::projections::{log::read_after, LogPosition, StoredEvent};
use walletd::transparency::{signing, LogSigner};

use crate::backend_tests;
use crate::helpers::{spawn_app_with, token, Backend, TestApp};

backend_tests!(
    the_log_is_an_rfc6962_tree_with_signed_checkpoints,
    an_export_and_the_database_verify_and_every_tampering_is_named,
);

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn node(l: &H, r: &H) -> H {
    sha(&[&[1u8], l, r])
}

/// The leaf as the documentation defines it: the event's fields and its
/// index as JSON with sorted keys and no whitespace.
fn leaf(index: u64, e: &StoredEvent) -> H {
    let doc = json!({
        "aggregate_id": e.aggregate_id, "aggregate_type": e.aggregate_type,
        "event_type": e.event_type, "event_version": e.event_version, "index": index,
        "metadata": e.metadata, "payload": e.payload, "position": e.at.position,
        "sequence": e.sequence,
    });
    sha(&[&[0u8], &serde_json::to_vec(&doc).unwrap()])
}

/// MTH (RFC 6962 §2.1).
fn mth(leaves: &[H]) -> H {
    match leaves.len() {
        0 => sha(&[]),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(index: u64, size: u64, leaf: H, path: &[H], root: H) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(first: u64, second: u64, h1: H, h2: H, path: &[H]) -> bool {
    if first == second {
        return path.is_empty() && h1 == h2;
    }
    if path.is_empty() || first == 0 || first > second {
        return false;
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, h1);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == h1 && sr == h2 && s == 0
}

fn unb64(v: &Value) -> H {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

async fn events(app: &TestApp) -> Vec<StoredEvent> {
    read_after(&app.app.db, LogPosition::START, 1_000_000)
        .await
        .unwrap()
}

/// Waits for the background sealer to seal `n` events; the checkpoint.
async fn sealed(app: &TestApp, admin: &str, n: u64) -> Value {
    for _ in 0..200 {
        let r = app
            .jwt("GET", "/api/admin/log/checkpoint", Some(admin), None)
            .await;
        if r.status == 200 && r.body["size"].as_u64() == Some(n) {
            return r.body;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the sealer did not reach {n} leaves");
}

async fn the_log_is_an_rfc6962_tree_with_signed_checkpoints(b: Backend) {
    let (skey, vkey) = LogSigner::generate("walletd.test/log").unwrap();
    let Some(app) = spawn_app_with(b, move |s| s.log_key = Some(skey)).await else {
        return;
    };
    let admin = token("auditor", "ADMIN");

    // Nothing written, nothing to prove.
    let r = app
        .jwt(
            "GET",
            "/api/admin/log/proof/inclusion?position=0&size=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    for i in 0..5 {
        app.create_wallet(&format!("tl-{i}")).await;
    }
    let log = events(&app).await;
    let n = log.len() as u64;
    assert!(n >= 5);
    let first = sealed(&app, &admin, n).await;
    let leaves: Vec<H> = log
        .iter()
        .enumerate()
        .map(|(i, e)| leaf(i as u64, e))
        .collect();
    let root = mth(&leaves);
    assert_eq!(
        unb64(&first["root"]),
        root,
        "the root is RFC 6962's MTH of the leaves"
    );
    assert_eq!(first["verifierKey"], vkey.as_str());
    assert_eq!(first["origin"], "walletd.test/log");
    let note = first["checkpoint"].as_str().unwrap();
    let (size, signed_root) = signing::open(note, &vkey).expect("the checkpoint verifies");
    assert_eq!((size, signed_root.0), (n, root));

    // A tampered checkpoint, or another key, is refused.
    let tampered = note.replacen(&format!("\n{n}\n"), &format!("\n{}\n", n + 1), 1);
    assert!(signing::open(&tampered, &vkey).is_err());
    let (_, other_key) = LogSigner::generate("walletd.test/log").unwrap();
    assert!(signing::open(note, &other_key).is_err());

    // Every position's inclusion proof, against every size that holds it.
    for size in 1..=n {
        let head = mth(&leaves[..size as usize]);
        for i in 0..size {
            let r = app
                .jwt(
                    "GET",
                    &format!("/api/admin/log/proof/inclusion?position={i}&size={size}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(unb64(&r.body["leafHash"]), leaves[i as usize]);
            assert_eq!(r.body["eventPosition"], log[i as usize].at.position);
            let path: Vec<H> = r.body["proof"]
                .as_array()
                .unwrap()
                .iter()
                .map(unb64)
                .collect();
            assert!(
                verify_inclusion(i, size, leaves[i as usize], &path, head),
                "{i} in {size}"
            );
            // The same path does not prove another leaf.
            if size > 1 {
                let other = leaves[((i + 1) % size) as usize];
                assert!(!verify_inclusion(i, size, other, &path, head));
            }
        }
    }

    // The log grows; the new tree is consistent with the old, from every size.
    for i in 5..8 {
        app.create_wallet(&format!("tl-{i}")).await;
    }
    let log = events(&app).await;
    let m = log.len() as u64;
    let second = sealed(&app, &admin, m).await;
    let leaves: Vec<H> = log
        .iter()
        .enumerate()
        .map(|(i, e)| leaf(i as u64, e))
        .collect();
    assert_eq!(unb64(&second["root"]), mth(&leaves));
    for from in 1..=m {
        let r = app
            .jwt(
                "GET",
                &format!("/api/admin/log/proof/consistency?from={from}&to={m}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let path: Vec<H> = r.body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(unb64)
            .collect();
        let old = mth(&leaves[..from as usize]);
        assert!(
            verify_consistency(from, m, old, mth(&leaves), &path),
            "{from} → {m}"
        );
        if from < m {
            let wrong = sha(&[b"not the old root"]);
            assert!(!verify_consistency(from, m, wrong, mth(&leaves), &path));
        }
    }

    // Refusals: clear 4xx, never a 500.
    for (path, status) in [
        (
            format!("/api/admin/log/proof/inclusion?position={m}&size={m}"),
            400,
        ),
        (
            format!("/api/admin/log/proof/inclusion?position=0&size={}", m + 1),
            400,
        ),
        ("/api/admin/log/proof/inclusion?position=0".to_string(), 400),
        (
            "/api/admin/log/proof/inclusion?position=-1&size=1".to_string(),
            400,
        ),
        (
            "/api/admin/log/proof/inclusion?position=0&size=1&x=1".to_string(),
            400,
        ),
        (
            format!("/api/admin/log/proof/consistency?from=0&to={m}"),
            400,
        ),
        (
            format!("/api/admin/log/proof/consistency?from={m}&to=1"),
            400,
        ),
    ] {
        let r = app.jwt("GET", &path, Some(&admin), None).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body["error"].is_string(), "{}", r.body);
    }
    let member = token("someone", "MEMBER");
    let r = app
        .jwt("GET", "/api/admin/log/checkpoint", Some(&member), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = app
        .jwt("GET", "/api/admin/log/checkpoint", None, None)
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
}

/// Runs a SQL statement on the test database.
async fn sql(db: &walletd::projections::Db, statement: &str) {
    walletd::projections::with_db!(db, pool => {
        sqlx::query(statement).execute(pool).await.expect(statement);
    });
}

async fn text_of(db: &walletd::projections::Db, column: &str, position: i64) -> String {
    let cast = if matches!(db, walletd::projections::Db::Postgres(_)) {
        "::text"
    } else {
        ""
    };
    let q = format!("SELECT {column}{cast} AS v FROM events WHERE position = {position}");
    walletd::projections::with_db!(db, pool => {
        use sqlx::Row as _;
        sqlx::query(&q).fetch_one(pool).await.expect("row").get::<String, _>("v")
    })
}

/// Overwrites one event's JSON column (triggers disabled by the caller).
async fn set_json(db: &walletd::projections::Db, column: &str, position: i64, text: &str) {
    let value = json_literal(db, text);
    sql(
        db,
        &format!("UPDATE events SET {column} = {value} WHERE position = {position}"),
    )
    .await;
}

fn json_literal(db: &walletd::projections::Db, text: &str) -> String {
    let quoted = format!("'{}'", text.replace('\'', "''"));
    if matches!(db, walletd::projections::Db::Postgres(_)) {
        format!("{quoted}::jsonb")
    } else {
        quoted
    }
}

async fn an_export_and_the_database_verify_and_every_tampering_is_named(b: Backend) {
    use crate::helpers::{open_db, run_cli};
    let (skey, vkey) = LogSigner::generate("walletd.test/log").unwrap();
    let Some(app) = spawn_app_with(b, move |s| s.log_key = Some(skey)).await else {
        return;
    };
    let admin = token("auditor", "ADMIN");
    for i in 0..6 {
        app.create_wallet(&format!("ex-{i}")).await;
    }
    let log = events(&app).await;
    let n = log.len() as u64;
    let checkpoint = sealed(&app, &admin, n).await;
    let tdb = app.shutdown().await;
    let dir = tdb.dir.path().to_path_buf();
    let cp = dir.join("checkpoint.txt");
    std::fs::write(&cp, checkpoint["checkpoint"].as_str().unwrap()).unwrap();
    let export = dir.join("export.jsonl");
    let db_env = [("DATABASE_URL", tdb.url.as_str())];

    let (ok, out, err) = run_cli(
        &["events", "export", "--output", export.to_str().unwrap()],
        &db_env,
    )
    .await;
    assert!(ok, "{out} {err}");
    assert!(err.contains(&format!("exported {n} events")), "{err}");
    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len() as u64, n);

    let offline = |file: std::path::PathBuf, key: String| {
        let cp = cp.clone();
        async move {
            run_cli(
                &[
                    "verify",
                    "--checkpoint",
                    cp.to_str().unwrap(),
                    "--events",
                    file.to_str().unwrap(),
                    "--key",
                    &key,
                ],
                &[],
            )
            .await
        }
    };
    let (ok, out, err) = offline(export.clone(), vkey.clone()).await;
    assert!(ok, "{out} {err}");
    assert!(out.contains(&format!("{n} events verified")), "{out}");

    // CSV carries the same records.
    let (ok, _, err) = run_cli(
        &[
            "events",
            "export",
            "--format",
            "csv",
            "--type",
            "WalletCreated",
            "--output",
            dir.join("e.csv").to_str().unwrap(),
        ],
        &db_env,
    )
    .await;
    assert!(ok, "{err}");
    let csv = std::fs::read_to_string(dir.join("e.csv")).unwrap();
    assert!(csv.starts_with("index,position,aggregate_type"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");

    // Tampered exports: each named at its first bad entry.
    let write = |name: &str, lines: &[String]| {
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let mut altered = lines.clone();
    let mut v: Value = serde_json::from_str(&altered[2]).unwrap();
    v["payload"] = json!({"tampered": true});
    altered[2] = v.to_string();
    let mut rehashed = lines.clone();
    let mut entry = walletd::transparency::export::Entry::from_json(&v).unwrap();
    entry.leaf_hash = walletd::transparency::leaf::hash(2, &entry.event).0;
    rehashed[2] = entry.to_json().to_string();
    let mut metadata = lines.clone();
    let mut m: Value = serde_json::from_str(&metadata[3]).unwrap();
    m["metadata"]["actor"] = json!("someone else");
    metadata[3] = m.to_string();
    let mut removed = lines.clone();
    removed.remove(2);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    let mut inserted = lines.clone();
    inserted.insert(2, lines[4].clone());
    let truncated = lines[..lines.len() - 1].to_vec();
    for (name, tampered, needle) in [
        ("altered", altered, "index 2 (event position".to_string()),
        ("metadata", metadata, "index 3 (event position".into()),
        (
            "rehashed",
            rehashed,
            format!("the first {n} events do not hash to the checkpoint's root"),
        ),
        ("removed", removed, "expected index 2, found 3".into()),
        ("swapped", swapped, "expected index 1, found 2".into()),
        ("inserted", inserted, "expected index 2, found 4".into()),
        (
            "truncated",
            truncated,
            format!("end at {} leaves; the checkpoint covers {n}", n - 1),
        ),
    ] {
        let (ok, out, err) = offline(write(name, &tampered), vkey.clone()).await;
        assert!(!ok, "{name}: verified: {out}");
        assert!(
            err.contains("NOT VERIFIED") && err.contains(&needle),
            "{name}: {err}"
        );
    }
    // A checkpoint with a forged size, or another log's key.
    let forged = dir.join("forged.txt");
    std::fs::write(
        &forged,
        std::fs::read_to_string(&cp).unwrap().replacen(
            &format!("\n{n}\n"),
            &format!("\n{}\n", n - 1),
            1,
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(
        &[
            "verify",
            "--checkpoint",
            forged.to_str().unwrap(),
            "--events",
            export.to_str().unwrap(),
            "--key",
            &vkey,
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("NOT VERIFIED"), "{err}");
    let (_, other) = LogSigner::generate("walletd.test/log").unwrap();
    let (ok, _, err) = offline(export.clone(), other).await;
    assert!(!ok && err.contains("NOT VERIFIED"), "{err}");

    // Online: the database verifies; then each tampering is named.
    let verify_args = ["verify", "--key", vkey.as_str()];
    let online = || run_cli(&verify_args, &db_env);
    let (ok, out, err) = online().await;
    assert!(ok, "{out} {err}");
    assert!(
        out.contains(&format!("the log verifies against {n} sealed leaves")),
        "{out}"
    );
    let db = open_db(&tdb.url).await;
    match &db {
        walletd::projections::Db::Postgres(_) => {
            sql(&db, "ALTER TABLE events DISABLE TRIGGER ALL").await
        }
        walletd::projections::Db::Sqlite(_) => {
            sql(&db, "DROP TRIGGER events_no_update").await;
            sql(&db, "DROP TRIGGER events_no_delete").await;
        }
    }
    let pos = |i: usize| log[i].at.position;
    // One changed character of a payload, then of metadata.
    for (column, index) in [("payload", 2usize), ("metadata", 3)] {
        let original = text_of(&db, column, pos(index)).await;
        let changed = original.replacen('0', "1", 1);
        assert_ne!(changed, original);
        set_json(&db, column, pos(index), &changed).await;
        let (ok, _, err) = online().await;
        assert!(
            !ok && err.contains(&format!("index {index} (event position {})", pos(index))),
            "{column}: {err}"
        );
        set_json(&db, column, pos(index), &original).await;
    }
    // Two rows' contents swapped.
    let (p1, p2) = (
        text_of(&db, "payload", pos(1)).await,
        text_of(&db, "payload", pos(4)).await,
    );
    set_json(&db, "payload", pos(1), &p2).await;
    set_json(&db, "payload", pos(4), &p1).await;
    let (ok, _, err) = online().await;
    assert!(
        !ok && err.contains("index 1 (event position"),
        "swap: {err}"
    );
    set_json(&db, "payload", pos(1), &p1).await;
    set_json(&db, "payload", pos(4), &p2).await;
    let (ok, out, err) = online().await;
    assert!(ok, "restored: {out} {err}");
    // Resuming at a position verifies the rest: leaves from there on, the
    // tree below it against the checkpoints.
    let from = |k: u64| {
        let args = ["verify", "--key", vkey.as_str(), "--from", &k.to_string()]
            .map(str::to_string)
            .to_vec();
        let env = db_env;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&args, &env).await
        }
    };
    for k in [1, 3, n - 1, n] {
        let (ok, out, err) = from(k).await;
        assert!(ok, "--from {k}: {out} {err}");
        assert!(
            out.contains(&format!("(from position {k}): {} events verified", n - k)),
            "{out}"
        );
    }
    let (ok, _, err) = from(n + 1).await;
    assert!(!ok && err.contains("beyond the sealed log"), "{err}");
    let original = text_of(&db, "payload", pos(2)).await;
    set_json(&db, "payload", pos(2), &original.replacen('0', "1", 1)).await;
    let (ok, _, err) = from(2).await;
    assert!(!ok && err.contains("index 2 (event position"), "{err}");
    let (ok, out, err) = from(3).await;
    assert!(ok, "a resumed check starts after the change: {out} {err}");
    set_json(&db, "payload", pos(2), &original).await;
    // A row inserted inside the sealed range.
    let payload = json_literal(&db, "{}");
    let metadata = json_literal(&db, "{}");
    sql(&db, &format!(
        "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES (0, 'wallet', 'forged', 1, 'WalletCreated', '1.0', {payload}, {metadata})"
    ))
    .await;
    let (ok, _, err) = online().await;
    assert!(
        !ok && err.contains("store position 0 is inside the sealed log but is no leaf"),
        "insert: {err}"
    );
    sql(&db, "DELETE FROM events WHERE position = 0").await;
    // A row deleted.
    sql(
        &db,
        &format!("DELETE FROM events WHERE position = {}", pos(2)),
    )
    .await;
    let (ok, _, err) = online().await;
    assert!(
        !ok && err.contains("expected index 2, found 3"),
        "delete: {err}"
    );
    db.close().await;
}
