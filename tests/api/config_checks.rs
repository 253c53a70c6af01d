//! Issue 12, operators: configuration that fails fast, `walletd config check`,
//! `/readyz` that names a master key that does not open the vault, and
//! one-shot commands that start no background work. Each runs the real
//! binary.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use walletd::custody::mpc::channel::ChannelKey;

use crate::cosigner::{CosignerProcess, Keys};
use crate::helpers::{
    into_resp, random_master_key, run_cli, spawn_app_with, Backend, BinaryServer, TestDb,
};

/// Runs `walletd args…` with a clean walletd environment plus `env`, and
/// kills it if it is still running after `limit` (a configuration that
/// should have been refused would otherwise serve forever).
fn run(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_walletd"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WALLETD_")
            || k.starts_with("OTEL_")
            || k == "DATABASE_URL"
            || k == "RUST_LOG"
        {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("DATABASE_URL", db)
        .env("WALLETD_BIND", "127.0.0.1:0")
        .env("WALLETD_SERVER_WALLET_CUSTODY", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn walletd");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "walletd {args:?} with {env:?} still running after {limit:?}: it accepted the configuration\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL URL nothing listens on: the checks refuse before connecting.
const NOWHERE_PG: &str = "postgres://walletd:pg-password-77aa@127.0.0.1:1/walletd";

/// Each setting that cannot work, and the variable its error must name.
fn bad_settings() -> Vec<(Vec<(&'static str, String)>, &'static str)> {
    let key = random_master_key();
    vec![
        (vec![("WALLETD_MAX_BODY", "0".into())], "WALLETD_MAX_BODY"),
        (
            vec![("WALLETD_LOG_KEY", "PRIVATE+KEY+x+00000000+AAAA".into())],
            "WALLETD_LOG_KEY",
        ),
        (
            vec![("WALLETD_MAX_BODY", "lots".into())],
            "WALLETD_MAX_BODY",
        ),
        (
            vec![("WALLETD_CREATE_RATE_PER_MINUTE", "0".into())],
            "WALLETD_CREATE_RATE_PER_MINUTE",
        ),
        (vec![("WALLETD_WORKERS", "0".into())], "WALLETD_WORKERS"),
        (vec![("WALLETD_DB_POOL", "0".into())], "WALLETD_DB_POOL"),
        (
            vec![("WALLETD_READY_MAX_LAG_EVENTS", "0".into())],
            "WALLETD_READY_MAX_LAG_EVENTS",
        ),
        (vec![("RUST_LOG", "info,sqlx=loudest".into())], "RUST_LOG"),
        (
            vec![("WALLETD_LOG_FORMAT", "yaml".into())],
            "WALLETD_LOG_FORMAT",
        ),
        (
            vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://otel-user:otel-pass-99@collector:4318".into(),
            )],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            vec![("WALLETD_KYC_MODE", "bogus".into())],
            "WALLETD_KYC_MODE",
        ),
        (vec![("WALLETD_METRICS", "maybe".into())], "WALLETD_METRICS"),
        (
            vec![
                ("WALLETD_SERVER_WALLET_CUSTODY", "mpc".into()),
                ("WALLETD_COSIGNER_URL", "notaurl".into()),
            ],
            "WALLETD_COSIGNER_URL",
        ),
        // MPC server wallets on PostgreSQL with no cosigner at all.
        (
            vec![
                ("DATABASE_URL", NOWHERE_PG.into()),
                ("WALLETD_MASTER_KEY", key.clone()),
                ("WALLETD_SERVER_WALLET_CUSTODY", "mpc".into()),
            ],
            "WALLETD_COSIGNER_URL",
        ),
        // PostgreSQL has no key file to fall back on.
        (
            vec![("DATABASE_URL", NOWHERE_PG.into())],
            "WALLETD_MASTER_KEY",
        ),
        (
            vec![("WALLETD_MASTER_KEY", "not-a-key-c0ffee".into())],
            "WALLETD_MASTER_KEY",
        ),
    ]
}

#[test]
fn serve_refuses_settings_that_cannot_work_naming_the_variable() {
    for (env, var) in bad_settings() {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run(&["serve"], &env, Duration::from_secs(20));
        let err = stderr(&out);
        assert!(!out.status.success(), "{env:?} accepted: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{env:?}: one line expected, got {err}");
        assert!(lines[0].starts_with("walletd: "), "{env:?}: {err}");
        assert!(lines[0].contains(var), "{env:?}: {var} not named in {err}");
        if var == "WALLETD_KYC_MODE" {
            assert!(!err.contains("--kyc-mode"), "{err}");
        }
        for secret in ["pg-password-77aa", "not-a-key-c0ffee", "otel-pass-99"] {
            assert!(!err.contains(secret), "{secret} shown: {err}");
        }
        assert!(stdout(&out).is_empty(), "{env:?}: {}", stdout(&out));
    }
}

#[test]
fn a_bad_flag_is_still_reported_by_its_flag() {
    let out = run(
        &["serve", "--kyc-mode", "bogus"],
        &[],
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--kyc-mode"), "{}", stderr(&out));
}

#[test]
fn config_check_prints_the_configuration_with_secrets_redacted() {
    let master = random_master_key();
    let cosigner = random_master_key();
    let secrets = [
        ("WALLETD_MASTER_KEY", master.as_str()),
        ("WALLETD_COSIGNER_MASTER_KEY", cosigner.as_str()),
        ("WALLETD_API_KEYS", "api-key-5e1f,api-key-6a2b"),
        (
            "WALLETD_JWT_SECRET",
            "jwt-secret-0123456789abcdef-0123456789",
        ),
    ];
    let mut env = secrets.to_vec();
    env.extend([
        ("DATABASE_URL", NOWHERE_PG),
        ("WALLETD_SERVER_WALLET_CUSTODY", "mpc"),
        ("WALLETD_MAX_BODY", "4096"),
    ]);
    let out = run(&["config", "check"], &env, Duration::from_secs(20));
    let (shown, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{shown}{err}");
    for (_, value) in secrets {
        for part in value.split(',') {
            assert!(!shown.contains(part), "secret shown:\n{shown}");
            assert!(!err.contains(part), "secret shown:\n{err}");
        }
    }
    assert!(!shown.contains("pg-password-77aa"), "{shown}");
    let line = |var: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().next() == Some(var))
            .unwrap_or_else(|| panic!("{var} missing:\n{shown}"))
            .to_string()
    };
    assert!(line("WALLETD_MASTER_KEY").contains("[redacted]"));
    assert!(line("WALLETD_MASTER_KEY").contains("(environment)"));
    assert!(line("WALLETD_API_KEYS").contains("[redacted]"));
    assert!(line("DATABASE_URL").contains("walletd:[redacted]@127.0.0.1:1/walletd"));
    assert!(line("WALLETD_MAX_BODY").contains("4096"));
    assert!(line("WALLETD_DB_POOL").contains("(default)"));
    assert!(line("WALLETD_JWT_ISSUER").contains("(not set)"));
    assert!(line("RUST_LOG").contains("info"));
    // stderr is a pipe here: `auto` means JSON lines.
    assert!(
        line("WALLETD_LOG_FORMAT").contains("auto (now json"),
        "{shown}"
    );
    assert!(line("WALLETD_LOG_FORMAT").contains("(default)"));
    assert!(
        line("OTEL_EXPORTER_OTLP_ENDPOINT").contains("not set"),
        "{shown}"
    );
    assert!(shown.contains("configuration ok"), "{shown}");
    // Keys are named by their ids (hashes), which the vault's rows name too.
    let id = walletd::custody::MasterKey::parse(&master).unwrap();
    assert!(
        shown.contains(&format!("master key: WALLETD_MASTER_KEY, id {}", id.id())),
        "{shown}"
    );
    assert!(shown.contains("in-process cosigner"), "{shown}");
    assert!(line("WALLETD_METRICS").contains("on"), "{shown}");
    assert!(shown.contains("metrics: GET /metrics on "), "{shown}");

    // The OTLP endpoint is shown without its credentials.
    let env = [(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://otel-user:otel-pass-99@127.0.0.1:4318/",
    )];
    let out = run(&["config", "check"], &env, Duration::from_secs(20));
    let shown = stdout(&out);
    assert!(
        shown.contains("http://127.0.0.1:4318 (spans exported") && !shown.contains("otel-pass-99"),
        "{shown}"
    );

    // Invalid: the same line `serve` gives, and a failure.
    let bad = [("WALLETD_MAX_BODY", "0")];
    let checked = run(&["config", "check"], &bad, Duration::from_secs(20));
    let served = run(&["serve"], &bad, Duration::from_secs(20));
    assert!(!checked.status.success());
    assert_eq!(stderr(&checked), stderr(&served));
    assert!(stderr(&checked).contains("WALLETD_MAX_BODY"));
}

/// A server restarted with another master key than its vault was sealed
/// under: `/readyz` says so, a signature answers 500 without detail, and
/// the log says what is wrong (ids only, never a key).
#[actix_web::test]
async fn readyz_names_a_master_key_that_does_not_open_the_vault() {
    let tdb = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let (right, wrong) = (random_master_key(), random_master_key());
    let api_key = "readyz-key";
    let log = tdb.dir.path().join("walletd.log");
    let client = awc::Client::default();
    let mut server = BinaryServer::start(&tdb.url, Some(&right), api_key, &log);
    let r = into_resp(
        client
            .post(format!("{}/api/wallets", server.base))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .send_json(&json!({"userId": "canary-user"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ready = into_resp(
        client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    server.kill();

    let wrong_log = tdb.dir.path().join("wrong.log");
    let server = BinaryServer::start(&tdb.url, Some(&wrong), api_key, &wrong_log);
    let ready = into_resp(
        client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body["problems"]
            .to_string()
            .contains("master key does not open the vault"),
        "{}",
        ready.body
    );
    let signed = into_resp(
        client
            .post(format!("{}/api/wallets/canary-user/sign", server.base))
            .insert_header(("Authorization", format!("Bearer {api_key}")))
            .send_json(&json!({"message": "hello"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(signed.status, 500, "{}", signed.body);
    // Nothing about keys in the answer.
    assert_eq!(signed.body["error"], "internal error", "{}", signed.body);
    assert!(
        !signed.body.to_string().contains("master"),
        "{}",
        signed.body
    );
    let text = std::fs::read_to_string(&wrong_log).unwrap();
    assert!(
        text.contains("WALLETD_MASTER_KEY is wrong"),
        "the log does not say why:\n{text}"
    );
    for key in [&right, &wrong] {
        assert!(!text.contains(key.as_str()), "a master key reached the log");
    }
}

/// One-shot commands run their command and exit: no projector error when
/// they close, no in-process cosigner warning, and empty listings say so.
#[actix_web::test]
async fn one_shot_commands_start_no_background_work() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(tdb) = TestDb::new(backend).await else {
            continue;
        };
        let master = random_master_key();
        let cosigner = random_master_key();
        let env = [
            ("DATABASE_URL", tdb.url.as_str()),
            ("WALLETD_MASTER_KEY", master.as_str()),
            ("WALLETD_COSIGNER_MASTER_KEY", cosigner.as_str()),
            ("WALLETD_SERVER_WALLET_CUSTODY", "mpc"),
        ];
        let address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let steps: Vec<(Vec<&str>, bool, Option<&str>)> = vec![
            (vec!["migrate"], true, Some("migrations applied")),
            (vec!["api-key", "list"], true, Some("no API keys")),
            (vec!["app", "list"], true, Some("no apps registered")),
            (vec!["api-key", "create", "--name", "ops"], true, None),
            (
                vec![
                    "app",
                    "register",
                    "--handle",
                    "one.shot",
                    "--address",
                    address,
                ],
                true,
                Some("registered"),
            ),
            (vec!["app", "list"], true, Some("one.shot")),
            // Nobody has that handle: a refusal, but a clean one.
            (vec!["kyc", "pass", "nobody.here"], false, None),
            (vec!["rotate-master-key"], true, Some("re-wrapped")),
            (vec!["config", "check"], true, Some("configuration ok")),
        ];
        for (args, ok, expect) in steps {
            let (success, out, err) = run_cli(&args, &env).await;
            assert_eq!(success, ok, "{backend:?} {args:?}: {out}{err}");
            if let Some(expect) = expect {
                assert!(out.contains(expect), "{backend:?} {args:?}: {out}");
            }
            for noise in ["ERROR", "WARN", "in this process", "projector"] {
                assert!(
                    !err.contains(noise),
                    "{backend:?} {args:?} printed {noise:?}:\n{err}"
                );
            }
        }
    }
}

#[test]
fn each_subcommand_help_shows_its_own_flags() {
    for (args, own) in [
        (vec!["api-key", "create", "--help"], "--name <NAME>"),
        (vec!["api-key", "revoke", "--help"], "--id <ID>"),
        (vec!["app", "register", "--help"], "--address <ADDRESS>"),
        (vec!["kyc", "pass", "--help"], "<HANDLE>"),
        (vec!["rotate-master-key", "--help"], "--new-key <NEW_KEY>"),
        (vec!["config", "check", "--help"], "Usage"),
    ] {
        let out = run(&args, &[], Duration::from_secs(20));
        let text = stdout(&out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let at = text
            .find(own)
            .unwrap_or_else(|| panic!("{args:?}:\n{text}"));
        // Its own flags come before the shared settings.
        let settings = text.find("Settings (").unwrap_or(text.len());
        assert!(at < settings, "{args:?}:\n{text}");
    }
}

/// `/readyz` probes the MPC cosigner over the channel: ready when it answers,
/// 503 when it cannot be reached or does not accept this server's key.
#[actix_web::test]
async fn readyz_probes_the_cosigner_over_its_channel() {
    let cosigner_db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let keys = Keys::new();
    let cosigner = CosignerProcess::start(&cosigner_db, &random_master_key(), &keys, "127.0.0.1:0");
    let pinned = keys.cosigner.public_hex();
    let stranger = ChannelKey::generate().unwrap();
    let cases = [
        (
            cosigner.base.clone(),
            keys.server.private_hex().to_string(),
            200,
        ),
        // A key the cosigner does not pin: the channel is refused.
        (
            cosigner.base.clone(),
            stranger.private_hex().to_string(),
            503,
        ),
        // Nothing listens there.
        (
            "http://127.0.0.1:1".to_string(),
            keys.server.private_hex().to_string(),
            503,
        ),
    ];
    for (url, own, expected) in cases {
        let pinned = pinned.clone();
        let app = spawn_app_with(Backend::Sqlite, move |s| {
            s.server_wallet_custody = walletd::config::ServerCustody::Mpc;
            s.mpc_key_pool = 0;
            s.cosigner_url = Some(url);
            s.mpc_channel_key = Some(own.into());
            s.cosigner_public_key = Some(pinned);
        })
        .await
        .expect("sqlite");
        let r = app.get("/readyz").await;
        assert_eq!(r.status, expected, "{}", r.body);
        let named = r
            .body
            .to_string()
            .contains("MPC cosigner unreachable or refusing the channel");
        assert_eq!(named, expected == 503, "{}", r.body);
    }
}

/// `--config FILE` / `WALLETD_CONFIG`: settings from a file of `NAME=value`
/// lines, under the environment and the flags; a name walletd does not read
/// and a value that cannot work are refused, naming them.
#[test]
fn a_configuration_file_sits_under_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("walletd.env");
    let key = random_master_key();
    std::fs::write(
        &file,
        format!(
            "# walletd settings\nWALLETD_MAX_BODY=2048\nexport WALLETD_CREATE_RATE_PER_MINUTE=77\n\
             WALLETD_MASTER_KEY=\"{key}\"\nRUST_LOG=warn\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = file.to_str().unwrap();
    let line = |out: &str, var: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("no {var} line in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let limit = Duration::from_secs(30);

    let out = run(&["--config", path, "config", "check"], &[], limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert_eq!(
        line(&shown, "WALLETD_MAX_BODY"),
        "WALLETD_MAX_BODY 2048 (file)"
    );
    assert_eq!(
        line(&shown, "WALLETD_CREATE_RATE_PER_MINUTE"),
        "WALLETD_CREATE_RATE_PER_MINUTE 77 (file)"
    );
    assert_eq!(
        line(&shown, "WALLETD_MASTER_KEY"),
        "WALLETD_MASTER_KEY [redacted] (file)"
    );
    assert_eq!(line(&shown, "RUST_LOG"), "RUST_LOG warn (file)");
    assert!(!shown.contains(&key) && !stderr(&out).contains(&key));
    assert!(
        stderr(&out).is_empty(),
        "a private file: no warning\n{}",
        stderr(&out)
    );

    // The environment overrides the file, a flag both; WALLETD_CONFIG names it too.
    let out = run(
        &["config", "check", "--max-body", "8192"],
        &[
            ("WALLETD_CONFIG", path),
            ("WALLETD_CREATE_RATE_PER_MINUTE", "5"),
        ],
        limit,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert_eq!(
        line(&shown, "WALLETD_MAX_BODY"),
        "WALLETD_MAX_BODY 8192 (flag)"
    );
    assert_eq!(
        line(&shown, "WALLETD_CREATE_RATE_PER_MINUTE"),
        "WALLETD_CREATE_RATE_PER_MINUTE 5 (environment)"
    );
    assert!(line(&shown, "WALLETD_CONFIG").contains(path), "{shown}");

    // A value from the file is validated like any other.
    std::fs::write(&file, "WALLETD_MAX_BODY=0\n").unwrap();
    let out = run(&["--config", path, "config", "check"], &[], limit);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("WALLETD_MAX_BODY"),
        "{}",
        stderr(&out)
    );

    // A name walletd does not read (a typo) is refused, naming it.
    std::fs::write(&file, "WALLETD_MAX_BDOY=4096\n").unwrap();
    let out = run(&["--config", path, "serve"], &[], limit);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("WALLETD_MAX_BDOY is not a setting walletd reads"),
        "{}",
        stderr(&out)
    );

    // A file that is not there.
    let out = run(
        &["serve"],
        &[("WALLETD_CONFIG", "/nonexistent/walletd.env")],
        limit,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("walletd: WALLETD_CONFIG: cannot read /nonexistent/walletd.env"),
        "{}",
        stderr(&out)
    );
}
