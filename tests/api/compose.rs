//! Issue 12: `docker-compose.yml` and the `Dockerfile`, checked against the
//! binary. There is no container engine on these machines, so the stack is
//! checked piece by piece: every variable a walletd service sets is one
//! walletd reads; with the `${…}` secrets filled in as the file's own recipe
//! makes them, `walletd config check` (and `--cosigner`) accepts each
//! service's environment and the two sides' channel keys pair up; every
//! service has a health check, and the health checks of walletd and the
//! cosigner, run as written, pass against the real processes and fail when
//! nothing answers.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_yaml_ng::Value as Yaml;

use walletd::custody::mpc::channel::ChannelKey;

use crate::cosigner::{CosignerProcess, Keys};
use crate::helpers::{random_master_key, spawn_app, Backend, TestDb};

const COMPOSE: &str = include_str!("../../docker-compose.yml");
const DOCKERFILE: &str = include_str!("../../Dockerfile");

fn compose() -> Yaml {
    serde_yaml_ng::from_str(COMPOSE).expect("docker-compose.yml parses")
}

fn services(doc: &Yaml) -> &serde_yaml_ng::Mapping {
    doc.get("services")
        .and_then(Yaml::as_mapping)
        .expect("services")
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    doc.get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("service {name}"))
}

/// A service's `environment`, as written.
fn environment(svc: &Yaml) -> BTreeMap<String, String> {
    svc.get("environment")
        .and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let k = k.as_str().expect("variable name").to_string();
                    let v = match v {
                        Yaml::String(s) => s.clone(),
                        Yaml::Number(n) => n.to_string(),
                        Yaml::Bool(b) => b.to_string(),
                        other => panic!("{k}: unexpected value {other:?}"),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `${NAME:?message}`, `${NAME:-default}` and `${NAME}` replaced as compose
/// would, from `secrets` (a `:?` name missing from it is a test failure).
fn interpolate(value: &str, secrets: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        let (name, fallback) = match inner.find([':', '-', '?']) {
            Some(i) => (&inner[..i], Some(&inner[i..])),
            None => (inner, None),
        };
        let replaced = match (secrets.get(name), fallback) {
            (Some(v), _) => v.clone(),
            (None, Some(f)) if f.starts_with(":-") => f[2..].to_string(),
            (None, _) => {
                panic!("${{{name}}} is required by the compose file and not in its recipe")
            }
        };
        out.push_str(&replaced);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The `.env` the header comment of docker-compose.yml tells an operator to
/// write, with fresh values.
fn recipe() -> BTreeMap<&'static str, String> {
    let hex = |n: usize| {
        let mut b = vec![0u8; n];
        getrandom::getrandom(&mut b).expect("random");
        hex::encode(b)
    };
    let a = ChannelKey::generate().expect("channel key");
    let b = ChannelKey::generate().expect("channel key");
    let mut m = BTreeMap::new();
    m.insert("WALLETD_MASTER_KEY", random_master_key());
    m.insert("COSIGNER_MASTER_KEY", random_master_key());
    m.insert("WALLETD_API_KEYS", hex(32));
    m.insert("MPC_CHANNEL_KEY", a.private_hex().as_str().to_string());
    m.insert("MPC_CHANNEL_PUBLIC_KEY", a.public_hex());
    m.insert("COSIGNER_CHANNEL_KEY", b.private_hex().as_str().to_string());
    m.insert("COSIGNER_PUBLIC_KEY", b.public_hex());
    let (log_key, _) =
        walletd::transparency::LogSigner::generate("wallets.example.com/log").expect("log key");
    m.insert("WALLETD_LOG_KEY", log_key.expose().to_string());
    for name in m.keys() {
        assert!(
            COMPOSE.contains(&format!("{name}=")),
            "the compose file's recipe does not say how to make {name}"
        );
    }
    m
}

/// `walletd args…` with exactly `env` (and PATH) as its environment.
fn walletd(args: &[&str], env: &BTreeMap<String, String>) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_walletd"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("run walletd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_variable_the_stack_sets_is_read_and_accepted() {
    let doc = compose();
    let known = walletd::cli::variables();
    let secrets = recipe();
    let mut built = Vec::new();
    for (name, svc) in services(&doc) {
        let name = name.as_str().expect("service name");
        if svc.get("build").is_none() {
            continue;
        }
        built.push(name.to_string());
        for var in environment(svc).keys() {
            assert!(
                known.contains(var),
                "service {name} sets {var}, which walletd does not read"
            );
        }
    }
    built.sort();
    assert_eq!(built, ["cosigner", "walletd"]);

    let env_of = |name: &str| -> BTreeMap<String, String> {
        environment(service(&doc, name))
            .into_iter()
            .map(|(k, v)| (k, interpolate(&v, &secrets)))
            .collect()
    };
    let walletd_env = env_of("walletd");
    let cosigner_env = env_of("cosigner");

    // The cosigner URL names the cosigner service and the port it binds.
    let bind = &cosigner_env["WALLETD_COSIGNER_BIND"];
    let port = bind.rsplit(':').next().expect("port");
    assert_eq!(
        walletd_env["WALLETD_COSIGNER_URL"],
        format!("http://cosigner:{port}")
    );
    // Each DATABASE_URL names a database service the service waits for.
    for (name, env) in [("walletd", &walletd_env), ("cosigner", &cosigner_env)] {
        let url = &env["DATABASE_URL"];
        let host = url
            .split('@')
            .nth(1)
            .and_then(|h| h.split(':').next())
            .expect("host in DATABASE_URL");
        let waits = service(&doc, name)
            .get("depends_on")
            .and_then(|d| d.get(host))
            .and_then(|d| d.get("condition"))
            .and_then(Yaml::as_str);
        assert_eq!(waits, Some("service_healthy"), "{name} waits for {host}");
    }

    let (ok, out, err) = walletd(&["config", "check"], &walletd_env);
    assert!(ok, "walletd's environment refused: {err}\n{out}");
    assert!(out.contains("configuration ok"), "{out}");
    assert!(
        out.contains("server wallets: 2-of-2 MPC with the cosigner at http://cosigner:"),
        "{out}"
    );
    assert!(
        out.contains("transparency log: sealed; checkpoints of wallets.example.com/log"),
        "{out}"
    );
    let secret_names = [
        "WALLETD_MASTER_KEY",
        "COSIGNER_MASTER_KEY",
        "WALLETD_API_KEYS",
        "MPC_CHANNEL_KEY",
        "COSIGNER_CHANNEL_KEY",
        "WALLETD_LOG_KEY",
    ];
    for secret in secret_names.iter().map(|n| &secrets[n]) {
        assert!(
            !out.contains(secret.as_str()) && !err.contains(secret.as_str()),
            "config check printed a secret"
        );
    }

    let command: Vec<&str> = service(&doc, "cosigner")
        .get("command")
        .and_then(Yaml::as_sequence)
        .expect("cosigner command")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(command, ["cosigner"]);
    let (ok, out, err) = walletd(&["config", "check", "--cosigner"], &cosigner_env);
    assert!(ok, "the cosigner's environment refused: {err}\n{out}");
    for secret in secret_names.iter().map(|n| &secrets[n]) {
        assert!(
            !out.contains(secret.as_str()) && !err.contains(secret.as_str()),
            "config check --cosigner printed a secret"
        );
    }
    // The two sides pin each other's keys.
    assert!(
        out.contains(&format!(
            "channel public key {}",
            secrets["COSIGNER_PUBLIC_KEY"]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "accepts party 1 {}",
            secrets["MPC_CHANNEL_PUBLIC_KEY"]
        )),
        "{out}"
    );
}

/// A service's health check as a shell command, pointed at `port` instead of
/// the port it is written for.
fn health_check(doc: &Yaml, name: &str, written_port: u16, port: u16) -> Vec<String> {
    let test: Vec<String> = service(doc, name)
        .get("healthcheck")
        .and_then(|h| h.get("test"))
        .and_then(Yaml::as_sequence)
        .unwrap_or_else(|| panic!("{name} has no health check"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    assert_eq!(test[0], "CMD", "{name}: exec form");
    let from = format!("127.0.0.1/{written_port}");
    assert!(test.iter().any(|a| a.contains(&from)), "{name}: {test:?}");
    test[1..]
        .iter()
        .map(|a| a.replace(&from, &format!("127.0.0.1/{port}")))
        .collect()
}

fn passes(check: &[String]) -> bool {
    Command::new(&check[0])
        .args(&check[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the health check")
        .success()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

#[actix_web::test]
async fn every_service_has_a_health_check_that_works() {
    let doc = compose();
    for (name, svc) in services(&doc) {
        assert!(
            svc.get("healthcheck").and_then(|h| h.get("test")).is_some(),
            "service {name:?} has no health check"
        );
        if let Some(deps) = svc.get("depends_on").and_then(Yaml::as_mapping) {
            for (dep, how) in deps {
                assert_eq!(
                    how.get("condition").and_then(Yaml::as_str),
                    Some("service_healthy"),
                    "{name:?} should wait for {dep:?} to be healthy"
                );
            }
        }
    }

    // walletd's check asks /readyz of a real server.
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite");
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let check = health_check(&doc, "walletd", 8080, port);
    assert!(check.iter().any(|a| a.contains("/readyz")), "{check:?}");
    let ready = actix_web::rt::task::spawn_blocking(move || passes(&check))
        .await
        .unwrap();
    assert!(ready, "walletd's health check fails against a ready server");
    let check = health_check(&doc, "walletd", 8080, free_port());
    let down = actix_web::rt::task::spawn_blocking(move || passes(&check))
        .await
        .unwrap();
    assert!(
        !down,
        "walletd's health check passes with nothing listening"
    );

    // The cosigner's asks its /healthz.
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let keys = Keys::new();
    let cosigner = CosignerProcess::start(&db, &random_master_key(), &keys, "127.0.0.1:0");
    let port: u16 = cosigner.base.rsplit(':').next().unwrap().parse().unwrap();
    let check = health_check(&doc, "cosigner", 8090, port);
    assert!(check.iter().any(|a| a.contains("/healthz")), "{check:?}");
    let healthy = actix_web::rt::task::spawn_blocking(move || passes(&check))
        .await
        .unwrap();
    assert!(healthy, "the cosigner's health check fails against it");
    drop(cosigner);
}

#[test]
fn the_image_builds_locked_and_listens_where_the_stack_looks() {
    let builds: Vec<&str> = DOCKERFILE
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty());
    for line in builds {
        assert!(line.contains("--locked"), "not --locked: {line}");
    }
    assert!(DOCKERFILE.contains("ENV WALLETD_BIND=0.0.0.0:8080"));
    let doc = compose();
    let ports: Vec<&str> = service(&doc, "walletd")
        .get("ports")
        .and_then(Yaml::as_sequence)
        .expect("ports")
        .iter()
        .map(|p| p.as_str().expect("string"))
        .collect();
    assert!(ports.iter().any(|p| p.ends_with(":8080")), "{ports:?}");
    let bind = environment(service(&doc, "cosigner"))["WALLETD_COSIGNER_BIND"].clone();
    assert!(
        bind.starts_with("0.0.0.0:"),
        "the cosigner must listen beyond its container: {bind}"
    );
}
